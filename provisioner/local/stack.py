"""`provision local up|down|status|env`: the whole local stack, idempotent, loopback only."""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from contract.jwks import KeyRing, jwk, jwks, token_policy
from contract.kms import KMS_PURPOSES
from contract.outputs import parse_outputs
from contract.tiers import AUDIT_RETENTION_DAYS
from provisioner.credentials import scram_verifier
from provisioner.errors import InputError, ProvisionError
from provisioner.local import tls
from provisioner.local.layout import LOCAL_DR_REGION, LOCAL_ORIGINS, LOCAL_REGION, Layout, server_user
from provisioner.local.motoserver import MotoServer, free_port, port_free
from provisioner.local.pgserver import BOOTSTRAP_SUPERUSER, PgServer, find_pg_bin
from provisioner.stackref import LOCAL_STACK
from stackconfig.hardening import DEFAULT_ACCESS_TOKEN_TTL_MINUTES, MAX_ACCESS_TOKEN_TTL_MINUTES

HOST = "127.0.0.1"
DATABASE = "platform"
MASTER_USER = "askasia_master"
_SIGNING = {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}
_SYMMETRIC = {"KeySpec": "SYMMETRIC_DEFAULT", "KeyUsage": "ENCRYPT_DECRYPT"}
KMS_KEYS = {purpose: _SIGNING if purpose == "jwt_signing" else _SYMMETRIC for purpose in KMS_PURPOSES}
DUMMY_AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
RING = KeyRing(LOCAL_STACK, 1)

Report = Callable[[str], None]


# Every advisory-lock function of pg_catalog, by signature (regprocedure text is quoted SQL).
ADVISORY_FUNCTIONS = (
    "select p.oid::regprocedure::text from pg_proc p "
    "where p.pronamespace = 'pg_catalog'::regnamespace and p.proname ~ '^pg_(try_)?advisory_' order by 1"
)


def _quiet(_: str) -> None:
    pass


@dataclass
class CellState:
    name: str
    port: int


