"""App-role passwords: libpq's SCRAM-SHA-256 verifier is all the database ever sees, and the
app logs in with the password Secrets Manager holds."""

from __future__ import annotations

import re
import threading
import time

import pytest
from psycopg import pq, sql

from provisioner import aws
from provisioner.connect import Credentials, connect, connect_master
from provisioner.credentials import LIST_PAGE, CredentialStore, scram_verifier, secret_name
from provisioner.errors import ProvisionError
from provisioner.names import ID_ALPHABET
from tests.helpers import app_credentials, apply, onboard, unique

# pg_authid's format: SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
VERIFIER = re.compile(r"SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]{44}:[A-Za-z0-9+/=]{44}")


def stored_password(local_stack, role: str) -> str:
    with local_stack.superuser() as su:
        return su.execute("select rolpassword from pg_authid where rolname = %s", (role,)).fetchone()[0]


def server_log(local_stack, cell: str = "cell-1") -> str:
    return local_stack.stack.server(local_stack.cell_state(cell)).log.read_text(errors="replace")


def test_app_role_holds_a_scram_verifier_and_logs_in(local_stack, outputs):
    partner = unique("cred-partner")
    tenant = onboard(outputs, {partner: "EU"}, [(partner, "cred-tenant", "starter")], cell="cell-1")["cred-tenant"]
    creds = app_credentials(outputs, "tenant", tenant.id)
    stored = stored_password(local_stack, creds.username)
    assert VERIFIER.fullmatch(stored), stored
    assert creds.password not in stored
    with connect(outputs.cluster("cell-1"), creds) as conn:
        assert conn.execute("select current_user").fetchone()[0] == creds.username
    with pytest.raises(ProvisionError, match="password authentication failed"):
        connect(outputs.cluster("cell-1"), Credentials(creds.username, creds.password + "x"))


def test_password_reaches_the_server_only_as_a_verifier(local_stack, outputs):
    # Every statement the master and the migrator (which runs partners' and tenants' steps) send
    # is logged while a partner and a tenant are onboarded: their passwords must not be among
    # them, their verifiers must.
    partner = unique("log-partner")
    apply(outputs, tenant_ids=frozenset(), partner_ids=frozenset())  # the control plane: the migrator exists
    with local_stack.superuser() as su:
        su.execute("alter role askasia_master set log_statement = 'all'")
        su.execute("alter role askasia_migrator set log_statement = 'all'")
        su.commit()
    try:
        start = len(server_log(local_stack))
        tenant = onboard(outputs, {partner: "EU"}, [(partner, "log-tenant", "starter")], cell="cell-1")["log-tenant"]
        logged = server_log(local_stack)[start:]
        for creds in (
            app_credentials(outputs, "tenant", tenant.id),
            app_credentials(outputs, "partner", tenant.partner_id),
        ):
            assert f'alter role "{creds.username}" password \'SCRAM-SHA-256$4096:' in logged
            assert creds.password not in logged

        # The check sees a plaintext password when one is sent.
        scratch, plaintext = unique("scratch").replace("-", "_"), unique("plaintext")
        with connect_master(outputs.cluster("cell-1"), outputs.region, autocommit=True) as conn:
            conn.execute(sql.SQL("create role {} password {}").format(sql.Identifier(scratch), sql.Literal(plaintext)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(scratch)))
        assert plaintext in server_log(local_stack)[start:]
    finally:
        with local_stack.superuser() as su:
            su.execute("alter role askasia_master reset log_statement")
            su.execute("alter role askasia_migrator reset log_statement")
            su.commit()


def test_verifier_is_computed_beside_a_query_in_flight(local_stack, outputs):
    # apply hashes the next batch's passwords with the connection a batch is running on.
    role, password = unique("hashed").replace("-", "_"), unique("pw")
    verifiers: list[str] = []
    overlapped: list[bool] = []

    def hash_while_busy(pgconn) -> None:
        while pgconn.transaction_status != pq.TransactionStatus.ACTIVE:
            time.sleep(0.001)
        verifiers.extend(scram_verifier(pgconn, password, role) for _ in range(50))
        overlapped.append(pgconn.transaction_status == pq.TransactionStatus.ACTIVE)

    with connect_master(outputs.cluster("cell-1"), outputs.region, autocommit=True) as conn:
        worker = threading.Thread(target=hash_while_busy, args=(conn.pgconn,))
        worker.start()
        assert conn.execute("select 1 from pg_sleep(1)").fetchone()[0] == 1
        worker.join()
        assert overlapped == [True]  # every verifier was made while the query ran
        assert len(set(verifiers)) == 50 and all(VERIFIER.fullmatch(v) for v in verifiers)  # a fresh salt each
        conn.execute(
            sql.SQL("create role {} login password {}").format(sql.Identifier(role), sql.Literal(verifiers[-1]))
        )
        conn.execute(sql.SQL("grant connect on database platform to {}").format(sql.Identifier(role)))
        try:
            with connect(outputs.cluster("cell-1"), Credentials(role, password)) as app:
                assert app.execute("select current_user").fetchone()[0] == role
            with pytest.raises(ProvisionError, match="password authentication failed"):
                connect(outputs.cluster("cell-1"), Credentials(role, "not-" + password))
        finally:
            conn.execute(sql.SQL("revoke connect on database platform from {}").format(sql.Identifier(role)))
            conn.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def test_current_versions_lists_every_owner_secret_past_one_page(local_stack, outputs):
    # More secrets than one ListSecrets page: the listing goes by slices of the ids' first
    # character, at once; every tenant's and partner's secret is found with its AWSCURRENT, an
    # operator's is not an owner's, and another stack's (a longer name with this one as its
    # prefix) is not this stack's.
    stack = unique("listing").replace("-", "")
    sm = aws.client("secretsmanager", outputs.region)
    wanted = {}
    ids = [f"{c}{n:011d}" for c in ID_ALPHABET for n in range(3)] + [f"z{n:011d}" for n in range(3, 60)]
    for index, owner_id in enumerate(ids):
        kind = "partner" if index % 7 == 0 else "tenant"
        created = sm.create_secret(Name=secret_name(stack, kind, owner_id), SecretString="{}")
        wanted[secret_name(stack, kind, owner_id)] = created["VersionId"]
    sm.create_secret(Name=f"askasia/{stack}/operators/cell-1/askasia_verifier/app", SecretString="{}")
    sm.create_secret(Name=secret_name(stack + "x", "tenant", ids[0]), SecretString="{}")
    assert len(wanted) > LIST_PAGE
    assert CredentialStore(stack, outputs.region, "").current_versions() == wanted
