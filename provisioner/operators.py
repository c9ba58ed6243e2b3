"""The tool's operator roles (sql/platform/V040): the migrator runs partner and tenant steps and
the lifecycle commands (closure, purge, export, retention, data-subject requests), the verifier
runs verify and reads the directory. Each logs in with its own secret in Secrets Manager; the
master only creates these roles (the platform steps) and sets or repairs their passwords from
those secrets, in apply."""

from __future__ import annotations

import psycopg
from psycopg import sql

from contract.outputs import Cluster, StackOutputs
from provisioner.connect import Credentials, LoginRefused, SecretReads, connect, secret_credentials
from provisioner.credentials import CredentialStore, Endpoint, scram_verifier, secret_name
from provisioner.errors import ProvisionError
from provisioner.names import ROLES

MIGRATOR, VERIFIER = ROLES["migrator"], ROLES["verifier"]
OPERATORS = (MIGRATOR, VERIFIER)
KIND = "operator"


def operator_secret(stack: str, cell: str, role: str) -> str:
    """askasia/<stack>/operators/<cell>/<role>/app: one secret per role and cell (each cell is
    its own cluster, with its own roles)."""
    return secret_name(stack, KIND, f"{cell}/{role}")


def operator_credentials(
    outputs: StackOutputs, cluster: Cluster, role: str, secrets: SecretReads | None = None
) -> Credentials:
    """The role's credentials: from `secrets` (the run's batched reads) when given, else read alone."""
    name = operator_secret(outputs.stack, cluster.cell, role)
    try:
        return secrets.credentials(name) if secrets is not None else secret_credentials(name, outputs.region)
    except ProvisionError:
        raise
    except Exception as exc:  # botocore: no such secret, access denied
        raise ProvisionError(
            f"cell {cluster.cell}: no credentials for the operator role {role} (secret {name}): {exc}; "
            f"run provision tenants apply --stack {outputs.stack}, which sets them"
        ) from None


def connect_operator(
    outputs: StackOutputs,
    cluster: Cluster,
    role: str,
    *,
    autocommit: bool = False,
    secrets: SecretReads | None = None,
) -> psycopg.Connection:
    """A session as `role` for a command other than apply. Only apply's master session sets an
    operator's password, so a missing or refused secret is an error saying so, never a reason
    to log in as the master instead."""
    creds = operator_credentials(outputs, cluster, role, secrets)
    try:
        return connect(cluster, creds, autocommit=autocommit)
    except LoginRefused as exc:
        raise ProvisionError(
            f"{exc}; run provision tenants apply --stack {outputs.stack}, which sets the {role} role's password"
        ) from None


def _login(cluster: Cluster, creds: Credentials, autocommit: bool) -> psycopg.Connection | None:
    """A session as `creds`, or None when the server refuses the password (anything else raises)."""
    try:
        return connect(cluster, creds, autocommit=autocommit)
    except LoginRefused as exc:
        if "password authentication failed" in str(exc):
            return None
        raise


def ensure_operator(
    master: psycopg.Connection,
    store: CredentialStore,
    cluster: Cluster,
    role: str,
    *,
    autocommit: bool = True,
    known: dict | None = None,
) -> psycopg.Connection:
    """A session as `role`, its password set by the master from the role's secret first when the
    server refuses it (a new role, a new or lost secret, a restored cell). The secret is made
    when missing and reused after a crash, so secret and role converge on a re-run. `known`: the
    secret's document when the caller already read it (its password is what the store returns)."""
    if known is not None and known.get("username") == role and known.get("password"):
        creds = Credentials(role, known["password"])
    else:
        endpoint = Endpoint(cluster.endpoint, cluster.port, cluster.database)
        creds = Credentials(role, store.ensure_versioned(KIND, f"{cluster.cell}/{role}", role, endpoint).password)
    conn = _login(cluster, creds, autocommit)
    if conn is not None:
        return conn
    verifier = scram_verifier(master.pgconn, creds.password, role)
    master.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(role), sql.Literal(verifier)))
    if not master.autocommit:
        master.commit()
    conn = _login(cluster, creds, autocommit)
    if conn is None:
        raise ProvisionError(f"cell {cluster.cell}: the {role} role refuses the password just set from its secret")
    return conn
