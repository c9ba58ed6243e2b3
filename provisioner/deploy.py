"""Deploy one stack: preview with the policy pack, up, the post-deploy apply on the fresh
outputs, then verify. It stops at the first step that fails, with that step's exit status.

The Pulumi half goes through the Automation API seam (provisioner.automation); apply and verify
are the tool's own services on the outputs `up` returned, so the SQL always meets the cells the
update just made (a restored cell included).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from contract.outputs import OutputsInvalid, StackOutputs, parse_outputs
from contract.status import ExitStatus
from provisioner.apply import ApplyOptions, CellResult, apply_stack, apply_status
from provisioner.automation import Opener, open_stack
from provisioner.credentials import CredentialStore
from provisioner.errors import ProvisionError
from provisioner.verify.findings import CellReport, verify_status
from provisioner.verify.runner import VerifyOptions, verify_stack

POLICY_PACK_DIR = "policy"  # the CrossGuard pack of the project (PulumiPolicy.yaml)

Report = Callable[[str], None]


@dataclass
class Step:
    name: str
    status: ExitStatus
    detail: str
    seconds: float


@dataclass
class Deployed:
    stack: str
    steps: list[Step] = field(default_factory=list)
    outputs: StackOutputs | None = None
    applied: list[CellResult] = field(default_factory=list)
    verified: list[CellReport] = field(default_factory=list)

    @property
    def failed(self) -> Step | None:
        return next((s for s in self.steps if s.status is not ExitStatus.OK), None)

    @property
    def exit_code(self) -> ExitStatus:
        failed = self.failed
        return failed.status if failed else ExitStatus.OK


def _changes(summary: dict[str, int]) -> str:
    moving = {op: n for op, n in sorted(summary.items()) if op != "same" and n}
    same = summary.get("same", 0)
    return (", ".join(f"{n} to {op}" for op, n in moving.items()) or "no changes") + f" ({same} unchanged)"


@dataclass
class Deploy:
    stack: str
    work_dir: Path
    apply_options: ApplyOptions = field(default_factory=ApplyOptions)
    verify_options: VerifyOptions = field(default_factory=VerifyOptions)
    open: Opener = open_stack
    create: bool = False  # a stack new to the backend (a region, a rebuild) is created
    report: Report = lambda line: None
    on_output: Report = lambda line: None  # Pulumi's own progress lines

    def run(self, preview_only: bool = False) -> Deployed:
        done = Deployed(self.stack)
        pack = [str(self.work_dir / POLICY_PACK_DIR)]

        def step(name: str, work: Callable[[], tuple[ExitStatus, str]]) -> bool:
            started = time.monotonic()
            try:
                status, detail = work()
            except ProvisionError as exc:
                status, detail = ExitStatus(exc.exit_code), str(exc)
            done.steps.append(Step(name, status, detail, time.monotonic() - started))
            if status is ExitStatus.OK:  # a failure is the caller's one closing line
                self.report(f"{name}: {detail}")
            return status is ExitStatus.OK

        pulumi = None

        def preview() -> tuple[ExitStatus, str]:
            nonlocal pulumi
            pulumi = self.open(self.stack, self.work_dir, self.create)
            return ExitStatus.OK, _changes(pulumi.preview(pack, self.on_output))

        if not step("preview", preview) or preview_only:
            return done

        def up() -> tuple[ExitStatus, str]:
            assert pulumi is not None
            raw = pulumi.up(pack, self.on_output)
            try:
                done.outputs = parse_outputs(raw)
            except OutputsInvalid as exc:
                raise ProvisionError(f"up of {self.stack} returned outputs outside the contract: {exc}") from None
            if done.outputs.stack != self.stack:
                raise ProvisionError(f"up of {self.stack} returned the outputs of stack {done.outputs.stack}")
            return ExitStatus.OK, f"outputs for {len(done.outputs.clusters)} cell(s)"

        if not step("up", up):
            return done

        def apply() -> tuple[ExitStatus, str]:
            outputs = done.outputs
            assert outputs is not None
            store = CredentialStore(outputs.stack, outputs.region, outputs.kms["secrets"])
            done.applied = apply_stack(outputs, self.apply_options, store)
            status = apply_status(done.applied)
            lines = [
                line if line.startswith(f"cell {r.cell}:") else f"cell {r.cell}: {line}"
                for r in done.applied
                for line in r.errors + r.drift
            ]
            steps_run = sum(r.steps_run for r in done.applied)
            return status, "; ".join(lines) if lines else f"{steps_run} step(s) on {len(done.applied)} cell(s)"

        if not step("apply", apply):
            return done

        def verify() -> tuple[ExitStatus, str]:
            assert done.outputs is not None
            done.verified = verify_stack(done.outputs, self.verify_options)
            status = verify_status(done.verified)
            findings = sum(len(r.findings) for r in done.verified)
            errors = [e for r in done.verified for e in r.errors]
            if errors:
                return status, "; ".join(errors)
            return status, f"{findings} finding(s) on {len(done.verified)} cell(s)"

        step("verify", verify)
        return done
