"""Credential rotation with alternating users (provisioner/rotation.py) on the local stack: the
login the application holds keeps working throughout, the twin is as isolated as the app role,
a tenant cannot use its twin to escape, a kill between set and finish leaves AWSCURRENT working,
and broken credentials are reported by apply and repaired by rotation."""

from __future__ import annotations

import json
import threading
import time

import psycopg
import pytest
from psycopg import sql

from provisioner import aws, celllock, rotation
from provisioner.connect import Credentials, LoginRefused, connect, connect_master
from provisioner.credentials import secret_name
from provisioner.errors import ProvisionError
from provisioner.names import TenantNames
from provisioner.stackref import credential_store
from provisioner.verify.runner import VerifyOptions, verify_stack
from tests.helpers import app_credentials, apply, onboard, provision, unique

ROTATE_LIMIT_S = 120  # the client loop's bound while a rotation runs


def tenants(outputs, count: int = 2, cell: str = "cell-1") -> list:
    partner = unique("rot-p")
    slugs = [unique("rot") for _ in range(count)]
    made = onboard(outputs, {partner: "EU"}, [(partner, s, "starter") for s in slugs], cell=cell)
    return [made[s] for s in slugs]


def rotate(outputs, ref: str | None, kind: str = "tenant") -> rotation.Rotation:
    return rotation.rotate(outputs, kind, credential_store(outputs), ref)


def stages(outputs, kind: str, owner_id: str) -> dict[str, list[str]]:
    sm = aws.client("secretsmanager", outputs.region)
    described = sm.describe_secret(SecretId=secret_name(outputs.stack, kind, owner_id))
    return described["VersionIdsToStages"]


def version_of(outputs, kind: str, owner_id: str, stage: str) -> dict:
    sm = aws.client("secretsmanager", outputs.region)
    value = sm.get_secret_value(SecretId=secret_name(outputs.stack, kind, owner_id), VersionStage=stage)
    return json.loads(value["SecretString"])


def logs_in(outputs, cell: str, creds: Credentials) -> bool:
    try:
        connect(outputs.cluster(cell), creds, autocommit=True).close()
        return True
    except LoginRefused:
        return False


def test_rotation_alternates_logins_and_the_held_one_keeps_working(outputs):
    (t,) = tenants(outputs, 1)
    names = TenantNames(t.id)
    before = app_credentials(outputs, "tenant", t.id)
    assert before.username == names.app_role
    held = connect(outputs.cluster(t.cell), before, autocommit=True)  # the application's open session
    try:
        done = rotate(outputs, t.id)
        assert done.rotated == [f"tenant:{t.id}"] and not done.failed and done.repaired == {}
        after = app_credentials(outputs, "tenant", t.id)
        assert after.username == names.twin_role and after.password != before.password
        assert logs_in(outputs, t.cell, after) and logs_in(outputs, t.cell, before)
        assert held.execute("select current_user").fetchone()[0] == names.app_role  # never touched
        # AWSPREVIOUS holds the login the application had; it still works
        assert version_of(outputs, "tenant", t.id, "AWSPREVIOUS")["username"] == names.app_role
        # the next rotation sets the app role again; the twin (now AWSPREVIOUS) keeps working
        rotate(outputs, t.id)
        third = app_credentials(outputs, "tenant", t.id)
        assert third.username == names.app_role and third.password != before.password
        assert logs_in(outputs, t.cell, third) and logs_in(outputs, t.cell, after)
        assert not logs_in(outputs, t.cell, before)
    finally:
        held.close()


def test_a_client_connecting_throughout_a_rotation_is_never_refused(outputs):
    # The attack on availability: the application keeps logging in with whatever AWSCURRENT holds
    # while rotations of its tenant (and its neighbours) run.
    group = tenants(outputs, 3)
    a = group[0]
    refused: list[str] = []
    attempts = 0
    stop = threading.Event()

    def client() -> None:
        nonlocal attempts
        deadline = time.monotonic() + ROTATE_LIMIT_S
        while not stop.is_set() and time.monotonic() < deadline:
            creds = app_credentials(outputs, "tenant", a.id)
            attempts += 1
            try:
                with connect(outputs.cluster(a.cell), creds, autocommit=True) as conn:
                    conn.execute("select count(*) from leads")
            except ProvisionError as exc:
                refused.append(str(exc))

    loop = threading.Thread(target=client)
    loop.start()
    try:
        for _ in range(3):
            for t in group:
                assert rotate(outputs, t.id).failed == {}
    finally:
        stop.set()
        loop.join()
    assert attempts > 3 and refused == []


