"""The per-cell apply lock: one advisory lock that every apply holds exclusively and every
verify shared, so a verify never judges a half-applied cell and two applies never interleave."""

from __future__ import annotations

import time

import psycopg

from provisioner.db import scalar
from provisioner.errors import ProvisionError

APPLY_LOCK_KEY = 7_361_626_173


class CellBusy(ProvisionError):
    pass


def holder(conn: psycopg.Connection) -> str:
    row = conn.execute(
        "select a.pid, a.application_name from pg_locks l "
        "join pg_stat_activity a using (pid) where l.locktype = 'advisory' and l.granted "
        "and (l.classid::bigint << 32 | l.objid::bigint) = %s limit 1",
        (APPLY_LOCK_KEY,),
    ).fetchone()
    return f" (pid {row[0]}, {row[1] or 'unknown client'})" if row else ""


def take_exclusive(conn: psycopg.Connection, cell: str, wait: float) -> None:
    """Hold the lock for the session, waiting up to `wait` seconds; CellBusy names the holder."""
    deadline = time.monotonic() + wait
    while True:
        if scalar(conn, "select pg_try_advisory_lock(%s)", (APPLY_LOCK_KEY,)):
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    raise CellBusy(
        f"cell {cell}: another apply (or a verify) holds the lock{holder(conn)}; "
        "wait for it or pass --lock-wait SECONDS"
    )


def take_shared(conn: psycopg.Connection) -> bool:
    """Shared with other verifies, exclusive with apply; released when the session ends."""
    return bool(scalar(conn, "select pg_try_advisory_lock_shared(%s)", (APPLY_LOCK_KEY,)))
