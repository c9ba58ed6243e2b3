"""Run the rules over a list of resources; both adapters (CrossGuard, `provision plan`) share it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

from policy.rules import RULES, STACK_RULES, Resource, Rule, StackRule


@dataclass(frozen=True)
class Violation:
    rule_id: str
    severity: str  # mandatory | advisory
    resource_type: str
    resource_name: str
    message: str
    remediation: str

    @property
    def mandatory(self) -> bool:
        return self.severity == "mandatory"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def one_line(self) -> str:
        return f"[{self.severity}] {self.rule_id} {self.resource_name} ({self.resource_type}): {self.message}"


def check_resource(res: Resource, rules: Sequence[Rule] = RULES) -> list[Violation]:
    found: list[Violation] = []
    for rule in rules:
        if not rule.applies_to(res.type):
            continue
        try:
            message = rule.check(res.inputs)
        except Exception as exc:  # fail closed: a rule that cannot read the inputs is a finding
            message = f"could not evaluate ({exc.__class__.__name__}: {exc})"
        if message:
            found.append(Violation(rule.id, rule.severity, res.type, res.name, message, rule.remediation))
    return found


def check_stack(resources: Sequence[Resource], rules: Sequence[StackRule] = STACK_RULES) -> list[Violation]:
    found: list[Violation] = []
    for rule in rules:
        try:
            results = rule.check(resources)
        except Exception as exc:
            results = [("<stack>", f"could not evaluate ({exc.__class__.__name__}: {exc})")]
        for name, message in results:
            found.append(Violation(rule.id, rule.severity, rule.resource_type, name, message, rule.remediation))
    return found


def evaluate(resources: Iterable[Resource]) -> list[Violation]:
    """Every violation, mandatory first, then by rule and resource name."""
    items = list(resources)
    found = [v for res in items for v in check_resource(res)] + check_stack(items)
    return sorted(found, key=lambda v: (not v.mandatory, v.rule_id, v.resource_name))


def inventory(resources: Iterable[Resource]) -> dict[str, list[str]]:
    """type token -> names, sorted, for the plan report."""
    by_type: dict[str, list[str]] = {}
    for res in resources:
        by_type.setdefault(res.type, []).append(res.name)
    return {t: sorted(names) for t, names in sorted(by_type.items())}


def counts(resources: Iterable[Resource]) -> Counter[str]:
    return Counter(res.type for res in resources)