def test_the_twin_is_as_isolated_as_the_app_role_and_verify_probes_it(local_stack, outputs):
    a, b = tenants(outputs, 2)
    rotate(outputs, a.id)
    twin = app_credentials(outputs, "tenant", a.id)
    assert twin.username == TenantNames(a.id).twin_role
    with connect(outputs.cluster(a.cell), twin) as conn:
        assert conn.execute("select current_setting('search_path')").fetchone()[0] == f"t_{a.id}, pg_temp"
        conn.execute("insert into leads (name) values ('own')")  # its own work, as the app role's
        # shared rows: only its own tenant's, through its own binding
        assert conn.execute(
            "select count(*) from platform.role_bindings where role_name = current_user"
        ).fetchone() == (1,)
        assert conn.execute("select count(*) from platform.tenants where id <> %s", (a.id,)).fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(sql.SQL("select * from {}.leads").format(sql.Identifier(f"t_{b.id}")))
        conn.rollback()
    # verify logs in as whichever login AWSCURRENT names and finds the twin clean
    options = VerifyOptions(probes=5, tenants=frozenset({a.id, b.id}), catalog=False, ledger=False, secrets=False)
    reports = verify_stack(outputs, options, cells=[a.cell])
    assert [f for r in reports for f in r.findings] == [] and [r.errors for r in reports] == [[]]
    # ... and a grant that lets the twin read B is caught, naming the twin
    schema, who = sql.Identifier(f"t_{b.id}"), sql.Identifier(twin.username)
    with local_stack.superuser(cell=a.cell, autocommit=True) as su:
        su.execute(sql.SQL("grant usage on schema {} to {}").format(schema, who))
        su.execute(sql.SQL("grant select on {}.leads to {}").format(schema, who))
        try:
            reports = verify_stack(outputs, options, cells=[a.cell])
        finally:
            su.execute(sql.SQL("revoke select on {}.leads from {}").format(schema, who))
            su.execute(sql.SQL("revoke usage on schema {} from {}").format(schema, who))
    leaks = [f for r in reports for f in r.findings if f.object == f"{twin.username} -> t_{b.id}.leads"]
    assert any(f.detail.startswith("SELECT succeeded") for f in leaks), [f.object for r in reports for f in r.findings]


