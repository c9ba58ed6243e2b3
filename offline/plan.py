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

from compliance.transfers import (
    TransferRefused,
    TransfersFileInvalid,
    load_transfers,
    stack_bases,
    stack_refusals,
)
from contract.status import ExitStatus
from policy.engine import Violation, evaluate, inventory
from policy.rules import Resource
from stackconfig.config import ConfigError, PlatformConfig
from stackconfig.files import load_stack_config, stack_file
from stackconfig.hardening import INSECURE_TAG

TRANSFER_RULE = "transfer-basis-recorded"
STACK_TYPE = "askasia:stack"

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
    return Violation(
        rule_id=TRANSFER_RULE,
        severity="mandatory",
        resource_type=STACK_TYPE,
        resource_name=stack,
        message=message,
        remediation="record the basis in compliance/transfers.yaml, or choose another region",
    )


def plan_stack(stack: str, stacks_dir: Path, runner: Runner | None = None) -> PlanReport:
    """Evaluate one stack offline. Raises PlanCouldNotRun when it cannot be evaluated."""
    path = stack_file(stack, Path(stacks_dir))
    if not path.is_file():
        raise PlanCouldNotRun(f"{path}: stack config file not found")
    try:
        config = load_stack_config(stack, Path(stacks_dir))
    except ConfigError as exc:
        raise PlanCouldNotRun(str(exc)) from None

    def report(resources: Sequence[Resource], violations: list[Violation]) -> PlanReport:
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
    return report(resources, evaluate(resources))


def insecure_resources(resources: Sequence[Resource]) -> dict[str, str]:
    """name -> accepted weakenings, from the tag the components put on weakened resources."""
    out = {}
    for res in resources:
        tags = res.inputs.get("tags")
        if isinstance(tags, Mapping) and tags.get(INSECURE_TAG):
            out[res.name] = str(tags[INSECURE_TAG])
    return out


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