class LocalStack:
    def __init__(self, layout: Layout):
        self.layout = layout
        self.user = server_user()
        self._bin: Path | None = None

    # -- state -------------------------------------------------------------------------
    def _load_state(self) -> dict:
        try:
            return json.loads(self.layout.state_file.read_text())
        except FileNotFoundError:
            return {}

    def _save_state(self, state: dict) -> None:
        self.layout.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def _secrets_dir(self) -> Path:
        path = self.layout.root / "secrets"
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
        return path

    def _cell_passwords(self, cell: str) -> dict:
        path = self._secrets_dir() / f"{cell}.json"
        if path.exists():
            return json.loads(path.read_text())
        doc = {"bootstrap": secrets.token_urlsafe(24), "master": secrets.token_urlsafe(24)}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(doc, fh)
        return doc

    def server(self, cell: CellState) -> PgServer:
        return PgServer(self.layout.cell_dir(self.user, cell.name), cell.port, self.user, self.pg_bin())

    def pg_bin(self) -> Path:
        if self._bin is None:
            self._bin = find_pg_bin()
        return self._bin

    def moto(self, state: dict | None = None) -> MotoServer | None:
        state = self._load_state() if state is None else state
        port = state.get("moto_port")
        return MotoServer(self.layout.moto_dir, port, state.get("moto_seed", 0)) if port else None

    def cells(self, state: dict | None = None) -> list[CellState]:
        state = self._load_state() if state is None else state
        return [CellState(**c) for c in state.get("cells", [])]

    # -- up ----------------------------------------------------------------------------
    def up(
        self,
        cells: int | None = None,
        pg_port: int | None = None,
        moto_port: int | None = None,
        report: Report = _quiet,
    ) -> dict:
        """Start what is not running. `cells` None keeps the cells the stack has (1 when new);
        more adds cells, fewer is refused (dropping a cell would drop its tenants)."""
        if cells is not None and cells < 1:
            raise InputError("--cells must be at least 1")
        self.pg_bin()  # fail on missing binaries before anything is created
        state = self._load_state()
        known = self.cells(state)
        if cells is None:
            cells = max(1, len(known))
        if len(known) > cells:
            raise InputError(
                f"the local stack has {len(known)} cells; `up --cells {cells}` would drop "
                f"{known[-1].name}: run `provision local down --wipe` first"
            )
        for flag, port in (("--pg-port", pg_port), ("--moto-port", moto_port)):
            if port is not None and not port_free(port):
                raise InputError(f"port {port} on {HOST} is busy: pick another {flag} or stop what uses it")
        self.layout.root.mkdir(parents=True, exist_ok=True)

        seed = state.setdefault("moto_seed", secrets.randbelow(2**31))
        moto = self.moto(state)
        if moto is None or not moto.running():
            port = moto_port or (moto.port if moto and port_free(moto.port) else free_port())
            moto = MotoServer(self.layout.moto_dir, port, seed)
            moto.start()
            report(f"moto server started on {moto.endpoint}")
        else:
            report(f"moto server already running on {moto.endpoint}")
        state["moto_port"] = moto.port
        self._save_state(state)

        ca_cert, ca_key = tls.ensure_ca(self.layout.tls_dir)
        for index in range(cells):
            name = f"cell-{index + 1}"
            if index < len(known):
                cell = known[index]
            else:
                port = pg_port + index if pg_port else free_port()
                if not port_free(port):
                    raise InputError(f"port {port} on {HOST} is busy: pick another --pg-port")
                cell = CellState(name, port)
                known.append(cell)
            self._ensure_cell(cell, ca_cert, ca_key, report)
            state["cells"] = [c.__dict__ for c in known]
            self._save_state(state)

        self._activate_env(moto)
        outputs = parse_outputs(self._ensure_aws(known, ca_cert, moto)).to_json()  # the contract's shape, checked
        self.layout.outputs_file.write_text(json.dumps(outputs, indent=2) + "\n")
        self.layout.aws_env_file.write_text(json.dumps(self.aws_env(moto), indent=2) + "\n")
        self._write_pgpass(known)
        return outputs

    def _ensure_cell(self, cell: CellState, ca_cert: Path, ca_key: Path, report: Report) -> None:
        server = self.server(cell)
        if server.running():
            report(f"{cell.name}: PostgreSQL already running on {HOST}:{cell.port}")
            return
        passwords = self._cell_passwords(cell.name)
        fresh = not server.initialised
        if fresh:
            cert, key = tls.issue_server_cert(ca_cert, ca_key, self.layout.tls_dir / cell.name, HOST)
            server.init(passwords["bootstrap"], cert, key, ca_cert, DATABASE)
        else:
            server.configure(DATABASE)
        if not port_free(cell.port):
            raise InputError(f"port {cell.port} on {HOST} for {cell.name} is busy: stop what uses it")
        server.start()
        if fresh:
            self._bootstrap(cell, passwords, ca_cert)
        self._ensure_extensions(cell)
        report(f"{cell.name}: PostgreSQL {'initialised and ' if fresh else ''}started on {HOST}:{cell.port}")

    def bootstrap_conninfo(self, cell: CellState, dbname: str = "postgres") -> dict:
        """Superuser connection for setup and for tests that break things on purpose."""
        return {
            "host": HOST,
            "port": cell.port,
            "dbname": dbname,
            "user": BOOTSTRAP_SUPERUSER,
            "password": self._cell_passwords(cell.name)["bootstrap"],
            "sslmode": "verify-full",
            "sslrootcert": str(self.layout.ca_cert),
        }

    def _bootstrap(self, cell: CellState, passwords: dict, ca_cert: Path) -> None:
        # The master is not a superuser, like Aurora's: CREATEROLE + CREATEDB, owner of the
        # platform database. Everything the tool does must work with just that.
        with psycopg.connect(**self.bootstrap_conninfo(cell), autocommit=True) as conn:
            verifier = scram_verifier(conn.pgconn, passwords["master"], MASTER_USER)
            conn.execute(
                sql.SQL("create role {} login createrole createdb password {}").format(
                    sql.Identifier(MASTER_USER), sql.Literal(verifier)
                )
            )
            conn.execute(
                sql.SQL("create database {} owner {}").format(sql.Identifier(DATABASE), sql.Identifier(MASTER_USER))
            )
            # A hardened cluster: nobody but the admins connects to the maintenance databases.
            conn.execute("revoke connect, temporary on database postgres, template1 from public")

    def _ensure_extensions(self, cell: CellState) -> None:
        # Aurora: the master (rds_superuser) creates pg_cron in cron.database_name and may hand
        # its functions on; here the bootstrap superuser does the creating and the master gets
        # what rds_superuser has over the cron schema.
        with psycopg.connect(**self.bootstrap_conninfo(cell, DATABASE), autocommit=True) as conn:
            conn.execute("create extension if not exists pg_cron")
            master = sql.Identifier(MASTER_USER)
            for statement in (
                "grant usage on schema cron to {} with grant option",
                "grant all on all tables in schema cron to {} with grant option",
                "grant all on all sequences in schema cron to {} with grant option",
                "grant execute on all functions in schema cron to {} with grant option",
            ):
                conn.execute(sql.SQL(statement).format(master))
            # Advisory locks share the lock table with everything else and take any key: closed
            # to PUBLIC (so to every tenant and partner) where the platform's database has them.
            # A superuser can do this; Aurora's rds_superuser cannot (the functions belong to
            # rdsadmin), and there the guard bounds them instead.
            for fn in conn.execute(ADVISORY_FUNCTIONS).fetchall():
                conn.execute(sql.SQL("revoke execute on function {} from public").format(sql.SQL(fn[0])))
                conn.execute(sql.SQL("grant execute on function {} to {}").format(sql.SQL(fn[0]), master))

    def _activate_env(self, moto: MotoServer) -> None:
        os.environ.update(self.aws_env(moto))

    def aws_env(self, moto: MotoServer) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": moto.endpoint,
            "AWS_REGION": LOCAL_REGION,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            **DUMMY_AWS,
        }

    def _ensure_aws(self, cells: list[CellState], ca_cert: Path, moto: MotoServer) -> dict:
        """KMS keys, master secrets and audit log groups in moto: whatever moto's journal did
        not bring back (see motojournal) is created."""
        from provisioner import aws

        kms = aws.client("kms", LOCAL_REGION)
        aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}

        def ensure_key(name: str, spec: dict) -> str:
            alias = f"alias/askasia-{LOCAL_STACK}-{name.replace('_', '-')}"
            key_id = aliases.get(alias)
            if key_id is None:
                moto.seed_ids_for(alias)  # the ARNs in the outputs stay what they were
                key_id = kms.create_key(Description=f"askasia {LOCAL_STACK} {name}", **spec)["KeyMetadata"]["KeyId"]
                kms.create_alias(AliasName=alias, TargetKeyId=key_id)
            return str(kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"])

        key_arns = {purpose: ensure_key(purpose, spec) for purpose, spec in KMS_KEYS.items()}
        # The JWT key ring at its first generation: the jwt_signing key is current.
        jwt_arns = {RING.kid(1): key_arns["jwt_signing"], RING.kid(2): ensure_key("jwt_signing_next", _SIGNING)}
        jwt = self._ensure_jwt(jwt_arns, key_arns["secrets"])

        sm = aws.client("secretsmanager", LOCAL_REGION)
        clusters = []
        for cell in cells:
            name = f"askasia/{LOCAL_STACK}/clusters/{cell.name}/master"
            doc = {
                "username": MASTER_USER,
                "password": self._cell_passwords(cell.name)["master"],
                "engine": "postgres",
                "host": HOST,
                "port": cell.port,
                "dbname": DATABASE,
            }
            try:
                current = sm.get_secret_value(SecretId=name)
                arn = current["ARN"]
                if json.loads(current["SecretString"]) != doc:
                    sm.put_secret_value(SecretId=name, SecretString=json.dumps(doc))
            except sm.exceptions.ResourceNotFoundException:
                moto.seed_ids_for(name)
                arn = sm.create_secret(Name=name, SecretString=json.dumps(doc), KmsKeyId=key_arns["secrets"])["ARN"]
            clusters.append(
                {
                    "cell": cell.name,
                    "endpoint": HOST,
                    "app_endpoint": HOST,
                    "proxy_endpoint": "",  # no RDS Proxy here
                    "port": cell.port,
                    "database": DATABASE,
                    "master_secret_arn": arn,
                    "ca_bundle": str(ca_cert),
                    "iam_auth": False,
                }
            )

        logs = aws.client("logs", LOCAL_REGION)
        groups = {}
        for tier, days in AUDIT_RETENTION_DAYS.items():
            group = f"/askasia/{LOCAL_STACK}/audit/{tier}"
            found = [
                g for g in logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"] if g["logGroupName"] == group
            ]
            if not found:
                logs.create_log_group(logGroupName=group, kmsKeyId=key_arns["logs"])
            if not found or found[0].get("retentionInDays") != days:
                logs.put_retention_policy(logGroupName=group, retentionInDays=days)
            groups[tier] = group

        return {
            "stack": LOCAL_STACK,
            "region": LOCAL_REGION,
            "origins": list(LOCAL_ORIGINS),
            "clusters": clusters,
            "kms": key_arns,
            "dr": {"region": LOCAL_DR_REGION, "mode": "snapshot-copy"},
            "audit_log_groups": groups,
            "jwt": jwt,
        }

    def _ensure_jwt(self, key_arns: dict[str, str], secrets_key: str) -> dict[str, str]:
        """The JWKS and token policy parameters, as the program publishes them (contract/jwks.py)."""
        from provisioner import aws

        kms, ssm = aws.client("kms", LOCAL_REGION), aws.client("ssm", LOCAL_REGION)
        names = {
            "jwks_parameter": f"/askasia/{LOCAL_STACK}/auth/jwks",
            "config_parameter": f"/askasia/{LOCAL_STACK}/auth/jwt",
        }
        keys = [
            jwk(kms.get_public_key(KeyId=arn)["PublicKey"], kid, _SIGNING["KeySpec"]) for kid, arn in key_arns.items()
        ]
        policy = token_policy(
            issuer=f"https://auth.{LOCAL_STACK}.invalid",
            ring=RING,
            key_arns=key_arns,
            key_spec=_SIGNING["KeySpec"],
            ttl_seconds=DEFAULT_ACCESS_TOKEN_TTL_MINUTES * 60,
            max_ttl_seconds=MAX_ACCESS_TOKEN_TTL_MINUTES * 60,
            jwks_parameter=names["jwks_parameter"],
        )
        wanted = {
            names["jwks_parameter"]: (json.dumps(jwks(keys), sort_keys=True), {"Type": "String"}),
            names["config_parameter"]: (json.dumps(policy), {"Type": "SecureString", "KeyId": secrets_key}),
        }
        for name, (value, kind) in wanted.items():
            try:
                current = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
            except ssm.exceptions.ParameterNotFound:
                current = None
            if current != value:
                ssm.put_parameter(Name=name, Value=value, Overwrite=True, **kind)
        return names

    def _write_pgpass(self, cells: list[CellState]) -> None:
        lines = [f"{HOST}:{c.port}:*:{MASTER_USER}:{self._cell_passwords(c.name)['master']}" for c in cells]
        path = self._secrets_dir() / "pgpass"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")

    # -- down / status / env -----------------------------------------------------------
    def down(self, wipe: bool = False, report: Report = _quiet) -> None:
        state = self._load_state()
        for cell in self.cells(state):
            server = self.server(cell)
            if server.running():
                server.stop()
                report(f"{cell.name}: PostgreSQL on {HOST}:{cell.port} stopped")
        moto = self.moto(state)
        if moto is not None and moto.pid() is not None:
            moto.stop()
            report(f"moto server on {moto.endpoint} stopped")
        if wipe:
            shutil.rmtree(self.layout.server_home(self.user), ignore_errors=True)  # may live outside the root
            shutil.rmtree(self.layout.root, ignore_errors=True)
            report(f"removed {self.layout.root}")

    def status(self) -> dict:
        state = self._load_state()
        moto = self.moto(state)
        return {
            "root": str(self.layout.root),
            "outputs": str(self.layout.outputs_file) if self.layout.outputs_file.exists() else None,
            "moto": {"endpoint": moto.endpoint, "running": moto.running(), "journal": str(moto.journal)}
            if moto
            else None,
            "cells": [
                {
                    "cell": c.name,
                    "host": HOST,
                    "port": c.port,
                    "running": self.server(c).running(),
                    "data": str(self.server(c).data),
                }
                for c in self.cells(state)
            ],
        }

    def env(self) -> dict[str, str]:
        state = self._load_state()
        moto, cells = self.moto(state), self.cells(state)
        if moto is None or not cells:
            raise ProvisionError("the local stack is not up: run `provision local up`")
        return {
            **self.aws_env(moto),
            "PGHOST": HOST,
            "PGPORT": str(cells[0].port),
            "PGDATABASE": DATABASE,
            "PGUSER": MASTER_USER,
            "PGSSLMODE": "verify-full",
            "PGSSLROOTCERT": str(self.layout.ca_cert),
            "PGPASSFILE": str(self.layout.root / "secrets" / "pgpass"),
        }

    def activate(self) -> None:
        """Point this process's boto3 at the local moto server (commands on --stack local)."""
        moto = self.moto()
        if moto is None or not moto.running():
            raise ProvisionError("the local stack is not up: run `provision local up`")
        self._activate_env(moto)
