"""The guard: what grants cannot stop. One pass finds the tenant and partner backends that hold
more than `max_locks` locks, sit idle in a transaction longer than `idle_seconds`, or are past
their role's connection share, terminates them, and writes each action to the audit trail.

It runs as its own role (askasia_guard: pg_signal_backend and pg_read_all_stats, CONNECT, and
INSERT of its own audit rows) on a session opened once and kept: when a tenant has filled the
shared lock table, no new login succeeds, but a pass on an open session still works. The pass
reads pg_stat_activity and pg_locks (both from shared memory, taking only fast-path relation
locks) and terminates first; the audit rows go in after, when the lock table has room again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.types.numeric import Int8

from contract.outputs import Cluster, StackOutputs
from provisioner.connect import Credentials, connect, connect_master
from provisioner.credentials import CredentialStore, Endpoint, scram_verifier
from provisioner.db import scalar
from provisioner.errors import ProvisionError, first_line
from provisioner.targets import ROLES

GUARD_ROLE = ROLES["guard"]

# The offenders and why, then pg_terminate_backend on each: tenants' (t_<id>_app) and partners'
# (p_<id>_app) backends and their rotation twins' (_app2) only, never an operator's. From
# functions over shared memory, not the views: pg_stat_activity joins pg_authid and pg_database,
# shared catalogs whose locks never take the fast path, so with the lock table full they could
# not be read. Role names come from the
# syscache (`::regrole`), which each pass fills first while the lock table has room (WARM).
LOCKS_AND_IDLE = """
with backend as (
    select s.pid, s.usesysid::regrole::text as role, s.state, s.state_change
    from pg_stat_get_activity(null) s
    where s.datid = %(db)s and s.pid <> pg_backend_pid() and s.backend_type = 'client backend'
),
lock_count as (
    select l.pid, count(*) as locks from pg_lock_status() l group by l.pid
),
judged as (
    select b.pid, b.role,
           case
               when coalesce(c.locks, 0) > %(max_locks)s
               then 'holds ' || c.locks || ' locks (limit ' || %(max_locks)s || ')'
               when b.state like 'idle in transaction%%'
                    and b.state_change < now() - make_interval(secs => %(idle_seconds)s)
               then 'idle in transaction for '
                    || extract(epoch from now() - b.state_change)::int || ' s (limit ' || %(idle_seconds)s || ' s)'
           end as reason
    from backend b
    left join lock_count c on c.pid = b.pid
    where b.role ~ '^[tp]_[a-z0-9]{12}_app2?$'
)
select j.pid, j.role, j.reason, pg_terminate_backend(j.pid, %(wait_ms)s) as terminated
from judged j
where j.reason is not null
"""
# Past the connection share (its CONNECTION LIMIT, lowered since it logged in, or any count
# above it): the newest backends go. The share is the tenant's or partner's, not the login's:
# the app login and its rotation twin (t_<id>_app, t_<id>_app2) each carry the same limit, which
# PostgreSQL enforces per login, so together they count against one. Reads pg_roles, so it waits
# for room in the lock table (while it is full no login succeeds, so no share grows).
SHARE = """
with backend as (
    select s.pid, r.rolname,
           row_number() over (partition by left(r.rolname, 14) order by s.backend_start) as nth,
           min(r.rolconnlimit) over (partition by left(r.rolname, 14)) as share
    from pg_stat_get_activity(null) s
    join pg_roles r on r.oid = s.usesysid
    where s.backend_type = 'client backend' and s.pid <> pg_backend_pid()
      and r.rolname ~ '^[tp]_[a-z0-9]{12}_app2?$' and r.rolconnlimit >= 0
)
select b.pid, b.rolname::text, 'past its connection share (' || b.share || ')',
       pg_terminate_backend(b.pid, %(wait_ms)s)
