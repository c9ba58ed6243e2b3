"""Tenant A cannot reach tenant B, for every object kind and privilege, and shared tables
give each role only its own rows: enforced by the database, tested by logging in as the
tenants' real app roles."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors, sql

from tests.helpers import connect_as, onboard, unique

SHARED = ("worker_runs", "cost_entries", "audit_events")


@pytest.fixture(scope="module")
def world(local_stack, outputs):
    p1, p2 = unique("iso-partner"), unique("iso-other")
    tenants = onboard(
        outputs,
        {p1: "EU", p2: "UK"},
        [(p1, "alpha", "growth"), (p1, "bravo", "starter"), (p2, "charlie", "enterprise")],
        cell="cell-1",
    )
    a, b, c = tenants["alpha"], tenants["bravo"], tenants["charlie"]
    # Rows in every shared table for every tenant, written as the operator (the master).
    with local_stack.superuser(dbname="platform") as su:
        for t in (a, b, c):
            su.execute(
                "insert into platform.worker_runs (tenant_id, partner_id, worker) values (%s, %s, 'w')",
                (t.id, t.partner_id),
            )
            su.execute(
                "insert into platform.cost_entries (tenant_id, partner_id, amount) values (%s, %s, 1)",
                (t.id, t.partner_id),
            )
            su.execute(
                "insert into platform.audit_events (tenant_id, partner_id, actor, action) "
                "values (%s, %s, 'system', 'created')",
                (t.id, t.partner_id),
            )
            su.execute(
                sql.SQL("insert into {}.leads (name) values ('secret lead')").format(sql.Identifier(f"t_{t.id}"))
            )
        # A function and a type in B's schema, created as B's owner.
        su.execute(sql.SQL("set role {}").format(sql.Identifier(f"t_{b.id}_owner")))
        su.execute(
            sql.SQL(
                "create function {}.count_leads() returns bigint language sql as 'select count(*) from {}.leads'"
            ).format(sql.Identifier(f"t_{b.id}"), sql.Identifier(f"t_{b.id}"))
        )
        su.execute(sql.SQL("create type {}.mood as enum ('ok')").format(sql.Identifier(f"t_{b.id}")))
        su.execute("reset role")
        su.commit()
    return {"a": a, "b": b, "c": c, "outputs": outputs}


def attempt(conn: psycopg.Connection, statement, params=None):
    """Run one attempt inside a savepoint: returns rows, or the exception class."""
    try:
        with conn.transaction():
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []
    except psycopg.Error as exc:
        return type(exc)


@pytest.fixture
def as_a(world):
    with connect_as(world["outputs"], "tenant", world["a"].id, "cell-1") as conn:
        yield conn


def b_ident(world, *parts):
    return sql.Identifier(f"t_{world['b'].id}", *parts)


@pytest.mark.parametrize(
    "statement",
    [
        "select * from {}.leads",
        "insert into {}.leads (name) values ('x')",
        "update {}.leads set name = 'x'",
        "delete from {}.leads",
        "truncate {}.leads",
        "select nextval(pg_get_serial_sequence('{}.leads', 'id'))",
        "select {}.count_leads()",
        "select 'ok'::{}.mood",
        "create table {}.planted (id int)",
    ],
)
def test_tenant_cannot_touch_another_tenants_objects(world, as_a, statement):
    schema = sql.Identifier(f"t_{world['b'].id}")
    outcome = attempt(as_a, sql.SQL(statement).format(schema))
    assert outcome is errors.InsufficientPrivilege


@pytest.mark.parametrize("suffix", ["owner", "app", "ro"])
def test_tenant_cannot_become_another_tenants_role(world, as_a, suffix):
    role = sql.Identifier(f"t_{world['b'].id}_{suffix}")
    assert attempt(as_a, sql.SQL("set role {}").format(role)) is errors.InsufficientPrivilege


@pytest.mark.parametrize("role", ["askasia_operator", "askasia_platform_owner", "askasia_partner_app"])
def test_tenant_cannot_become_platform_roles(as_a, role):
    assert attempt(as_a, sql.SQL("set role {}").format(sql.Identifier(role))) is errors.InsufficientPrivilege


def test_tenant_does_its_own_work(world, as_a):
    a = world["a"]
    assert attempt(as_a, "insert into leads (name) values ('mine') returning id") != errors.InsufficientPrivilege
    assert attempt(as_a, "select count(*) from leads")[0][0] >= 1
    assert attempt(
        as_a,
        "insert into platform.worker_runs (tenant_id, partner_id, worker) values (%s, %s, 'mine') returning tenant_id",
        (a.id, a.partner_id),
    ) == [(a.id,)]
    assert attempt(as_a, "select id, slug from platform.tenants") == [(a.id, "alpha")]


@pytest.mark.parametrize("table", SHARED)
def test_shared_tables_show_only_own_rows(world, as_a, table):
    rows = attempt(as_a, sql.SQL("select distinct tenant_id from platform.{}").format(sql.Identifier(table)))
    assert rows == [(world["a"].id,)]


@pytest.mark.parametrize("table", SHARED)
def test_shared_tables_refuse_rows_claiming_another_tenant(world, as_a, table):
    b = world["b"]
    columns = {"worker_runs": "worker", "cost_entries": "amount", "audit_events": "actor"}[table]
    value = 1 if table == "cost_entries" else "x"
    extra = ", action" if table == "audit_events" else ""
    extra_value = ", 'x'" if table == "audit_events" else ""
    statement = sql.SQL("insert into platform.{} (tenant_id, partner_id, {}{}) values (%s, %s, %s{})").format(
        sql.Identifier(table), sql.Identifier(columns), sql.SQL(extra), sql.SQL(extra_value)
    )
    assert attempt(as_a, statement, (b.id, b.partner_id, value)) is errors.InsufficientPrivilege


@pytest.mark.parametrize("setting", ["app.tenant_id", "app.current_tenant", "request.jwt.claim.tenant_id"])
def test_client_settable_settings_do_not_widen_anything(world, as_a, setting):
    b = world["b"]
    as_a.execute(sql.SQL("set {} = {}").format(sql.Identifier(*setting.split(".")), sql.Literal(b.id)))
    for table in (*SHARED, "tenants"):
        column = "id" if table == "tenants" else "tenant_id"
        rows = attempt(
            as_a, sql.SQL("select distinct {} from platform.{}").format(sql.Identifier(column), sql.Identifier(table))
        )
        assert rows == [(world["a"].id,)], table


def test_group_role_sees_nothing(world, as_a):
    as_a.execute("set role askasia_tenant_app")
    assert attempt(as_a, "select * from platform.worker_runs") == []
    assert attempt(as_a, "select * from platform.tenants") == []


def test_partitions_cannot_be_reached_directly(world, as_a, local_stack):
    with local_stack.superuser(dbname="platform") as su:
        partitions = [
            r[0]
            for r in su.execute(
                "select inhrelid::regclass::text from pg_inherits where inhparent = 'platform.audit_events'::regclass"
            )
        ]
    assert partitions
    for part in partitions:
        assert attempt(as_a, f"select * from {part}") is errors.InsufficientPrivilege


def test_every_platform_table_and_partition_has_forced_rls(local_stack, world):
    with local_stack.superuser(dbname="platform") as su:
        rows = su.execute(
            "select c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "(select count(*) from pg_policy p where p.polrelid = c.oid) "
            "from pg_class c where c.relnamespace = 'platform'::regnamespace and c.relkind in ('r', 'p')"
        ).fetchall()
    assert len(rows) >= 8
    assert [r for r in rows if not (r[1] and r[2] and r[3] > 0)] == []


def test_partner_sees_only_its_tenants_and_no_tenant_schema(world):
    outputs, a, c = world["outputs"], world["a"], world["c"]
    with connect_as(outputs, "partner", a.partner_id, "cell-1") as conn:
        seen = {r[0] for r in attempt(conn, "select tenant_id from platform.worker_runs")}
        assert seen and world["c"].id not in seen and a.id in seen
        assert {r[0] for r in attempt(conn, "select id from platform.partners")} == {a.partner_id}
        assert (
            attempt(conn, sql.SQL("select * from {}.leads").format(sql.Identifier(f"t_{a.id}")))
            is errors.InsufficientPrivilege
        )
        assert (
            attempt(
                conn,
                "insert into platform.worker_runs (tenant_id, partner_id, worker) values (%s, %s, 'x')",
                (a.id, a.partner_id),
            )
            is errors.InsufficientPrivilege
        )
    with connect_as(outputs, "partner", c.partner_id, "cell-1") as conn:
        assert {r[0] for r in attempt(conn, "select id from platform.tenants")} == {c.id}


def test_public_schema_and_database_are_closed_to_public(world, as_a, local_stack):
    assert attempt(as_a, "create table public.planted (id int)") is errors.InsufficientPrivilege
    with local_stack.superuser(dbname="platform") as su:
        public = su.execute(
            "select a.privilege_type from pg_database d, aclexplode(d.datacl) a "
            "where d.datname = 'platform' and a.grantee = 0"
        ).fetchall()
    assert public == []  # grantee 0 is PUBLIC: no CONNECT, no TEMP


def test_other_sessions_query_text_is_hidden(world, as_a):
    rows = attempt(as_a, "select query from pg_stat_activity where usename <> current_user and query <> ''")
    assert rows and all(r[0] == "<insufficient privilege>" for r in rows)


@pytest.mark.parametrize("dbname", ["postgres", "template1"])
def test_tenant_cannot_connect_to_other_databases(world, dbname):
    from provisioner.connect import connect
    from provisioner.errors import ProvisionError
    from tests.helpers import app_credentials

    outputs = world["outputs"]
    creds = app_credentials(outputs, "tenant", world["a"].id)
    with pytest.raises(ProvisionError, match="permission denied for database"):
        connect(outputs.cluster("cell-1"), creds, dbname=dbname)
