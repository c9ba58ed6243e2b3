"""CrossGuard adapter: one Pulumi policy per rule, enforcement from the rule's severity.

Runs under `pulumi preview --policy-pack policy`. Props arrive as proxies that raise on values
unknown during preview; the SDK then skips that policy for that resource, so a rule never
judges a value that does not exist yet.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)

from policy.rules import RULES, STACK_RULES, Resource, Rule, StackRule

PACK_NAME = "askasia-compliance"

ENFORCEMENT = {"mandatory": EnforcementLevel.MANDATORY, "advisory": EnforcementLevel.ADVISORY}
SEVERITY = {"mandatory": Severity.HIGH, "advisory": Severity.MEDIUM}


def _resource_validator(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not rule.applies_to(args.resource_type):
            return
        message = rule.check(args.props)
        if message:
            report_violation(f"{message}. Fix: {rule.remediation}", args.urn)

    return validate


def _as_resource(r: Any) -> Resource:
    # property_dependencies names the resources each input was built from, so attachments
    # (a bucket's policy, a cluster's parameter group) match even while ids are unknown.
    deps = getattr(r, "property_dependencies", None) or {}
    refs = {prop: [d.name for d in targets] for prop, targets in deps.items()}
    return Resource(type=r.resource_type, name=r.name, inputs=r.props, outputs=r.props, refs=refs)


def _stack_validator(rule: StackRule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        resources = [_as_resource(r) for r in args.resources]
        urns = {r.name: r.urn for r in args.resources}
        for name, message in rule.check(resources):
            report_violation(f"{name}: {message}. Fix: {rule.remediation}", urns.get(name))

    return validate


def build_policies() -> list[Policy]:
    policies: list[Policy] = []
    for rule in RULES:
        policies.append(
            ResourceValidationPolicy(
                name=rule.id,
                description=rule.description,
                validate=_resource_validator(rule),
                enforcement_level=ENFORCEMENT[rule.severity],
                severity=SEVERITY[rule.severity],
                remediation_steps=rule.remediation,
                tags=[rule.resource_type, *rule.controls],
            )
        )
    for srule in STACK_RULES:
        policies.append(
            StackValidationPolicy(
                name=srule.id,
                description=srule.description,
                validate=_stack_validator(srule),
                enforcement_level=ENFORCEMENT[srule.severity],
                severity=SEVERITY[srule.severity],
                remediation_steps=srule.remediation,
                tags=[srule.resource_type, *srule.controls],
            )
        )
    return policies
