"""The per-cell apply lock: a table lock on platform.apply_lock that every apply holds in SHARE
ROW EXCLUSIVE mode (it conflicts with itself) and every verify in SHARE mode (shared among
verifies, exclusive with apply), so a verify never judges a half-applied cell and two applies
never interleave.

Tenants and partners hold no privilege on that table, so they can neither take the lock nor
block it (LOCK TABLE checks the privilege before it queues), and the holder pg_locks names is
always an operator session: CellBusy names it by its role, which a client cannot choose, not by
its application_name, which it can. The lock lives on a session of its own, idle in its
transaction while the work runs on another connection.

A cell without a control plane yet (its first apply) has no such table: there the bootstrap
falls back to an advisory lock, which no tenant can hold because no tenant exists yet.
"""

from __future__ import annotations

import time

import psycopg

from provisioner.db import scalar
from provisioner.errors import ProvisionError

APPLY_LOCK_KEY = 7_361_626_173  # the bootstrap's advisory lock, before platform.apply_lock exists
LOCK_TABLE = "platform.apply_lock"
EXCLUSIVE, SHARED = "share row exclusive", "share"


class CellBusy(ProvisionError):
    pass


def holder(conn: psycopg.Connection) -> str:
    """Who holds the cell: role and pid of the sessions holding platform.apply_lock (or, before
    it exists, the bootstrap's advisory lock)."""
    row = conn.execute(
        "select a.usename, l.pid, l.mode from pg_locks l join pg_stat_activity a using (pid) "
        "where l.granted and l.pid <> pg_backend_pid() and ("
        " (l.locktype = 'relation' and l.relation = to_regclass(%s) "
        "  and l.mode in ('ShareRowExclusiveLock', 'ShareLock'))"
        " or (l.locktype = 'advisory' and (l.classid::bigint << 32 | l.objid::bigint) = %s)) "
        "order by l.mode desc limit 1",
        (LOCK_TABLE, APPLY_LOCK_KEY),
    ).fetchone()
    if not row:
        return ""
    kind = "a verify" if row[2] == "ShareLock" else "an apply"
    return f" ({kind}: role {row[0] or 'unknown'}, pid {row[1]})"


def _table_present(conn: psycopg.Connection) -> bool:
    return scalar(conn, "select to_regclass(%s) is not null", (LOCK_TABLE,)) is True


def _try_table(conn: psycopg.Connection, mode: str) -> bool:
    """One attempt in a transaction left open on success (the lock lasts until it ends)."""
    conn.execute("begin")
    try:
        conn.execute(f"lock table {LOCK_TABLE} in {mode} mode nowait")
        return True
    except psycopg.errors.LockNotAvailable:
        conn.execute("rollback")
        return False


def _hold_session(conn: psycopg.Connection) -> None:
    # The lock session waits idle in its transaction for as long as the work takes.
    conn.execute("set idle_in_transaction_session_timeout = 0")


def take_exclusive(conn: psycopg.Connection, cell: str, wait: float) -> None:
    """Hold the lock on `conn` (a session of its own, kept until the apply ends), waiting up to
    `wait` seconds; CellBusy names the holder by its role."""
    _hold_session(conn)
    deadline = time.monotonic() + wait
    while True:
        if _table_present(conn):
            if _try_table(conn, EXCLUSIVE):
                return
        elif scalar(conn, "select pg_try_advisory_lock(%s)", (APPLY_LOCK_KEY,)):
            # A first apply: another one may have created the table meanwhile.
            if not _table_present(conn) or _try_table(conn, EXCLUSIVE):
                return
            conn.execute("select pg_advisory_unlock(%s)", (APPLY_LOCK_KEY,))
        if time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    raise CellBusy(
        f"cell {cell}: another apply (or a verify) holds the lock{holder(conn)}; "
        "wait for it or pass --lock-wait SECONDS"
    )


def take_shared(conn: psycopg.Connection) -> bool:
    """Shared with other verifies, exclusive with apply; held on `conn` until it closes. Taken
    through platform.verify_lock() (V040), so the verifier needs no UPDATE on the lock table."""
    _hold_session(conn)
    conn.execute("begin")
    if scalar(conn, "select platform.verify_lock()"):
        return True
    conn.execute("rollback")
    return False
