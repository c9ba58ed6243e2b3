"""The sub-processor list and the data-location and transfer register, built from the records.

Inputs: compliance/subprocessors.yaml (who), stacks/Pulumi.<stack>.yaml (where each stack runs,
whom it serves, which providers it names), compliance/transfers.yaml (on what basis each arrow
origin -> region rests) and, when given, a view of the deployed cells (CellsView: the origins the
stack's outputs declare and the jurisdictions of the partners and tenants its directory holds),
so the register shows the transfers the data actually makes. Output: one Register value,
rendered as Markdown, JSON or HTML.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from compliance.paths import SUBPROCESSORS_FILE
from compliance.rendering import environment
from compliance.transfers import Basis, TransferRefused, Transfers, check_served, load_transfers
from stackconfig.config import ConfigError, PlatformConfig
from stackconfig.files import load_stack_config, stack_file, stack_names

FORMATS = ("md", "json", "html")
HOSTING = ("stack-regions", "stack-primary", "countries")

# Legend order and wording, shared by every format.
KINDS = {
    "domestic": "same jurisdiction (not a transfer)",
    "adequacy": "adequacy decision",
    "sccs": "SCCs / IDTA / UK Addendum with TIA",
    "permitted": "permitted by the origin's law (assessed)",
    "none": "no recorded basis: refused",
    "prohibited": "prohibited by the origin's law: never recorded",
}


# What a register proves, as the evidence report names its controls (compliance/promises.yaml).
REGISTER_CHECKS = {
    "stack-transfers-recorded": "every origin a stack declares has a basis for its region and DR region",
    "subprocessor-transfers-recorded": "every origin a stack serves has a basis for each sub-processor country",
    "subprocessors-listed": "every sub-processor a stack names is listed with its DPA",
    "directory-transfers-declared": "every jurisdiction whose data the cells hold is declared and recorded",
}


class RegisterError(ValueError):
    """The records cannot produce a register (missing file, unknown name, bad field)."""


@dataclass(frozen=True)
class ServedOrigin:
    """One jurisdiction whose data a stack's cells hold: its partners (whose rows are in every
    cell) and their tenants."""

    origin: str
    partners: int
    tenants: int


@dataclass(frozen=True)
class CellsView:
    """A deployed stack as its outputs and directory show it."""

    stack: str
    region: str
    dr_region: str
    declared: tuple[str, ...]  # the outputs' origins
    served: tuple[ServedOrigin, ...]  # from the cells' partners and tenants tables


@dataclass(frozen=True)
class Arrow:
    """Tenant data of `origin` stored by `stack` in `region` (primary) or copied there (dr)."""

    origin: str
    stack: str
    role: str  # primary | dr
    region: str
    country: str
    country_name: str
    kind: str  # a KINDS key
    basis: dict[str, Any] | None

    @property
    def recorded(self) -> bool:
        return self.kind not in ("none", "prohibited")

    @property
    def summary(self) -> str:
        if not self.basis:
            return "none recorded"
        b = self.basis
        parts = [b["reference"]]
        if b.get("date"):
            parts.append(b["date"])
        if b.get("module"):
            parts.append(b["module"])
        if b.get("tia"):
            parts.append(f"TIA {b['tia']}")
        if b.get("assessment"):
            parts.append(f"assessment {b['assessment']}")
        return "; ".join(parts)


@dataclass(frozen=True)
class HeldData:
    """Data of `origin` that the cells of `stack` hold now, and the arrows it makes."""

    origin: str
    stack: str
    partners: int
    tenants: int
    declared: bool  # among the origins the stack declares
    arrows: tuple[Arrow, ...]  # primary and DR
    refusal: str | None  # what the placement gate says of it; None when admitted


@dataclass(frozen=True)
class SubprocessorTransfer:
    """Data of `origin` served by `stack`, held by a sub-processor in `country`."""

    subprocessor: str
    stack: str
    origin: str
    country: str
    country_name: str
    kind: str
    basis: dict[str, Any] | None

    @property
    def recorded(self) -> bool:
        return self.kind not in ("none", "prohibited")


@dataclass(frozen=True)
class Subprocessor:
    id: str
    name: str
    role: str
    legal_entity: str
    purpose: str
    data_categories: tuple[str, ...]
    locations: tuple[str, ...]  # "eu-west-1 (IE, Ireland)" or "US (United States)"
    countries: tuple[str, ...]  # fixed countries (hosting: countries); a stack's regions are its arrows
    dpa_reference: str
    dpa_date: str
    transfer_mechanism: str
    used_by: tuple[str, ...]
    pulumi_package: str | None = None  # the Pulumi package whose resources it hosts (aws)


@dataclass(frozen=True)
class StackSummary:
    stack: str
    environment: str
    region: str
    country: str
    dr_region: str
    dr_country: str
    origins: tuple[str, ...]
    email: str
    payments: str
    described_by: str = "stack config"  # or "stack outputs" (a stack no config file describes)


@dataclass(frozen=True)
class _Facts:
    """What the register needs of a stack, from its config or from its deployed outputs."""

    stack: str
    environment: str
    region: str
    dr_region: str
    origins: tuple[str, ...]
    uses: tuple[str, ...]  # sub-processors it names (email, payments)
    email: str = ""
    payments: str = ""
    described_by: str = "stack config"

    @classmethod
    def of_config(cls, c: PlatformConfig) -> _Facts:
        names = (c.email.name, c.payments.name)
        return cls(c.stack, c.environment, c.region, c.dr_region, c.origins, names, *names)

    @classmethod
    def of_cells(cls, v: CellsView) -> _Facts:
        return cls(v.stack, "", v.region, v.dr_region, v.declared, (), described_by="stack outputs")


@dataclass
class Register:
    generated_on: str
    transfers_assessed_on: str
    stacks: list[StackSummary]
    subprocessors: list[Subprocessor]
    arrows: list[Arrow]
    origins: dict[str, str]  # code -> name, those served by the selected stacks
    regions_in_use: list[str]
    region_countries: dict[str, str]  # region -> "IE, Ireland"
    # every AWS region x every origin the platform serves: what a new stack would rest on
    readiness: dict[str, dict[str, str]] = field(default_factory=dict)
    subprocessor_transfers: list[SubprocessorTransfer] = field(default_factory=list)
    held: list[HeldData] = field(default_factory=list)  # from the cells, when a view was given
    cells_read: list[str] = field(default_factory=list)  # stacks whose cells were read
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=lambda: dict(KINDS))

    @property
    def unrecorded(self) -> list[Arrow]:
        return [a for a in self.arrows if not a.recorded]

    @property
    def unrecorded_subprocessor_transfers(self) -> list[SubprocessorTransfer]:
        return [x for x in self.subprocessor_transfers if not x.recorded]

    @property
    def refused_held(self) -> list[HeldData]:
        return [h for h in self.held if h.refusal]

    def problems(self) -> dict[str, list[str]]:
        """Per register check, one line for each thing that fails it."""
        return {
            "stack-transfers-recorded": [
                f"{a.origin} -> {a.region} ({a.country}, {a.country_name}) in stack {a.stack} ({a.role}): "
                f"record bases.{a.origin}.{a.country} in compliance/transfers.yaml"
                for a in self.unrecorded
            ],
            "subprocessor-transfers-recorded": [
                f"{x.origin} -> {x.country} ({x.country_name}) through sub-processor {x.subprocessor} of stack "
                f"{x.stack}: record bases.{x.origin}.{x.country} in compliance/transfers.yaml, or choose another"
                for x in self.unrecorded_subprocessor_transfers
            ],
            "subprocessors-listed": [],  # an unlisted one is a RegisterError: no register at all
            "directory-transfers-declared": [
                f"{h.partners} partner(s) and {h.tenants} tenant(s) of {h.origin} in stack {h.stack}: {h.refusal}"
                for h in self.refused_held
            ],
        }

    def cell(self, origin: str, region: str) -> list[Arrow]:
        return [a for a in self.arrows if a.origin == origin and a.region == region]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for arrow, raw in zip(self.arrows, out["arrows"], strict=True):
            raw["summary"] = arrow.summary
        return out


def _kind(t: Transfers, origin: str, country: str, basis: Basis | None) -> str:
    if basis is not None:
        return basis.mechanism
    return "prohibited" if (origin, country) in t.prohibited else "none"


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RegisterError(f"{path}: not found") from None
    except yaml.YAMLError as exc:
        raise RegisterError(f"{path}: not valid YAML ({exc.__class__.__name__})") from None


def _load_stacks(names: list[str], stacks_dir: Path) -> list[PlatformConfig]:
    configs = []
    for name in names:
        try:
            configs.append(load_stack_config(name, stacks_dir))
        except ConfigError as exc:
            raise RegisterError(str(exc)) from None
    return configs


def _where(t: Transfers, region: str) -> str:
    country = t.country_of(region)
    return f"{region} ({country}, {t.country_name(country)})"


def _subprocessors(path: Path, configs: list[_Facts], t: Transfers) -> list[Subprocessor]:
    doc = _read_yaml(path)
    entries = doc.get("subprocessors") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise RegisterError(f"{path}: expected a non-empty 'subprocessors:' list")
    required = (
        "id",
        "name",
        "role",
        "legal_entity",
        "purpose",
        "data_categories",
        "hosting",
        "dpa",
        "transfer_mechanism",
    )
    known = {str(e.get("id")) for e in entries if isinstance(e, dict)}
    for cfg in configs:
        for named in cfg.uses:
            if named not in known:
                raise RegisterError(
                    f"stack {cfg.stack} names sub-processor {named!r}, which {path.name} does not "
                    f"list; add it there (name, legal entity, purpose, DPA, transfer mechanism)"
                )
    out = []
    for i, e in enumerate(entries):
        if not isinstance(e, dict):
            raise RegisterError(f"{path}: subprocessors[{i}] is not a mapping")
        missing = [k for k in required if not e.get(k)]
        if missing:
            raise RegisterError(f"{path}: subprocessors[{i}] lacks {', '.join(missing)}")
        if e["hosting"] not in HOSTING:
            raise RegisterError(f"{path}: {e['id']}: hosting must be one of {', '.join(HOSTING)}")
        dpa = e["dpa"]
        if not isinstance(dpa, dict) or not dpa.get("reference") or not dpa.get("date"):
            raise RegisterError(f"{path}: {e['id']}: dpa needs reference and date")
        users = [c for c in configs if e.get("always_used") or e["id"] in c.uses]
        locations: list[str] = []
        countries: list[str] = []
        if e["hosting"] == "countries":
            for code in e.get("countries") or []:
                if code not in t.countries:
                    raise RegisterError(f"{path}: {e['id']}: unknown country {code}")
                locations.append(f"{code} ({t.country_name(code)})")
                countries.append(str(code))
        else:
            regions = {c.region for c in users}
            if e["hosting"] == "stack-regions":
                regions |= {c.dr_region for c in users}
            locations = [_where(t, r) for r in sorted(regions)]
        out.append(
            Subprocessor(
                id=str(e["id"]),
                name=str(e["name"]),
                role=str(e["role"]),
                legal_entity=str(e["legal_entity"]),
                purpose=str(e["purpose"]),
                data_categories=tuple(str(c) for c in e["data_categories"]),
                locations=tuple(locations),
                countries=tuple(countries),
                dpa_reference=str(dpa["reference"]),
                dpa_date=str(dpa["date"]),
                transfer_mechanism=str(e["transfer_mechanism"]),
                used_by=tuple(c.stack for c in users),
                pulumi_package=str(e["pulumi_package"]) if e.get("pulumi_package") else None,
            )
        )
    return out


def _judged(t: Transfers, origin: str, country: str) -> tuple[str, dict[str, Any] | None]:
    """The kind and the recorded basis (as a mapping) of data of `origin` held in `country`."""
    basis = t.basis(origin, country)
    return _kind(t, origin, country, basis), basis.as_dict() if basis else None


def _arrows(t: Transfers, stack: str, origin: str, region: str, dr_region: str) -> list[Arrow]:
    code = t.origin(origin).code
    out = []
    for role, where in (("primary", region), ("dr", dr_region)):
        country = t.country_of(where)
        kind, basis = _judged(t, code, country)
        out.append(
            Arrow(
                origin=code,
                stack=stack,
                role=role,
                region=where,
                country=country,
                country_name=t.country_name(country),
                kind=kind,
                basis=basis,
            )
        )
    return out


def _subprocessor_transfers(t: Transfers, facts: list[_Facts], subs: list[Subprocessor]) -> list[SubprocessorTransfer]:
    """Sub-processors holding data in fixed countries: each origin their stacks serve -> each country."""
    out = []
    for sub in subs:
        for f in (f for f in facts if f.stack in sub.used_by):
            for origin in f.origins:
                code = t.origin(origin).code
                for country in sub.countries:
                    kind, basis = _judged(t, code, country)
                    out.append(
                        SubprocessorTransfer(
                            subprocessor=sub.id,
                            stack=f.stack,
                            origin=code,
                            country=country,
                            country_name=t.country_name(country),
                            kind=kind,
                            basis=basis,
                        )
                    )
    return out


def _held(t: Transfers, view: CellsView) -> list[HeldData]:
    """The cells' data by origin, judged by the placement gate itself."""
    out = []
    for s in view.served:
        try:
            check_served(s.origin, view.stack, view.declared, view.region, view.dr_region, transfers=t)
            refusal = None
        except TransferRefused as exc:
            refusal = str(exc)
        code = t.origin(s.origin).code
        declared = code in {t.origin(o).code for o in view.declared}
        arrows = tuple(_arrows(t, view.stack, code, view.region, view.dr_region))
        out.append(HeldData(code, view.stack, s.partners, s.tenants, declared, arrows, refusal))
    return out


