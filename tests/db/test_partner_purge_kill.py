"""`provision partners purge --yes` killed with SIGKILL at seeded random moments, on a stack of
two cells (a partner's records live in every cell; its tenants, one in each): after every kill,
in each cell, the partner is either whole (its record, console role and ledger rows; the secret
may already be gone, it goes first) or gone without a trace there, and each of its tenants is
whole or gone as `tenants purge`'s kill test defines; a re-run converges to nothing left in any
cell or in Secrets Manager, and verify is clean (orphan_secrets included)."""

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
from provisioner.lifecycle import partners
from provisioner.verify.findings import verify_status
from provisioner.verify.runner import VerifyOptions, verify_stack
from tests.db.test_purge_kill import GONE as TENANT_GONE
from tests.db.test_purge_kill import left_of as tenant_left
from tests.db.test_purge_kill import whole as tenant_whole
from tests.helpers import RunningStack, onboard, seed_tenant_rows, started_stack

KILL_TRIALS = 8
KILL_SEED = 23
CELLS = ("cell-1", "cell-2")
TERMINATED_AT = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)  # past the 30 days now


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with started_stack(tmp_path_factory.mktemp("partnerkill"), cells=2) as running:
        yield running


def terminated_partner(stack: RunningStack, prefix: str) -> tuple[str, list[directory.Tenant]]:
    """A partner with a tenant in each cell, rows in their schemas and the shared tables,
    terminated (its tenants closed) 31 days ago."""
    slug = f"{prefix}-p"
    made = onboard(stack.outputs, {slug: "EU"}, [(slug, f"{prefix}-1", "starter")], cell="cell-1")
    made |= onboard(stack.outputs, {}, [(slug, f"{prefix}-2", "growth")], cell="cell-2")
    seed_tenant_rows(stack, list(made.values()))
    pid = next(iter(made.values())).partner_id
    plan = partners.terminate_plan(stack.outputs, pid, close_tenants=True)
    partners.terminate(stack.outputs, plan, TERMINATED_AT)
    return pid, list(made.values())


def partner_left(stack: RunningStack, pid: str, cell: str) -> dict[str, object]:
    with stack.superuser(cell=cell) as su:
        return dict(
            zip(
                ("record", "role", "bindings", "ledger"),
                su.execute(
                    "select (select count(*) from platform.partners where id = %(p)s), "
                    "to_regrole('p_' || %(p)s || '_app') is not null, "
                    "(select count(*) from platform.role_bindings where partner_id = %(p)s), "
                    "(select count(*) from platform.schema_ledger where target = 'partner:' || %(p)s)",
                    {"p": pid},
                ).fetchone(),
                strict=True,
            )
        )


PARTNER_GONE = {"record": 0, "role": False, "bindings": 0, "ledger": 0}


def partner_whole(found: dict[str, object]) -> bool:
    return found["record"] == 1 and found["role"] is True and found["ledger"] != 0


def secret_exists(stack: RunningStack, pid: str) -> bool:
    try:
        aws.client("secretsmanager", stack.outputs.region).describe_secret(
            SecretId=secret_name(stack.outputs.stack, "partner", pid)
        )
        return True
    except ClientError:
        return False


def everything_gone(stack: RunningStack, pid: str, tenants: list[directory.Tenant]) -> bool:
    return (
        all(partner_left(stack, pid, cell) == PARTNER_GONE for cell in CELLS)
        and not secret_exists(stack, pid)
        and all(tenant_left(stack, t.id, t.cell) == TENANT_GONE for t in tenants)
    )


def test_partner_purge_killed_at_random_moments_then_a_rerun_converges_and_verify_is_clean(stack):
    rng = random.Random(KILL_SEED)
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(stack.root)}

    def purge(pid: str) -> list[str]:
        return [sys.executable, "-m", "provisioner", "partners", "purge", "--stack", "local", "--partner", pid, "--yes"]

    # One whole purge, timed: the kill moments are fractions of it (see test_purge_kill).
    pid, tenants = terminated_partner(stack, "calib")
    mark = time.monotonic()
    subprocess.run(purge(pid), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=300)
    whole_run = time.monotonic() - mark
    assert everything_gone(stack, pid, tenants)

    purged = [(pid, tenants)]
    killed_mid = killed_after = 0
    for trial in range(KILL_TRIALS):
        pid, tenants = terminated_partner(stack, f"kill{trial}")
        purged.append((pid, tenants))
        fraction = rng.uniform(0.1, 1.4)
        mark = time.monotonic()
        proc = subprocess.Popen(purge(pid), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while proc.poll() is None and time.monotonic() - mark < fraction * whole_run:
            time.sleep(0.01)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        where = f"trial {trial} (killed at {fraction:.2f} of a run)"
        for cell in CELLS:
            state = partner_left(stack, pid, cell)
            assert state == PARTNER_GONE or partner_whole(state), f"{where}: partner half-purged in {cell}: {state}"
        for t in tenants:
            state = tenant_left(stack, t.id, t.cell)
            assert state == TENANT_GONE or tenant_whole(state), f"{where}: tenant {t.id} half-purged: {state}"
        if everything_gone(stack, pid, tenants):
            killed_after += 1
        else:
            killed_mid += 1
            # the rest of a purge killed midway: the next run finishes it
            again = subprocess.run(purge(pid), env=env, capture_output=True, text=True, timeout=300)
            assert again.returncode == 0, again.stderr
            assert "purged" in again.stdout
        assert everything_gone(stack, pid, tenants), where
    # The calibration run shows a whole purge; the point is purges killed midway (on a loaded
    # machine a run may take longer than the calibrated one, so none may finish before its kill).
    assert killed_mid > 0, f"the kills should land mid-purge ({killed_after} finished before their kill)"

    assert all(everything_gone(stack, pid, tenants) for pid, tenants in purged)
    known = {p.id for p in directory.partners(stack.outputs)}
    assert known.isdisjoint({pid for pid, _ in purged})
    reports = verify_stack(stack.outputs, VerifyOptions(probes=0))
    assert verify_status(reports) is ExitStatus.OK, [(r.errors, r.findings[:3]) for r in reports]
