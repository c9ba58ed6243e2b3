"""The lifecycle and directory commands run as operator roles, never as the master: closure,
reopening, export and purge, partners' terminate, export and purge, audit retention and the
data-subject requests as the migrator; `tenants list` and the directory reads as the verifier.
Each is run here with every read of a master secret failing, and still does its job; an operator
secret missing or refused is one error that says to run apply. The grants these jobs rely on
are attacked with the operators' real credentials."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from provisioner import aws, connect, directory
from provisioner.errors import ProvisionError
from provisioner.lifecycle import closure, dsr, export, partner_export, partners, retention
from provisioner.operators import MIGRATOR, VERIFIER, operator_credentials, operator_secret
from tests.helpers import apply, connect_as, onboard, refused, run_in_process, unique

MASTER = "askasia_master"
MEMBERSHIPS = (
    "select m.member::regrole::text, m.roleid::regrole::text from pg_auth_members m "
    "where m.roleid::regrole::text ~ '^[tp]_' and m.member::regrole::text = any(%s)"
)


def block_master(outputs, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every read of a cell's master secret fails from here on (and is counted)."""
    masters = {c.master_secret_arn for c in outputs.clusters}
    real = connect.secret_credentials
    reads: list[str] = []

    def guarded(secret_id: str, region: str) -> connect.Credentials:
        if secret_id in masters:
            reads.append(secret_id)
            raise ProvisionError(f"the master secret {secret_id} is unreadable here")
        return real(secret_id, region)

    monkeypatch.setattr(connect, "secret_credentials", guarded)
    monkeypatch.setattr("provisioner.operators.secret_credentials", guarded)
    return reads


def login(outputs, role: str, cell: str = "cell-1") -> psycopg.Connection:
    cluster = outputs.cluster(cell)
    return connect.connect(cluster, operator_credentials(outputs, cluster, role))


def days_back(local_stack, table: str, column: str, value: str, cells=("cell-1", "cell-2")) -> None:
    """Date a closure or termination 31 days back, in the database (no --as-of moves a clock)."""
    for cell in cells:
        with local_stack.superuser(cell=cell) as su:
            su.execute(
                sql.SQL("update platform.{} set {} = now() - interval '31 days' where id = %s").format(
                    sql.Identifier(table), sql.Identifier(column)
                ),
                (value,),
            )
            su.commit()


def no_tenant_membership(local_stack) -> None:
    for cell in ("cell-1", "cell-2"):
        with local_stack.superuser(cell=cell) as su:
            assert su.execute(MEMBERSHIPS, ([MIGRATOR, VERIFIER, MASTER],)).fetchall() == [], cell


