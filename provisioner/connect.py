"""Connections to a cell: credentials from Secrets Manager, TLS verified against the CA bundle."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from contract.outputs import Cluster
from provisioner import aws
from provisioner.errors import ProvisionError
from provisioner.stackref import project_dir

APPLICATION_NAME = "askasia-provisioner"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


class LoginRefused(ProvisionError):
    """The server refused this role's login (its password, its connection limit, its LOGIN
    attribute): something about the role, not the cell, which did answer."""


# libpq reports the server's FATAL message only as text: these are the refusals of one role.
_REFUSALS = ("password authentication failed", "too many connections for role", "is not permitted to log in")


def read_secret_json(secret_id: str, region: str) -> dict:
    value = aws.client("secretsmanager", region).get_secret_value(SecretId=secret_id)
    try:
        return json.loads(value["SecretString"])
    except (KeyError, json.JSONDecodeError):
        raise ProvisionError(f"secret {secret_id} is not a JSON credentials document") from None


def secret_credentials(secret_id: str, region: str) -> Credentials:
    """RDS-shaped secrets: {"username": ..., "password": ...} (plus host/port/dbname for apps)."""
    return credentials_of(secret_id, read_secret_json(secret_id, region))


def credentials_of(secret_id: str, doc: dict) -> Credentials:
    try:
        return Credentials(doc["username"], doc["password"])
    except KeyError:
        raise ProvisionError(f"secret {secret_id} lacks username or password") from None


BATCH_SECRETS = 20  # Secrets Manager's BatchGetSecretValue returns at most 20 secrets by id


class SecretReads:
    """One run's reads of the credential documents it needs: the ones named up front come in
    one BatchGetSecretValue per twenty (a cell's master and operator secrets: one call for ten
    cells instead of one per secret and session); any other, or one the batch did not return,
    is read alone when asked for. Kept for the run only, so a secret changed since is read anew
    by the next run."""

    def __init__(self, region: str):
        self.region = region
        self._docs: dict[str, dict] = {}
        self._lock = threading.Lock()

    def prefetch(self, secret_ids: list[str]) -> None:
        """Best effort: a secret missing, or a batch refused (no permission for the batch call),
        leaves those ids to be read alone, where their error belongs to the cell that asks."""
        sm = aws.client("secretsmanager", self.region)
        wanted = list(dict.fromkeys(secret_ids))
        for start in range(0, len(wanted), BATCH_SECRETS):
            chunk = wanted[start : start + BATCH_SECRETS]
            try:
                found = sm.batch_get_secret_value(SecretIdList=chunk)
            except Exception:  # botocore: access denied, throttled, an old endpoint without the call
                return
            for entry in found.get("SecretValues", []):
                try:
                    doc = json.loads(entry["SecretString"])
                except (KeyError, json.JSONDecodeError):
                    continue  # read alone, which says what is wrong with it
                with self._lock:
                    for key in (entry.get("ARN"), entry.get("Name")):
                        if key:
                            self._docs[key] = doc

    def prefetched(self, secret_id: str) -> dict | None:
        with self._lock:
            return self._docs.get(secret_id)

    def document(self, secret_id: str) -> dict:
        doc = self.prefetched(secret_id)
        if doc is None:
            doc = read_secret_json(secret_id, self.region)
            with self._lock:
                self._docs[secret_id] = doc
        return doc

    def credentials(self, secret_id: str) -> Credentials:
        return credentials_of(secret_id, self.document(secret_id))

    def forget(self, secret_id: str) -> None:
        """Drop a document the server refused: the next ask reads the secret again."""
        with self._lock:
            self._docs.pop(secret_id, None)


def resolve_ca_bundle(value: str) -> Path:
    """A path, or the name of an RDS CA (e.g. rds-ca-rsa2048-g1) looked up in the CA directory."""
    direct = Path(value)
    if direct.is_file():
        return direct
    ca_dir = Path(os.environ.get("ASKASIA_CA_DIR") or project_dir() / "certs")
    named = ca_dir / f"{value}.pem"
    if named.is_file():
        return named
    raise ProvisionError(
        f"CA bundle {value!r} not found: place AWS's RDS certificate bundle at {named} "
        "(or set ASKASIA_CA_DIR); connections are only made with sslmode=verify-full"
    )


def conninfo(cluster: Cluster, creds: Credentials, dbname: str | None = None) -> dict:
    return {
        "host": cluster.endpoint,
        "port": cluster.port,
        "dbname": dbname or cluster.database,
        "user": creds.username,
        "password": creds.password,
        "sslmode": "verify-full",
        "sslrootcert": str(resolve_ca_bundle(cluster.ca_bundle)),
        "ssl_min_protocol_version": "TLSv1.2",
        "application_name": APPLICATION_NAME,
        "connect_timeout": 5,
    }


def connect(
    cluster: Cluster, creds: Credentials, *, autocommit: bool = False, dbname: str | None = None
) -> psycopg.Connection:
    try:
        return psycopg.connect(**conninfo(cluster, creds, dbname), autocommit=autocommit)
    except psycopg.OperationalError as exc:
        # libpq's message spans lines (server, FATAL, DETAIL): keep it whole, on one line.
        reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        error = LoginRefused if any(r in reason for r in _REFUSALS) else ProvisionError
        raise error(f"cell {cluster.cell}: cannot connect to {cluster.endpoint}:{cluster.port}: {reason}") from None


def connect_master(cluster: Cluster, region: str, **kw) -> psycopg.Connection:
    return connect(cluster, secret_credentials(cluster.master_secret_arn, region), **kw)
