"""Resource governance, attacked as a tenant would: each attack runs with the tenant's real app
credentials (from Secrets Manager, over TLS) on the local stack, bounded in count and time, and
another tenant's work, the master and `tenants apply` / `tenants verify` keep working."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from contract.tiers import CONNECTION_BUDGET_SETTING, PARTNER_LIMITS, tier
from provisioner import directory
from provisioner.apply import apply_status
from provisioner.connect import connect_master
from provisioner.errors import ProvisionError
from provisioner.verify.runner import VerifyOptions, verify_cell
from tests.helpers import apply, connect_as, onboard, unique


@pytest.fixture(scope="module")
def pair(local_stack, outputs):
    p = unique("gov-p")
    a, b = unique("gov-a"), unique("gov-b")
    tenants = onboard(outputs, {p: "EU"}, [(p, a, "starter"), (p, b, "growth")], cell="cell-1")
    return tenants[a], tenants[b]


@contextlib.contextmanager
def tenant(outputs, t) -> Iterator[psycopg.Connection]:
    conn = connect_as(outputs, "tenant", t.id, "cell-1")
    try:
        yield conn
    finally:
        conn.close()


def other_tenant_works(outputs, t) -> None:
    with tenant(outputs, t) as conn:
        conn.execute("insert into leads (name) values ('still served')")
        conn.execute(
            "insert into platform.worker_runs (tenant_id, partner_id, worker) values (%s, %s, 'gov-test')",
            (t.id, t.partner_id),
        )
        conn.commit()


def apply_and_verify_succeed(outputs) -> None:
    results = apply(outputs, tenant_ids=frozenset(), partner_ids=frozenset(), lock_wait=10)
    assert apply_status(results) == 0, [r.errors for r in results]
    report = verify_cell(outputs, outputs.cluster("cell-1"), VerifyOptions(probes=0))
    assert report.errors == [], report.errors


def test_role_defaults_and_connection_limit_come_from_the_tier(local_stack, outputs, pair):
    a, b = pair
    with tenant(outputs, a) as conn:
        for name, value in tier("starter").limits.settings().items():
            assert conn.execute(f"show {name}").fetchone()[0] == value
    with local_stack.superuser() as su:
        limits = dict(
            su.execute(
                "select rolname, rolconnlimit from pg_roles where rolname in (%s, %s, %s)",
                (f"t_{a.id}_app", f"t_{b.id}_app", f"p_{a.partner_id}_app"),
            ).fetchall()
        )
    assert limits == {
        f"t_{a.id}_app": tier("starter").limits.connection_limit,
        f"t_{b.id}_app": tier("growth").limits.connection_limit,
        f"p_{a.partner_id}_app": PARTNER_LIMITS.connection_limit,
    }


def test_one_tenant_cannot_take_every_connection(local_stack, outputs, pair):
    a, b = pair
    limit = tier("starter").limits.connection_limit
    held: list[psycopg.Connection] = []
    try:
        for _ in range(limit):
            held.append(connect_as(outputs, "tenant", a.id, "cell-1"))
        with pytest.raises(Exception, match="too many connections for role"):
            held.append(connect_as(outputs, "tenant", a.id, "cell-1"))
        other_tenant_works(outputs, b)
        apply_and_verify_succeed(outputs)
    finally:
        for conn in held:
            conn.close()


def test_no_strong_lock_on_a_shared_table_but_status_changes_still_work(outputs, pair):
    a, b = pair
    with tenant(outputs, a) as conn:
        run_id = conn.execute(
            "insert into platform.worker_runs (tenant_id, partner_id, worker) values (%s, %s, 'gov') returning id",
            (a.id, a.partner_id),
        ).fetchone()[0]
        conn.execute("update platform.worker_runs set status = 'done', finished_at = now() where id = %s", (run_id,))
        conn.commit()
        for mode in ("access exclusive", "exclusive", "share row exclusive", "share"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"lock table platform.worker_runs in {mode} mode")
            conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("update platform.worker_runs set tenant_id = tenant_id where id = %s", (run_id,))
        conn.rollback()
    other_tenant_works(outputs, b)


def test_a_tenant_can_neither_take_nor_fake_the_apply_lock(local_stack, outputs, pair):
    a, _ = pair
    with tenant(outputs, a) as conn:
        conn.execute("set application_name = 'askasia-provisioner'")
        for statement in (
            "lock table platform.apply_lock in share mode",
            "select * from platform.apply_lock",
            "select pg_advisory_lock(7361626173)",
            "select pg_advisory_lock_shared(7361626173)",
            "select pg_try_advisory_xact_lock(1)",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()
        # The 20,000-key attack that filled the shared lock table is refused at its first key.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select count(pg_advisory_lock(k)) from generate_series(1, 20000) k")
        conn.rollback()
        apply_and_verify_succeed(outputs)


def test_a_tenant_cannot_raise_the_servers_session_limits(outputs, pair):
    a, _ = pair
    with tenant(outputs, a) as conn:
        assert conn.execute("show temp_file_limit").fetchone()[0] == "1GB"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("set temp_file_limit = -1")
        conn.rollback()


TEMP_LIMIT = "200MB"


def test_a_query_spilling_to_temp_files_is_ended_by_the_servers_limit(local_stack, outputs, pair):
    """A large sort with work_mem lowered spills to temp files; the server's temp_file_limit
    (superuser-only: the tenant cannot raise it) ends it. The contract's 1 GB would take minutes
    to reach, so the test lowers the server's limit (ALTER SYSTEM, a reload) to 200 MB and puts
    it back after; the attack is the same SQL a tenant would run."""
    a, b = pair
    served = "select count(*) from leads where name = 'still served'"
    with tenant(outputs, b) as conn:
        before = conn.execute(served).fetchone()[0]
    with local_stack.superuser(autocommit=True) as su:
        su.execute(f"alter system set temp_file_limit = '{TEMP_LIMIT}'")
        su.execute("select pg_reload_conf()")
        attacker = connect_as(outputs, "tenant", a.id, "cell-1")
        try:
            deadline = time.monotonic() + 10
            while attacker.execute("show temp_file_limit").fetchone()[0] != TEMP_LIMIT:
                attacker.close()
                assert time.monotonic() < deadline, "the reload did not reach new sessions"
                time.sleep(0.2)
                attacker = connect_as(outputs, "tenant", a.id, "cell-1")
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                attacker.execute("set temp_file_limit = -1")
            attacker.rollback()
            attacker.execute("set work_mem = '64kB'")
            failure: list[BaseException] = []

            def attack() -> None:
                try:
                    attacker.execute(
                        "select count(*) from (select md5(g::text) as k from generate_series(1, 100000000) g "
                        "order by 1) s"
                    )
                except psycopg.Error as exc:
                    failure.append(exc)

            started = time.monotonic()
            runner = threading.Thread(target=attack)
            runner.start()
            pid = attacker.info.backend_pid
            while (
                runner.is_alive()
                and not su.execute(
                    "select 1 from pg_stat_activity where pid = %s and state = 'active'", (pid,)
                ).fetchone()
            ):
                time.sleep(0.05)
            other_tenant_works(outputs, b)  # served while the sort spills
            spilling_while_served = runner.is_alive()
            runner.join(timeout=60)
            took = time.monotonic() - started
            assert not runner.is_alive(), "the spilling query was not ended"
            assert failure and isinstance(failure[0], psycopg.errors.ConfigurationLimitExceeded), failure
            assert "temporary file size exceeds temp_file_limit (204800kB)" in str(failure[0])
            assert took < 30, f"ended after {took:.1f} s"  # about 1 s on the local stack
            assert spilling_while_served, "the other tenant was not served while the sort spilled"
            attacker.rollback()
            assert attacker.execute("select 1").fetchone() == (1,)  # its own session still works
        finally:
            attacker.close()
            su.execute("alter system reset temp_file_limit")
            su.execute("select pg_reload_conf()")
    with tenant(outputs, b) as conn:
        assert conn.execute(served).fetchone()[0] == before + 1  # nothing lost
    apply_and_verify_succeed(outputs)


def test_apply_waits_out_an_idle_transaction_and_names_who_blocked_it(local_stack, outputs, pair):
    """`begin; select ... from platform.role_bindings;` left idle blocks a platform R step's
    ALTER TABLE: apply retries its lock timeout with backoff until the tenant's transaction ends
    by its role default (10 s), and reports the blocking session by role."""
    a, b = pair
    with local_stack.superuser(autocommit=True) as su:
        su.execute(
            "update platform.schema_ledger set checksum = 'stale' where target = 'platform' and step = 'R__policies'"
        )
    with tenant(outputs, a) as conn:
        conn.execute("select count(*) from platform.role_bindings").fetchone()  # and now idle in transaction
        started = time.monotonic()
        results = apply(outputs, tenant_ids=frozenset(), partner_ids=frozenset(), lock_timeout="2s")
        took = time.monotonic() - started
    cell = next(r for r in results if r.cell == "cell-1")
    assert cell.status == "ok", cell.errors
    assert cell.targets_changed["platform"] == 1
    assert cell.lock_waits and f"(role t_{a.id}_app" in cell.lock_waits[0]
    assert took < 30
    other_tenant_works(outputs, b)


def test_apply_gives_up_after_its_retries_naming_the_blocker(local_stack, outputs, monkeypatch):
    from provisioner import apply as apply_module

    monkeypatch.setattr(apply_module, "LOCK_RETRY_BACKOFF", (0.2,))
    with local_stack.superuser(autocommit=True) as su:
        su.execute(
            "update platform.schema_ledger set checksum = 'stale' where target = 'platform' and step = 'R__policies'"
        )
    with local_stack.superuser() as blocker:
        blocker.execute("select count(*) from platform.role_bindings").fetchone()
        results = apply(outputs, tenant_ids=frozenset(), partner_ids=frozenset(), lock_timeout="1s")
    cell = next(r for r in results if r.cell == "cell-1")
    assert cell.status == "failed"
    assert "gave up after 1 retries" in cell.errors[0] and "role askasia_bootstrap" in cell.errors[0], cell.errors
    apply_and_verify_succeed(outputs)  # once the blocker is gone, the step goes in


# -- the guard -------------------------------------------------------------------------------


@pytest.fixture
def guard_session(outputs):
    from provisioner.guard import guard_credentials, open_guard
    from provisioner.stackref import credential_store

    cluster = outputs.cluster("cell-1")
    conn, db = open_guard(cluster, guard_credentials(outputs, cluster, credential_store(outputs)))
    yield conn, db
    conn.close()


def guard_audit(local_stack, role: str) -> list[dict]:
    with local_stack.superuser() as su:
        rows = su.execute(
            "select detail from platform.audit_events where actor = 'guard' and detail ->> 'role' = %s", (role,)
        ).fetchall()
    return [r[0] for r in rows]


def test_the_guard_role_holds_only_what_its_job_needs(local_stack, outputs, pair):
    with local_stack.superuser() as su:
        member_of = {
            r[0]
            for r in su.execute(
                "select b.rolname from pg_auth_members m join pg_roles b on b.oid = m.roleid "
                "join pg_roles g on g.oid = m.member where g.rolname = 'askasia_guard'"
            ).fetchall()
        }
        attrs = su.execute(
            "select rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication from pg_roles "
            "where rolname = 'askasia_guard'"
        ).fetchone()
        tables = su.execute(
            "select table_name, privilege_type from information_schema.role_table_grants "
            "where grantee = 'askasia_guard' order by 1, 2"
        ).fetchall()
    assert member_of == {"pg_signal_backend", "pg_read_all_stats"}
    assert attrs == (False, False, False, False, False)
    assert tables == [("audit_events", "INSERT")]


def test_the_guard_ends_a_transaction_a_tenant_left_idle_and_records_it(local_stack, outputs, pair, guard_session):
    from provisioner.guard import GuardLimits, guard_pass

    conn, db = guard_session
    a, b = pair
    attacker = connect_as(outputs, "tenant", a.id, "cell-1")
    try:
        attacker.execute("set idle_in_transaction_session_timeout = 0")  # the role default, switched off
        attacker.execute("select count(*) from platform.role_bindings").fetchone()
        time.sleep(2)
        actions = guard_pass(conn, GuardLimits(idle_seconds=1), db)
        assert [(x.role, x.terminated) for x in actions] == [(f"t_{a.id}_app", True)]
        assert "idle in transaction" in actions[0].reason
        with pytest.raises(psycopg.OperationalError):
            attacker.execute("select 1").fetchone()
    finally:
        attacker.close()
    assert any(d["pid"] == actions[0].pid for d in guard_audit(local_stack, f"t_{a.id}_app"))
    other_tenant_works(outputs, b)


def test_the_guard_works_while_a_tenant_has_filled_the_lock_table(local_stack, outputs, pair, guard_session):
    """On Aurora the advisory-lock functions stay executable by PUBLIC (the platform cannot revoke
    them): granted back to one tenant here, it fills the shared lock table as in the incident,
    and the guard's open session still finds and ends it."""
    from provisioner.guard import GuardLimits, guard_pass

    conn, db = guard_session
    a, b = pair
    attacker = connect_as(outputs, "tenant", a.id, "cell-1")
    fn = "pg_advisory_lock(bigint)"
    with local_stack.superuser(autocommit=True) as su:
        su.execute(f"grant execute on function {fn} to t_{a.id}_app")
    try:
        with pytest.raises(psycopg.errors.OutOfMemory):
            attacker.execute("select count(pg_advisory_lock(k)) from generate_series(1, 20000) k")
        # Session-level advisory locks outlive the error: the cell is full until the session ends.
        with pytest.raises(ProvisionError, match="out of shared memory"):  # no new login succeeds
            with connect_as(outputs, "tenant", b.id, "cell-1") as victim:
                victim.execute("select count(*) from leads").fetchone()
        started = time.monotonic()
        actions = guard_pass(conn, GuardLimits(max_locks=1000), db)
        assert time.monotonic() - started < 5
        assert [(x.role, x.terminated) for x in actions] == [(f"t_{a.id}_app", True)]
        assert "locks" in actions[0].reason
    finally:
        attacker.close()
        with local_stack.superuser(autocommit=True) as su:
            su.execute(f"revoke execute on function {fn} from t_{a.id}_app")
    other_tenant_works(outputs, b)
    apply_and_verify_succeed(outputs)
    guard_pass(conn, GuardLimits(), db)  # records what the full lock table held back
    assert guard_audit(local_stack, f"t_{a.id}_app")


