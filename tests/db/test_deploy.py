"""Deploy end to end with a stand-in for the Automation API's Stack whose `up` returns the local
stack's outputs: the apply and the verify that follow are the real ones, on real cells."""

from __future__ import annotations

import dataclasses

from contract.status import ExitStatus
from provisioner.deploy import Deploy
from provisioner.verify.runner import VerifyOptions
from tests.fake_pulumi import FakeBackend, FakeStack
from tests.helpers import ROOT_DIR


def run(outputs_doc: dict) -> tuple[FakeBackend, object]:
    backend = FakeBackend(FakeStack(outputs_doc))
    runner = Deploy("local", ROOT_DIR, verify_options=VerifyOptions(probes=2), open=backend)
    return backend, runner.run()


def test_preview_up_apply_verify_in_order_and_clean(outputs):
    backend, done = run(outputs.to_json())
    assert backend.verbs == ["preview", "up"]
    assert [s.name for s in done.steps] == ["preview", "up", "apply", "verify"]
    assert done.exit_code is ExitStatus.OK, done.failed
    assert [r.cell for r in done.applied] == outputs.cells
    assert {r.cell: r.status for r in done.verified} == {c: "clean" for c in outputs.cells}


def test_a_cell_down_after_up_stops_at_apply_and_verify_never_runs(outputs):
    down = dataclasses.replace(outputs.cluster("cell-2"), port=1)
    broken = dataclasses.replace(outputs, clusters=(outputs.cluster("cell-1"), down))
    backend, done = run(broken.to_json())
    assert [s.name for s in done.steps] == ["preview", "up", "apply"]
    assert done.exit_code is ExitStatus.COULD_NOT_RUN
    assert "cell cell-2: cannot connect" in done.failed.detail
    assert done.verified == []