def test_a_tenant_cannot_use_its_twin_to_escape(outputs):
    (a,) = tenants(outputs, 1)
    names = TenantNames(a.id)
    twin = sql.Identifier(names.twin_role)
    with connect(outputs.cluster(a.cell), app_credentials(outputs, "tenant", a.id), autocommit=True) as app:
        for attempt in (
            sql.SQL("alter role {} password 'mine'").format(twin),  # take over the other login
            sql.SQL("alter role {} connection limit -1").format(twin),
            sql.SQL("grant {} to current_user").format(twin),
            sql.SQL("set role {}").format(twin),
            sql.SQL("set session authorization {}").format(twin),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(attempt)
    rotate(outputs, a.id)
    with connect(outputs.cluster(a.cell), app_credentials(outputs, "tenant", a.id), autocommit=True) as own:
        assert own.execute("select current_user").fetchone()[0] == names.twin_role
        for attempt in (
            sql.SQL("alter role {} createrole").format(twin),
            sql.SQL("alter role {} bypassrls").format(twin),
            sql.SQL("grant {} to {}").format(twin, sql.Identifier(f"t_{a.id}_ro")),
            sql.SQL("grant {} to {}").format(sql.Identifier(names.app_role), sql.Identifier(f"t_{a.id}_ro")),
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                own.execute(attempt)
        # SET ROLE to its own app role is allowed and harmless: the same tenant, the same binding
        own.execute(sql.SQL("set role {}").format(sql.Identifier(names.app_role)))
        assert own.execute("select count(*) from platform.tenants where id <> %s", (a.id,)).fetchone() == (0,)


def test_a_rotation_killed_between_set_and_finish_leaves_awscurrent_working_and_a_rerun_finishes(outputs, monkeypatch):
    (t,) = tenants(outputs, 1)
    before = app_credentials(outputs, "tenant", t.id)

    def killed(*args, **kwargs):
        raise SystemExit("killed")  # the process dies here: after the set and test steps

    monkeypatch.setattr(rotation, "finish", killed)
    with pytest.raises(SystemExit):
        rotate(outputs, t.id)
    monkeypatch.undo()
    assert app_credentials(outputs, "tenant", t.id) == before and logs_in(outputs, t.cell, before)
    pending = version_of(outputs, "tenant", t.id, "AWSPENDING")
    assert pending["username"] == TenantNames(t.id).twin_role  # set, tested, never made current
    done = rotate(outputs, t.id)
    assert done.rotated == [f"tenant:{t.id}"]
    after = app_credentials(outputs, "tenant", t.id)
    assert after.username == TenantNames(t.id).twin_role and after.password != pending["password"]
    assert logs_in(outputs, t.cell, after) and logs_in(outputs, t.cell, before)
    # the cell's apply lock was released by the killed run: apply runs, and finds nothing to warn of
    (result,) = [r for r in apply(outputs, tenant_ids=frozenset({t.id}), report_credentials=True) if r.cell == t.cell]
    assert result.status == "ok" and not [w for w in result.credentials if t.id in w]


def test_broken_credentials_are_reported_by_apply_and_repaired_by_rotation(outputs):
    lost, corrupt, changed = tenants(outputs, 3)
    sm = aws.client("secretsmanager", outputs.region)
    sm.delete_secret(SecretId=secret_name(outputs.stack, "tenant", lost.id), ForceDeleteWithoutRecovery=True)
    sm.put_secret_value(SecretId=secret_name(outputs.stack, "tenant", corrupt.id), SecretString="{not json")
    # the tenant itself changes its password behind the tool's back
    with connect(outputs.cluster(changed.cell), app_credentials(outputs, "tenant", changed.id), autocommit=True) as me:
        me.execute(
            sql.SQL("alter role {} password 'mine-now'").format(sql.Identifier(TenantNames(changed.id).app_role))
        )
    ids = frozenset({lost.id, corrupt.id, changed.id})

    def warned() -> dict[str, str]:
        results = apply(outputs, tenant_ids=ids, report_credentials=True, check_logins=True)
        assert all(r.status == "ok" for r in results), [r.errors for r in results]
        return {t: line for r in results for line in r.credentials for t in ids if f"tenant:{t}" in line}

    found = warned()
    assert set(found) == ids, found
    assert "missing" in found[lost.id] and "rotate-credentials" in found[lost.id]
    assert "not the one its login was set from" in found[corrupt.id]
    assert "refuses" in found[changed.id]
    for t in (lost, corrupt, changed):
        done = rotate(outputs, t.id)
        assert done.rotated == [f"tenant:{t.id}"], done.failed
        # a refused password needs no repair of the secret: an ordinary rotation sets the other login
        assert (f"tenant:{t.id}" in done.repaired) == (t is not changed), done.repaired
        assert logs_in(outputs, t.cell, app_credentials(outputs, "tenant", t.id))
    assert warned() == {}
    options = VerifyOptions(probes=5, tenants=ids, catalog=False, ledger=False, secrets=False)
    reports = verify_stack(outputs, options, cells=["cell-1"])
    assert [f for r in reports for f in r.findings] == [] and [r.errors for r in reports] == [[]]


def test_a_partner_rotates_in_every_cell(outputs):
    (t,) = tenants(outputs, 1)
    done = rotate(outputs, t.partner_id, kind="partner")
    assert done.rotated == [f"partner:{t.partner_id}"] and done.failed == {}
    creds = app_credentials(outputs, "partner", t.partner_id)
    assert creds.username == f"p_{t.partner_id}_app2"
    assert all(logs_in(outputs, c, creds) for c in outputs.cells)


def test_rotation_waits_for_no_apply_it_reports_the_cell_busy(outputs):
    (t,) = tenants(outputs, 1)
    before = stages(outputs, "tenant", t.id)
    with connect_master(outputs.cluster(t.cell), outputs.region, autocommit=True) as lock:
        celllock.take_exclusive(lock, t.cell, 0)
        done = rotate(outputs, None)
    busy = {c.cell: c.status for c in done.cells}
    assert busy[t.cell] == "busy" and int(done.status) == 2
    assert stages(outputs, "tenant", t.id) == before  # its tenants untouched
    assert all(s == "ok" for c, s in busy.items() if c != t.cell)


def test_a_closed_tenant_closes_both_logins(outputs):
    from provisioner.lifecycle import closure

    (t,) = tenants(outputs, 1)
    closure.close(outputs, closure.close_plan(outputs, t.id), None)
    names = TenantNames(t.id)
    with connect_master(outputs.cluster(t.cell), outputs.region) as conn:
        rows = conn.execute(
            "select rolname, rolcanlogin from pg_roles where rolname = any(%s) order by 1", (list(names.login_roles),)
        ).fetchall()
    assert rows == [(names.app_role, False), (names.twin_role, False)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "pass either --tenant ID-OR-SLUG or --all"),
        (["--all", "--tenant", "x"], "pass either --tenant ID-OR-SLUG or --all"),
        (["--tenant", "x'; drop role t_"], "is invalid"),
        (["--tenant", "no-such-tenant"], "not found"),
    ],
)
def test_bad_input_fails_in_one_line_before_anything_changes(local_stack, outputs, args, message):
    (t,) = tenants(outputs, 1)
    before = stages(outputs, "tenant", t.id)
    done = provision(local_stack, "tenants", "rotate-credentials", *args)
    assert done.returncode != 0 and message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert stages(outputs, "tenant", t.id) == before


