"""The sources that judge the promises' controls, each run once for a stack into a SourceRun:
plan (the program under mocks, its rules and stack checks, the resources it declares), verify
(catalog checks and probes on the cells), register (transfers and sub-processors, with the
cells' directory) and keys (the published JWT key ring). A source that does not apply to the
stack, or cannot run, says so in its run: its controls show that, never a pass.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from pathlib import Path

from compliance.evidence import Result, SourceRun
from compliance.register import REGISTER_CHECKS, RegisterError, build_register
from contract.outputs import StackOutputs
from provisioner import jwtkeys
from provisioner.directory import cells_view
from provisioner.errors import ProvisionError
from provisioner.resources import PackageIncomplete
from provisioner.verify.findings import CellReport
from provisioner.verify.probes import probe_checks
from provisioner.verify.runner import VerifyOptions, check_names, verify_stack
from stackconfig.files import stack_file

SOURCES = ("plan", "verify", "register", "keys")
Outcome = tuple[str, str, dict[str, Result]]  # outcome, reason, results


def _timed(source: str, stack: str, command: str, work: Callable[[], Outcome]) -> SourceRun:
    started = dt.datetime.now(dt.UTC)
    try:
        outcome, reason, results = work()
    except (ProvisionError, PackageIncomplete) as exc:
        outcome, reason, results = "could not run", str(exc), {}
    return SourceRun(source, stack, command, started, dt.datetime.now(dt.UTC), outcome, reason, results)


def run_plan(stack: str, stacks_dir: Path | None) -> SourceRun:
    def work() -> Outcome:
        if stacks_dir is None or not stack_file(stack, stacks_dir).is_file():
            return (
                "not applicable",
                f"the Pulumi program does not deploy this stack (it has no Pulumi.{stack}.yaml)",
                {},
            )
        try:
            # The one door to the Pulumi program, as `provision plan` opens it: only when it runs.
            from offline.plan import PLAN_CHECKS, PlanCouldNotRun, plan_stack
        except ImportError as exc:
            return "could not run", f"needs the Pulumi SDK ({exc.name}): pip install 'askasia-provisioner[pulumi]'", {}
        try:
            report = plan_stack(stack, stacks_dir)
        except PlanCouldNotRun as exc:
            return "could not run", str(exc), {}
        results = {
            f"{'plan' if rule_id in PLAN_CHECKS else 'rule'}:{rule_id}": Result(status, detail)
            for rule_id, (status, detail) in report.control_results().items()
        }
        for type_token, names in report.inventory().items():
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            results[f"resource:{type_token}"] = Result("pass", f"{len(names)} declared: {shown}")
        return "ran", "", results

    return _timed("plan", stack, f"provision plan --stack {stack}", work)


def _check_result(check: str, reports: list[CellReport]) -> Result:
    failing = [(r.cell, f) for r in reports for f in r.findings if f.check == check]
    if failing:
        cell, first = failing[0]
        return Result("fail", f"{len(failing)} finding(s), e.g. {cell}: {first.object}: {first.detail}")
    broken = [r for r in reports if r.errors and check not in r.checks_run]
    if broken:
        return Result("error", f"{broken[0].cell} could not be verified: {broken[0].errors[0]}")
    judged = [(r.cell, r.check_status(check)) for r in reports]
    if all(status == "skip" for _, (status, _) in judged):
        return Result("skip", "; ".join(f"{cell}: {why}" for cell, (_, why) in judged))
    clean = [cell for cell, (status, _) in judged if status == "pass"]
    return Result("pass", f"clean on {', '.join(clean)}")


def run_verify(stack: str, outputs: Callable[[], StackOutputs], probes: int) -> SourceRun:
    def work() -> Outcome:
        options = VerifyOptions(probes=probes)
        names = check_names(options)
        reports = verify_stack(outputs(), options)
        probing = {c.name for c in probe_checks()}
        results = {f"{'probe' if name in probing else 'verify'}:{name}": _check_result(name, reports) for name in names}
        return "ran", "", results

    return _timed("verify", stack, f"provision tenants verify --stack {stack} --probes {probes}", work)


def run_register(stack: str, outputs: Callable[[], StackOutputs], stacks_dir: Path | None) -> SourceRun:
    def work() -> Outcome:
        deployed = outputs()
        try:
            reg = build_register([stack], stacks_dir or Path("."), cells={stack: cells_view(deployed)})
        except RegisterError as exc:
            return "could not run", str(exc), {}
        problems = reg.problems()
        by_outputs = reg.stacks[0].described_by == "stack outputs"
        held = ", ".join(f"{h.origin} ({h.partners} partners, {h.tenants} tenants)" for h in reg.held) or "none"
        passed = {
            "stack-transfers-recorded": f"{len(reg.arrows)} arrow(s) recorded: "
            + ", ".join(sorted({f"{a.origin} -> {a.region} {a.kind}" for a in reg.arrows})),
            "subprocessor-transfers-recorded": f"{len(reg.subprocessor_transfers)} sub-processor transfer(s) recorded",
            "subprocessors-listed": ", ".join(s.id for s in reg.subprocessors if stack in s.used_by),
            "directory-transfers-declared": f"the cells hold data of {held}",
        }
        results = {}
        for check in REGISTER_CHECKS:
            found = problems[check]
            if found:
                results[f"register:{check}"] = Result("fail", f"{len(found)} problem(s), e.g. {found[0]}")
            elif by_outputs and check in ("subprocessor-transfers-recorded", "subprocessors-listed"):
                results[f"register:{check}"] = Result("n/a", "no stack config names this stack's sub-processors")
            else:
                results[f"register:{check}"] = Result("pass", passed[check])
        return "ran", "", results

    return _timed("register", stack, f"provision register --stack {stack} --cells", work)


def run_keys(stack: str, outputs: Callable[[], StackOutputs]) -> SourceRun:
    def work() -> Outcome:
        status = jwtkeys.ring_status(outputs())
        if status.ok:
            detail = (
                f"generation {status.generation}: {status.signing_kid} signs; published {', '.join(status.published)}"
            )
            return "ran", "", {f"keys:{jwtkeys.CHECK}": Result("pass", detail)}
        return "ran", "", {f"keys:{jwtkeys.CHECK}": Result("fail", "; ".join(status.problems))}

    return _timed("keys", stack, f"provision keys status --stack {stack}", work)


def run_sources(
    stack: str,
    chosen: tuple[str, ...],
    outputs: Callable[[], StackOutputs],
    stacks_dir: Path | None,
    probes: int,
) -> list[SourceRun]:
    """Each chosen source once. `outputs` resolves the stack's outputs when a source needs them
    (plan does not): a stack whose outputs cannot be read is a `could not run` for those."""
    runners: dict[str, Callable[[], SourceRun]] = {
        "plan": lambda: run_plan(stack, stacks_dir),
        "verify": lambda: run_verify(stack, outputs, probes),
        "register": lambda: run_register(stack, outputs, stacks_dir),
        "keys": lambda: run_keys(stack, outputs),
    }
    batch = dt.datetime.now(dt.UTC).isoformat()  # one point of each clause's history
    return [dataclasses.replace(runners[source](), batch=batch) for source in chosen]
