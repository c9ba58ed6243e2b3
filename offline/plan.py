"""`provision plan`: run the Pulumi program under the SDK's mocks and judge what it declares.

No engine, no cloud credentials: the stack config is validated, the transfer gate is asked,
the program runs against mocks, and every recorded resource goes through the same rules the
CrossGuard pack enforces. A refused transfer is a mandatory violation (exit 1), like any
other; a stack that cannot be evaluated at all (missing file, bad config) is exit 2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compliance.register import RegisterError, build_register
from compliance.transfers import (
    TransferRefused,
    TransfersFileInvalid,
    load_transfers,
    stack_bases,
    stack_refusals,
)
from contract.status import ExitStatus
from policy.engine import Violation, evaluate, inventory
from policy.rules import RULES, STACK_RULES, Resource
from stackconfig.config import ConfigError, PlatformConfig
from stackconfig.files import load_stack_config, stack_file

TRANSFER_RULE = "transfer-basis-recorded"
SUBPROCESSOR_TRANSFER_RULE = "subprocessor-transfers-recorded"
SUBPROCESSORS_RULE = "subprocessors-as-deployed"
# The plan's own checks of the stack as a whole, beside the policy rules (the evidence report
# names both by id: compliance/promises.yaml).
PLAN_CHECKS = {
    TRANSFER_RULE: "every origin the stack serves has a recorded basis for its region and DR region",
    SUBPROCESSOR_TRANSFER_RULE: "every origin the stack serves has a basis for each country its sub-processors use",
    SUBPROCESSORS_RULE: "the sub-processors the program declares are exactly those the list names for the stack",
}
STACK_TYPE = "askasia:stack"
SUBPROCESSOR_TAG = "askasia:subprocessor"  # as components/subprocessors.py tags (the plan imports no component)

Runner = Callable[[PlatformConfig], Sequence[Resource]]


class PlanCouldNotRun(Exception):
    """The stack could not be evaluated; the message says why in one line."""


@dataclass
class PlanReport:
    stack: str
    region: str
    dr_region: str
    origins: list[str]
    transfers: list[dict[str, str]]
    resources: list[Resource]
    violations: list[Violation]
    accepted_insecure: list[str] = field(default_factory=list)
    # sub-processor ids: declared by the program (tags, providers), listed for the stack
    subprocessors: dict[str, list[str]] = field(default_factory=dict)

    def control_results(self) -> dict[str, tuple[str, str]]:
        """Every policy rule and plan check -> (pass | fail | n/a | error, one line)."""
        failed: dict[str, list[Violation]] = {}
        for v in self.violations:
            failed.setdefault(v.rule_id, []).append(v)
        refused = not self.resources and TRANSFER_RULE in failed
        out: dict[str, tuple[str, str]] = {}
        for rule_id in [r.id for r in RULES] + [r.id for r in STACK_RULES] + list(PLAN_CHECKS):
            if rule_id in failed:
                found = failed[rule_id]
                out[rule_id] = ("fail", f"{len(found)} violation(s), e.g. {found[0].resource_name}: {found[0].message}")
            elif refused and rule_id not in PLAN_CHECKS:
                out[rule_id] = ("error", "not evaluated: the stack was refused before it declared anything")
            else:
                out[rule_id] = self._passed(rule_id)
        return out

    def _passed(self, rule_id: str) -> tuple[str, str]:
        rule = next((r for r in RULES if r.id == rule_id), None)
        if rule is None:
            return "pass", f"checked over the stack's {len(self.resources)} resources"
        count = sum(rule.applies_to(r.type) for r in self.resources)
        if not count:
            return "n/a", f"the stack declares no {rule.resource_type}"
        return "pass", f"{count} {rule.resource_type} checked"

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.mandatory]

    @property
    def advisory(self) -> list[Violation]:
        return [v for v in self.violations if not v.mandatory]

    @property
    def exit_code(self) -> ExitStatus:
        return ExitStatus.VIOLATIONS if self.mandatory else ExitStatus.OK

    def inventory(self) -> dict[str, list[str]]:
        return inventory(self.resources)

    def as_dict(self) -> dict[str, Any]:
        inv = self.inventory()
        return {
            "stack": self.stack,
            "region": self.region,
            "dr_region": self.dr_region,
            "origins": self.origins,
            "transfers": self.transfers,
            "resource_count": len(self.resources),
            "inventory": {t: {"count": len(names), "names": names} for t, names in inv.items()},
            "violations": [v.as_dict() for v in self.violations],
            "mandatory": len(self.mandatory),
            "advisory": len(self.advisory),
            "accepted_insecure": self.accepted_insecure,
            "subprocessors": self.subprocessors,
            "exit_code": int(self.exit_code),
        }


def _mock_runner(config: PlatformConfig) -> Sequence[Resource]:
    # Imported here: the mock runner pulls in the whole Pulumi program.
    from offline.mockrun import run_under_mocks

    run = run_under_mocks(config)
    # Component resources only group children; the rules judge what reaches the cloud.
    return [_as_resource(r) for r in run.resources if getattr(r, "custom", True)]


def _as_resource(rec: Any) -> Resource:
    """A Resource from one record of the mock run (type token, name, inputs, outputs)."""
    type_token = _first_attr(rec, "type", "type_token", "typ")
    outputs = _first_attr(rec, "outputs", "state", default=None)
    outputs = dict(outputs) if isinstance(outputs, Mapping) else {}
    if getattr(rec, "id", None):
        outputs.setdefault("id", rec.id)  # what other resources use to point at this one
    return Resource(
        type=str(type_token),
        name=str(rec.name),
        inputs=dict(rec.inputs or {}),
        outputs=outputs,
    )


def _first_attr(obj: Any, *names: str, default: Any = ...) -> Any:
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    if default is ...:
        raise AttributeError(f"mock run record has none of {', '.join(names)}")
    return default


def _transfer_rows(config: PlatformConfig) -> list[dict[str, str]]:
    rows = []
    t = load_transfers()
    for origin, role, region, basis in stack_bases(config.region, config.dr_region, list(config.origins)):
        country = t.country_of(region)
        rows.append(
            {
                "origin": origin,
                "role": role,
                "region": region,
                "country": country,
                "basis": basis.mechanism if basis else "none",
                "reference": basis.summary() if basis else "none recorded",
            }
        )
    return rows


def _transfer_violation(stack: str, message: str) -> Violation:
    return _stack_violation(
        TRANSFER_RULE, stack, message, "record the basis in compliance/transfers.yaml, or choose another region"
    )


def _package(type_token: str) -> str | None:
    """The Pulumi package a resource comes from: aws for aws:rds/cluster:Cluster and for
    pulumi:providers:aws; None for the engine's own types."""
    parts = type_token.split(":")
    if parts[0] == "pulumi":
        return parts[2] if parts[1] == "providers" and len(parts) > 2 else None
    return parts[0]