def test_the_command_rotates_all_with_json(local_stack, outputs):
    (t,) = tenants(outputs, 1)
    done = provision(local_stack, "tenants", "rotate-credentials", "--all", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert f"tenant:{t.id}" in report["rotated"] and report["failed"] == {}
    assert {c["cell"] for c in report["cells"]} == set(outputs.cells)


def test_the_guard_ends_an_idle_transaction_of_a_twin(outputs):
    from provisioner.guard import GuardLimits, guard_credentials, guard_pass, open_guard

    (t,) = tenants(outputs, 1)
    rotate(outputs, t.id)
    twin = app_credentials(outputs, "tenant", t.id)
    cluster = outputs.cluster(t.cell)
    guard, db = open_guard(cluster, guard_credentials(outputs, cluster, credential_store(outputs)))
    attacker = connect(cluster, twin)
    try:
        attacker.execute("set idle_in_transaction_session_timeout = 0")
        attacker.execute("select count(*) from platform.role_bindings").fetchone()
        time.sleep(2)
        actions = guard_pass(guard, GuardLimits(idle_seconds=1), db)
        assert (twin.username, True) in [(x.role, x.terminated) for x in actions]
        with pytest.raises(psycopg.OperationalError):
            attacker.execute("select 1").fetchone()
    finally:
        attacker.close()
        guard.close()


def test_an_apply_whose_secrets_cannot_be_listed_still_applies_and_says_so(outputs, monkeypatch):
    """Listing the secrets only serves the credentials report: AWS failing it (moto answers HTTP
    500 under load) costs the report, not the apply, and is said on every cell."""
    from botocore.exceptions import ClientError

    from provisioner.credentials import CredentialStore

    (t,) = tenants(outputs, 1)

    def failing(self):
        raise ClientError({"Error": {"Code": "500", "Message": "Internal Server Error\n<html>"}}, "ListSecrets")

    monkeypatch.setattr(CredentialStore, "current_versions", failing)
    results = apply(outputs, tenant_ids=frozenset({t.id}), report_credentials=True)
    assert all(r.status == "ok" for r in results), [r.errors for r in results]
    for r in results:
        (line,) = r.credentials
        assert "credentials not checked: the stack's secrets could not be listed" in line and "\n" not in line