def test_cells_guard_command_runs_passes_and_refuses_bad_input(local_stack, pair):
    base = [sys.executable, "-m", "provisioner", "cells", "guard", "--stack", "local"]
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(local_stack.root)}
    bad = subprocess.run([*base, "--every", "0"], capture_output=True, text=True, env=env, timeout=120)
    assert bad.returncode == 2 and "--every must be a positive" in bad.stderr
    ok = subprocess.run(
        [*base, "--every", "0.2", "--passes", "2"], capture_output=True, text=True, env=env, timeout=120
    )
    assert ok.returncode == 0, ok.stderr
    assert "cell-1: 0 backend(s) terminated" in ok.stderr


# -- tenants verify --stress -----------------------------------------------------------------

STRESS = VerifyOptions(probes=0, catalog=False, ledger=False, stress=True)


def test_stress_probe_passes_on_a_governed_cell(outputs, pair):
    report = verify_cell(outputs, outputs.cluster("cell-1"), STRESS)
    assert report.errors == [], report.errors
    assert "stress" in report.checks_run
    assert [f for f in report.findings if f.check == "stress"] == []


def test_stress_probe_catches_a_strong_lock_grant_and_an_unlimited_role(local_stack, outputs, pair):
    with local_stack.superuser(autocommit=True) as su:
        su.execute("grant update on platform.worker_runs to askasia_tenant_app")
        roles = [r[0] for r in su.execute("select rolname from pg_roles where rolname ~ '^t_[a-z0-9]{12}_app$'")]
        limits = dict(su.execute("select rolname, rolconnlimit from pg_roles where rolname = any(%s)", (roles,)))
        for role in roles:
            su.execute(f'alter role "{role}" connection limit -1')
        try:
            report = verify_cell(outputs, outputs.cluster("cell-1"), STRESS)
        finally:
            su.execute("revoke update on platform.worker_runs from askasia_tenant_app")
            su.execute("grant update (status, finished_at) on platform.worker_runs to askasia_tenant_app")
            for role, limit in limits.items():
                su.execute(f'alter role "{role}" connection limit {int(limit)}')
    details = [f.detail for f in report.findings if f.check == "stress"]
    assert any("a strong lock on a shared table: allowed" in d for d in details), details
    assert any("sessions opened (limit -1)" in d for d in details), details


