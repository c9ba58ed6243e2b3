"""Audit partitions that never run out: the DEFAULT partition catches a row whose month has no
partition, the maintenance function (the one pg_cron runs, as the maintenance role) creates
months ahead of a given moment and drains the DEFAULT partition into them, with no apply and no
waiting: `as_of` stands in for the clock. Every case runs in a superuser transaction that is
rolled back, so the session stack keeps its partitions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import psycopg
import pytest

from provisioner.targets import MAINTENANCE_JOBS, ROLES
from tests.helpers import converge, onboard, unique

MAINTENANCE = ROLES["maintenance"]


def month_start(moment: dt.datetime, offset: int) -> dt.datetime:
    index = moment.year * 12 + moment.month - 1 + offset
    return dt.datetime(index // 12, index % 12 + 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def tenant(local_stack, outputs):
    converge(outputs)
    partner = unique("audit-p")
    slug = unique("audit")
    return onboard(outputs, {partner: "EU"}, [(partner, slug, "growth")], cell="cell-1")[slug]


@pytest.fixture
def su(local_stack) -> Iterator[psycopg.Connection]:
    conn = local_stack.superuser()
    try:
        yield conn
    finally:
        conn.rollback()
        conn.close()


def partition_of(su: psycopg.Connection, actor: str) -> str:
    return su.execute(
        "select tableoid::regclass::text from platform.audit_events where actor = %s", (actor,)
    ).fetchone()[0]


def insert_at(su: psycopg.Connection, tenant, actor: str, at: dt.datetime) -> None:
    """An audit row at another moment (the test's clock). Only owner members may write a time other
    than now() (R__shared_rows): the superuser stands in for the clock having moved on."""
    su.execute(
        "insert into platform.audit_events (tenant_id, partner_id, occurred_at, actor, action) "
        "values (%s, %s, %s, %s, 'test')",
        (tenant.id, tenant.partner_id, at, actor),
    )


def test_the_default_partition_and_the_schedule_exist(su, tenant):
    assert su.execute("select to_regclass('platform.audit_events_default') is not null").fetchone()[0]
    jobs = su.execute(
        "select jobname, username, command, schedule, database, active from cron.job where jobname = any(%s) "
        "order by jobname",
        ([job["name"] for job in MAINTENANCE_JOBS],),
    ).fetchall()
    assert jobs == sorted(
        (job["name"], MAINTENANCE, job["command"], job["schedule"], "platform", True) for job in MAINTENANCE_JOBS
    )


def test_the_maintenance_role_holds_no_more_than_its_job(su, tenant):
    role = su.execute(
        "select rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolpassword is null, "
        "rolconnlimit from pg_authid where rolname = %s",
        (MAINTENANCE,),
    ).fetchone()
    assert role == (False, False, False, False, False, True, 2)  # no password: nobody logs in as it
    assert (
        su.execute("select count(*) from pg_auth_members where member = %s::regrole", (MAINTENANCE,)).fetchone()[0] == 0
    )
    # pg_cron's functions were lent for scheduling only
    assert su.execute("select has_schema_privilege(%s, 'cron', 'usage')", (MAINTENANCE,)).fetchone()[0] is False
    su.execute(f"set local role {MAINTENANCE}")
    for statement in (
        "select count(*) from platform.tenants",
        "select count(*) from platform.audit_events",
        "select count(*) from platform.audit_events_default",
        "insert into platform.audit_events (tenant_id, partner_id, actor, action) values ('x', 'y', 'z', 'w')",
        "select platform.audit_partition_secure('platform.audit_events_default')",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), su.transaction():
            su.execute(statement)  # in a savepoint: the refusal does not end the outer transaction


def test_a_month_reached_with_no_apply_still_accepts_inserts(su, tenant):
    now = dt.datetime.now(dt.UTC)
    far = month_start(now, 9) + dt.timedelta(days=14, hours=3)  # past every partition apply made
    far_name = f"platform.audit_events_{far:%Y_%m}"
    assert su.execute("select to_regclass(%s)", (far_name,)).fetchone()[0] is None

    insert_at(su, tenant, "caught-by-default", far)
    assert partition_of(su, "caught-by-default") == "platform.audit_events_default"

    # That month arrives: the schedule runs as the maintenance role, at that moment.
    su.execute(f"set local role {MAINTENANCE}")
    created = dict(su.execute("select created, rows_moved from platform.audit_maintain(%s)", (far,)).fetchall())
    su.execute("reset role")
    expected = {f"audit_events_{month_start(far, k):%Y_%m}" for k in range(-1, 4)}
    assert expected <= set(created)
    assert created[f"audit_events_{far:%Y_%m}"] == 1  # the row moved out of DEFAULT
    assert partition_of(su, "caught-by-default") == far_name
    assert su.execute("select count(*) from platform.audit_events_default").fetchone()[0] == 0

    # and the months after it take inserts into their own partitions, each under RLS
    later = month_start(far, 3) + dt.timedelta(days=27)
    insert_at(su, tenant, "in-its-month", later)
    assert partition_of(su, "in-its-month") == f"platform.audit_events_{later:%Y_%m}"
    secured = su.execute(
        "select c.relrowsecurity and c.relforcerowsecurity, "
        "not exists (select from aclexplode(coalesce(c.relacl, '{}')) a where a.grantee <> c.relowner), "
        "(select array_agg(polname::text order by polname) from pg_policy where polrelid = c.oid) "
        "from pg_class c where c.oid = %s::regclass",
        (far_name,),
    ).fetchone()
    assert secured == (
        True,
        True,
        ["operator_all", "owner_maintenance", "partner_rows", "tenant_read_rows", "tenant_rows"],
    )

    # a second run at the same moment has nothing to do
    assert su.execute("select count(*) from platform.audit_maintain(%s)", (far,)).fetchone()[0] == 0


def test_a_partition_the_schedule_created_is_not_open_to_tenant_roles_directly(su, tenant):
    far = month_start(dt.datetime.now(dt.UTC), 8) + dt.timedelta(days=2)
    su.execute("select platform.audit_maintain(%s)", (far,))
    for role in (ROLES["tenant_app"], ROLES["tenant_read"], ROLES["partner_app"], MAINTENANCE):
        with pytest.raises(psycopg.errors.InsufficientPrivilege), su.transaction():
            su.execute(f"set local role {role}")
            su.execute(f"select count(*) from platform.audit_events_{far:%Y_%m}")
