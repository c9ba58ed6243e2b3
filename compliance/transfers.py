"""Transfer gate: may tenant data from an origin jurisdiction live in (or be copied to) a region?

The facts live in compliance/transfers.yaml. A pair (origin, destination country) is allowed only
when it is domestic (the country is inside the origin's territory) or has a recorded basis;
anything else is refused with one line saying what to record. Callers: the Pulumi program and
`provision plan` (check_stack_transfers), partner and tenant placement and the register's view
of the cells (check_served).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from compliance.paths import TRANSFERS_FILE

DEFAULT_PATH = TRANSFERS_FILE

# Mechanisms a recorded basis may use, with the fields each one must carry.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "adequacy": ("reference", "date", "source"),
    "sccs": ("reference", "module", "contract", "tia", "source"),
    "permitted": ("reference", "date", "source", "assessment"),
}
DOMESTIC = "domestic"
MECHANISMS = (DOMESTIC, *REQUIRED_FIELDS)


class TransferRefused(ValueError):
    """A region (or DR copy, or tenant placement) lacks a recorded transfer basis."""


class TransfersFileInvalid(TransferRefused):
    """compliance/transfers.yaml is missing or malformed, so nothing can be decided."""


@dataclass(frozen=True)
class Basis:
    """Why data from `origin` may live in `country`."""

    origin: str
    country: str
    mechanism: str  # one of MECHANISMS
    reference: str
    date: str | None = None
    source: str | None = None
    module: str | None = None
    contract: str | None = None
    tia: str | None = None
    assessment: str | None = None
    note: str | None = None

    @property
    def is_transfer(self) -> bool:
        return self.mechanism != DOMESTIC

    def summary(self) -> str:
        """The reference and its particulars on one line (the mechanism is shown apart)."""
        parts = [self.reference]
        if self.date:
            parts.append(self.date)
        if self.module:
            parts.append(self.module)
        if self.tia:
            parts.append(f"TIA {self.tia}")
        if self.assessment:
            parts.append(f"assessment {self.assessment}")
        return "; ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class Origin:
    code: str
    name: str
    law: str
    countries: frozenset[str]
    domestic_reference: str
    domestic_source: str | None
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Transfers:
    """The parsed registry. Look-ups go through the module functions below."""

    path: Path
    assessed_on: str
    origins: dict[str, Origin]
    regions: dict[str, str]  # region -> ISO country code
    countries: dict[str, str]  # ISO code -> name
    bases: dict[tuple[str, str], Basis]
    prohibited: dict[tuple[str, str], str]
    sources: dict[str, dict[str, str]] = field(default_factory=dict)

    def origin(self, name: str) -> Origin:
        key = name.strip().upper()
        for origin in self.origins.values():
            if key == origin.code or key in origin.aliases:
                return origin
        known = ", ".join(sorted(self.origins))
        raise TransferRefused(
            f"unknown origin jurisdiction {name!r}: known origins are {known}; "
            f"add it under origins: in {self.display_path}"
        )

    def country_of(self, region: str) -> str:
        key = region.strip().lower()
        try:
            return self.regions[key]
        except KeyError:
            raise TransferRefused(
                f"unknown AWS region {region!r}: add it with its country under regions: in {self.display_path}"
            ) from None

    @property
    def display_path(self) -> str:
        # The name an operator edits: compliance/transfers.yaml, not an absolute path.
        return f"{self.path.parent.name}/{self.path.name}"

    def country_name(self, code: str) -> str:
        return self.countries.get(code, code)

    def basis(self, origin: str, country: str) -> Basis | None:
        o = self.origin(origin)
        if country in o.countries:
            return Basis(o.code, country, DOMESTIC, o.domestic_reference, source=o.domestic_source)
        if (o.code, country) in self.prohibited:
            return None
        return self.bases.get((o.code, country))


def _fail(path: Path, msg: str) -> TransfersFileInvalid:
    return TransfersFileInvalid(f"{path}: {msg}")


def _str(value: Any) -> str | None:
    # YAML turns unquoted dates into datetime.date; keep everything as text.
    return None if value is None else str(value)


def _parse(path: Path, doc: Any) -> Transfers:
    if not isinstance(doc, dict):
        raise _fail(path, "expected a mapping at the top level")
    for key in ("origins", "regions", "countries", "bases", "sources"):
        if not isinstance(doc.get(key), dict):
            raise _fail(path, f"missing or malformed section {key!r}")
    sources = {str(k): dict(v) for k, v in doc["sources"].items()}
    countries = {str(k): str(v) for k, v in doc["countries"].items()}
    regions = {str(k).lower(): str(v) for k, v in doc["regions"].items()}
    for region, country in regions.items():
        if country not in countries:
            raise _fail(path, f"region {region} names country {country} missing from countries:")

    origins: dict[str, Origin] = {}
    for code, spec in doc["origins"].items():
        code = str(code).upper()
        src = spec.get("domestic_source")
        if src is not None and src not in sources:
            raise _fail(path, f"origin {code} cites unknown source {src!r}")
        origins[code] = Origin(
            code=code,
            name=str(spec.get("name", code)),
            law=str(spec.get("law", "")),
            countries=frozenset(str(c) for c in spec.get("countries", [])),
            domestic_reference=str(spec.get("domestic_reference", "domestic")),
            domestic_source=src,
            aliases=tuple(str(a).upper() for a in spec.get("aliases", []) or []),
        )

    bases: dict[tuple[str, str], Basis] = {}
    for origin, by_country in doc["bases"].items():
        origin = str(origin).upper()
        if origin not in origins:
            raise _fail(path, f"bases: unknown origin {origin}")
        for country, spec in (by_country or {}).items():
            country = str(country)
            where = f"bases.{origin}.{country}"
            if country not in countries:
                raise _fail(path, f"{where}: country {country} missing from countries:")
            mechanism = spec.get("mechanism")
            if mechanism not in REQUIRED_FIELDS:
                raise _fail(path, f"{where}: mechanism must be one of {sorted(REQUIRED_FIELDS)}")
            missing = [f for f in REQUIRED_FIELDS[mechanism] if not spec.get(f)]
            if missing:
                raise _fail(path, f"{where}: {mechanism} needs {', '.join(missing)}")
            if spec["source"] not in sources:
                raise _fail(path, f"{where}: unknown source {spec['source']!r}")
            bases[(origin, country)] = Basis(
                origin=origin,
                country=country,
                mechanism=mechanism,
                reference=str(spec["reference"]),
                date=_str(spec.get("date")),
                source=spec.get("source"),
                module=spec.get("module"),
                contract=spec.get("contract"),
                tia=spec.get("tia"),
                assessment=spec.get("assessment"),
                note=spec.get("note"),
            )

    prohibited: dict[tuple[str, str], str] = {}
    for origin, by_country in (doc.get("prohibited") or {}).items():
        for country, reason in (by_country or {}).items():
            pair = (str(origin).upper(), str(country))
            if pair in bases:
                raise _fail(path, f"{pair[0]} -> {pair[1]} is both recorded and prohibited")
            prohibited[pair] = str(reason)

    return Transfers(
        path=path,
        assessed_on=str(doc.get("assessed_on", "")),
        origins=origins,
        regions=regions,
        countries=countries,
        bases=bases,
        prohibited=prohibited,
        sources=sources,
    )


@functools.lru_cache(maxsize=8)
def _load(path: Path) -> Transfers:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TransfersFileInvalid(f"transfers registry not found: {path}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise _fail(path, f"not valid YAML ({exc.__class__.__name__})") from None
    return _parse(path, doc)


def load_transfers(path: str | Path | None = None) -> Transfers:
    """Parse and validate the registry (cached per path)."""
    return _load(Path(path or DEFAULT_PATH).resolve())


def basis_for(origin: str, region: str, *, transfers: Transfers | None = None) -> Basis | None:
    """The basis for storing `origin` data in `region`, or None if unrecorded/prohibited."""
    t = transfers or load_transfers()
    return t.basis(origin, t.country_of(region))


def _refusal(t: Transfers, origin: str, region: str, role: str) -> TransferRefused:
    o = t.origin(origin)
    country = t.country_of(region)
    where = f"{role} {region} ({country}, {t.country_name(country)})"
    reason = t.prohibited.get((o.code, country))
    if reason:
        return TransferRefused(
            f"transfer refused: origin {o.code} -> {where} is prohibited ({reason}); choose another region"
        )
    return TransferRefused(
        f"transfer refused: origin {o.code} -> {where} has no recorded basis; record one "
        f"under bases.{o.code}.{country} in {t.display_path} (adequacy with decision reference "
        f"and date, or SCCs with module, contract and TIA)"
    )


def check_placement(origin: str, region: str, *, role: str = "region", transfers: Transfers | None = None) -> Basis:
    """Basis for placing one tenant whose partner is in `origin` into `region` (or, with
    role="DR region", for its copies there), or refuse."""
    t = transfers or load_transfers()
    basis = basis_for(origin, region, transfers=t)
    if basis is None:
        raise _refusal(t, origin, region, role)
    return basis


def check_served(
    origin: str,
    stack: str,
    declared: Sequence[str],
    region: str,
    dr_region: str | None,
    *,
    transfers: Transfers | None = None,
) -> list[Basis]:
    """The gate for data placed in a stack's cells: a partner's or tenant's origin must be one
    the stack declares (the program checked those bases when it was deployed) and have a basis
    for the region and the DR region. The register judges the directory with this same function,
    so what placement admits is exactly what the register shows as recorded."""
    t = transfers or load_transfers()
    code = t.origin(origin).code
    served = [t.origin(o).code for o in declared]
    if code not in served:
        raise TransferRefused(
            f"transfer refused: origin {code} is not among the origins stack {stack} declares "
            f"({', '.join(served)}): add it to askasia:origins (its bases for {region} "
            f"and the DR region are then checked at deploy) or use a stack that serves {code}"
        )
    bases = [check_placement(code, region, transfers=t)]
    if dr_region and dr_region != region:
        bases.append(check_placement(code, dr_region, role="DR region", transfers=t))
    return bases


def stack_refusals(
    region: str,
    dr_region: str | None,
    origins: list[str],
    *,
    transfers: Transfers | None = None,
) -> list[TransferRefused]:
    """Every refused arrow of a stack (origin -> primary or DR region), in a stable order.

    An unknown region or origin raises at once: nothing can be judged about it.
    """
    t = transfers or load_transfers()
    if not origins:
        raise TransferRefused("stack declares no origins (askasia:origins): list the jurisdictions it serves")
    targets = [("region", region)]
    if dr_region and dr_region.strip().lower() != region.strip().lower():
        targets.append(("DR region", dr_region))
    found: list[TransferRefused] = []
    for role, target in targets:
        t.country_of(target)  # unknown region fails before any origin is named
        for origin in origins:
            if basis_for(origin, target, transfers=t) is None:
                found.append(_refusal(t, origin, target, role))
    return found


def check_stack_transfers(
    region: str,
    dr_region: str | None,
    origins: list[str],
    *,
    transfers: Transfers | None = None,
) -> None:
    """Refuse a stack whose primary or DR region lacks a basis for any origin it serves."""
    refused = stack_refusals(region, dr_region, origins, transfers=transfers)
    if refused:
        raise refused[0]


def stack_bases(
    region: str,
    dr_region: str | None,
    origins: list[str],
    *,
    transfers: Transfers | None = None,
) -> list[tuple[str, str, str, Basis | None]]:
    """(origin, role, region, basis-or-None) for every arrow a stack draws; for reports."""
    t = transfers or load_transfers()
    rows: list[tuple[str, str, str, Basis | None]] = []
    for origin in origins:
        code = t.origin(origin).code
        rows.append((code, "primary", region, basis_for(code, region, transfers=t)))
        if dr_region and dr_region != region:
            rows.append((code, "dr", dr_region, basis_for(code, dr_region, transfers=t)))
    return rows