def test_the_pass_pg_cron_runs_every_minute_ends_an_idle_transaction(local_stack, outputs, pair):
    a, b = pair
    with local_stack.superuser() as su:
        job = su.execute("select schedule, command, username from cron.job where jobname = 'askasia-guard'").fetchone()
    assert job == ("* * * * *", "select guard.pass(1000, 30)", "askasia_guard")  # never as the master
    attacker = connect_as(outputs, "tenant", a.id, "cell-1")
    try:
        attacker.execute("set idle_in_transaction_session_timeout = 0")
        attacker.execute("select count(*) from platform.role_bindings").fetchone()
        time.sleep(2)
        with connect_master(outputs.cluster("cell-1"), outputs.region, autocommit=True) as master:
            assert master.execute("select guard.pass(1000, 1)").fetchone()[0] == 1
        with pytest.raises(psycopg.OperationalError):
            attacker.execute("select 1").fetchone()
    finally:
        attacker.close()
    assert any(d.get("by") == "pg_cron" for d in guard_audit(local_stack, f"t_{a.id}_app"))
    with tenant(outputs, a) as conn:  # a tenant cannot call it
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select guard.pass(0, 0)")
    other_tenant_works(outputs, b)


def test_the_guard_ends_the_newest_sessions_past_a_roles_connection_share(local_stack, outputs, pair, guard_session):
    from provisioner.guard import GuardLimits, guard_pass

    conn, db = guard_session
    a, b = pair
    role = f"t_{a.id}_app"
    sessions = [connect_as(outputs, "tenant", a.id, "cell-1") for _ in range(3)]
    try:
        with local_stack.superuser(autocommit=True) as su:
            su.execute(f'alter role "{role}" connection limit 1')  # the share shrank (a lower tier)
        actions = guard_pass(conn, GuardLimits(), db)
        ended = sorted(x.pid for x in actions if x.role == role and x.terminated)
        assert ended == sorted(s.info.backend_pid for s in sessions[1:])
        assert all("past its connection share (1)" in x.reason for x in actions if x.role == role)
        sessions[0].execute("select 1").fetchone()  # the oldest keeps working
    finally:
        for s in sessions:
            s.close()
        with local_stack.superuser(autocommit=True) as su:
            su.execute(f'alter role "{role}" connection limit {tier("starter").limits.connection_limit}')
    other_tenant_works(outputs, b)


