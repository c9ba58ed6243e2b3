"""What a rule is, the registry, and helpers for reading Pulumi resource inputs.

A rule is a plain function over one resource's inputs (camelCase keys, as the engine sees
them) returning a message when violated, None when it passes. Rules read props only through
the Mapping/Sequence protocols: under CrossGuard props are read-only proxies that raise on a
value unknown during preview, which skips the rule for that resource instead of guessing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Severity = Literal["mandatory", "advisory"]
Props = Mapping[str, Any]
Check = Callable[[Props], str | None]


@dataclass(frozen=True)
class Resource:
    """One declared resource as a rule engine sees it."""

    type: str
    name: str
    inputs: Props
    outputs: Props | None = None
    # prop -> names of resources it was built from (CrossGuard knows this; mocks do not)
    refs: Mapping[str, Sequence[str]] | None = None


@dataclass(frozen=True)
class Rule:
    id: str
    severity: Severity
    resource_type: str  # pulumi type token
    description: str
    remediation: str
    check: Check
    controls: tuple[str, ...] = ()  # Security Hub / Checkov ids it stands for
    also_types: tuple[str, ...] = ()  # legacy aliases of the same resource (e.g. ...V2)

    @property
    def resource_types(self) -> tuple[str, ...]:
        return (self.resource_type, *self.also_types)

    def applies_to(self, type_token: str) -> bool:
        return type_token in self.resource_types


StackCheck = Callable[[Sequence[Resource]], list[tuple[str, str]]]


@dataclass(frozen=True)
class StackRule:
    """A rule over several resources at once: returns (resource name, message) per violation."""

    id: str
    severity: Severity
    resource_type: str  # the type it reports on
    description: str
    remediation: str
    check: StackCheck
    controls: tuple[str, ...] = ()


RULES: list[Rule] = []
STACK_RULES: list[StackRule] = []


def rule(
    id: str,
    severity: Severity,
    resource_type: str,
    description: str,
    remediation: str,
    controls: tuple[str, ...] = (),
    also_types: tuple[str, ...] = (),
) -> Callable[[Check], Check]:
    """Register a per-resource rule; the function stays callable on its own for tests."""

    def register(fn: Check) -> Check:
        if any(r.id == id for r in RULES) or any(r.id == id for r in STACK_RULES):
            raise ValueError(f"duplicate rule id {id}")
        RULES.append(Rule(id, severity, resource_type, description, remediation, fn, controls, also_types))
        return fn

    return register


def stack_rule(
    id: str,
    severity: Severity,
    resource_type: str,
    description: str,
    remediation: str,
    controls: tuple[str, ...] = (),
) -> Callable[[StackCheck], StackCheck]:
    def register(fn: StackCheck) -> StackCheck:
        if any(r.id == id for r in RULES) or any(r.id == id for r in STACK_RULES):
            raise ValueError(f"duplicate rule id {id}")
        STACK_RULES.append(StackRule(id, severity, resource_type, description, remediation, fn, controls))
        return fn

    return register


# --- reading props -------------------------------------------------------------------------


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_false(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.lower() == "false")


def number(value: Any) -> float | None:
    # The engine hands numbers over as floats (7.0); configs may carry strings.
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def seq(value: Any) -> list[Any]:
    """A list from a Sequence input (not a string); a single value becomes a one-item list."""
    if value is None:
        return []
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [value[i] for i in range(len(value))]
    return [value]


def present(value: Any) -> bool:
    return value is not None and value != ""


def policy_document(value: Any) -> Mapping[str, Any] | None:
    """An IAM-style policy from a JSON string or a mapping; None when absent or unparsable."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and value.strip():
        try:
            doc = json.loads(value)
        except ValueError:
            return None
        return doc if isinstance(doc, Mapping) else None
    return None


def statements(doc: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [s for s in seq(doc.get("Statement")) if isinstance(s, Mapping)]


def principal_is_wildcard(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any("*" in seq(principal.get(k)) for k in principal)
    return False


def tags_of(props: Props) -> Mapping[str, Any]:
    tags = props.get("tags")
    return tags if isinstance(tags, Mapping) else {}
