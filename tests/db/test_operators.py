"""Operator roles (sql/platform/V040): apply's partner and tenant steps run as the migrator, verify
runs as the verifier, each with its own secret; the master only creates them and sets their
passwords. Attacks run with the operators' real credentials: the verifier writes nothing and
becomes no tenant, the migrator holds no tenant's role between steps, other tenants are served."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from provisioner import aws, connect, directory
from provisioner.apply import ApplyOptions, CellApplier
from provisioner.connect import SecretReads
from provisioner.operators import MIGRATOR, VERIFIER, operator_credentials, operator_secret
from provisioner.stackref import credential_store
from provisioner.verify.runner import VerifyOptions, verify_cell
from tests.helpers import apply, connect_as, onboard, refused, unique

MASTER = "askasia_master"
OWNER_MEMBERSHIPS = (
    "select m.member::regrole::text, m.roleid::regrole::text from pg_auth_members m "
    "where m.roleid::regrole::text ~ '^[tp]_' and m.member::regrole::text = any(%s)"
)


@pytest.fixture(scope="module")
def pair(local_stack, outputs) -> tuple[directory.Tenant, directory.Tenant]:
    partner = unique("ops-p")
    a, b = unique("ops-a"), unique("ops-b")
    tenants = onboard(outputs, {partner: "EU"}, [(partner, a, "starter"), (partner, b, "growth")], cell="cell-1")
    return tenants[a], tenants[b]


def login(outputs, role: str, cell: str = "cell-1", **kw) -> psycopg.Connection:
    cluster = outputs.cluster(cell)
    return connect.connect(cluster, operator_credentials(outputs, cluster, role), **kw)


def test_apply_leaves_no_tenant_role_with_the_migrator_or_the_master(local_stack, pair):
    with local_stack.superuser() as su:
        assert su.execute(OWNER_MEMBERSHIPS, ([MIGRATOR, MASTER],)).fetchall() == []
        # The tenants' objects belong to their owners, whoever ran the steps.
        owners = su.execute(
            "select nspname, pg_get_userbyid(nspowner) from pg_namespace where nspname = any(%s)",
            ([f"t_{t.id}" for t in pair],),
        ).fetchall()
    assert sorted(owners) == sorted((f"t_{t.id}", f"t_{t.id}_owner") for t in pair)


def test_the_verifier_writes_nothing_and_becomes_no_tenant(outputs, pair):
    a, b = pair
    schema, owner, app = f"t_{a.id}", f"t_{a.id}_owner", f"t_{a.id}_app"
    attacks = [
        sql.SQL(
            "insert into platform.tenants (id, partner_id, slug, plan, home_region, cell) "
            "values ('zzzzzzzzzzzz', {}, 'evil', 'starter', 'x', 'cell-1')"
        ).format(sql.Literal(a.partner_id)),
        "update platform.schema_ledger set checksum = 'x'",
        "delete from platform.audit_events",
        "select actor, detail from platform.audit_events limit 1",
        "select amount from platform.cost_entries limit 1",
        "select email from platform.dsr_requests limit 1",
        sql.SQL("select count(*) from {}.leads").format(sql.Identifier(schema)),
        sql.SQL("set role {}").format(sql.Identifier(owner)),
        sql.SQL("set role {}").format(sql.Identifier(app)),
        sql.SQL("grant {} to current_user").format(sql.Identifier(owner)),
        sql.SQL("alter role {} password 'x'").format(sql.Identifier(app)),
        "create schema verifier_plant",
        "create table public.verifier_plant (x int)",
        "create temp table verifier_plant (x int)",
        "lock table platform.apply_lock in share mode",
        "alter table platform.audit_events disable row level security",
    ]
    with login(outputs, VERIFIER) as verifier, connect_as(outputs, "tenant", b.id, b.cell) as victim:
        victim_pid = victim.info.backend_pid
        outcomes = {str(i): refused(verifier, s) for i, s in enumerate(attacks)}
        outcomes["terminate"] = refused(verifier, sql.SQL("select pg_terminate_backend({})").format(victim_pid))
        assert {k: v for k, v in outcomes.items() if v is not None} == {}, outcomes
        # What it is for still works: the directory, and its share of the apply lock.
        assert verifier.execute("select count(*) from platform.tenants where id = %s", (a.id,)).fetchone()[0] == 1
        assert verifier.execute("select platform.verify_lock()").fetchone()[0] is True
        verifier.rollback()
        # The other tenant was served throughout, on the session the verifier tried to end.
        assert victim.execute("select count(*) from leads").fetchone()[0] >= 0


def test_the_migrator_between_steps_reaches_no_tenant_data(outputs, pair):
    a, _ = pair
    with login(outputs, MIGRATOR) as migrator:
        assert migrator.execute("select current_user").fetchone()[0] == MIGRATOR
        outcomes = [
            refused(migrator, sql.SQL("select count(*) from {}.leads").format(sql.Identifier(f"t_{a.id}"))),
            refused(migrator, sql.SQL("set role {}").format(sql.Identifier(f"t_{a.id}_app"))),
            refused(migrator, "delete from platform.audit_events"),
        ]
    assert outcomes == [None, None, None]


def test_verify_runs_without_the_master_credential(outputs, pair, monkeypatch):
    """Catalog, ledger and probes need only the verifier (and the tenants' own credentials for
    the probes' logins): any read of the master secret fails here."""
    masters = {c.master_secret_arn for c in outputs.clusters}
    real = connect.secret_credentials

    def no_master(secret_id: str, region: str) -> connect.Credentials:
        assert secret_id not in masters, "verify read the master secret"
        return real(secret_id, region)

    monkeypatch.setattr(connect, "secret_credentials", no_master)
    monkeypatch.setattr("provisioner.operators.secret_credentials", no_master)
    report = verify_cell(
        outputs, outputs.cluster("cell-1"), VerifyOptions(probes=2, tenants=frozenset(t.id for t in pair))
    )
    assert report.errors == []
    assert {"operator_attributes", "operator_membership"} <= set(report.checks_run)
    assert [f for f in report.findings if f.check.startswith("operator_")] == []


def test_apply_repairs_an_operator_whose_secret_is_lost_or_password_changed(local_stack, outputs, pair):
    cluster = outputs.cluster("cell-1")
    with local_stack.superuser(autocommit=True) as su:
        su.execute(sql.SQL("alter role {} password 'changed-behind-our-back'").format(sql.Identifier(VERIFIER)))
    aws.client("secretsmanager", outputs.region).delete_secret(
        SecretId=operator_secret(outputs.stack, cluster.cell, MIGRATOR), ForceDeleteWithoutRecovery=True
    )
    with pytest.raises(Exception, match="password authentication failed|no credentials"):
        login(outputs, VERIFIER).close()
    results = apply(outputs, tenant_ids=frozenset(), partner_ids=frozenset())
    assert all(r.status == "ok" for r in results), [r.errors for r in results]
    for role in (VERIFIER, MIGRATOR):
        with login(outputs, role) as conn:
            assert conn.execute("select current_user").fetchone()[0] == role


class AwsCalls:
    """Secrets Manager operations boto3 sends while counting (botocore's before-call event)."""

    def __init__(self, region: str):
        self.client = aws.client("secretsmanager", region)
        self.seen: list[str] = []

    def _count(self, model, **_) -> None:
        self.seen.append(model.name)

    def __enter__(self) -> list[str]:
        self.client.meta.events.register("before-call.secrets-manager", self._count)
        return self.seen

    def __exit__(self, *_) -> None:
        self.client.meta.events.unregister("before-call.secrets-manager", self._count)


def test_a_no_op_apply_reads_each_cells_secrets_in_one_batch(outputs, pair):
    apply(outputs, tenant_ids=frozenset(), partner_ids=frozenset())  # operators and their secrets exist
    with AwsCalls(outputs.region) as calls:
        results = apply(outputs, tenant_ids=frozenset(), partner_ids=frozenset())
    assert all(r.status == "ok" for r in results), [r.errors for r in results]
    # The masters' and operators' secrets of every cell: one batch per twenty, nothing read alone
    # for each session, nothing created.
    wanted = len(outputs.clusters) * 3
    assert calls == ["BatchGetSecretValue"] * -(-wanted // 20), calls


def test_apply_reads_a_master_secret_again_when_the_one_it_read_is_refused(outputs, pair):
    cluster = outputs.cluster("cell-1")
    reads = SecretReads(outputs.region)
    reads.prefetch([cluster.master_secret_arn])
    stale = {**reads.document(cluster.master_secret_arn), "password": "rotated-since-this-run-read-it"}
    reads._docs[cluster.master_secret_arn] = stale  # as if the secret changed after the batch read it
    options = ApplyOptions(tenant_ids=frozenset(), partner_ids=frozenset())
    result = CellApplier(outputs, cluster, options, credential_store(outputs), secrets=reads).run()
    assert result.status == "ok", result.errors
    assert reads.document(cluster.master_secret_arn)["password"] != stale["password"]
