"""`provision tenants purge --yes` killed with SIGKILL at seeded random moments, from start-up to
after its last commit: after every kill each tenant is either whole (its record, schema and
roles; the secret may already be gone, it goes first) or gone without a trace (no schema, role,
binding, shared row, ledger row, record or secret); a re-run converges and verify is clean. On a
stack of its own, like test_faults' kill test for apply."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from contract.status import ExitStatus
from provisioner import aws, directory
from provisioner.credentials import secret_name
from provisioner.lifecycle import closure
from provisioner.verify.findings import verify_status
from provisioner.verify.runner import VerifyOptions, verify_stack
from tests.helpers import RunningStack, onboard, seed_tenant_rows, started_stack

KILL_TRIALS = 8
KILL_SEED = 17
PER_TRIAL = 4  # tenants closed and purged in each trial
CLOSED_AT = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)  # past the grace period now


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with started_stack(tmp_path_factory.mktemp("purgekill"), cells=1) as running:
        yield running


def closed_batch(stack: RunningStack, prefix: str) -> list[directory.Tenant]:
    """PER_TRIAL tenants with rows in their schema and in the shared tables, closed 31 days ago."""
    made = onboard(
        stack.outputs, {f"{prefix}-p": "EU"}, [(f"{prefix}-p", f"{prefix}-{i}", "starter") for i in range(PER_TRIAL)]
    )
    seed_tenant_rows(stack, list(made.values()))
    for t in made.values():
        closure.close(stack.outputs, closure.close_plan(stack.outputs, t.id), CLOSED_AT)
    return list(made.values())


def left_of(stack: RunningStack, tenant_id: str, cell: str = "cell-1") -> dict[str, object]:
    with stack.superuser(cell=cell) as su:
        found: dict[str, object] = dict(
            zip(
                ("record", "schema", "roles", "bindings", "worker_runs", "cost_entries", "ledger"),
                su.execute(
                    "select (select count(*) from platform.tenants where id = %(t)s), "
                    "to_regnamespace('t_' || %(t)s) is not null, "
                    "(select count(*) from pg_roles where rolname ~ ('^t_' || %(t)s || '_')), "
                    "(select count(*) from platform.role_bindings where tenant_id = %(t)s), "
                    "(select count(*) from platform.worker_runs where tenant_id = %(t)s), "
                    "(select count(*) from platform.cost_entries where tenant_id = %(t)s), "
                    "(select count(*) from platform.schema_ledger where target = 'tenant:' || %(t)s)",
                    {"t": tenant_id},
                ).fetchone(),
                strict=True,
            )
        )
    try:
        aws.client("secretsmanager", stack.outputs.region).describe_secret(
            SecretId=secret_name(stack.outputs.stack, "tenant", tenant_id)
        )
        found["secret"] = True
    except ClientError:
        found["secret"] = False
    return found


GONE = {
    "record": 0,
    "schema": False,
    "roles": 0,
    "bindings": 0,
    "worker_runs": 0,
    "cost_entries": 0,
    "ledger": 0,
    "secret": False,
}


def whole(found: dict[str, object]) -> bool:
    return (
        found["record"] == 1
        and found["schema"] is True
        and found["roles"] == 4  # owner, app, its rotation twin, read-only
        and found["worker_runs"] == found["cost_entries"] == 1
        and found["ledger"] != 0
    )


def test_purge_killed_at_random_moments_then_a_rerun_converges_and_verify_is_clean(stack):
    rng = random.Random(KILL_SEED)
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(stack.root)}
    purge = [sys.executable, "-m", "provisioner", "tenants", "purge", "--stack", "local", "--yes"]
    # One whole purge of a batch, timed: the kill moments are fractions of it (see test_faults).
    calibrate = closed_batch(stack, "calib")
    mark = time.monotonic()
    subprocess.run(purge, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=300)
    whole_run = time.monotonic() - mark
    assert [left_of(stack, t.id) for t in calibrate] == [GONE] * PER_TRIAL

    everyone: list[directory.Tenant] = list(calibrate)
    killed_mid = killed_after = 0
    for trial in range(KILL_TRIALS):
        batch = closed_batch(stack, f"kill{trial}")
        everyone += batch
        fraction = rng.uniform(0.1, 1.4)
        mark = time.monotonic()
        proc = subprocess.Popen(purge, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and time.monotonic() - mark < fraction * whole_run:
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        states = {t.id: left_of(stack, t.id) for t in batch}
        half = {tid: s for tid, s in states.items() if s != GONE and not whole(s)}
        assert half == {}, f"trial {trial} (killed at {fraction:.2f} of a run): half-purged tenants"
        remaining = [tid for tid, s in states.items() if s != GONE]
        if remaining:
            killed_mid += 1
            # the rest of a purge killed midway: the next run finishes it, nothing else
            again = subprocess.run(purge, env=env, capture_output=True, text=True, timeout=300)
            assert again.returncode == 0, again.stderr
            assert f"purged {len(remaining)} tenant(s)" in again.stdout
        else:
            killed_after += 1
        assert [left_of(stack, t.id) for t in batch] == [GONE] * PER_TRIAL, f"trial {trial}"
    assert killed_mid > 0 and killed_after > 0, "the kills should land both mid-purge and after it"

    assert [left_of(stack, t.id) for t in everyone] == [GONE] * len(everyone)
    assert {t.id for t in directory.tenants(stack.outputs)}.isdisjoint({t.id for t in everyone})
    reports = verify_stack(stack.outputs, VerifyOptions(probes=0))
    assert verify_status(reports) is ExitStatus.OK, [(r.errors, r.findings[:3]) for r in reports]