def test_a_tenants_app_login_and_its_twin_share_one_connection_share(local_stack, outputs, pair, guard_session):
    """Each login keeps its own CONNECTION LIMIT in PostgreSQL: a tenant holding both passwords
    (the rotation's alternating users) must not get twice its share."""
    from provisioner.connect import Credentials, connect
    from provisioner.guard import GuardLimits, guard_pass
    from provisioner.names import TenantNames

    conn, db = guard_session
    a, b = pair
    names = TenantNames(a.id)
    password = secrets.token_urlsafe(24)
    with local_stack.superuser(autocommit=True) as su:
        su.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(names.twin_role), sql.Literal(password)))
        for role in names.login_roles:
            su.execute(sql.SQL("alter role {} connection limit 1").format(sql.Identifier(role)))
    first = connect_as(outputs, "tenant", a.id, "cell-1")
    second = connect(outputs.cluster("cell-1"), Credentials(names.twin_role, password))  # within the twin's own limit
    try:
        actions = guard_pass(conn, GuardLimits(), db)
        ended = [x for x in actions if x.role in names.login_roles and x.terminated]
        assert [(x.pid, x.role) for x in ended] == [(second.info.backend_pid, names.twin_role)]
        assert "past its connection share (1)" in ended[0].reason
        first.execute("select 1").fetchone()  # the older session keeps working
    finally:
        first.close()
        second.close()
        with local_stack.superuser(autocommit=True) as su:
            for role in names.login_roles:
                su.execute(
                    sql.SQL("alter role {} connection limit {}").format(
                        sql.Identifier(role), sql.Literal(tier("starter").limits.connection_limit)
                    )
                )
    other_tenant_works(outputs, b)


