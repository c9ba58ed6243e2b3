"""`provision dr drill --stack local`: a physical backup with WAL restored to the failure instant,
applied, verified and compared with the source; rows committed during the backup are not lost,
rows after the recovery point are reported lost, and a stale restored cell is repaired."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import psycopg
import pytest

from contract.status import ExitStatus
from provisioner.local.drill import Drill
from tests.helpers import connect_as, converge, onboard, unique


@pytest.fixture(scope="module")
def tenant(local_stack, outputs):
    """A tenant of cell-1 with enough rows that the backup takes a moment."""
    partner = unique("drill")
    converge(outputs)
    one = onboard(outputs, {partner: "EU"}, [(partner, "writer", "growth")], cell="cell-1")["writer"]
    with local_stack.superuser(cell="cell-1") as su:
        su.execute(
            f'insert into "t_{one.id}".leads (name, data) '
            "select 'bulk ' || g, jsonb_build_object('n', g, 'pad', repeat('x', 200)) from generate_series(1, 150000) g"
        )
        su.commit()
    return one


class Writer(threading.Thread):
    """The tenant's app writing leads as fast as it can; every id it saw committed, with when."""

    def __init__(self, outputs, tenant) -> None:
        super().__init__(daemon=True)
        self.conn = connect_as(outputs, "tenant", tenant.id, "cell-1")
        self.conn.autocommit = True
        self.committed: list[tuple[int, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            row = self.conn.execute("insert into leads (name) values ('during the drill') returning id").fetchone()
            self.committed.append((row[0], time.time()))

    def __enter__(self) -> Writer:
        self.start()
        time.sleep(0.2)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.join(timeout=10)
        self.conn.close()


def copy_ids(conninfo: dict, tenant_id: str) -> set[int]:
    with psycopg.connect(**conninfo) as conn:
        return {r[0] for r in conn.execute(f"select id from \"t_{tenant_id}\".leads where name = 'during the drill'")}


def test_a_drill_with_rows_written_during_the_backup_loses_none_of_the_committed_ones(local_stack, outputs, tenant):
    seen: dict[str, set[int]] = {}
    with Writer(outputs, tenant) as writer:
        started = time.time()
        result = Drill(local_stack.stack, outputs, "cell-1").run(
            probes=2, inspect=lambda info: seen.setdefault("ids", copy_ids(info, tenant.id))
        )
    assert result.exit_code is ExitStatus.OK, (result.differences, result.problems)
    assert not result.lost and result.differences == []
    backup_end = started + result.seconds["backup"]
    during = {i for i, at in writer.committed if started <= at <= backup_end}
    assert len(during) >= 10, "the writer should have committed rows while the backup ran"
    assert during <= seen["ids"]  # every row committed during the backup is in the copy
    before = {i for i, at in writer.committed if at <= backup_end}
    assert before <= seen["ids"]
    assert result.rpo == 0.0  # WAL streamed to the failure instant: the copy is as new as the source
    assert result.rto > sum(result.seconds[s] for s in ("backup", "restore")) > 0
    assert result.tenants >= 1 and result.rows >= 150000


def test_restored_only_to_the_end_of_the_backup_the_later_rows_are_reported_lost(
    local_stack, outputs, tenant, monkeypatch
):
    original = Drill._backup
    committed_after: list[int] = []

    def backup_then_write(self):
        original(self)
        with connect_as(outputs, "tenant", tenant.id, "cell-1") as conn:  # after the backup, before the failure
            for _ in range(3):
                committed_after.append(
                    conn.execute("insert into leads (name) values ('after') returning id").fetchone()[0]
                )
            conn.commit()
        time.sleep(0.5)  # the source's newest commit is visibly newer than the backup's end

    monkeypatch.setattr(Drill, "_backup", backup_then_write)
    result = Drill(local_stack.stack, outputs, "cell-1").run(probes=0, target="backup-end")
    assert result.lost and result.exit_code is ExitStatus.VIOLATIONS
    assert any(f"tenant {tenant.id} leads: " in line and "in the copy" in line for line in result.differences)
    assert result.rpo > 0.0


def test_a_restored_cell_with_stale_grants_is_reapplied_and_verified(local_stack, outputs, tenant, monkeypatch):
    """The copy's ledger says a grant step is current while the cell no longer matches: apply
    re-runs what the ledger marks stale, and verify proves the copy clean."""
    original = Drill._copy_outputs

    def stale_then_copy(self):
        with psycopg.connect(**self._conninfo(self.copy.port), autocommit=True) as su:
            su.execute(f'revoke all on "t_{tenant.id}".tickets from "t_{tenant.id}_app"')
            su.execute(
                "update platform.schema_ledger set checksum = 'from-an-older-release' "
                "where target = %s and step = 'R__grants'",
                (f"tenant:{tenant.id}",),
            )
        return original(self)

    monkeypatch.setattr(Drill, "_copy_outputs", stale_then_copy)
    result = Drill(local_stack.stack, outputs, "cell-1").run(probes=2)
    assert result.apply is ExitStatus.OK and result.verify is ExitStatus.OK, result.problems
    assert not result.lost  # a grant is not a row: the data compares equal


def test_the_cli_prints_rto_rpo_and_what_was_lost(local_stack, outputs, tenant):
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(local_stack.root)}
    run = subprocess.run(
        [sys.executable, "-m", "provisioner", "dr", "drill", "--stack", "local", "--cell", "cell-1", "--probes", "1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "cell-1: RTO " in run.stdout and " s, RPO " in run.stdout and "nothing lost" in run.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "provisioner", "dr", "drill", "--stack", "prod-eu-west-1"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert refused.returncode == 2 and "the drill runs on the local stack" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
