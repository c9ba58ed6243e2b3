"""The sub-processor list and the data-location and transfer register, built from the records.

Inputs: compliance/subprocessors.yaml (who), stacks/Pulumi.<stack>.yaml (where each stack runs,
whom it serves, which providers it names) and compliance/transfers.yaml (on what basis each arrow
origin -> region rests). Output: one Register value, rendered as Markdown, JSON or HTML.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from compliance.paths import SUBPROCESSORS_FILE, TEMPLATES_DIR
from compliance.transfers import Basis, TransferRefused, Transfers, load_transfers
from stackconfig.config import ConfigError, PlatformConfig
from stackconfig.files import load_stack_config, stack_names

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


class RegisterError(ValueError):
    """The records cannot produce a register (missing file, unknown name, bad field)."""


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
class Subprocessor:
    id: str
    name: str
    role: str
    legal_entity: str
    purpose: str
    data_categories: tuple[str, ...]
    locations: tuple[str, ...]  # "eu-west-1 (IE, Ireland)" or "US (United States)"
    dpa_reference: str
    dpa_date: str
    transfer_mechanism: str
    used_by: tuple[str, ...]


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
    sources: dict[str, dict[str, str]] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=lambda: dict(KINDS))

    @property
    def unrecorded(self) -> list[Arrow]:
        return [a for a in self.arrows if a.kind in ("none", "prohibited")]

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


def _subprocessors(path: Path, configs: list[PlatformConfig], t: Transfers) -> list[Subprocessor]:
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
        for named in (cfg.email.name, cfg.payments.name):
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
        users = [c for c in configs if e.get("always_used") or e["id"] in (c.email.name, c.payments.name)]
        locations: list[str] = []
        if e["hosting"] == "countries":
            for code in e.get("countries") or []:
                if code not in t.countries:
                    raise RegisterError(f"{path}: {e['id']}: unknown country {code}")
                locations.append(f"{code} ({t.country_name(code)})")
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
                dpa_reference=str(dpa["reference"]),
                dpa_date=str(dpa["date"]),
                transfer_mechanism=str(e["transfer_mechanism"]),
                used_by=tuple(c.stack for c in users),
            )
        )
    return out


def build_register(
    stacks: list[str] | None,
    stacks_dir: Path,
    transfers: Transfers | None = None,
    today: dt.date | None = None,
) -> Register:
    """The register for the named stacks (None: every stacks/Pulumi.*.yaml)."""
    stacks_dir = Path(stacks_dir)
    names = stacks if stacks else stack_names(stacks_dir)
    if not names:
        raise RegisterError(f"no stack configs (Pulumi.*.yaml) in {stacks_dir}")
    try:
        t = transfers or load_transfers()
        configs = _load_stacks(names, stacks_dir)
        arrows: list[Arrow] = []
        for cfg in configs:
            for origin in cfg.origins:
                code = t.origin(origin).code
                for role, region in (("primary", cfg.region), ("dr", cfg.dr_region)):
                    country = t.country_of(region)
                    basis = t.basis(code, country)
                    arrows.append(
                        Arrow(
                            origin=code,
                            stack=cfg.stack,
                            role=role,
                            region=region,
                            country=country,
                            country_name=t.country_name(country),
                            kind=_kind(t, code, country, basis),
                            basis=basis.as_dict() if basis else None,
                        )
                    )
        subs = _subprocessors(SUBPROCESSORS_FILE, configs, t)
        summaries = [
            StackSummary(
                stack=c.stack,
                environment=c.environment,
                region=c.region,
                country=t.country_of(c.region),
                dr_region=c.dr_region,
                dr_country=t.country_of(c.dr_region),
                origins=c.origins,
                email=c.email.name,
                payments=c.payments.name,
            )
            for c in configs
        ]
    except TransferRefused as exc:  # unknown region/origin, or a broken transfers.yaml
        raise RegisterError(str(exc)) from None

    served = sorted({a.origin for a in arrows})
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
    )


def _env(autoescape: bool) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _md_cell(value: object) -> str:
    # A pipe or newline would break a Markdown table row.
    return str(value).replace("|", "\\|").replace("\n", " ")


def render(register: Register, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(register.as_dict(), indent=2) + "\n"
    if fmt == "md":
        env = _env(autoescape=False)
        env.filters["md"] = _md_cell
        return env.get_template("register.md.j2").render(r=register)
    if fmt == "html":
        return _env(autoescape=True).get_template("register.html.j2").render(r=register)
    raise RegisterError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
