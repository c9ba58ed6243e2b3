"""Audit retention by plan, with a clock (`--as-of`): rows just inside each plan's period stay,
rows just outside go; whole months past the longest period are dropped; nothing else of any
tenant is touched (row for row); a plan change counts on the next run; destructive runs need
--yes; each removal is written to the audit trail. On a stack of its own: the runs act on
every row of the cell."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from collections.abc import Iterator

import psycopg
import pytest

from provisioner import directory
from provisioner.lifecycle.retention import run_retention
from provisioner.targets import ROLES
from tests.helpers import RunningStack, onboard, provision, started_stack

T = dt.datetime.now(dt.UTC).replace(microsecond=0)  # the run's clock
HOUR = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with started_stack(tmp_path_factory.mktemp("retention"), cells=1) as running:
        yield running


@pytest.fixture(scope="module")
def tenants(stack) -> dict[str, directory.Tenant]:
    onboarded = onboard(
        stack.outputs,
        {"ret-agency": "EU", "ret-other": "UK"},
        [
            ("ret-agency", "ret-starter", "starter"),
            ("ret-agency", "ret-growth", "growth"),
            ("ret-other", "ret-enterprise", "enterprise"),
            ("ret-other", "ret-bystander", "growth"),
        ],
    )
    # The tests count rows at their own clock; the jobs the apply scheduled (the same functions,
    # every ten minutes at now()) would remove expired rows between a test's snapshot and its check.
    with stack.superuser() as su:
        assert su.execute("update cron.job set active = false").rowcount == 3
    return onboarded


# (tenant slug, age, expected to go at T): just inside and just outside each plan's period
ROWS = [
    ("ret-starter", 90 * DAY - HOUR, False),
    ("ret-starter", 90 * DAY + HOUR, True),
    ("ret-growth", 90 * DAY - HOUR, False),
    ("ret-growth", 90 * DAY + HOUR, True),
    ("ret-growth", 200 * DAY, True),
    ("ret-enterprise", 90 * DAY + HOUR, False),
    ("ret-enterprise", 400 * DAY - HOUR, False),
    ("ret-enterprise", 400 * DAY + HOUR, True),
    ("ret-enterprise", 520 * DAY, True),  # a month wholly past the longest period: dropped whole
    ("ret-starter", 520 * DAY, True),
    ("ret-bystander", 10 * DAY, False),
    ("ret-bystander", 89 * DAY, False),
]


def snapshot(su: psycopg.Connection) -> dict[str, tuple]:
    rows = su.execute(
        "select actor, tenant_id, partner_id, occurred_at, action, detail::text from platform.audit_events "
        "where action = 'test'"
    ).fetchall()
    return {r[0]: r[1:] for r in rows}


@pytest.fixture
def seeded(stack, tenants) -> dict[str, bool]:
    """The rows, written the way they would arrive (old months land in DEFAULT), then drained;
    afresh for each test, which may have removed some (and their months)."""
    expect = {}
    with stack.superuser() as su:
        su.execute("delete from platform.audit_events where action = 'test'")
        for i, (slug, age, goes) in enumerate(ROWS):
            t = tenants[slug]
            actor = f"row-{i}-{slug}"
            su.execute(
                "insert into platform.audit_events (tenant_id, partner_id, occurred_at, actor, action) "
                "values (%s, %s, %s, %s, 'test')",
                (t.id, t.partner_id, T - age, actor),
            )
            expect[actor] = goes
        su.execute("select count(*) from platform.audit_maintain()")
        su.commit()
        assert su.execute("select count(*) from platform.audit_events_default").fetchone()[0] == 0
    return expect


def cli(stack: RunningStack, *args: str) -> subprocess.CompletedProcess:
    return provision(stack, "retention", "run", *args)


def test_dry_run_and_a_run_without_yes_change_nothing(stack, tenants, seeded):
    with stack.superuser() as su:
        before = snapshot(su)
    dry = cli(stack, "--as-of", T.isoformat(), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    (cell,) = json.loads(dry.stdout)["cells"]
    expected = {}
    for actor, goes in seeded.items():
        if goes:
            slug = actor.split("-", 2)[2]
            expected[tenants[slug].id] = expected.get(tenants[slug].id, 0) + 1
    assert cell["per_tenant"] == expected
    assert cell["rows_in_dropped_partitions"] == 2 and len(cell["partitions_dropped"]) == 1

    refused = cli(stack)
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    ahead = cli(stack, "--as-of", (T + 400 * DAY).isoformat(), "--yes")  # no row may be aged by a typed date
    assert ahead.returncode == 2 and "--as-of is for --dry-run only" in ahead.stderr
    with stack.superuser() as su:
        assert snapshot(su) == before
        assert su.execute("select to_regclass(%s)", (cell["partitions_dropped"][0],)).fetchone()[0] is not None


def test_bad_as_of_is_one_line_and_exit_2(stack):
    result = cli(stack, "--as-of", "last tuesday", "--dry-run")
    assert result.returncode == 2
    assert "not an ISO 8601 timestamp" in result.stderr and "Traceback" not in result.stderr


def test_run_removes_exactly_the_rows_past_their_plan(stack, tenants, seeded):
    with stack.superuser() as su:
        before = snapshot(su)
        since = su.execute("select clock_timestamp()").fetchone()[0]  # this run's trail, not an earlier test's
        old_month = f"platform.audit_events_{T - 520 * DAY:%Y_%m}"
        assert su.execute("select to_regclass(%s)", (old_month,)).fetchone()[0] is not None
    result = cli(stack, "--yes", "--json", "--batch", "2")  # now: rows are an hour from each edge
    assert result.returncode == 0, result.stderr
    (cell,) = json.loads(result.stdout)["cells"]
    assert cell["partitions_dropped"] == [old_month]
    assert cell["rows_deleted"] == 4 and cell["batches"] >= 2  # bounded: 2 rows a batch
    with stack.superuser() as su:
        after = snapshot(su)
        # row for row: what stays is exactly what was there minus what had to go
        assert after == {actor: row for actor, row in before.items() if not seeded[actor]}
        assert su.execute("select to_regclass(%s)", (old_month,)).fetchone()[0] is None
        trail = su.execute(
            "select tenant_id, action, (detail->>'rows')::int from platform.audit_events "
            "where action like 'audit.retention.%%' and occurred_at >= %s order by 1, 2",
            (since,),
        ).fetchall()
    by_tenant: dict[str, int] = {}
    for tenant_id, _action, rows in trail:
        by_tenant[tenant_id] = by_tenant.get(tenant_id, 0) + rows
    assert by_tenant == {
        tenants["ret-starter"].id: 2,
        tenants["ret-growth"].id: 2,
        tenants["ret-enterprise"].id: 2,
    }
    assert tenants["ret-bystander"].id not in by_tenant

    again = cli(stack, "--yes", "--json")
    (cell,) = json.loads(again.stdout)["cells"]
    assert (cell["rows_deleted"], cell["partitions_dropped"]) == (0, [])


def test_a_plan_change_counts_on_the_next_run(stack, tenants, seeded):
    enterprise = tenants["ret-enterprise"]
    (first,) = run_retention(stack.outputs, T, dry_run=False)  # what goes under today's plans
    assert first.status == "ok", first.errors
    with stack.superuser() as su:
        su.execute("update platform.tenants set plan = 'starter' where id = %s", (enterprise.id,))
        su.commit()
    try:
        (cell,) = run_retention(stack.outputs, T, dry_run=False)
        assert cell.status == "ok", cell.errors
        # its rows of 90 days + 1 hour and 400 days - 1 hour, kept while it was enterprise
        assert dict(cell.per_tenant) == {enterprise.id: 2}
    finally:
        with stack.superuser() as su:
            su.execute("update platform.tenants set plan = 'enterprise' where id = %s", (enterprise.id,))
            su.commit()
    with stack.superuser() as su:
        left = {a for a, row in snapshot(su).items() if row[0] == enterprise.id}
        others = {a for a, row in snapshot(su).items() if row[0] != enterprise.id}
    assert left == set()
    assert others == {a for a, goes in seeded.items() if "ret-enterprise" not in a and not goes}  # untouched


def test_the_schedule_role_runs_retention_and_nothing_else(stack, tenants, seeded):
    with stack.superuser() as su:
        su.execute(f"set role {ROLES['maintenance']}")
        assert su.execute("select count(*) from platform.audit_clean_batch(now(), 100)").fetchone()[0] >= 0
        assert su.execute("select count(*) from platform.audit_drop_expired(now())").fetchone()[0] >= 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            su.execute("delete from platform.audit_events")
        su.rollback()
