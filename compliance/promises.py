"""The privacy policy's promises as data: compliance/promises.yaml, each clause with the controls
that keep it (and what it still lacks), validated into typed objects. The evidence report and
its test read them; nothing here knows how a control is run."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from compliance.paths import package_path

PROMISES_FILE = package_path("promises.yaml")
POLICY_FILE = package_path("privacy-policy.txt")

# Kind -> the source whose run judges it (`provision evidence` runs each source once).
KINDS = {
    "rule": "plan",
    "plan": "plan",
    "resource": "plan",
    "verify": "verify",
    "probe": "verify",
    "register": "register",
    "keys": "keys",
    "lifecycle": "lifecycle",
}
_ID = re.compile(r"^[a-z][A-Za-z0-9_:/.-]*$")  # a check name, rule id or Pulumi type token


class PromisesInvalid(ValueError):
    """promises.yaml is missing or malformed; the message names the clause and key."""


@dataclass(frozen=True)
class Control:
    kind: str
    id: str

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Planned:
    control: str
    what: str


@dataclass(frozen=True)
class Clause:
    id: str
    section: str
    title: str
    quote: str
    note: str
    controls: tuple[Control, ...]
    planned: tuple[Planned, ...]


@dataclass(frozen=True)
class Promises:
    policy: str
    clauses: tuple[Clause, ...]

    def controls(self) -> dict[str, set[str]]:
        """kind -> every id some clause names."""
        out: dict[str, set[str]] = {kind: set() for kind in KINDS}
        for clause in self.clauses:
            for control in clause.controls:
                out[control.kind].add(control.id)
        return out


def _text(raw: Any, where: str, required: bool = True) -> str:
    if raw is None and not required:
        return ""
    if not isinstance(raw, str) or not raw.strip():
        raise PromisesInvalid(f"{where}: expected text")
    return " ".join(raw.split())


def _clause(raw: Any, index: int) -> Clause:
    if not isinstance(raw, dict):
        raise PromisesInvalid(f"clauses[{index}]: expected a mapping")
    cid = _text(raw.get("id"), f"clauses[{index}].id")
    where = f"clause {cid}"
    unknown = set(raw) - {"id", "section", "title", "quote", "note", "controls", "planned"}
    if unknown:
        raise PromisesInvalid(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    controls: list[Control] = []
    for kind, ids in (raw.get("controls") or {}).items():
        if kind not in KINDS:
            raise PromisesInvalid(f"{where}: control kind {kind!r} is not one of {', '.join(KINDS)}")
        if not isinstance(ids, list) or not ids:
            raise PromisesInvalid(f"{where}: controls.{kind} must be a non-empty list")
        for item in ids:
            if not isinstance(item, str) or not _ID.match(item):
                raise PromisesInvalid(f"{where}: controls.{kind}: {item!r} is not a control id")
            controls.append(Control(kind, item))
    if len({c.key for c in controls}) != len(controls):
        raise PromisesInvalid(f"{where}: a control is named twice")
    planned = []
    for i, item in enumerate(raw.get("planned") or []):
        if not isinstance(item, dict):
            raise PromisesInvalid(f"{where}: planned[{i}] must be a mapping with control and what")
        planned.append(
            Planned(
                _text(item.get("control"), f"{where}.planned[{i}].control"),
                _text(item.get("what"), f"{where}.planned[{i}].what"),
            )
        )
    if not controls and not planned:
        raise PromisesInvalid(f"{where}: names no control and nothing planned")
    return Clause(
        id=cid,
        section=_text(str(raw.get("section") or ""), f"{where}.section"),
        title=_text(raw.get("title"), f"{where}.title"),
        quote=_text(raw.get("quote"), f"{where}.quote"),
        note=_text(raw.get("note"), f"{where}.note", required=False),
        controls=tuple(controls),
        planned=tuple(planned),
    )


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> Promises:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PromisesInvalid(f"{path}: not found") from None
    except yaml.YAMLError as exc:
        raise PromisesInvalid(f"{path}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("clauses"), list) or not doc["clauses"]:
        raise PromisesInvalid(f"{path}: expected a non-empty 'clauses:' list")
    clauses = tuple(_clause(raw, i) for i, raw in enumerate(doc["clauses"]))
    ids = [c.id for c in clauses]
    if len(set(ids)) != len(ids):
        raise PromisesInvalid(f"{path}: two clauses share an id")
    return Promises(policy=_text(doc.get("policy"), "policy"), clauses=clauses)


def load_promises(path: Path | None = None) -> Promises:
    return _load(Path(path or PROMISES_FILE).resolve())


def policy_text() -> str:
    """The published policy, whitespace folded as the quotes are."""
    return " ".join(POLICY_FILE.read_text(encoding="utf-8").split())