def subprocessor_checks(
    config: PlatformConfig, resources: Sequence[Resource], stacks_dir: Path
) -> tuple[list[Violation], dict[str, list[str]]]:
    """The sub-processor list as deployed: what the program declares (the askasia:subprocessor
    tags, and the Pulumi packages whose services host the rest) against what
    compliance/subprocessors.yaml names for this stack; and every sub-processor's countries
    against transfers.yaml."""
    try:
        reg = build_register([config.stack], stacks_dir)
    except RegisterError as exc:
        fix = "list it in compliance/subprocessors.yaml"
        return [_stack_violation(SUBPROCESSORS_RULE, config.stack, str(exc), fix)], {}
    listed = {s.id for s in reg.subprocessors if config.stack in s.used_by}
    by_package = {s.pulumi_package: s.id for s in reg.subprocessors if s.pulumi_package}
    declared: dict[str, list[str]] = {}
    unlisted_packages: dict[str, list[str]] = {}
    for res in resources:
        tags = res.inputs.get("tags")
        if isinstance(tags, Mapping) and tags.get(SUBPROCESSOR_TAG):
            declared.setdefault(str(tags[SUBPROCESSOR_TAG]), []).append(res.name)
        package = _package(res.type)
        if package in by_package:
            declared.setdefault(by_package[package], []).append(res.name)
        elif package is not None:
            unlisted_packages.setdefault(package, []).append(res.name)
    found = []
    for name in sorted(set(declared) - listed):
        found.append(
            _stack_violation(
                SUBPROCESSORS_RULE,
                config.stack,
                f"the program declares sub-processor {name!r} ({', '.join(sorted(declared[name])[:3])}) but the "
                "sub-processor list does not name it for this stack",
                f"list {name} in compliance/subprocessors.yaml and name it in askasia:subprocessors, or drop it",
            )
        )
    for name in sorted(listed - set(declared)):
        found.append(
            _stack_violation(
                SUBPROCESSORS_RULE,
                config.stack,
                f"the sub-processor list names {name!r} for this stack but the program declares nothing for it",
                f"tag its resources {SUBPROCESSOR_TAG}={name}, or remove it from the stack's askasia:subprocessors",
            )
        )
    for package, names in sorted(unlisted_packages.items()):
        found.append(
            _stack_violation(
                SUBPROCESSORS_RULE,
                config.stack,
                f"{len(names)} resource(s) of Pulumi package {package!r} ({names[0]}) belong to no "
                "listed sub-processor",
                f"list the provider in compliance/subprocessors.yaml with pulumi_package: {package}",
            )
        )
    for x in reg.unrecorded_subprocessor_transfers:
        found.append(
            _stack_violation(
                SUBPROCESSOR_TRANSFER_RULE,
                config.stack,
                f"origin {x.origin} -> {x.country} ({x.country_name}) through sub-processor {x.subprocessor} "
                "has no recorded basis",
                f"record bases.{x.origin}.{x.country} in compliance/transfers.yaml, or choose another sub-processor",
            )
        )
    return found, {"declared": sorted(declared), "listed": sorted(listed)}


