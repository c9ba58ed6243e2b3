"""Apply: the ledger, drift, repeatable steps, no-op re-runs, locking, crash convergence,
hostile input and a cell that is down."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest
from psycopg import sql
from psycopg.sql import Identifier as ident

from provisioner import directory, onboarding
from provisioner.apply import LOCKS_PER_TENANT, apply_status, batch_sql
from provisioner.connect import read_secret_json
from provisioner.credentials import secret_name
from provisioner.ledger import plan_target
from provisioner.targets import tenant_target
from tests.helpers import apply, connect_as, converge, onboard, tenant_ledger_rows, unique


def run_cli(*args: str, root=None, timeout=300) -> subprocess.CompletedProcess:
    env = {**os.environ}
    if root is not None:
        env["ASKASIA_LOCAL_DIR"] = str(root)
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.fixture(scope="module", autouse=True)
def converged(outputs):
    """The tests here count the steps an apply runs on the whole stack: it starts converged, and
    every test that records rows or breaks the ledger converges it again, pass or fail."""
    converge(outputs)


@pytest.fixture(scope="module")
def pair(outputs):
    partner = unique("apply-partner")
    tenants = onboard(
        outputs, {partner: "EU"}, [(partner, "one", "starter"), (partner, "two", "growth")], cell="cell-2"
    )
    return partner, tenants["one"], tenants["two"]


def ledger(local_stack, cell: str, target: str) -> dict[str, tuple]:
    with local_stack.superuser(cell=cell) as su:
        rows = su.execute(
            "select step, checksum, applied_at from platform.schema_ledger where target = %s", (target,)
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def test_ledger_records_every_step_with_its_checksum(local_stack, pair):
    _, one, _ = pair
    recorded = ledger(local_stack, "cell-2", f"tenant:{one.id}")
    target = tenant_target(one.id, one.partner_id, one.plan)
    assert {r.step.name: r.checksum for r in target.rendered} == {
        k: v[0] for k, v in recorded.items() if k not in ("credentials", "role_state")
    }
    assert "credentials" in recorded and "role_state" in recorded


def test_reapply_with_nothing_changed_touches_nothing(local_stack, outputs, pair):
    _, one, _ = pair
    before = ledger(local_stack, "cell-2", f"tenant:{one.id}")
    results = apply(outputs)
    assert [r.status for r in results] == ["ok", "ok"]
    assert sum(r.steps_run for r in results) == 0
    assert ledger(local_stack, "cell-2", f"tenant:{one.id}") == before


def test_changed_repeatable_step_reruns_for_that_target_only(local_stack, outputs, pair):
    _, one, two = pair
    with local_stack.superuser(cell="cell-2") as su:
        su.execute(
            "update platform.schema_ledger set checksum = 'stale' where target = %s and step = 'R__grants'",
            (f"tenant:{one.id}",),
        )
        su.commit()
    try:
        results = apply(outputs)
        assert sum(r.steps_run for r in results) == 1
        assert sum(r.targets_changed["tenant"] for r in results) == 1
        assert ledger(local_stack, "cell-2", f"tenant:{one.id}")["R__grants"][0] != "stale"
    finally:
        converge(outputs)


def test_a_tenant_changing_its_own_role_is_reasserted_by_the_next_apply(local_stack, outputs, pair):
    """As the tenant, with its real credentials: role defaults (in every database and in this
    one) and default privileges on itself. The no-op query sees it; apply re-runs that tenant's
    two reasserting steps only, and the next run is a no-op again."""
    _, one, two = pair
    app, schema = f"t_{one.id}_app", f"t_{one.id}"
    other = ledger(local_stack, "cell-2", f"tenant:{two.id}")
    with connect_as(outputs, "tenant", one.id, "cell-2") as conn:
        conn.autocommit = True
        conn.execute("alter role current_user set default_transaction_read_only = on")
        conn.execute("alter role current_user set work_mem = '1GB'")
        conn.execute("alter role current_user in database platform set statement_timeout = 0")
        conn.execute("alter default privileges grant select on tables to public")
        conn.execute(
            sql.SQL("alter default privileges in schema {} grant all on tables to public").format(ident(schema))
        )
    try:
        (planned,) = [r.planned for r in apply(outputs, dry_run=True) if r.cell == "cell-2"]
        assert sorted(planned) == [(f"tenant:{one.id}", "R__grants"), (f"tenant:{one.id}", "R__limits")]
        results = apply(outputs)
        assert (sum(r.steps_run for r in results), sum(r.targets_changed["tenant"] for r in results)) == (2, 1)
        with local_stack.superuser(cell="cell-2") as su:
            config = su.execute(
                "select setdatabase, setconfig from pg_db_role_setting where setrole = %s::regrole", (app,)
            ).fetchall()
            acl = su.execute("select count(*) from pg_default_acl where defaclrole = %s::regrole", (app,)).fetchone()
        assert [(db, sorted(entries)) for db, entries in config] == [
            (
                0,
                [
                    "idle_in_transaction_session_timeout=10s",
                    "lock_timeout=5s",
                    f"search_path={schema}, pg_temp",
                    "statement_timeout=30s",
                    "work_mem=8MB",
                ],
            )
        ]
        assert acl == (0,)
        with connect_as(outputs, "tenant", one.id, "cell-2") as conn:
            shown = conn.execute(
                "select current_setting('default_transaction_read_only'), current_setting('work_mem'), "
                "current_setting('statement_timeout')"
            ).fetchone()
            assert shown == ("off", "8MB", "30s")
            conn.execute("insert into leads (name) values ('works again')")
            conn.rollback()
        assert sum(r.steps_run for r in apply(outputs)) == 0
        assert ledger(local_stack, "cell-2", f"tenant:{two.id}") == other
    finally:
        with local_stack.superuser(cell="cell-2", autocommit=True) as su:
            for statement in (
                "alter role {app} in database platform reset all",
                "alter role {app} reset default_transaction_read_only",
                "alter default privileges for role {app} revoke all on tables from public",
                "alter default privileges for role {app} grant all on tables to {app}",
                "alter default privileges for role {app} in schema {schema} revoke all on tables from public",
            ):
                su.execute(sql.SQL(statement).format(app=ident(app), schema=ident(schema)))
        converge(outputs)


def test_changed_versioned_step_is_drift_and_stops_that_target(local_stack, outputs, pair):
    _, one, two = pair
    target = f"tenant:{one.id}"
    original = ledger(local_stack, "cell-2", target)["V002__tables"][0]
    with local_stack.superuser(cell="cell-2") as su:
        su.execute(
            "update platform.schema_ledger set checksum = 'edited' where target = %s and step = 'V002__tables'",
            (target,),
        )
        su.execute(
            "update platform.schema_ledger set checksum = 'stale' where target = %s and step = 'R__grants'",
            (f"tenant:{two.id}",),
        )
        su.commit()
    try:
        results = {r.cell: r for r in apply(outputs)}
        cell = results["cell-2"]
        assert cell.status == "drift"
        assert any(one.id in line and "V002__tables" in line for line in cell.drift)
        assert cell.steps_run == 1  # the other tenant's repeatable step still ran
        assert ledger(local_stack, "cell-2", target)["V002__tables"][0] == "edited"  # never silently re-run
        assert apply_status(list(results.values())) == 1
    finally:
        with local_stack.superuser(cell="cell-2") as su:
            su.execute(
                "update platform.schema_ledger set checksum = %s where target = %s and step = 'V002__tables'",
                (original, target),
            )
            su.commit()
        converge(outputs)


def test_app_secret_has_rds_shape_and_logs_in(outputs, pair):
    _, one, _ = pair
    doc = read_secret_json(secret_name("local", "tenant", one.id), outputs.region)
    cluster = outputs.cluster("cell-2")
    assert set(doc) >= {"username", "password", "host", "port", "dbname"}
    assert (doc["username"], doc["host"], doc["port"], doc["dbname"]) == (
        f"t_{one.id}_app",
        cluster.endpoint,
        cluster.port,
        cluster.database,
    )
    assert len(doc["password"]) >= 32


def test_dry_run_changes_nothing(local_stack, outputs):
    partner = unique("dry")
    try:
        directory.add_partner_rows(outputs, partner, "EU")
        new = onboarding.validate_new_tenants(outputs, [{"partner": partner, "tenant": "ghost", "plan": "starter"}])
        placed = directory.place_tenants(outputs, new, cell="cell-1")[0]
        results = apply(outputs, dry_run=True)
        planned = [step for r in results for target, step in r.planned if target == f"tenant:{placed.id}"]
        assert planned == [
            "V001__schema_and_roles",
            "V002__tables",
            "V010__foreign_key_indexes",
            "V020__twin_login",
            "R__grants",
            "R__limits",
            "credentials",
        ]
        with local_stack.superuser(cell="cell-1") as su:
            assert su.execute("select to_regnamespace(%s)", (f"t_{placed.id}",)).fetchone()[0] is None
    finally:
        converge(outputs)  # the rows recorded here get their schema and roles


def test_second_concurrent_apply_fails_fast_with_a_clear_message(local_stack, outputs):
    with local_stack.superuser(cell="cell-1") as holder:
        holder.execute("lock table platform.apply_lock in share row exclusive mode")
        results = {r.cell: r for r in apply(outputs)}
        assert results["cell-1"].status == "busy"
        assert "another apply (or a verify) holds the lock" in results["cell-1"].errors[0]
        assert "(an apply: role askasia_bootstrap, pid " in results["cell-1"].errors[0]
        assert results["cell-2"].status == "ok"
        assert apply_status(list(results.values())) == 2


def test_concurrent_apply_waits_for_the_lock_when_asked(local_stack, outputs):
    holder = local_stack.superuser(cell="cell-1")
    holder.execute("lock table platform.apply_lock in share row exclusive mode")
    import threading

    threading.Timer(0.5, holder.close).start()  # closing the session releases the lock
    results = {r.cell: r for r in apply(outputs, lock_wait=10)}
    assert results["cell-1"].status == "ok"


def test_locks_per_tenant_stay_under_the_budget(local_stack, outputs):
    """The batch size assumes LOCKS_PER_TENANT lock-table entries per new tenant: measure it."""
    target = tenant_target("locktest0001", "nopartner001", "starter")
    plan = plan_target(target, {}, None)
    with local_stack.superuser(cell="cell-1") as su:
        su.execute("insert into platform.partners (id, slug, jurisdiction) values ('nopartner001', 'lock-p', 'EU')")
        su.execute(
            "insert into platform.tenants (id, partner_id, slug, plan, home_region, cell) "
            "values ('locktest0001', 'nopartner001', 'lock-t', 'starter', 'eu-west-1', 'cell-1')"
        )
        su.execute(batch_sql([plan], {}))
        locks = su.execute("select count(*) from pg_locks where pid = pg_backend_pid()").fetchone()[0]
        su.rollback()
    assert 10 < locks <= LOCKS_PER_TENANT


def test_a_cell_that_is_down_fails_alone(outputs):
    down = dataclasses.replace(outputs.cluster("cell-2"), port=1)
    broken = dataclasses.replace(outputs, clusters=(outputs.cluster("cell-1"), down))
    results = {r.cell: r for r in apply(broken)}
    assert results["cell-1"].status == "ok"
    assert results["cell-2"].status == "unreachable"
    assert "cannot connect" in results["cell-2"].errors[0]
    assert apply_status(list(results.values())) == 2


@pytest.mark.parametrize(
    "slug",
    [
        "x'; drop table platform.tenants; --",
        'quote"d',
        "semi;colon",
        "Ünïcode",
        "ｔenant-fullwidth",
        "tenant\n",
        "a" * 64,
        "t",
        "-leading",
    ],
)
def test_hostile_tenant_names_are_refused_before_any_sql(local_stack, outputs, slug):
    from provisioner.errors import InputError

    before = len(directory.tenants(outputs))
    with pytest.raises(InputError, match="is invalid"):
        onboarding.validate_new_tenants(outputs, [{"partner": "any-partner", "tenant": slug, "plan": "starter"}])
    assert len(directory.tenants(outputs)) == before


def test_hostile_name_on_the_cli_is_one_line_and_exit_2(local_stack, pair):
    partner, _, _ = pair
    result = run_cli(
        "tenants",
        "add",
        "--stack",
        "local",
        "--partner",
        partner,
        "--tenant",
        "x';drop--",
        "--plan",
        "starter",
        root=local_stack.root,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "is invalid" in result.stderr


def test_unknown_region_and_missing_transfer_basis_are_refused(local_stack, outputs, pair):
    from provisioner.errors import InputError

    partner, _, _ = pair  # an EU partner
    # a tenant lives in its stack's region; the transfers into it were checked for the stack
    for region, message in (("mars-north-1", "mars-north-1"), ("me-south-1", "me-south-1 is not served by stack")):
        with pytest.raises(InputError, match=message):
            onboarding.validate_new_tenants(
                outputs, [{"partner": partner, "tenant": "placed", "plan": "starter", "region": region}]
            )


def test_kill_at_any_moment_then_rerun_converges(local_stack, outputs, tmp_path):
    partner = unique("crash")
    directory.add_partner_rows(outputs, partner, "IN")
    try:
        rows = [{"partner": partner, "tenant": f"crash-{i:03d}", "plan": "starter"} for i in range(150)]
        path = tmp_path / "tenants.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in rows))
        env = {**os.environ, "ASKASIA_LOCAL_DIR": str(local_stack.root)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "provisioner", "tenants", "import", "--stack", "local", str(path), "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        # Kill once some, not all, tenants have been applied.
        deadline = time.monotonic() + 120
        applied = 0
        while time.monotonic() < deadline and proc.poll() is None:
            applied = _applied_tenants(local_stack, partner)
            if applied >= 20:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert 0 < _applied_tenants(local_stack, partner) < 150, "the kill should land mid-apply"
        for cell in outputs.cells:  # the migrator held each tenant's owner only inside its step
            with local_stack.superuser(cell=cell) as su:
                held = su.execute(
                    "select m.roleid::regrole::text from pg_auth_members m where m.roleid::regrole::text ~ '^t_' "
                    "and m.member::regrole::text in ('askasia_migrator', 'askasia_master')"
                ).fetchall()
            assert held == [], f"{cell}: a killed apply left {held}"

        rerun = run_cli("tenants", "import", "--stack", "local", str(path), "--json", root=local_stack.root)
        assert rerun.returncode == 0, rerun.stderr
        mine = [t for t in directory.tenants(outputs) if t.partner == partner]
        assert len(mine) == 150  # no lost and no duplicated row
        for cell in outputs.cells:
            with local_stack.superuser(cell=cell) as su:
                half_made = su.execute(
                    "select t.id from platform.tenants t join platform.partners p on p.id = t.partner_id "
                    "where p.slug = %s and t.cell = %s and ("
                    " to_regnamespace('t_' || t.id) is null"
                    " or (select count(*) from pg_tables where schemaname = 't_' || t.id) <> 4"
                    " or (select count(*) from platform.schema_ledger where target = 'tenant:' || t.id) <> %s)",
                    (partner, cell, tenant_ledger_rows()),
                ).fetchall()
                assert half_made == []
    finally:
        converge(outputs)  # a failed run leaves tenants half-applied


def _applied_tenants(local_stack, partner_slug: str) -> int:
    total = 0
    for cell in ("cell-1", "cell-2"):
        try:
            with local_stack.superuser(cell=cell) as su:
                total += su.execute(
                    "select count(*) from platform.schema_ledger l join platform.tenants t "
                    "on l.target = 'tenant:' || t.id join platform.partners p on p.id = t.partner_id "
                    "where p.slug = %s and l.step = 'credentials'",
                    (partner_slug,),
                ).fetchone()[0]
        except psycopg.Error:
            pass
    return total


def test_sql_render_prints_sql_without_secrets(local_stack, outputs, pair):
    _, one, _ = pair
    password = read_secret_json(secret_name("local", "tenant", one.id), outputs.region)["password"]
    result = run_cli("sql", "render", "--stack", "local", "--tenant", one.id, root=local_stack.root)
    assert result.returncode == 0, result.stderr
    assert f'create schema "t_{one.id}"' in result.stdout
    assert password not in result.stdout and "SCRAM-SHA-256$" not in result.stdout


def test_grants_name_every_table_the_tenant_steps_create(local_stack, pair):
    """R__grants names TENANT_TABLES (no catalog-wide scan); a table added by a V step must be listed."""
    from provisioner.targets import TENANT_TABLES

    _, one, _ = pair
    with local_stack.superuser(cell="cell-2") as su:
        tables = {r[0] for r in su.execute("select tablename from pg_tables where schemaname = %s", (f"t_{one.id}",))}
    assert tables == set(TENANT_TABLES)


def test_secrets_manager_failure_fails_the_cell_cleanly(local_stack, outputs):
    """When a secret cannot be stored, no role of that batch is created without its password."""
    from botocore.exceptions import ClientError

    from provisioner.apply import ApplyOptions, apply_stack
    from provisioner.stackref import credential_store

    class Refusing(type(credential_store(outputs))):
        def ensure_versioned(self, *args, **kwargs):
            raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "denied"}}, "CreateSecret")

    partner = unique("sm-down")
    directory.add_partner_rows(outputs, partner, "EU")
    try:
        new = onboarding.validate_new_tenants(outputs, [{"partner": partner, "tenant": "nosecret", "plan": "starter"}])
        placed = directory.place_tenants(outputs, new, cell="cell-1")[0]
        store = Refusing(outputs.stack, outputs.region, outputs.kms["secrets"])
        results = {r.cell: r for r in apply_stack(outputs, ApplyOptions(), store)}
        assert results["cell-1"].status == "failed"
        assert "AccessDeniedException" in results["cell-1"].errors[0]
        with local_stack.superuser(cell="cell-1") as su:
            assert su.execute("select to_regrole(%s)", (f"t_{placed.id}_app",)).fetchone()[0] is None
        assert all(r.status == "ok" for r in apply(outputs))  # with Secrets Manager back, it converges
    finally:
        converge(outputs)


def test_placement_is_refused_when_the_dr_copy_lacks_a_basis(outputs, pair):
    from provisioner.errors import InputError

    partner, _, _ = pair  # an EU partner
    bahrain_dr = dataclasses.replace(outputs, dr={"region": "me-south-1", "mode": "snapshot-copy"})
    with pytest.raises(InputError, match="EU -> DR region me-south-1 \\(BH"):
        onboarding.validate_new_tenants(bahrain_dr, [{"partner": partner, "tenant": "copied", "plan": "starter"}])


def test_partner_jurisdiction_must_be_a_known_origin(local_stack, outputs):
    from provisioner.errors import InputError
    from provisioner.onboarding import Onboarding
    from provisioner.stackref import credential_store

    before = len(directory.partners(outputs))
    with pytest.raises(InputError, match="unknown origin jurisdiction 'XX'"):
        Onboarding(outputs, credential_store(outputs)).add_partner(unique("nowhere"), "XX")
    assert len(directory.partners(outputs)) == before
    result = run_cli(
        "partners", "add", "--stack", "local", "--partner", "nowhere-co", "--jurisdiction", "ZZ", root=local_stack.root
    )
    assert result.returncode == 2 and "unknown origin jurisdiction" in result.stderr


def test_the_plan_constraint_in_every_cell_is_the_contracts(local_stack, outputs, pair):
    from contract.tiers import PLAN_TIERS

    _, one, _ = pair
    for cell in outputs.cells:
        with local_stack.superuser(cell=cell) as su:
            definition = su.execute(
                "select pg_get_constraintdef(oid) from pg_constraint where conname = 'tenants_plan_check'"
            ).fetchone()[0]
            for tier in PLAN_TIERS:
                assert f"'{tier}'" in definition
            with pytest.raises(psycopg.errors.CheckViolation):
                su.execute(
                    "insert into platform.tenants (id, partner_id, slug, plan, home_region, cell) "
                    "values ('zzzzzzzzzzzz', %s, 'no-such-plan', 'platinum', 'eu-west-1', %s)",
                    (one.partner_id, cell),
                )


def test_an_aws_failure_no_service_caught_is_one_line_and_exit_2(local_stack, capsys, monkeypatch):
    from botocore.exceptions import ClientError

    from provisioner import onboarding
    from tests.helpers import run_in_process

    def failing(*args, **kwargs):
        raise ClientError(
            {"Error": {"Code": "500", "Message": "Internal Server Error\n<!doctype html>"}}, "ListSecrets"
        )

    monkeypatch.setenv("ASKASIA_LOCAL_DIR", str(local_stack.root))
    monkeypatch.setattr(onboarding, "apply_stack", failing)
    code, _, err = run_in_process(["tenants", "apply", "--stack", "local"], capsys, monkeypatch)
    assert code == 2
    assert "ListSecrets" in err and "Traceback" not in err and "doctype" not in err