def test_every_lifecycle_command_runs_without_the_master_secret(local_stack, outputs, tmp_path: Path, monkeypatch):
    agency, other = unique("lo-agency"), unique("lo-other")
    slugs = [unique("lo-a"), unique("lo-b"), unique("lo-c")]
    made = onboard(
        outputs,
        {agency: "EU", other: "EU"},
        [(agency, slugs[0], "growth"), (agency, slugs[1], "starter"), (other, slugs[2], "starter")],
    )
    leaving, kept, bystander = (made[s] for s in slugs)
    email = f"{unique('lo-person')}@example.com"
    with local_stack.superuser(cell=bystander.cell) as su:
        su.execute(
            "insert into platform.audit_events (tenant_id, partner_id, actor, action, detail) "
            "values (%s, %s, %s, 'login', '{}')",
            (bystander.id, bystander.partner_id, email),
        )
        su.commit()
    with connect_as(outputs, "tenant", leaving.id, leaving.cell) as conn:
        conn.execute("insert into leads (name, email) values ('Ada', 'ada@example.com')")
        conn.commit()
    reads = block_master(outputs, monkeypatch)

    # tenants list (the verifier)
    listed, down = directory.reachable_tenants(outputs)
    assert down == {} and {leaving.id, kept.id, bystander.id} <= {t.id for t in listed}

    # close (its sessions end), reopen, close again
    with connect_as(outputs, "tenant", leaving.id, leaving.cell) as session:
        assert closure.close(outputs, closure.close_plan(outputs, leaving.id)) >= 1
        with pytest.raises(psycopg.OperationalError):
            session.execute("select 1")
    assert closure.reopen(outputs, leaving.id).id == leaving.id
    with connect_as(outputs, "tenant", leaving.id, leaving.cell) as session:
        assert session.execute("select count(*) from leads").fetchone()[0] == 1
    closure.close(outputs, closure.close_plan(outputs, leaving.id))

    # export of the closed tenant (its schema, read as its owner inside the export only)
    done = export.export_tenant(outputs, leaving, export.Destination(directory=tmp_path / "t"))
    leads = next(f for f in done.files if f.name.endswith(".leads"))
    assert leads.rows == 1

    # partners terminate (closing its other tenant), export, then purge after 30 days
    plan = partners.terminate_plan(outputs, agency, close_tenants=True)
    partners.terminate(outputs, plan, None)
    assert {p.tenant.id for p in plan.close} == {kept.id}
    state = partners.find_partner(outputs, agency)
    assert state.status == "terminated"
    shipped = partner_export.export_partner(outputs, state, export.Destination(directory=tmp_path / "p"))
    assert shipped.files and all(f.rows >= 0 for f in shipped.files)

    # purge one tenant, then the partner (and the rest of its tenants)
    days_back(local_stack, "tenants", "closed_at", leaving.id, cells=(leaving.cell,))
    days_back(local_stack, "tenants", "closed_at", kept.id, cells=(kept.cell,))
    assert closure.purge(outputs, closure.purge_plan(outputs, leaving.id, None)) == [leaving.id]
    days_back(local_stack, "partners", "terminated_at", state.id)
    assert partners.purge(outputs, partners.purge_plan(outputs, agency, None)) == [kept.id]
    remaining = {t.id for t in directory.tenants(outputs)}
    assert leaving.id not in remaining and kept.id not in remaining and bystander.id in remaining

    # audit retention on every cell
    ran = retention.run_retention(outputs, dry_run=True)
    assert [r.status for r in ran] == ["ok", "ok"], [r.errors for r in ran]
    ran = retention.run_retention(outputs)
    assert [r.status for r in ran] == ["ok", "ok"], [r.errors for r in ran]

    # data-subject requests: open, list, export, erase
    request = dsr.open_request(outputs, email, "deletion")
    assert request.id in {r.id for r in dsr.list_requests(outputs, email=email)}
    assert [f["actor"] for f in dsr.export(outputs, email)] == [email]
    assert sum(dsr.erase(outputs, email).values()) == 1
    assert dsr.find(outputs, email) == []

    assert reads == []
    monkeypatch.undo()
    no_tenant_membership(local_stack)
    with local_stack.superuser(cell=bystander.cell) as su:
        actors = su.execute(
            "select actor from platform.audit_events where tenant_id = %s and action = 'login'", (bystander.id,)
        ).fetchall()
    # each action's audit row names the migrator, the role that did it; requests live in the first cell
    with local_stack.superuser(cell=outputs.clusters[0].cell) as su:
        doers = {
            r[0]
            for r in su.execute(
                "select distinct actor from platform.audit_events where action in ('dsr.opened', 'dsr.erased')"
            )
        }
    assert actors == [(dsr.pseudonym(email),)]
    assert doers == {MIGRATOR}


def test_a_missing_or_refused_operator_secret_is_one_line_saying_to_apply(local_stack, outputs, capsys, monkeypatch):
    apply(outputs, tenant_ids=frozenset(), partner_ids=frozenset())
    monkeypatch.setenv("ASKASIA_LOCAL_DIR", str(local_stack.root))
    reads = block_master(outputs, monkeypatch)
    cluster = outputs.cluster("cell-1")
    try:
        with local_stack.superuser(autocommit=True) as su:
            su.execute(sql.SQL("alter role {} password 'changed-behind-our-back'").format(sql.Identifier(MIGRATOR)))
        with pytest.raises(ProvisionError) as refused_login:
            dsr.list_requests(outputs)
        aws.client("secretsmanager", outputs.region).delete_secret(
            SecretId=operator_secret(outputs.stack, cluster.cell, VERIFIER), ForceDeleteWithoutRecovery=True
        )
        with pytest.raises(ProvisionError) as missing:
            directory.tenants(outputs)
        code, out, err = run_in_process(["tenants", "list", "--stack", "local"], capsys, monkeypatch)
    finally:
        monkeypatch.undo()
        results = apply(outputs, tenant_ids=frozenset(), partner_ids=frozenset())
    assert all(r.status == "ok" for r in results), [r.errors for r in results]
    for error, role in ((refused_login.value, MIGRATOR), (missing.value, VERIFIER)):
        text = str(error)
        assert "\n" not in text and role in text and "provision tenants apply" in text, text
    # `tenants list` names the cell it could not read and why, and does not exit 0
    assert code != 0 and "provision tenants apply" in " ".join((out + err).split()), (code, out, err)
    assert reads == []  # refused, never retried as the master
    for role in (MIGRATOR, VERIFIER):  # apply set both again
        with login(outputs, role) as conn:
            assert conn.execute("select current_user").fetchone()[0] == role


