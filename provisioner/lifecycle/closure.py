"""Closing, reopening and purging tenants (privacy policy: tenant data deleted 30 days after
closure; export possible until then).

close: status closed, the app role loses LOGIN and its sessions end at once; data is kept.
reopen: inside the grace period, the reverse.
purge: for tenants closed more than GRACE ago: the secret, then in one transaction per batch
(sized under the lock table) the schema, the roles, the shared-table rows, the ledger rows and
the tenant row. Audit rows stay (they follow their own retention). Every step is idempotent and
the tenant row goes last in its transaction, so a purge killed at any moment and run again
converges. Every action writes an audit row.

Each runs as the migrator (V040), never the master: it ends sessions, drops schemas and roles
holding a tenant's roles only inside the transaction that needs them, as apply does.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
from botocore.exceptions import ClientError
from psycopg import sql

from contract.outputs import StackOutputs
from provisioner import aws, directory
from provisioner.credentials import secret_name
from provisioner.errors import InputError, ProvisionError
from provisioner.lifecycle import audit
from provisioner.names import TenantNames
from provisioner.operators import MIGRATOR, connect_operator

GRACE = dt.timedelta(days=30)
LOCKS_PER_PURGE = 80  # a tenant's schema, tables, indexes, sequences and roles: as many as apply takes
SECRET_WORKERS = 8  # Secrets Manager deletions in flight at once
SHARED_TABLES = ("worker_runs", "cost_entries")  # rows keyed by tenant_id (role_bindings cascade)


@dataclass(frozen=True)
class Planned:
    tenant: directory.Tenant
    action: str  # close | reopen | purge
    detail: str


@dataclass
class Done:
    planned: list[Planned] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)  # tenant ids


def _find(outputs: StackOutputs, tenant_ref: str) -> directory.Tenant:
    # Seam for canary tenants (kept for verify's probes): close, reopen and a named purge find
    # their tenant here, and purge_plan walks every tenant below; both are where a canary must
    # be refused or passed over.
    for t in directory.tenants(outputs):
        if tenant_ref in (t.id, t.slug):
            return t
    raise InputError(f"no tenant {tenant_ref!r} in stack {outputs.stack}")


def _moment(conn: psycopg.Connection, as_of: dt.datetime | None) -> dt.datetime:
    return conn.execute("select coalesce(%s::timestamptz, now())", (as_of,)).fetchone()[0]  # type: ignore[index]


def set_login(conn: psycopg.Connection, roles: tuple[str, ...], allowed: bool) -> None:
    """LOGIN or NOLOGIN on those of `roles` that exist (an app role's rotation twin is made by
    the next apply after tenant V020 / partner V010)."""
    found = conn.execute("select rolname::text from pg_roles where rolname = any(%s)", (list(roles),)).fetchall()
    for (role,) in found:
        conn.execute(sql.SQL("alter role {} " + ("login" if allowed else "nologin")).format(sql.Identifier(role)))


def end_sessions(conn: psycopg.Connection, roles: list[str]) -> int:
    """End the sessions of these roles. Signalling a role's backends needs membership in it: the
    caller grants itself each role inside a transaction that is rolled back, so no membership
    is ever committed (a kill at any moment leaves none). `conn` must be idle (autocommit)."""
    ended = 0
    with conn.transaction():
        for role in roles:
            if conn.execute("select to_regrole(%s)", (role,)).fetchone()[0] is None:  # type: ignore[index]
                continue
            conn.execute(sql.SQL("grant {} to current_user").format(sql.Identifier(role)))
            ended += conn.execute(
                "select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity where usename = %s",
                (role,),
            ).fetchone()[0]  # type: ignore[index]
        raise psycopg.Rollback()
    return ended


def close_plan(outputs: StackOutputs, tenant_ref: str) -> Planned:
    tenant = _find(outputs, tenant_ref)
    if tenant.status != "active":
        raise InputError(f"tenant {tenant.slug} ({tenant.id}) is already {tenant.status}")
    names = TenantNames(tenant.id)
    return Planned(
        tenant,
        "close",
        f"mark tenant {tenant.slug} ({tenant.id}) closed, revoke LOGIN from {names.app_role} and end its "
        f"sessions; its data is kept {GRACE.days} days, then `tenants purge` deletes it",
    )


def close(outputs: StackOutputs, planned: Planned, as_of: dt.datetime | None = None) -> int:
    """Returns the sessions ended."""
    tenant, names = planned.tenant, TenantNames(planned.tenant.id)
    with connect_operator(outputs, outputs.cluster(tenant.cell), MIGRATOR) as conn:
        moment = _moment(conn, as_of)
        updated = conn.execute(
            "update platform.tenants set status = 'closed', closed_at = %s where id = %s and status = 'active'",
            (moment, tenant.id),
        ).rowcount
        if updated != 1:
            raise ProvisionError(f"tenant {tenant.id} is no longer active: nothing done")
        set_login(conn, names.login_roles, False)
        audit.record(
            conn,
            "tenant.closed",
            {"closed_at": moment.isoformat(), "grace_days": GRACE.days},
            tenant.id,
            tenant.partner_id,
        )
        conn.commit()
        conn.autocommit = True
        return end_sessions(conn, [*names.login_roles, names.ro_role])


def reopen(outputs: StackOutputs, tenant_ref: str, as_of: dt.datetime | None = None) -> directory.Tenant:
    tenant = _find(outputs, tenant_ref)
    if tenant.status != "closed" or tenant.closed_at is None:
        raise InputError(f"tenant {tenant.slug} ({tenant.id}) is not closed")
    names = TenantNames(tenant.id)
    with connect_operator(outputs, outputs.cluster(tenant.cell), MIGRATOR) as conn:
        moment = _moment(conn, as_of)
        if moment - tenant.closed_at >= GRACE:
            raise InputError(
                f"tenant {tenant.slug} ({tenant.id}) was closed {tenant.closed_at:%Y-%m-%d %H:%M} UTC, more than "
                f"{GRACE.days} days before {moment:%Y-%m-%d %H:%M}: past its grace period, it cannot be reopened"
            )
        conn.execute("update platform.tenants set status = 'active', closed_at = null where id = %s", (tenant.id,))
        set_login(conn, names.login_roles, True)
        audit.record(conn, "tenant.reopened", {"closed_at": tenant.closed_at.isoformat()}, tenant.id, tenant.partner_id)
    return tenant


def purge_plan(outputs: StackOutputs, tenant_ref: str | None, as_of: dt.datetime | None) -> Done:
    """Which tenants a purge takes at `as_of`; a named tenant inside its grace period is refused."""
    done = Done()
    now = as_of or dt.datetime.now(dt.UTC)
    candidates = [_find(outputs, tenant_ref)] if tenant_ref else directory.tenants(outputs)
    for t in candidates:
        if t.status != "closed" or t.closed_at is None:
            if tenant_ref:
                done.refused.append(f"tenant {t.slug} ({t.id}) is {t.status}: close it first")
            continue
        due = t.closed_at + GRACE
        if now < due:
            if tenant_ref:
                left = due - now
                done.refused.append(
                    f"tenant {t.slug} ({t.id}) is inside its {GRACE.days}-day grace period "
                    f"(closed {t.closed_at:%Y-%m-%d}, purge from {due:%Y-%m-%d %H:%M} UTC, {left.days} day(s) left)"
                )
            continue
        names = TenantNames(t.id)
        done.planned.append(
            Planned(
                t,
                "purge",
                f"drop schema {names.schema} and roles {names.owner_role}, {names.app_role}, {names.ro_role}; "
                f"delete its secret and its rows of {', '.join(SHARED_TABLES)}, role_bindings, schema_ledger "
                f"and tenants (closed {t.closed_at:%Y-%m-%d})",
            )
        )
    return done


def _purge_sql(tenant: directory.Tenant, roles: list[str]) -> list[sql.Composed]:
    """The statements for one tenant; `roles`: those of its roles that still exist."""
    names = TenantNames(tenant.id)
    out: list[sql.Composed] = []
    present = [sql.Identifier(r) for r in roles]
    for role in present:
        out.append(sql.SQL("grant {} to current_user").format(role))
    out.append(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(names.schema)))
    if present:
        out.append(sql.SQL("drop owned by {}").format(sql.SQL(", ").join(present)))
    for role in present:
        out.append(sql.SQL("revoke {} from current_user").format(role))
        out.append(sql.SQL("drop role {}").format(role))
    for table in SHARED_TABLES:
        out.append(
            sql.SQL("delete from platform.{} where tenant_id = {}").format(
                sql.Identifier(table), sql.Literal(tenant.id)
            )
        )
    out.append(
        sql.SQL("delete from platform.schema_ledger where target = {}").format(sql.Literal(f"tenant:{tenant.id}"))
    )
    out.append(sql.SQL("delete from platform.role_bindings where tenant_id = {}").format(sql.Literal(tenant.id)))
    out.append(sql.SQL("delete from platform.tenants where id = {}").format(sql.Literal(tenant.id)))
    return out


def _delete_secret(outputs: StackOutputs, tenant_id: str) -> None:
    try:
        aws.client("secretsmanager", outputs.region).delete_secret(
            SecretId=secret_name(outputs.stack, "tenant", tenant_id), ForceDeleteWithoutRecovery=True
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise


def purge(outputs: StackOutputs, plan: Done, per_tx: int | None = None) -> list[str]:
    """Purge the planned tenants, cell by cell, in lock-bounded transactions. Returns their ids."""
    by_cell: dict[str, list[directory.Tenant]] = {}
    for p in plan.planned:
        by_cell.setdefault(p.tenant.cell, []).append(p.tenant)
    purged: list[str] = []
    with ThreadPoolExecutor(max_workers=SECRET_WORKERS) as pool:
        for cell, tenants in by_cell.items():
            with connect_operator(outputs, outputs.cluster(cell), MIGRATOR, autocommit=True) as conn:
                conn.execute("set lock_timeout = '5s'; set statement_timeout = '300s'")
                size = per_tx or _per_tx(conn)
                batches = [tenants[start : start + size] for start in range(0, len(tenants), size)]
                # A batch's secrets go before its transaction (a re-run finds the tenant rows and
                # goes on); the next batch's are deleted while this one's transaction runs.
                secrets = _delete_secrets(pool, outputs, batches[0]) if batches else []
                for i, chunk in enumerate(batches):
                    for done in secrets:
                        done.result()
                    secrets = _delete_secrets(pool, outputs, batches[i + 1]) if i + 1 < len(batches) else []
                    purged += _purge_batch(conn, chunk)
    return purged


def _delete_secrets(pool: ThreadPoolExecutor, outputs: StackOutputs, chunk: list[directory.Tenant]) -> list[Future]:
    return [pool.submit(_delete_secret, outputs, t.id) for t in chunk]


def _purge_batch(conn: psycopg.Connection, chunk: list[directory.Tenant]) -> list[str]:
    """One transaction: the schemas, roles and rows of those tenants of `chunk` still on record."""
    roles = [r for t in chunk for r in _roles(t)]
    live = conn.execute("select distinct usename::text from pg_stat_activity where usename = any(%s)", (roles,))
    end_sessions(conn, [r[0] for r in live.fetchall()])
    with conn.transaction():
        present = {
            r[0] for r in conn.execute("select id from platform.tenants where id = any(%s)", ([t.id for t in chunk],))
        }
        existing = {r[0] for r in conn.execute("select rolname::text from pg_roles where rolname = any(%s)", (roles,))}
        todo = [t for t in chunk if t.id in present]  # others were purged by an earlier run
        statements = [s for t in todo for s in _purge_sql(t, [r for r in _roles(t) if r in existing])]
        if statements:
            conn.execute(sql.SQL(";\n").join(statements))
        audit.record_many(
            conn,
            "tenant.purged",
            [({"closed_at": t.closed_at.isoformat() if t.closed_at else None}, t.id, t.partner_id) for t in todo],
        )
    return [t.id for t in todo]


def _roles(tenant: directory.Tenant) -> list[str]:
    names = TenantNames(tenant.id)
    return [names.owner_role, *names.login_roles, names.ro_role]


def _per_tx(conn: psycopg.Connection) -> int:
    locks = conn.execute(
        "select current_setting('max_locks_per_transaction')::int * current_setting('max_connections')::int"
    ).fetchone()[0]  # type: ignore[index]
    return max(1, min(50, locks // 4 // LOCKS_PER_PURGE))