# -- cell capacity ---------------------------------------------------------------------------


@contextlib.contextmanager
def budgets(local_stack, outputs, headroom: dict[str, int]) -> Iterator[None]:
    """Each cell's connection budget set to what it has committed plus `headroom` connections
    (a database setting every new session reads), reset at the end."""
    rooms = directory.cell_rooms(outputs)
    try:
        for cell, spare in headroom.items():
            with local_stack.superuser(cell, autocommit=True) as su:
                database = outputs.cluster(cell).database
                su.execute(
                    f'alter database "{database}" set {CONNECTION_BUDGET_SETTING} = {rooms[cell].committed + spare}'
                )
        yield
    finally:
        for cell in headroom:
            with local_stack.superuser(cell, autocommit=True) as su:
                su.execute(f'alter database "{outputs.cluster(cell).database}" reset {CONNECTION_BUDGET_SETTING}')


def test_placement_takes_the_cell_with_room_and_refuses_when_none_has_it(local_stack, outputs, pair):
    a, _ = pair
    from provisioner import onboarding

    def new(slug: str, plan: str) -> list[directory.NewTenant]:
        return onboarding.validate_new_tenants(outputs, [{"partner": a.partner, "tenant": slug, "plan": plan}])

    roomy, full, late = unique("cap-a"), unique("cap-b"), unique("cap-c")
    starter = tier("starter").limits.connection_limit
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(local_stack.root)}
    with budgets(local_stack, outputs, {"cell-1": starter, "cell-2": starter - 1}):
        # a growth tenant fits nowhere: one line, exit 2, no row written
        refused = subprocess.run(
            [sys.executable, "-m", "provisioner", "tenants", "add", "--stack", "local"]
            + ["--partner", a.partner, "--tenant", full, "--plan", "growth"],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert refused.returncode == 2, refused.stderr
        assert f"tenant '{full}' (growth, 5 connections): no cell of the stack has room for it" in refused.stderr
        assert "nothing was written" in refused.stderr
        # a starter fits cell-1 only, whichever cell holds fewer tenants
        (placed,) = directory.place_tenants(outputs, new(roomy, "starter"))
        assert placed.cell == "cell-1" and placed.new
        # now cell-1 is full too; asking for a cell by name is held to the same budget
        with pytest.raises(ProvisionError, match="no cell of the stack has room for it"):
            directory.place_tenants(outputs, new(late, "starter"))
        with pytest.raises(ProvisionError, match="cell cell-2 has no room for it"):
            directory.place_tenants(outputs, new(late, "starter"), cell="cell-2")
    slugs = {t.slug for t in directory.tenants(outputs)}
    assert roomy in slugs and full not in slugs and late not in slugs
    results = apply(outputs, tenant_ids=frozenset({placed.id}), partner_ids=frozenset())
    assert apply_status(results) == 0, [r.errors for r in results]