def build_register(
    stacks: list[str] | None,
    stacks_dir: Path,
    transfers: Transfers | None = None,
    today: dt.date | None = None,
    cells: dict[str, CellsView] | None = None,
) -> Register:
    """The register for the named stacks (None: every stacks/Pulumi.*.yaml). With `cells`, the
    data those stacks' cells hold is judged too; a stack with no config file is then described
    by its outputs (where it runs, whom it declares; no sub-processor it names)."""
    stacks_dir = Path(stacks_dir)
    cells = cells or {}
    names = stacks if stacks else stack_names(stacks_dir)
    if not names:
        raise RegisterError(f"no stack configs (Pulumi.*.yaml) in {stacks_dir}")
    try:
        t = transfers or load_transfers()
        by_outputs = [n for n in names if n in cells and not stack_file(n, stacks_dir).is_file()]
        facts = [_Facts.of_config(c) for c in _load_stacks([n for n in names if n not in by_outputs], stacks_dir)]
        facts += [_Facts.of_cells(cells[n]) for n in by_outputs]
        facts.sort(key=lambda f: names.index(f.stack))
        arrows = [a for f in facts for origin in f.origins for a in _arrows(t, f.stack, origin, f.region, f.dr_region)]
        subs = _subprocessors(SUBPROCESSORS_FILE, facts, t)
        held = [h for f in facts if f.stack in cells for h in _held(t, cells[f.stack])]
        summaries = [
            StackSummary(
                stack=f.stack,
                environment=f.environment,
                region=f.region,
                country=t.country_of(f.region),
                dr_region=f.dr_region,
                dr_country=t.country_of(f.dr_region),
                origins=f.origins,
                email=f.email,
                payments=f.payments,
                described_by=f.described_by,
            )
            for f in facts
        ]
        sub_transfers = _subprocessor_transfers(t, facts, subs)
    except TransferRefused as exc:  # unknown region/origin, or a broken transfers.yaml
        raise RegisterError(str(exc)) from None

    served = sorted({a.origin for a in arrows} | {h.origin for h in held})
    in_use = sorted({a.region for a in arrows}, key=lambda r: (t.country_of(r), r))
    readiness = {
        region: {
            o: _kind(t, o, country, t.basis(o, country))
            for o in sorted(t.origins)
            for country in [t.country_of(region)]
        }
        for region in sorted(t.regions)
    }
    return Register(
        generated_on=(today or dt.date.today()).isoformat(),
        transfers_assessed_on=t.assessed_on,
        stacks=summaries,
        subprocessors=subs,
        arrows=arrows,
        origins={o: t.origins[o].name for o in served},
        regions_in_use=in_use,
        region_countries={r: f"{c}, {t.country_name(c)}" for r, c in sorted(t.regions.items())},
        readiness=readiness,
        sources=t.sources,
        subprocessor_transfers=sub_transfers,
        held=held,
        cells_read=[f.stack for f in facts if f.stack in cells],
    )


def render(register: Register, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(register.as_dict(), indent=2) + "\n"
    if fmt in ("md", "html"):
        return environment(autoescape=fmt == "html").get_template(f"register.{fmt}.j2").render(r=register)
    raise RegisterError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