def _stack_violation(rule_id: str, stack: str, message: str, remediation: str) -> Violation:
    return Violation(rule_id, "mandatory", STACK_TYPE, stack, message, remediation)


def plan_stack(stack: str, stacks_dir: Path, runner: Runner | None = None) -> PlanReport:
    """Evaluate one stack offline. Raises PlanCouldNotRun when it cannot be evaluated."""
    path = stack_file(stack, Path(stacks_dir))
    if not path.is_file():
        raise PlanCouldNotRun(f"{path}: stack config file not found")
    try:
        config = load_stack_config(stack, Path(stacks_dir))
    except ConfigError as exc:
        raise PlanCouldNotRun(str(exc)) from None

    def report(
        resources: Sequence[Resource], violations: list[Violation], subprocessors: dict[str, list[str]] | None = None
    ) -> PlanReport:
        try:
            rows = _transfer_rows(config)
        except TransferRefused:
            rows = []  # unknown region/origin: the violation already says so
        return PlanReport(
            stack=config.stack,
            region=config.region,
            dr_region=config.dr_region,
            origins=list(config.origins),
            transfers=rows,
            resources=list(resources),
            violations=violations,
            accepted_insecure=sorted(config.allow_insecure),
            subprocessors=subprocessors or {},
        )

    try:
        refused = stack_refusals(config.region, config.dr_region, list(config.origins))
    except TransfersFileInvalid as exc:
        raise PlanCouldNotRun(str(exc)) from None
    except TransferRefused as exc:  # unknown region or origin
        return report([], [_transfer_violation(config.stack, str(exc))])
    if refused:
        # Nothing is declared for a refused stack (the program refuses first too); every
        # refused arrow is listed so one run shows all that needs recording.
        return report([], [_transfer_violation(config.stack, str(r)) for r in refused])

    try:
        resources = (runner or _mock_runner)(config)
    except TransfersFileInvalid as exc:
        raise PlanCouldNotRun(str(exc)) from None
    except TransferRefused as exc:
        return report([], [_transfer_violation(config.stack, str(exc))])
    except Exception as exc:  # the program itself failed: nothing to judge
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise PlanCouldNotRun(f"program failed under mocks: {exc.__class__.__name__}: {first}") from exc
    found, subprocessors = subprocessor_checks(config, resources, Path(stacks_dir))
    violations = sorted(evaluate(resources) + found, key=lambda v: (not v.mandatory, v.rule_id, v.resource_name))
    return report(resources, violations, subprocessors)


def format_report(report: PlanReport) -> str:
    """The human form: header, transfers, inventory (type -> count, names), violations."""
    lines = [
        f"plan {report.stack}: region {report.region}, DR {report.dr_region}, origins {', '.join(report.origins)}",
        "",
        "transfers:",
    ]
    for row in report.transfers:
        lines.append(
            f"  {row['origin']} -> {row['region']} ({row['country']}, {row['role']}): "
            f"{row['basis']}: {row['reference']}"
        )
    inv = report.inventory()
    lines += ["", f"resources: {len(report.resources)} of {len(inv)} types"]
    width = max((len(t) for t in inv), default=0)
    for type_token, names in inv.items():
        shown = ", ".join(names[:6]) + (f", ... (+{len(names) - 6})" if len(names) > 6 else "")
        lines.append(f"  {type_token:<{width}}  {len(names):>3}  {shown}")
    lines += ["", f"violations: {len(report.mandatory)} mandatory, {len(report.advisory)} advisory"]
    for v in report.violations:
        lines.append(f"  {v.one_line()}")
        lines.append(f"      fix: {v.remediation}")
    if report.accepted_insecure:
        lines += [
            "",
            "accepted weakenings (askasia:allowInsecure; still reported): " + ", ".join(report.accepted_insecure),
        ]
    verdict = "FAIL" if report.exit_code else "OK"
    lines += ["", f"{verdict}: {len(report.mandatory)} mandatory violation(s)"]
    return "\n".join(lines) + "\n"
