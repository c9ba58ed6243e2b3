"""No statistics oracle: as a tenant's and a partner's real credentials, EXPLAIN on the shared
tables estimates the same for another tenant's (or partner's, or audit actor's) value as for a
value nobody has, after ANALYZE of a cell where that other tenant holds thousands of rows. With
statistics collected (the state before this change, recreated on purpose) the same EXPLAIN shows
the other tenant's count, and both the catalog check and the probe report it; a cell that
already holds statistics is cleared by apply."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from psycopg import sql

from provisioner.connect import connect_master
from provisioner.names import new_id
from provisioner.verify.catalog import catalog_checks, run_checks
from provisioner.verify.probes.statistics import plan_rows
from tests.helpers import connect_as, converge, onboard, unique

MASTER = "askasia_master"
B_ROWS = 3000
B_ACTOR = "only-b@example.com"
TABLES = ("worker_runs", "cost_entries", "audit_events")


@pytest.fixture(scope="module")
def world(local_stack, outputs):
    p1, p2 = unique("stat-p"), unique("stat-q")
    tenants = onboard(
        outputs,
        {p1: "EU", p2: "UK"},
        [(p1, "alpha", "growth"), (p1, "bravo", "growth"), (p2, "charlie", "starter")],
        cell="cell-1",
    )
    a, b, c = tenants["alpha"], tenants["bravo"], tenants["charlie"]
    with connect_master(outputs.cluster("cell-1"), outputs.region) as master:
        for t, n, actor in ((a, 3, "a@example.com"), (b, B_ROWS, B_ACTOR), (c, 3, "c@example.com")):
            master.execute(
                "insert into platform.worker_runs (tenant_id, partner_id, worker) "
                "select %s, %s, 'w' from generate_series(1, %s)",
                (t.id, t.partner_id, n),
            )
            master.execute(
                "insert into platform.cost_entries (tenant_id, partner_id, amount) "
                "select %s, %s, 1 from generate_series(1, %s)",
                (t.id, t.partner_id, n),
            )
            master.execute(
                "insert into platform.audit_events (tenant_id, partner_id, actor, action) "
                "select %s, %s, %s, 'login' from generate_series(1, %s)",
                (t.id, t.partner_id, actor, n),
            )
        master.commit()
    analyze(local_stack)
    return {"a": a, "b": b, "c": c, "outputs": outputs}


def analyze(local_stack) -> None:
    with local_stack.superuser(autocommit=True) as su:
        for table in TABLES:
            su.execute(sql.SQL("analyze platform.{}").format(sql.Identifier(table)))


def estimate(conn, table: str, column: str, value: str) -> float:
    query = sql.SQL("explain (format json) select * from platform.{} where {} = %s").format(
        sql.Identifier(table), sql.Identifier(column)
    )
    rows = plan_rows(conn.execute(query, (value,)).fetchone()[0])
    conn.rollback()
    assert rows is not None
    return rows


def leaks(conn, table: str, column: str, theirs: str) -> tuple[float, float]:
    return estimate(conn, table, column, theirs), estimate(conn, table, column, new_id())


@contextlib.contextmanager
def statistics_collected(local_stack, table: str, column: str) -> Iterator[None]:
    """The state before this change, on one column: a default target and ANALYZE run."""
    target = sql.SQL("alter table platform.{} alter column {} set statistics {}")
    with local_stack.superuser(autocommit=True) as su:
        try:
            su.execute(target.format(sql.Identifier(table), sql.Identifier(column), sql.Literal(-1)))
            su.execute(sql.SQL("analyze platform.{}").format(sql.Identifier(table)))
            yield
        finally:
            su.execute(target.format(sql.Identifier(table), sql.Identifier(column), sql.Literal(0)))
            su.execute(
                "delete from pg_statistic where starelid = %s::regclass and staattnum = "
                "(select attnum from pg_attribute where attrelid = %s::regclass and attname = %s)",
                (f"platform.{table}", f"platform.{table}", column),
            )


@pytest.mark.parametrize("table", TABLES)
def test_a_tenants_explain_tells_nothing_of_another_tenants_rows(world, table):
    with connect_as(world["outputs"], "tenant", world["a"].id, "cell-1") as conn:
        known, unknown = leaks(conn, table, "tenant_id", world["b"].id)
    assert known == unknown


def test_a_tenants_explain_tells_nothing_of_who_occurs_in_audit_rows(world):
    with connect_as(world["outputs"], "tenant", world["a"].id, "cell-1") as conn:
        known, unknown = (
            estimate(conn, "audit_events", "actor", B_ACTOR),
            estimate(conn, "audit_events", "actor", "nobody@example.com"),
        )
    assert known == unknown


@pytest.mark.parametrize("table", TABLES)
def test_a_partners_explain_tells_nothing_of_another_partners_rows(world, table):
    with connect_as(world["outputs"], "partner", world["c"].partner_id, "cell-1") as conn:
        known, unknown = leaks(conn, table, "partner_id", world["b"].partner_id)
    assert known == unknown


def test_with_statistics_collected_the_estimate_shows_the_count_and_both_checks_report_it(local_stack, outputs, world):
    from provisioner.verify.runner import VerifyOptions, verify_cell

    a, b = world["a"], world["b"]
    with statistics_collected(local_stack, "worker_runs", "tenant_id"):
        with connect_as(outputs, "tenant", a.id, "cell-1") as conn:
            known, unknown = leaks(conn, "worker_runs", "tenant_id", b.id)
        assert known >= B_ROWS / 2 and known != unknown  # the oracle: B's count, through RLS
        with local_stack.superuser() as su:
            (check,) = [c for c in catalog_checks() if c.name == "statistics_target"]
            found = [f.object for f in run_checks(su, MASTER, (check,))]
        assert found == ["column platform.worker_runs.tenant_id"]
        report = verify_cell(
            outputs,
            outputs.cluster("cell-1"),
            VerifyOptions(probes=10, catalog=False, ledger=False, tenants=frozenset({a.id, b.id})),
        )
        probe = [f for f in report.findings if f.check == "probe_statistics"]
        assert any(f.object == f"t_{a.id}_app -> platform.worker_runs" for f in probe), report.findings
    with connect_as(outputs, "tenant", a.id, "cell-1") as conn:
        assert leaks(conn, "worker_runs", "tenant_id", b.id)[0] == leaks(conn, "worker_runs", "tenant_id", b.id)[1]


def test_a_cell_that_holds_statistics_is_cleared_by_apply(local_stack, outputs, world):
    """An existing cell: every column at the default target and analyzed, and the steps that
    came with this change not yet recorded. Apply converges it."""
    with local_stack.superuser(autocommit=True) as su:
        statements = su.execute(
            "select format('alter table only %s alter column %I set statistics -1', a.attrelid::regclass, a.attname) "
            "from pg_attribute a join pg_class c on c.oid = a.attrelid "
            "where c.relnamespace = 'platform'::regnamespace and c.relkind in ('r', 'p') and a.attnum > 0 "
            "and not a.attisdropped"
        ).fetchall()
        for (statement,) in statements:
            su.execute(statement)
        for table in (*TABLES, "tenants", "partners", "role_bindings"):
            su.execute(sql.SQL("analyze platform.{}").format(sql.Identifier(table)))
        before = collected(su)
        policies_before = policies(su)
        su.execute(
            "delete from platform.schema_ledger where target = 'platform' "
            "and step in ('V031__no_statistics', 'R__statistics')"
        )
    assert before > 10
    with connect_as(outputs, "tenant", world["a"].id, "cell-1") as conn:
        known, unknown = leaks(conn, "worker_runs", "tenant_id", world["b"].id)
    assert known != unknown  # the oracle is there before apply
    converge(outputs)
    with local_stack.superuser() as su:
        assert collected(su) == 0
        assert policies(su) == policies_before  # dropped and re-created as they were
        (check,) = [c for c in catalog_checks() if c.name == "statistics_target"]
        assert run_checks(su, MASTER, (check,)) == []
    with connect_as(outputs, "tenant", world["a"].id, "cell-1") as conn:
        known, unknown = leaks(conn, "worker_runs", "tenant_id", world["b"].id)
    assert known == unknown


def collected(su) -> int:
    """Column statistics on the platform's tables and partitions, but the partition key's."""
    return su.execute(
        "select count(*) from pg_statistic s join pg_class c on c.oid = s.starelid "
        "join pg_attribute a on a.attrelid = s.starelid and a.attnum = s.staattnum "
        "where c.relnamespace = 'platform'::regnamespace and c.relname <> 'schema_ledger' "
        "and not (c.relname ~ '^audit_events' and a.attname = 'occurred_at')"
    ).fetchone()[0]


def policies(su) -> list[tuple]:
    return su.execute(
        "select tablename, policyname, permissive, roles, cmd, qual, with_check from pg_policies "
        "where schemaname = 'platform' order by 1, 2"
    ).fetchall()