from backend b
where b.nth > b.share
"""

# The audit row names the tenant or partner by the id in its role's name (the guard reads no
# platform table): t_<tenant id>_app or p_<partner id>_app.
AUDIT = (
    "insert into platform.audit_events (tenant_id, partner_id, actor, action, detail) "
    "values (case when starts_with(%(role)s, 't_') then substr(%(role)s, 3, 12) else '' end, "
    "case when starts_with(%(role)s, 'p_') then substr(%(role)s, 3, 12) else '' end, "
    "'guard', 'terminate_backend', %(detail)s::jsonb)"
)


# pg_terminate_backend waits this long for each victim to exit, so the locks it held are free
# when the pass writes its audit rows (a full lock table would refuse them).
TERMINATE_WAIT_MS = 5000


@dataclass(frozen=True)
class GuardLimits:
    max_locks: int = 1000
    idle_seconds: int = 30


@dataclass(frozen=True)
class Action:
    pid: int
    role: str
    reason: str
    terminated: bool


# Every tenant and partner login role into this session's syscache: a role the guard has not
# looked up yet would need pg_authid opened (a shared catalog: no fast-path lock) in the pass.
WARM = "select count(oid::regrole::text) from pg_roles where rolname ~ '^[tp]_[a-z0-9]{12}_app2?$'"


def guard_pass(conn: psycopg.Connection, limits: GuardLimits, db: int) -> list[Action]:
    """One pass on the guard's open session (autocommit): terminate, then record."""
    try:
        conn.execute(WARM)
    except psycopg.errors.OutOfMemory:  # the lock table is full: the roles cached before
        pass
    # Fixed parameter types (psycopg picks int2/int4/int8 by value): a new type is a new plan,
    # and planning it looks up catalog entries the warm-up did not cache.
    params = {
        "max_locks": Int8(limits.max_locks),
        "idle_seconds": Int8(limits.idle_seconds),
        "db": Int8(db),
        "wait_ms": Int8(TERMINATE_WAIT_MS),
    }
    actions = [Action(*row) for row in conn.execute(LOCKS_AND_IDLE, params).fetchall()]
    try:
        actions += [Action(*row) for row in conn.execute(SHARE, {"wait_ms": Int8(TERMINATE_WAIT_MS)}).fetchall()]
        for action in actions:
            detail = json.dumps({"pid": action.pid, "role": action.role, "reason": action.reason})
            conn.execute(AUDIT, {"detail": detail, "role": action.role})
    except psycopg.errors.OutOfMemory:  # still full (the victim waited for had not exited in time)
        pass
    return actions


def guard_credentials(outputs: StackOutputs, cluster: Cluster, store: CredentialStore) -> Credentials:
    """The guard's password from its own secret (made on first use), set on its role by the
    master: the role is the platform templates', the secret this cell's."""
    endpoint = Endpoint(cluster.endpoint, cluster.port, cluster.database)
    issued = store.ensure_versioned("guard", cluster.cell, GUARD_ROLE, endpoint)
    with connect_master(cluster, outputs.region, autocommit=True) as master:
        present = master.execute("select 1 from pg_roles where rolname = %s", (GUARD_ROLE,)).fetchone()
        if not present:
            raise ProvisionError(f"cell {cluster.cell}: no guard role yet: run provision tenants apply")
        verifier = scram_verifier(master.pgconn, issued.password, GUARD_ROLE)
        master.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(GUARD_ROLE), sql.Literal(verifier)))
    return Credentials(GUARD_ROLE, issued.password)


def open_guard(cluster: Cluster, creds: Credentials) -> tuple[psycopg.Connection, int]:
    """The guard's session, kept open, with the catalog entries a pass needs already cached."""
    conn = connect(cluster, creds, autocommit=True)
    conn.execute("set statement_timeout = '10s'; set lock_timeout = '2s'; set idle_in_transaction_session_timeout = 0")
    db = int(scalar(conn, "select oid from pg_database where datname = current_database()"))
    conn.execute("select pg_has_role('pg_signal_backend', 'usage'), pg_has_role('pg_read_all_stats', 'usage')")
    conn.execute(
        "explain " + LOCKS_AND_IDLE,
        {"max_locks": Int8(0), "idle_seconds": Int8(0), "db": Int8(db), "wait_ms": Int8(TERMINATE_WAIT_MS)},
    )
    conn.execute(WARM)
    return conn, db


def run_guard(
    conn: psycopg.Connection,
    db: int,
    limits: GuardLimits,
    every: float | None,
    passes: int | None,
    report: Callable[[list[Action]], None],
    failed: Callable[[str], None] = lambda reason: None,
) -> int:
    """One pass, or one every `every` seconds (up to `passes` of them); the actions taken."""
    done = taken = 0
    while True:
        try:
            actions = guard_pass(conn, limits, db)
        except psycopg.Error as exc:  # a pass that fails (a timeout under load): the next one runs
            if every is None or conn.broken:
                raise
            actions = []
            failed(first_line(exc))
        taken += sum(1 for a in actions if a.terminated)
        report(actions)
        done += 1
        if every is None or (passes is not None and done >= passes):
            return taken
        time.sleep(every)
