"""Deploy's orchestration with a stand-in for the Automation API's Stack: order, the policy pack,
stop at the first failing step, and the exit status of that step."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from contract.status import ExitStatus
from provisioner.deploy import Deploy
from tests.fake_pulumi import FakeBackend, FakeStack, command_error
from tests.unit.test_outputs import GOOD

WORK = Path("/srv/askasia")


def deploy(stack: FakeStack, name: str = "prod-eu-west-1", lines: list[str] | None = None) -> tuple:
    backend = FakeBackend(stack)
    seen = lines if lines is not None else []
    runner = Deploy(name, WORK, open=backend, report=seen.append, on_output=seen.append)
    return backend, runner


def test_preview_only_previews_with_the_policy_pack_and_stops():
    backend, runner = deploy(FakeStack(GOOD))
    done = runner.run(preview_only=True)
    assert done.exit_code is ExitStatus.OK
    assert backend.opened == [("prod-eu-west-1", WORK, False)]
    assert backend.stack.calls == [("preview", {"policy_packs": [str(WORK / "policy")], "expect_no_changes": None})]
    assert [s.name for s in done.steps] == ["preview"]
    assert done.steps[0].detail == "3 to create, 1 to update (40 unchanged)"


def test_a_policy_failure_in_preview_stops_before_up_with_exit_1():
    stack = FakeStack(GOOD, fail={"preview": command_error(5, "error: preview failed: 2 mandatory policy violations")})
    backend, runner = deploy(stack)
    done = runner.run()
    assert backend.verbs == ["preview"]
    assert done.exit_code is ExitStatus.VIOLATIONS
    assert done.failed.name == "preview"
    assert done.failed.detail == (
        "pulumi preview of prod-eu-west-1 exited 5 (a policy pack blocked it): "
        "error: preview failed: 2 mandatory policy violations"
    )


def test_a_failed_up_stops_before_apply_with_exit_2():
    stack = FakeStack(GOOD, fail={"up": command_error(4, "error: creating RDS Cluster: AccessDenied")})
    backend, runner = deploy(stack)
    done = runner.run()
    assert backend.verbs == ["preview", "up"]
    assert backend.stack.calls[1] == ("up", {"policy_packs": [str(WORK / "policy")]})
    assert [s.name for s in done.steps] == ["preview", "up"]
    assert done.exit_code is ExitStatus.COULD_NOT_RUN
    assert "exited 4" in done.failed.detail and "AccessDenied" in done.failed.detail
    assert done.applied == [] and done.verified == []


def test_a_stack_the_backend_does_not_have_stops_at_preview():
    stack = FakeStack(GOOD, fail={"preview": command_error(6, "error: no stack named 'prod-eu-west-1' found")})
    done = deploy(stack)[1].run()
    assert done.exit_code is ExitStatus.COULD_NOT_RUN and "exited 6" in done.failed.detail


@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ({**GOOD, "stack": "prod-us-east-1"}, "returned the outputs of stack prod-us-east-1"),
        ({k: v for k, v in GOOD.items() if k != "kms"}, "outside the contract: stack outputs lack kms"),
    ],
)
def test_outputs_up_returns_are_checked_before_any_sql_runs(outputs, message):
    backend, runner = deploy(FakeStack(copy.deepcopy(outputs)))
    done = runner.run()
    assert [s.name for s in done.steps] == ["preview", "up"]
    assert done.exit_code is ExitStatus.COULD_NOT_RUN
    assert message in done.failed.detail


def test_pulumi_progress_and_each_step_reach_the_report():
    lines: list[str] = []
    _, runner = deploy(FakeStack(GOOD), lines=lines)
    runner.run(preview_only=True)
    assert lines == ["preview of the fake stack\n", "preview: 3 to create, 1 to update (40 unchanged)"]


def test_without_the_pulumi_cli_deploy_says_so_in_one_line_and_exits_2(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # nowhere a pulumi binary could be
    result = subprocess.run(
        [sys.executable, "-m", "provisioner", "deploy", "--stack", "prod-eu-west-1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: stack prod-eu-west-1: the pulumi CLI is not on PATH; install it "
        "(https://www.pulumi.com/docs/iac/download-install/) and log in to the backend"
    ]
