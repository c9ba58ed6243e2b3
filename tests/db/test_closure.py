"""Closing, reopening and purging tenants, with a clock (closures dated back as days pass; `--as-of`
for dry runs only): a closed tenant's sessions
end and it cannot log in while its data stays; reopen works inside the grace period only;
purge is refused at day 29 with one line and done at day 31, leaving no schema, role, secret,
binding or row behind, verify clean, and the other tenants untouched row for row; a purge that
fails midway leaves the tenant whole and a re-run converges. On a stack of its own."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator

import psycopg
import pytest
from botocore.exceptions import ClientError

from provisioner import aws, directory
from provisioner.credentials import secret_name
from provisioner.lifecycle import closure
from provisioner.names import PartnerNames
from provisioner.verify.runner import VerifyOptions, verify_cell
from tests.helpers import RunningStack, connect_as, onboard, provision, started_stack, unique

DAY = dt.timedelta(days=1)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with started_stack(tmp_path_factory.mktemp("closure"), cells=1) as running:
        yield running


@pytest.fixture
def tenants(stack) -> dict[str, directory.Tenant]:
    """Fresh tenants for each test (keyed by their part in it), so each test stands alone."""
    agency, other = unique("cl-agency"), unique("cl-other")
    slugs = {part: unique(part) for part in ("cl-leaving", "cl-staying", "cl-failing")}
    made = onboard(
        stack.outputs,
        {agency: "EU", other: "UK"},
        [
            (agency, slugs["cl-leaving"], "growth"),
            (agency, slugs["cl-staying"], "starter"),
            (other, slugs["cl-failing"], "enterprise"),
        ],
    )
    made = {part: made[slug] for part, slug in slugs.items()}
    with stack.superuser() as su:
        for t in made.values():
            su.execute(
                "insert into platform.worker_runs (tenant_id, partner_id, worker) values (%s, %s, 'w')",
                (t.id, t.partner_id),
            )
            su.execute(
                "insert into platform.cost_entries (tenant_id, partner_id, amount) values (%s, %s, 1.5)",
                (t.id, t.partner_id),
            )
        su.commit()
    for t in made.values():
        with connect_as(stack.outputs, "tenant", t.id, t.cell) as conn:
            conn.execute("insert into leads (name, email) values ('Ada', 'ada@example.com') ")
            conn.execute("insert into tickets (lead_id, subject) select id, 'hi' from leads")
    return made


def cli(stack: RunningStack, *args: str) -> subprocess.CompletedProcess:
    return provision(stack, "tenants", *args)


def footprint(stack: RunningStack, t: directory.Tenant) -> dict[str, object]:
    """Everything of one tenant in the cell and in Secrets Manager, row for row."""
    schema = f"t_{t.id}"
    with stack.superuser() as su:
        found: dict[str, object] = {
            "schema": su.execute("select to_regnamespace(%s) is not null", (schema,)).fetchone()[0],
            "roles": su.execute(
                "select array_agg(rolname order by rolname) from pg_roles where rolname ~ %s", (f"^{schema}_",)
            ).fetchone()[0],
        }
        for table in ("worker_runs", "cost_entries"):
            found[table] = su.execute(
                f"select array_agg(row(x.*)::text order by x.id) from platform.{table} x where tenant_id = %s", (t.id,)
            ).fetchone()[0]
        found["bindings"] = su.execute(
            "select array_agg(role_name order by role_name) from platform.role_bindings where tenant_id = %s", (t.id,)
        ).fetchone()[0]
        found["ledger"] = su.execute(
            "select count(*) from platform.schema_ledger where target = %s", (f"tenant:{t.id}",)
        ).fetchone()[0]
        found["tenant"] = su.execute("select row(x.*)::text from platform.tenants x where id = %s", (t.id,)).fetchone()
        if found["schema"]:
            found["rows"] = su.execute(
                f'select (select count(*) from "{schema}".leads), (select count(*) from "{schema}".tickets)'
            ).fetchone()
    try:
        aws.client("secretsmanager", stack.outputs.region).describe_secret(
            SecretId=secret_name(stack.outputs.stack, "tenant", t.id)
        )
        found["secret"] = True
    except ClientError:
        found["secret"] = False
    return found


def closed_days_ago(stack: RunningStack, tenant: directory.Tenant, days: int) -> None:
    """Days pass: the tenant's closure is dated back by the database's clock (a run that changes
    data takes no --as-of)."""
    with stack.superuser() as su:
        su.execute(
            "update platform.tenants set closed_at = now() - make_interval(days => %s) where id = %s", (days, tenant.id)
        )


def terminated_days_ago(stack: RunningStack, partner_id: str, days: int) -> None:
    """Days pass for a terminated partner and the tenants its termination closed."""
    with stack.superuser() as su:
        su.execute(
            "update platform.partners set terminated_at = now() - make_interval(days => %s) where id = %s",
            (days, partner_id),
        )
        su.execute(
            "update platform.tenants set closed_at = now() - make_interval(days => %s) "
            "where partner_id = %s and status = 'closed'",
            (days, partner_id),
        )


def test_close_needs_yes_ends_sessions_and_keeps_the_data(stack, tenants):
    leaving, staying = tenants["cl-leaving"], tenants["cl-staying"]
    before_staying = footprint(stack, staying)
    refused = cli(stack, "close", "--tenant", leaving.slug)
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    assert f"will mark tenant {leaving.slug}" in refused.stdout

    session = connect_as(stack.outputs, "tenant", leaving.id, leaving.cell)
    assert session.execute("select count(*) from leads").fetchone()[0] == 1
    done = cli(stack, "close", "--tenant", leaving.slug, "--yes")
    assert done.returncode == 0, done.stderr
    assert "1 session(s) ended" in done.stdout
    with pytest.raises(psycopg.OperationalError):
        session.execute("select 1")  # its session ended at once
    session.close()
    with pytest.raises(Exception, match="not permitted to log in"):
        connect_as(stack.outputs, "tenant", leaving.id, leaving.cell)
    kept = footprint(stack, leaving)
    assert kept["schema"] and kept["rows"] == (1, 1) and kept["secret"]
    assert footprint(stack, staying) == before_staying
    with stack.superuser() as su:
        assert (
            su.execute(
                "select count(*) from platform.audit_events where tenant_id = %s and action = 'tenant.closed'",
                (leaving.id,),
            ).fetchone()[0]
            == 1
        )


def test_reopen_inside_the_grace_period_only(stack, tenants):
    leaving = tenants["cl-leaving"]
    assert cli(stack, "close", "--tenant", leaving.slug, "--yes").returncode == 0
    closed_days_ago(stack, leaving, 30)
    late = cli(stack, "reopen", "--tenant", leaving.slug)
    assert late.returncode == 2 and "past its grace period" in late.stderr and "Traceback" not in late.stderr
    closed_days_ago(stack, leaving, 29)
    ok = cli(stack, "reopen", "--tenant", leaving.slug)
    assert ok.returncode == 0, ok.stderr
    with connect_as(stack.outputs, "tenant", leaving.id, leaving.cell) as conn:
        assert conn.execute("select count(*) from leads").fetchone()[0] == 1
    again = cli(stack, "close", "--tenant", leaving.slug, "--yes")
    assert again.returncode == 0, again.stderr


def test_as_of_moves_no_clock_for_a_run_that_changes_data(stack, tenants):
    """A date on the command line cannot cut a grace period short (purge, partners purge), start one
    in the past (close, terminate) or age audit rows early (retention): one line, exit 2, nothing done."""
    leaving, staying = tenants["cl-leaving"], tenants["cl-staying"]
    assert cli(stack, "close", "--tenant", leaving.slug, "--yes").returncode == 0
    before = footprint(stack, leaving), footprint(stack, staying)
    later = (dt.datetime.now(dt.UTC) + 31 * DAY).isoformat()
    earlier = (dt.datetime.now(dt.UTC) - 31 * DAY).isoformat()
    attempts = [
        cli(stack, "purge", "--tenant", leaving.slug, "--as-of", later, "--yes"),
        cli(stack, "purge", "--as-of", later, "--yes"),
        cli(stack, "close", "--tenant", staying.slug, "--as-of", earlier, "--yes"),
        partners_cli(stack, "purge", "--partner", leaving.partner, "--as-of", later, "--yes"),
        partners_cli(stack, "terminate", "--partner", staying.partner, "--close-tenants", "--as-of", earlier, "--yes"),
    ]
    for refused in attempts:
        assert refused.returncode == 2, refused.stdout
        assert "--as-of is for --dry-run only" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert (footprint(stack, leaving), footprint(stack, staying)) == before
    assert partner_footprint(stack, staying.partner_id)["row"] == ("active",)
    dry = cli(stack, "purge", "--tenant", leaving.slug, "--as-of", later, "--dry-run")
    assert dry.returncode == 0 and f"would drop schema t_{leaving.id}" in dry.stdout


def test_purge_refused_at_day_29_and_done_at_day_31(stack, tenants):
    leaving, staying = tenants["cl-leaving"], tenants["cl-staying"]
    assert cli(stack, "close", "--tenant", leaving.slug, "--yes").returncode == 0
    before_staying = footprint(stack, staying)
    closed_days_ago(stack, leaving, 29)
    early = cli(stack, "purge", "--tenant", leaving.slug, "--yes")
    assert early.returncode == 2
    assert "inside its 30-day grace period" in early.stderr and len(early.stderr.strip().splitlines()) == 1
    assert footprint(stack, leaving)["schema"]
    # without --tenant, nobody is due at day 29
    none_due = cli(stack, "purge", "--yes")
    assert none_due.returncode == 0 and "nothing to purge" in none_due.stdout

    dry = cli(stack, "purge", "--as-of", (dt.datetime.now(dt.UTC) + 2 * DAY).isoformat(), "--dry-run")
    assert dry.returncode == 0 and f"would drop schema t_{leaving.id}" in dry.stdout
    assert footprint(stack, leaving)["schema"]

    closed_days_ago(stack, leaving, 31)
    done = cli(stack, "purge", "--yes")
    assert done.returncode == 0, done.stderr
    assert footprint(stack, leaving) == {
        "schema": False,
        "roles": None,
        "worker_runs": None,
        "cost_entries": None,
        "bindings": None,
        "ledger": 0,
        "tenant": None,
        "secret": False,
    }
    assert footprint(stack, staying) == before_staying
    with stack.superuser() as su:
        actions = su.execute(
            "select action from platform.audit_events where tenant_id = %s order by occurred_at", (leaving.id,)
        ).fetchall()
    assert ("tenant.purged",) in actions  # the audit trail outlives the tenant (its own retention)
    report = verify_cell(stack.outputs, stack.outputs.cluster("cell-1"), VerifyOptions(probes=2))
    assert report.errors == [] and report.findings == []


def test_a_purge_that_fails_midway_leaves_the_tenant_whole_and_a_rerun_converges(stack, tenants, monkeypatch):
    failing = tenants["cl-failing"]
    assert cli(stack, "close", "--tenant", failing.slug, "--yes").returncode == 0
    closed_days_ago(stack, failing, 31)
    plan = closure.purge_plan(stack.outputs, failing.slug, None)

    def killed(*_args, **_kw):
        raise psycopg.OperationalError("connection lost (simulated)")

    monkeypatch.setattr(closure.audit, "record_many", killed)  # the last statement of the batch's transaction
    with pytest.raises(psycopg.OperationalError):
        closure.purge(stack.outputs, plan)
    midway = footprint(stack, failing)
    assert midway["schema"] and midway["rows"] == (1, 1) and midway["tenant"] is not None
    assert midway["secret"] is False  # the secret went first: the re-run goes on from the rows
    monkeypatch.undo()
    assert closure.purge(stack.outputs, closure.purge_plan(stack.outputs, failing.slug, None)) == [failing.id]
    assert footprint(stack, failing)["tenant"] is None and footprint(stack, failing)["roles"] is None
    report = verify_cell(stack.outputs, stack.outputs.cluster("cell-1"), VerifyOptions(probes=0))
    assert report.errors == [] and report.findings == []


# -- partners --------------------------------------------------------------------------------
def partners_cli(stack: RunningStack, *args: str) -> subprocess.CompletedProcess:
    return provision(stack, "partners", *args)


def partner_footprint(stack: RunningStack, partner_id: str) -> dict[str, object]:
    with stack.superuser() as su:
        found: dict[str, object] = {
            "row": su.execute("select status from platform.partners where id = %s", (partner_id,)).fetchone(),
            # its console role and rotation twin, as (LOGIN of each,) or (None,) when both are gone
            "role": su.execute(
                "select array_agg(rolcanlogin order by rolname) from pg_roles where rolname = any(%s)",
                (list(PartnerNames(partner_id).login_roles),),
            ).fetchone(),
            "bindings": su.execute(
                "select count(*) from platform.role_bindings where partner_id = %s", (partner_id,)
            ).fetchone()[0],
            "tenants": su.execute(
                "select count(*) from platform.tenants where partner_id = %s", (partner_id,)
            ).fetchone()[0],
        }
    try:
        aws.client("secretsmanager", stack.outputs.region).describe_secret(
            SecretId=secret_name(stack.outputs.stack, "partner", partner_id)
        )
        found["secret"] = True
    except ClientError:
        found["secret"] = False
    return found


def test_partner_terminate_needs_close_tenants_then_purge_after_30_days(stack, tenants):
    leaving, staying = tenants["cl-leaving"], tenants["cl-staying"]  # both of one agency
    agency = staying.partner
    assert cli(stack, "close", "--tenant", leaving.slug, "--yes").returncode == 0
    closed_days_ago(stack, leaving, 31)
    assert cli(stack, "purge", "--tenant", leaving.slug, "--yes").returncode == 0
    other = footprint(stack, staying)
    pid = staying.partner_id
    refused = partners_cli(stack, "terminate", "--partner", agency, "--yes")
    assert refused.returncode == 2 and f"active tenant(s) ({staying.slug})" in refused.stderr
    assert "--close-tenants" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert partner_footprint(stack, pid)["row"] == ("active",)

    done = partners_cli(stack, "terminate", "--partner", agency, "--close-tenants", "--yes")
    assert done.returncode == 0, done.stderr
    assert partner_footprint(stack, pid) | {"secret": None} == {
        "row": ("terminated",),
        "role": ([False, False],),
        "bindings": 5,  # its console role and twin, the tenant's app role, twin and ro role
        "tenants": 1,
        "secret": None,
    }
    assert footprint(stack, staying)["schema"]  # kept through the grace period

    terminated_days_ago(stack, pid, 29)
    early = partners_cli(stack, "purge", "--partner", agency, "--yes")
    assert early.returncode == 2 and "inside its 30-day grace period" in early.stderr
    terminated_days_ago(stack, pid, 31)
    late = partners_cli(stack, "purge", "--partner", agency, "--yes")
    assert late.returncode == 0, late.stderr
    gone = {"row": None, "role": (None,), "bindings": 0, "tenants": 0, "secret": False}
    assert partner_footprint(stack, pid) == gone
    assert footprint(stack, staying)["tenant"] is None and other["tenant"] is not None
    report = verify_cell(stack.outputs, stack.outputs.cluster("cell-1"), VerifyOptions(probes=0))
    assert report.errors == [] and report.findings == []
