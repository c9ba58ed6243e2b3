"""App-role credentials: random passwords kept in Secrets Manager (RDS's secret shape), and
the SCRAM verifier the database stores, computed by libpq on this side so no plaintext ever
reaches the server (or its logs)."""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from psycopg.pq.abc import PGconn

from provisioner import aws
from provisioner.names import ID_ALPHABET

OWNER_KINDS = ("partner", "tenant")  # whose login roles hold an app secret each
LIST_PAGE = 100  # ListSecrets' largest page
LISTING_THREADS = 8


def _current(entries: list[dict]) -> dict[str, str]:
    """Name -> AWSCURRENT version of the listed secrets not scheduled for deletion."""
    found = {}
    for entry in entries:
        stages = entry.get("SecretVersionsToStages") or {}
        current = [version for version, labels in stages.items() if "AWSCURRENT" in labels]
        if current and not entry.get("DeletedDate"):
            found[entry["Name"]] = current[0]
    return found


def _listed(sm: Any, prefixes: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    pages = sm.get_paginator("list_secrets").paginate(
        Filters=[{"Key": "name", "Values": prefixes}], PaginationConfig={"PageSize": LIST_PAGE}
    )
    for page in pages:
        found.update(_current(page["SecretList"]))
    return found


def scram_verifier(pgconn: PGconn, password: str, role: str) -> str:
    """The SCRAM-SHA-256 verifier of `password` in pg_authid's format, from libpq's
    PQencryptPasswordConn.

    Named explicitly, the algorithm is not looked up on the server: libpq sends no query and
    only reads the connection's SCRAM iteration count (the server's scram_iterations, reported
    at login from PostgreSQL 16 on), so this may run while a query is in flight on `pgconn`.
    """
    return pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()


def secret_name(stack: str, kind: str, owner_id: str) -> str:
    return f"askasia/{stack}/{kind}s/{owner_id}/app"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    dbname: str


def credentials_document(username: str, password: str, endpoint: Endpoint) -> str:
    """RDS's secret shape, what applications and the tool read."""
    return json.dumps(
        {
            "username": username,
            "password": password,
            "engine": "postgres",
            "host": endpoint.host,
            "port": endpoint.port,
            "dbname": endpoint.dbname,
        }
    )


@dataclass(frozen=True)
class Issued:
    password: str = field(repr=False)
    version: str  # the secret's version holding it (what the ledger records the role was set from)
    username: str = ""  # the login it is for: the app role or, after a rotation, its twin


class CredentialStore:
    """Get-or-create: a re-run after a crash reuses the password already stored, so the
    secret and the role's verifier always agree."""

    def __init__(self, stack: str, region: str, kms_key_id: str):
        self.stack, self.region, self.kms_key_id = stack, region, kms_key_id

    def current_versions(self) -> dict[str, str]:
        """Secret name -> its current version id, for every partner's and tenant's secret of the
        stack in this region. ListSecrets gives a hundred a call and its pages come one after
        another (a hundred calls in a row for ten thousand tenants): when they do not fit one
        page, they are listed again in slices by their id's first character, the slices at once."""
        sm = aws.client("secretsmanager", self.region, as_sent=("ListSecrets",))  # names and versions only
        kinds = [f"askasia/{self.stack}/{kind}s/" for kind in OWNER_KINDS]
        first = sm.list_secrets(Filters=[{"Key": "name", "Values": kinds}], MaxResults=LIST_PAGE)
        found = _current(first["SecretList"])
        if not first.get("NextToken"):
            return found
        slices = [[prefix + c for prefix in kinds] for c in ID_ALPHABET]
        with ThreadPoolExecutor(max_workers=LISTING_THREADS) as pool:
            for part in pool.map(lambda names: _listed(sm, names), slices):
                found.update(part)
        return found

    def create(self, kind: str, owner_id: str, document: str) -> str:
        """A new secret holding `document` (its first version, AWSCURRENT), under the stack's
        key and tags; its version id. ResourceExistsException when it is there already."""
        sm = aws.client("secretsmanager", self.region)
        created = sm.create_secret(
            Name=secret_name(self.stack, kind, owner_id),
            SecretString=document,
            KmsKeyId=self.kms_key_id,
            Description=f"Askasia {kind} {owner_id} database credentials",
            Tags=[{"Key": "askasia:stack", "Value": self.stack}, {"Key": f"askasia:{kind}", "Value": owner_id}],
        )
        return str(created["VersionId"])

    def ensure_versioned(
        self, kind: str, owner_id: str, username: str, endpoint: Endpoint, twin: str | None = None
    ) -> Issued:
        """A secret naming `username` (or, when given, its rotation `twin`: rotation alternates
        between the two) is kept as it is; one naming anyone else is replaced."""
        sm = aws.client("secretsmanager", self.region)
        name = secret_name(self.stack, kind, owner_id)
        password = secrets.token_urlsafe(32)
        doc = credentials_document(username, password, endpoint)
        try:
            return Issued(password, self.create(kind, owner_id, doc), username)
        except sm.exceptions.ResourceExistsException:
            current = sm.get_secret_value(SecretId=name)
            existing = json.loads(current["SecretString"])
            if existing.get("username") in (username, twin or username) and existing.get("password"):
                return Issued(existing["password"], current["VersionId"], existing["username"])
            put = sm.put_secret_value(SecretId=name, SecretString=doc)
            return Issued(password, put["VersionId"], username)
