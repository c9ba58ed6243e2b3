"""Audit retention on every cell: the same SQL functions the schedule runs (R__retention).

Whole expired monthly partitions are detached and dropped first; then mixed partitions lose
their expired rows one bounded batch per transaction (autocommit: each call commits), so no
run holds a long transaction or a long lock. The migrator (V040) runs them as the operator role,
which may call the retention functions and nothing more of them; the master is not used.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from contract.outputs import Cluster, StackOutputs
from provisioner.errors import InputError, ProvisionError, first_line
from provisioner.operators import MIGRATOR, connect_operator
from provisioner.targets import RETENTION_BATCH, ROLES

DETACH_ATTEMPTS = 5  # a detach that cannot get its lock in lock_timeout (2 s) is tried again


@dataclass
class CellRetention:
    cell: str
    dry_run: bool
    as_of: str = ""
    status: str = "ok"  # ok | failed | unreachable
    partitions_dropped: list[str] = field(default_factory=list)
    rows_in_dropped_partitions: int = 0
    rows_deleted: int = 0  # by bounded batches (dry run: that would be)
    batches: int = 0
    per_tenant: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_removed(self) -> int:
        return self.rows_in_dropped_partitions + self.rows_deleted


def _drop_expired(conn: psycopg.Connection, result: CellRetention, as_of: dt.datetime, dry_run: bool) -> None:
    for attempt in range(DETACH_ATTEMPTS):
        try:
            rows = conn.execute(
                "select part, tenant_id, rows_removed from platform.audit_drop_expired(%s::timestamptz, %s)",
                (as_of, dry_run),
            ).fetchall()
            break
        except psycopg.errors.LockNotAvailable:
            if attempt + 1 == DETACH_ATTEMPTS:
                raise
            time.sleep(0.5 * (attempt + 1))
    parts: list[str] = []
    for part, tenant, count in rows:
        if part not in parts:
            parts.append(part)
        result.per_tenant[tenant] += count
        result.rows_in_dropped_partitions += count
    result.partitions_dropped = parts


def _clean(conn: psycopg.Connection, result: CellRetention, as_of: dt.datetime, dry_run: bool, batch: int) -> None:
    while True:
        rows = conn.execute(
            "select part, tenant_id, rows_removed from platform.audit_clean_batch(%s::timestamptz, %s, %s)",
            (as_of, batch, dry_run),
        ).fetchall()
        if not rows:
            return
        result.batches += 1
        for _part, tenant, count in rows:
            result.per_tenant[tenant] += count
            result.rows_deleted += count
        if dry_run:
            return  # the dry run counted every expired row in one call


def retain_cell(
    outputs: StackOutputs, cluster: Cluster, as_of: dt.datetime | None, dry_run: bool, batch: int
) -> CellRetention:
    result = CellRetention(cluster.cell, dry_run)
    started = time.monotonic()
    try:
        conn = connect_operator(outputs, cluster, MIGRATOR, autocommit=True)
    except (ProvisionError, BotoCoreError, ClientError) as exc:
        result.status, result.errors = "unreachable", [f"cell {cluster.cell}: {exc}"]
        return result
    try:
        with conn:
            conn.execute(f"set role {ROLES['operator']}")  # a fixed, known identifier
            moment = conn.execute("select coalesce(%s::timestamptz, now())", (as_of,)).fetchone()[0]  # type: ignore[index]
            result.as_of = moment.isoformat()
            _drop_expired(conn, result, moment, dry_run)
            _clean(conn, result, moment, dry_run, batch)
    except psycopg.Error as exc:
        result.status = "failed"
        result.errors.append(f"cell {cluster.cell}: {first_line(exc)}")
    finally:
        result.seconds = time.monotonic() - started
    return result


def run_retention(
    outputs: StackOutputs,
    as_of: dt.datetime | None = None,
    dry_run: bool = False,
    batch: int = RETENTION_BATCH,
    cells: list[str] | None = None,
) -> list[CellRetention]:
    """Every cell in parallel; one cell down fails that cell, not the others."""
    if not 1 <= batch <= 100_000:
        raise InputError(f"--batch must be between 1 and 100000, not {batch}")
    clusters = [c for c in outputs.clusters if cells is None or c.cell in cells]
    if cells is not None and len(clusters) != len(set(cells)):
        unknown = sorted(set(cells) - {c.cell for c in clusters})
        raise InputError(f"no cell {', '.join(unknown)} in stack {outputs.stack}")
    with ThreadPoolExecutor(max_workers=max(1, len(clusters))) as pool:
        futures = [pool.submit(retain_cell, outputs, c, as_of, dry_run, batch) for c in clusters]
        return [f.result() for f in futures]
