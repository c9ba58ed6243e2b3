"""Shared rows hold only what the platform would write: attacks run as a tenant's real app
credentials on the local stack, each refused by the database; the platform's own writes (the
master, the operator) still go in, and audit events are append-only for every runtime role."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest
from psycopg import errors, sql

from contract.outputs import PROXY_USER
from provisioner.connect import connect_master
from tests.helpers import connect_as, onboard, unique

AUDIT_REWRITES = ["update platform.audit_events set action = 'x'", "delete from platform.audit_events"]
REFUSED = (errors.InsufficientPrivilege, errors.CheckViolation, errors.ForeignKeyViolation)


@pytest.fixture(scope="module")
def world(local_stack, outputs):
    p1, p2 = unique("int-partner"), unique("int-other")
    tenants = onboard(outputs, {p1: "EU", p2: "UK"}, [(p1, "alpha", "growth"), (p2, "bravo", "starter")], cell="cell-1")
    a, b = tenants["alpha"], tenants["bravo"]
    runs = {}
    with connect_master(outputs.cluster("cell-1"), outputs.region) as master:
        for t in (a, b):
            runs[t.id] = master.execute(
                "insert into platform.worker_runs (tenant_id, partner_id, worker) values (%s, %s, 'w') returning id",
                (t.id, t.partner_id),
            ).fetchone()[0]
        master.commit()
    return {"a": a, "b": b, "runs": runs, "outputs": outputs}


@pytest.fixture
def as_a(world):
    with connect_as(world["outputs"], "tenant", world["a"].id, "cell-1") as conn:
        yield conn


def attempt(conn: psycopg.Connection, statement, params=None):
    """One attempt in a savepoint: the rows it returned, or the exception class."""
    try:
        with conn.transaction():
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else cur.rowcount
    except psycopg.Error as exc:
        return type(exc)


def cost(world, **values):
    a = world["a"]
    row = {"tenant_id": a.id, "partner_id": a.partner_id, "amount": 1, "currency": "EUR", **values}
    columns = ", ".join(row)
    marks = ", ".join(f"%({k})s" for k in row)
    return f"insert into platform.cost_entries ({columns}) values ({marks}) returning id", row


def audit(world, **values):
    a = world["a"]
    row = {"tenant_id": a.id, "partner_id": a.partner_id, "actor": "x@example.com", "action": "login", **values}
    columns = ", ".join(row)
    marks = ", ".join(f"%({k})s" for k in row)
    return f"insert into platform.audit_events ({columns}) values ({marks}) returning id", row


def months_from_now(days: int) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(days=days)


@pytest.mark.parametrize(
    ("values", "refusal"),
    [
        ({"amount": "-99999999.999999"}, errors.CheckViolation),
        ({"currency": "XXX"}, errors.CheckViolation),
        ({"currency": "usd"}, errors.CheckViolation),
        ({"occurred_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC)}, errors.InsufficientPrivilege),
        ({"occurred_at": months_from_now(80)}, errors.InsufficientPrivilege),
    ],
    ids=["negative", "unknown-currency", "lower-case-currency", "dated-2020", "future"],
)
def test_cost_entries_refuse_what_the_platform_never_writes(world, as_a, values, refusal):
    assert attempt(as_a, *cost(world, **values)) is refusal


def test_cost_entry_cannot_point_at_another_tenants_run(world, as_a):
    b_run = world["runs"][world["b"].id]
    assert attempt(as_a, *cost(world, worker_run_id=b_run)) is errors.ForeignKeyViolation


def test_cost_entry_for_its_own_run_goes_in(world, as_a):
    own_run = world["runs"][world["a"].id]
    assert len(attempt(as_a, *cost(world, worker_run_id=own_run, amount="12.5", currency="USD"))) == 1


@pytest.mark.parametrize(
    "when",
    [dt.datetime(2020, 1, 1, tzinfo=dt.UTC), months_from_now(-32), months_from_now(80), months_from_now(-1)],
    ids=["2020", "last-month", "80-days-ahead", "yesterday"],
)
def test_audit_events_are_dated_by_the_database(world, as_a, when):
    outcome = attempt(as_a, *audit(world, occurred_at=when))
    assert outcome in REFUSED, outcome  # 2020 has no partition at all (23514); the others 42501


def test_audit_event_with_the_databases_time_goes_in(world, as_a):
    statement, row = audit(world)
    assert attempt(as_a, statement.replace("returning id", "returning occurred_at = now()"), row) == [(True,)]


@pytest.mark.parametrize("statement", AUDIT_REWRITES)
def test_tenant_cannot_rewrite_or_delete_audit_events(as_a, statement):
    assert attempt(as_a, statement) is errors.InsufficientPrivilege


@pytest.mark.parametrize(
    "statement",
    [
        "update platform.worker_runs set started_at = '2020-01-01' where tenant_id = %(a)s",
        "update platform.worker_runs set worker = 'other' where tenant_id = %(a)s",
        "update platform.worker_runs set tenant_id = %(b)s where tenant_id = %(a)s",
        "insert into platform.worker_runs (tenant_id, partner_id, worker, started_at) "
        "values (%(a)s, %(ap)s, 'w', '2020-01-01')",
    ],
    ids=["started_at", "worker", "tenant_id", "backdated-insert"],
)
def test_worker_run_timestamps_and_owners_are_not_rewritable(world, as_a, statement):
    a, b = world["a"], world["b"]
    params = {"a": a.id, "b": b.id, "ap": a.partner_id}
    assert attempt(as_a, statement, params) is errors.InsufficientPrivilege


def test_worker_run_status_and_finish_are_what_a_tenant_updates(world, as_a):
    changed = attempt(
        as_a,
        "update platform.worker_runs set status = 'done', finished_at = now() where tenant_id = %s",
        (world["a"].id,),
    )
    assert changed >= 1
    assert (
        attempt(
            as_a,
            "update platform.worker_runs set finished_at = started_at - interval '1 day' where tenant_id = %s",
            (world["a"].id,),
        )
        is errors.CheckViolation
    )


def test_on_conflict_tells_nothing_about_another_tenants_ids(world, as_a):
    """A's row carrying B's run id is A's own row: no conflict, so no answer about B's ids."""
    a, b_run = world["a"], world["runs"][world["b"].id]
    with as_a.transaction(force_rollback=True):  # kept by no test after this one
        rows = attempt(
            as_a,
            "insert into platform.worker_runs (id, tenant_id, partner_id, worker) values (%s, %s, %s, 'w') "
            "on conflict do nothing returning id",
            (b_run, a.id, a.partner_id),
        )
    assert rows == [(b_run,)]


@pytest.mark.parametrize("statement", AUDIT_REWRITES)
def test_operator_cannot_rewrite_or_delete_audit_events(local_stack, world, statement):
    with local_stack.superuser(dbname="platform") as su:
        su.execute("set role askasia_operator")
        assert attempt(su, statement) is errors.InsufficientPrivilege


def test_platform_writes_still_work_and_the_owner_keeps_retention(world):
    """The master (an owner member) may date a row (restores, retention's as-of tests) and
    delete audit rows (retention); it updates one only in who acted (erasure), nobody else at all."""
    a, outputs = world["a"], world["outputs"]
    month_ago = months_from_now(-20)
    with connect_master(outputs.cluster("cell-1"), outputs.region) as master:
        event = attempt(master, *audit(world, occurred_at=month_ago, action="backfilled"))
        assert len(event) == 1
        assert len(attempt(master, *cost(world, occurred_at=month_ago))) == 1
        assert attempt(master, "update platform.audit_events set action = 'x' where id = %s", event[0]) is (
            errors.InsufficientPrivilege
        )
        assert attempt(master, "update platform.audit_events set actor = 'subject-1' where id = %s", event[0]) == 1
        assert attempt(master, "delete from platform.audit_events where id = %s", event[0]) == 1
        master.execute("set role askasia_operator")
        assert len(attempt(master, *audit(world, action="operator"))) == 1
        assert len(attempt(master, *cost(world, worker_run_id=world["runs"][a.id]))) == 1
        assert attempt(master, *audit(world, occurred_at=month_ago)) is errors.InsufficientPrivilege
        master.rollback()


def test_the_proxys_database_user_is_the_operator_with_no_password(local_stack, world):
    """The one user the RDS Proxy logs in as (end-to-end IAM): no password, no attribute, and
    the operator's rights only (so it, too, cannot backdate or rewrite audit events)."""
    with local_stack.superuser(dbname="platform") as su:
        role = su.execute(
            "select rolcanlogin, rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolpassword is null "
            "from pg_authid where rolname = %s",
            (PROXY_USER,),
        ).fetchone()
        member_of = {
            r[0]
            for r in su.execute(
                "select m.roleid::regrole::text from pg_auth_members m where m.member = %s::regrole", (PROXY_USER,)
            )
        }
        su.execute(sql.SQL("set role {}").format(sql.Identifier(PROXY_USER)))
        assert attempt(su, *audit(world, occurred_at=months_from_now(-20))) is errors.InsufficientPrivilege
        assert attempt(su, "delete from platform.audit_events") is errors.InsufficientPrivilege
    assert role == (True, False, False, False, False, True)
    assert member_of == {"askasia_operator"}


def test_a_cell_holding_rows_the_platform_never_wrote_converges(local_stack, world):
    """A cell from before V030 where a tenant already wrote a negative amount in 'XXX' against
    a run that is not its own: apply converges it, the constraints those rows break stay NOT VALID
    (enforced on new rows) and verify names them; the others are validated."""
    from provisioner.verify.catalog import catalog_checks, run_checks
    from tests.helpers import converge

    a, stranger = world["a"], uuid.uuid4()  # a run A does not have (A may hold a row with B's run id)
    added = ["cost_entries_worker_run_fkey", "cost_entries_amount_check", "cost_entries_currency_check"]
    with local_stack.superuser(autocommit=True) as su:
        for name in added:
            su.execute(sql.SQL("alter table platform.cost_entries drop constraint {}").format(sql.Identifier(name)))
        su.execute("alter table platform.worker_runs drop constraint worker_runs_finished_check")
        su.execute("drop index platform.cost_entries_worker_run_idx")
        su.execute(
            "insert into platform.cost_entries (tenant_id, partner_id, worker_run_id, amount, currency) "
            "values (%s, %s, %s, -99999999.999999, 'XXX')",
            (a.id, a.partner_id, stranger),
        )
        su.execute(
            "delete from platform.schema_ledger where target = 'platform' and step = 'V030__shared_row_integrity'"
        )
    try:
        converge(world["outputs"])
        with local_stack.superuser() as su:
            validated = dict(
                su.execute(
                    "select conname, convalidated from pg_constraint where conname = any(%s)",
                    (added + ["worker_runs_finished_check"],),
                ).fetchall()
            )
            (check,) = [c for c in catalog_checks() if c.name == "shared_row_integrity"]
            found = {(f.level, f.object) for f in run_checks(su, "askasia_master", (check,))}
        assert validated == {**dict.fromkeys(added, False), "worker_runs_finished_check": True}
        assert found == {("warn", f"constraint {name} on platform.cost_entries") for name in added}
        with connect_as(world["outputs"], "tenant", a.id, "cell-1") as conn:
            assert attempt(conn, *cost(world, amount="-1")) is errors.CheckViolation
    finally:
        with local_stack.superuser(autocommit=True) as su:
            su.execute("delete from platform.cost_entries where currency = 'XXX'")
            for name in added:
                su.execute(
                    sql.SQL("alter table platform.cost_entries validate constraint {}").format(sql.Identifier(name))
                )