def test_the_migrator_changes_audit_rows_only_through_the_erasure(local_stack, outputs):
    partner = unique("lo-e")
    (tenant,) = onboard(outputs, {partner: "EU"}, [(partner, unique("lo-et"), "starter")]).values()
    email = f"{unique('lo-erase')}@example.com"
    with local_stack.superuser(cell=tenant.cell) as su:
        su.execute(
            "insert into platform.audit_events (tenant_id, partner_id, actor, action, detail) "
            "values (%s, %s, %s, 'login', %s)",
            (tenant.id, tenant.partner_id, email, json.dumps({"to": email})),
        )
        su.commit()
    with login(outputs, MIGRATOR, tenant.cell) as migrator:
        attacks = [
            "update platform.audit_events set actor = 'someone-else'",
            sql.SQL("update platform.audit_events set action = 'x' where tenant_id = {}").format(
                sql.Literal(tenant.id)
            ),
            "delete from platform.audit_events",
            "truncate platform.audit_events",
            "select platform.audit_partition_secure('platform.audit_events'::regclass)",
        ]
        assert [refused(migrator, a) for a in attacks] == [None] * len(attacks)
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            migrator.execute("select platform.dsr_erase('not an address')")
        migrator.rollback()
        assert migrator.execute("select platform.dsr_erase(%s)", (email.upper(),)).fetchone()[0] == 1
        migrator.commit()
    with local_stack.superuser(cell=tenant.cell) as su:
        row = su.execute(
            "select actor, action, detail from platform.audit_events where tenant_id = %s and action = 'login'",
            (tenant.id,),
        ).fetchone()
    alias = dsr.pseudonym(email)
    assert row == (alias, "login", {"to": alias})
    # Nobody else may call it: the verifier, the tenant's own role.
    with (
        login(outputs, VERIFIER, tenant.cell) as verifier,
        connect_as(outputs, "tenant", tenant.id, tenant.cell) as app,
    ):
        assert refused(verifier, sql.SQL("select platform.dsr_erase({})").format(sql.Literal(email))) is None
        assert refused(app, sql.SQL("select platform.dsr_erase({})").format(sql.Literal(email))) is None


def test_the_migrator_reads_a_tenants_data_only_inside_an_export(local_stack, outputs, tmp_path: Path):
    partner = unique("lo-x")
    (tenant,) = onboard(outputs, {partner: "EU"}, [(partner, unique("lo-xt"), "starter")]).values()
    schema = sql.Identifier(f"t_{tenant.id}")
    with login(outputs, MIGRATOR, tenant.cell) as migrator:
        assert refused(migrator, sql.SQL("select count(*) from {}.leads").format(schema)) is None
    done = export.export_tenant(outputs, tenant, export.Destination(directory=tmp_path))
    assert any(f.name.endswith(".leads") for f in done.files)
    no_tenant_membership(local_stack)
    with login(outputs, MIGRATOR, tenant.cell) as migrator:
        assert refused(migrator, sql.SQL("select count(*) from {}.leads").format(schema)) is None


# An export that streams nothing, slowly: the test kills it while its transaction is open.
STALLED_EXPORT = """
import sys, time
from pathlib import Path
from provisioner import directory
from provisioner.lifecycle import export
from provisioner.stackref import resolve

def stalled(conn, query, sink):
    print("streaming", flush=True)
    time.sleep(120)

export.stream = stalled
outputs = resolve("local")
tenant = next(t for t in directory.tenants(outputs) if t.id == sys.argv[1])
export.export_tenant(outputs, tenant, export.Destination(directory=Path(sys.argv[2])))
"""


def test_an_export_killed_mid_stream_leaves_the_migrator_no_membership(local_stack, outputs, tmp_path: Path):
    """The owner role an export reads as is never committed to the migrator: not while the
    export runs (other sessions see nothing) and not after a SIGKILL."""
    partner = unique("lo-k")
    (tenant,) = onboard(outputs, {partner: "EU"}, [(partner, unique("lo-kt"), "starter")]).values()
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(local_stack.root)}
    proc = subprocess.Popen(
        [sys.executable, "-c", STALLED_EXPORT, tenant.id, str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "streaming", proc.stderr
        with local_stack.superuser(cell=tenant.cell) as su:
            # the export's session holds the owner role, uncommitted: no other session sees it
            holding = su.execute(
                "select count(*) from pg_stat_activity where usename = %s and state = 'idle in transaction'",
                (MIGRATOR,),
            ).fetchone()[0]
            assert holding == 1
            assert su.execute(MEMBERSHIPS, ([MIGRATOR],)).fetchall() == []
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    no_tenant_membership(local_stack)
