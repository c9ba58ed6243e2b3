"""App-role credentials: random passwords kept in Secrets Manager (RDS's secret shape), and
the SCRAM verifier the database stores, computed here so no plaintext ever reaches the server
(or its logs)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass

from provisioner import aws

SCRAM_ITERATIONS = 4096  # PostgreSQL's default scram_iterations


def scram_verifier(password: str, iterations: int = SCRAM_ITERATIONS) -> str:
    """RFC 5802/7677 SCRAM-SHA-256 verifier in PostgreSQL's pg_authid format."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def secret_name(stack: str, kind: str, owner_id: str) -> str:
    return f"askasia/{stack}/{kind}s/{owner_id}/app"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    dbname: str


class CredentialStore:
    """Get-or-create: a re-run after a crash reuses the password already stored, so the
    secret and the role's verifier always agree."""

    def __init__(self, stack: str, region: str, kms_key_id: str):
        self.stack, self.region, self.kms_key_id = stack, region, kms_key_id

    def ensure(self, kind: str, owner_id: str, username: str, endpoint: Endpoint) -> str:
        sm = aws.client("secretsmanager", self.region)
        name = secret_name(self.stack, kind, owner_id)
        password = secrets.token_urlsafe(32)
        doc = {
            "username": username,
            "password": password,
            "engine": "postgres",
            "host": endpoint.host,
            "port": endpoint.port,
            "dbname": endpoint.dbname,
        }
        try:
            sm.create_secret(
                Name=name,
                SecretString=json.dumps(doc),
                KmsKeyId=self.kms_key_id,
                Description=f"Askasia {kind} {owner_id} database credentials",
                Tags=[{"Key": "askasia:stack", "Value": self.stack}, {"Key": f"askasia:{kind}", "Value": owner_id}],
            )
            return password
        except sm.exceptions.ResourceExistsException:
            existing = json.loads(sm.get_secret_value(SecretId=name)["SecretString"])
            if existing.get("username") == username and existing.get("password"):
                return existing["password"]
            sm.put_secret_value(SecretId=name, SecretString=json.dumps(doc))
            return password
