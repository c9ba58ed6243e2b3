"""Faults: apply killed at random moments, two applies at once, a cell that is down, a connection
dropped mid-apply, and the directory commands with a cell down."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from contract.status import ExitStatus
from provisioner import directory, onboarding
from provisioner.apply import ApplyOptions, apply_stack
from provisioner.stackref import credential_store
from provisioner.verify.findings import verify_status
from provisioner.verify.runner import VerifyOptions, verify_stack
from tests.helpers import converge, tenant_ledger_rows, tenant_planned_steps, unique

KILL_TRIALS = 20
KILL_SEED = 14


def cli(*args: str, root, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def record(outputs, partner: str, count: int, prefix: str, cell: str | None = None) -> list[str]:
    """Tenants written to the directory but not applied (pending work for the next apply)."""
    rows = [{"partner": partner, "tenant": f"{prefix}-{i:03d}", "plan": "starter"} for i in range(count)]
    new = onboarding.validate_new_tenants(outputs, rows)
    return [p.id for p in directory.place_tenants(outputs, new, cell=cell)]


def half_made(local_stack, outputs, partner: str) -> list[tuple]:
    """Tenants of `partner` neither untouched nor complete: the state a kill must never leave."""
    found = []
    for cell in outputs.cells:
        with local_stack.superuser(cell=cell) as su:
            found += su.execute(
                "select t.id, (select count(*) from platform.schema_ledger l where l.target = 'tenant:' || t.id), "
                " to_regnamespace('t_' || t.id) is not null, to_regrole('t_' || t.id || '_app') is not null "
                "from platform.tenants t join platform.partners p on p.id = t.partner_id where p.slug = %s",
                (partner,),
            ).fetchall()
    return [row for row in found if row[1:] not in ((0, False, False), (tenant_ledger_rows(), True, True))]


@pytest.fixture
def partner(outputs):
    slug = unique("fault")
    converge(outputs)
    directory.add_partner_rows(outputs, slug, "EU")
    converge(outputs)  # the partner applied: only what a test records is pending
    yield slug
    converge(outputs)


def test_kill_9_at_random_moments_then_a_rerun_converges_and_verify_passes(local_stack, outputs, partner):
    rng = random.Random(KILL_SEED)
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(local_stack.root)}
    apply = [sys.executable, "-m", "provisioner", "tenants", "apply", "--stack", "local", "--json"]
    # How long one whole apply of a batch takes on this machine now. The kill moments are drawn
    # as fractions of it, so they land from start-up to after the last commit however loaded the
    # machine is (a fixed window in seconds lands only mid-apply on a slow one). The estimate
    # follows the machine: a run that ends on its own is timed, one still running when it was
    # meant to be over shows the machine slower.
    record(outputs, partner, 12, "calibrate")
    mark = time.monotonic()
    subprocess.run(apply, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=300)
    whole = time.monotonic() - mark
    left_pending = 0
    for trial in range(KILL_TRIALS):
        ids = record(outputs, partner, 12, f"kill{trial:02d}")
        fraction = rng.uniform(0.1, 1.4)  # anywhere from start-up to after the last commit
        mark = time.monotonic()
        proc = subprocess.Popen(apply, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and time.monotonic() - mark < fraction * whole:
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            if fraction >= 1:  # meant to land after the last commit: the machine is slower now
                whole *= 1.5
        elif proc.returncode == 0:
            whole = time.monotonic() - mark
        proc.wait()
        assert half_made(local_stack, outputs, partner) == [], f"trial {trial}"
        dry = apply_stack(outputs, ApplyOptions(dry_run=True, tenant_ids=frozenset(ids)), None)
        left_pending += any(r.planned for r in dry)
    assert 0 < left_pending < KILL_TRIALS, "the kills should land both mid-apply and after it"

    results = apply_stack(outputs, ApplyOptions(), credential_store(outputs))
    assert [r.status for r in results] == ["ok", "ok"], [r.errors for r in results]
    assert half_made(local_stack, outputs, partner) == []
    mine = [t for t in directory.tenants(outputs) if t.partner == partner]
    assert len(mine) == 12 * (KILL_TRIALS + 1)  # the calibrating batch and every trial's
    reports = verify_stack(outputs, VerifyOptions(probes=3, seed=KILL_SEED))
    assert verify_status(reports) is ExitStatus.OK, [(r.errors, r.findings[:3]) for r in reports]


def test_two_concurrent_applies_never_interleave(local_stack, outputs, partner):
    ids = record(outputs, partner, 40, "twice")
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(local_stack.root)}
    args = [sys.executable, "-m", "provisioner", "tenants", "apply", "--stack", "local", "--lock-wait", "120", "--json"]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"]
    runs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    # Each tenant was applied exactly once, by one of the two: had they interleaved, the second
    # would have run V001 again on a tenant the first had made and failed.
    per_cell = {cell: 0 for cell in outputs.cells}
    for run in runs:
        for cell in run["cells"]:
            assert cell["status"] == "ok" and cell["errors"] == []
            per_cell[cell["cell"]] += cell["targets_changed"]["tenant"]
    placed = {t.id: t.cell for t in directory.tenants(outputs) if t.id in set(ids)}
    assert per_cell == {cell: sum(1 for c in placed.values() if c == cell) for cell in outputs.cells}
    assert half_made(local_stack, outputs, partner) == []


def test_a_connection_dropped_mid_apply_is_reopened_and_the_apply_completes(local_stack, outputs, partner):
    ids = record(outputs, partner, 100, "drop", cell="cell-1")
    killed: list[int] = []

    def drop_once() -> None:
        deadline = time.monotonic() + 60
        with local_stack.superuser(cell="cell-1", autocommit=True) as su:
            while time.monotonic() < deadline and not killed:
                done = su.execute(
                    "select count(*) from platform.schema_ledger where step = 'credentials' and target = any(%s)",
                    ([f"tenant:{i}" for i in ids],),
                ).fetchone()[0]
                if done >= 20:
                    rows = su.execute(
                        "select pg_terminate_backend(a.pid) from pg_stat_activity a "
                        "where a.application_name = 'askasia-provisioner' and a.pid not in "
                        "(select pid from pg_locks where relation = 'platform.apply_lock'::regclass)"
                    ).fetchall()
                    killed.extend(1 for r in rows if r[0])
                time.sleep(0.02)

    watcher = threading.Thread(target=drop_once)
    watcher.start()
    results = apply_stack(outputs, ApplyOptions(), credential_store(outputs), cells=["cell-1"])
    watcher.join()
    assert killed, "the apply's connection should have been terminated mid-run"
    (cell,) = results
    assert cell.status == "ok", cell.errors
    assert cell.reconnects >= 1
    assert half_made(local_stack, outputs, partner) == []
    left = apply_stack(outputs, ApplyOptions(dry_run=True, tenant_ids=frozenset(ids)), None, cells=["cell-1"])
    assert [(r.status, r.planned) for r in left] == [("ok", [])]


@pytest.fixture
def broken_outputs(outputs, tmp_path):
    down = dataclasses.replace(outputs.cluster("cell-2"), port=1)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(dataclasses.replace(outputs, clusters=(outputs.cluster("cell-1"), down)).to_json()))
    return path


def test_a_cell_down_fails_that_cell_the_others_complete_and_the_exit_says_partial(
    local_stack, outputs, partner, broken_outputs
):
    record(outputs, partner, 4, "downapply", cell="cell-1")
    result = cli("tenants", "apply", "--stack", "local", "--outputs", str(broken_outputs), root=local_stack.root)
    assert result.returncode == 2
    assert "cell-2: cell cell-2: cannot connect to 127.0.0.1:1" in result.stderr
    assert "partial: 1 of 2 cell(s) done; not cell-2" in result.stderr
    assert "Traceback" not in result.stderr
    left = apply_stack(outputs, ApplyOptions(dry_run=True), None, cells=["cell-1"])
    assert [(r.status, r.planned) for r in left] == [("ok", [])]


def test_directory_commands_keep_working_on_the_cells_that_are_up(local_stack, outputs, partner, broken_outputs):
    root, broken = local_stack.root, str(broken_outputs)
    listed = cli("tenants", "list", "--stack", "local", "--outputs", broken, "--json", root=root)
    assert listed.returncode == 2
    assert {t["cell"] for t in json.loads(listed.stdout)} <= {"cell-1"}
    assert "partial: listed without cell-2" in listed.stderr

    added = cli(
        *("tenants", "add", "--stack", "local", "--outputs", broken),
        *("--partner", partner, "--tenant", "while-down", "--plan", "growth"),
        root=root,
    )
    assert added.returncode == 2, added.stderr
    assert "in cell-1 of local" in added.stdout
    assert "partial: placed and applied without cell-2" in added.stderr

    late = unique("late")
    recorded = cli(
        "partners", "add", "--stack", "local", "--outputs", broken, "--partner", late, "--jurisdiction", "UK", root=root
    )
    assert recorded.returncode == 2 and "partial: recorded without cell-2" in recorded.stderr
    partners_listed = cli("partners", "list", "--stack", "local", "--outputs", broken, "--json", root=root)
    assert partners_listed.returncode == 2 and late in partners_listed.stdout
    # Once the cell is back, the same command records the partner there too, with the same id.
    again = cli("partners", "add", "--stack", "local", "--partner", late, "--jurisdiction", "UK", root=root)
    assert again.returncode == 0, again.stderr
    ids = set()
    for cell in outputs.cells:
        with local_stack.superuser(cell=cell) as su:
            ids |= {r[0] for r in su.execute("select id from platform.partners where slug = %s", (late,))}
    assert len(ids) == 1


def test_the_drift_check_fails_when_anything_would_run(local_stack, outputs, partner):
    clean = cli("tenants", "apply", "--stack", "local", "--dry-run", "--expect-no-changes", root=local_stack.root)
    assert clean.returncode == 0, clean.stderr
    record(outputs, partner, 1, "pending")
    drift = cli("tenants", "apply", "--stack", "local", "--dry-run", "--expect-no-changes", root=local_stack.root)
    assert drift.returncode == 1
    assert f"drift: {tenant_planned_steps()} step(s) would run on local; expected none" in drift.stderr
    refused = cli("tenants", "apply", "--stack", "local", "--expect-no-changes", root=local_stack.root)
    assert refused.returncode == 2 and "goes with --dry-run" in refused.stderr
