"""A tenant's data, exported for portability (privacy policy: export possible until 30 days
after closure): every table of its schema and its rows of the shared tables, as CSV with a
header, each streamed with server-side COPY (memory flat whatever the row count), in one
repeatable-read snapshot, ordered by key so that unchanged data gives equal files; plus
manifest.json with each file's row count and SHA-256. To a directory, or to S3 under
server-side encryption with the stack's data key (aws:kms).

The audit rows an export itself writes (`tenant.exported`) are left out of later exports: they
describe the exports, and would make two exports of unchanged data differ.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import sql

from contract.outputs import StackOutputs
from provisioner import aws, directory
from provisioner.connect import connect_master
from provisioner.errors import InputError
from provisioner.lifecycle import audit
from provisioner.lifecycle.closure import GRACE
from provisioner.names import TenantNames

# shared table -> ordering key; rows chosen by tenant_id
SHARED = {"worker_runs": "id", "cost_entries": "id", "audit_events": "occurred_at, id"}
EXPORT_ACTION = "tenant.exported"
FLUSH = 1 << 20  # bytes buffered between writes: memory stays flat whatever the row count


@dataclass(frozen=True)
class Destination:
    directory: Path | None = None
    bucket: str | None = None
    prefix: str = ""

    @staticmethod
    def parse(value: str) -> Destination:
        if value.startswith("s3://"):
            bucket, _, prefix = value[5:].partition("/")
            if not bucket:
                raise InputError(f"--to {value!r}: no bucket (s3://bucket/prefix)")
            return Destination(bucket=bucket, prefix=prefix.strip("/"))
        if "://" in value:
            raise InputError(f"--to {value!r}: a directory or s3://bucket/prefix")
        return Destination(directory=Path(value))

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.bucket else str(self.directory)


@dataclass
class TableFile:
    name: str  # schema-qualified table
    file: str
    rows: int
    sha256: str
    bytes: int


@dataclass
class Export:
    tenant: directory.Tenant
    destination: str
    snapshot_at: str = ""
    files: list[TableFile] = field(default_factory=list)

    def manifest(self) -> dict:
        return {
            "tenant": self.tenant.id,
            "slug": self.tenant.slug,
            "partner": self.tenant.partner_id,
            "status": self.tenant.status,
            "snapshot_at": self.snapshot_at,
            "format": "csv (header, UTF-8)",
            "files": [f.__dict__ for f in self.files],
        }


def find_exportable(outputs: StackOutputs, tenant_ref: str, as_of: dt.datetime | None = None) -> directory.Tenant:
    now = as_of or dt.datetime.now(dt.UTC)
    for t in directory.tenants(outputs):
        if tenant_ref in (t.id, t.slug):
            if t.status == "closed" and t.closed_at is not None and now >= t.closed_at + GRACE:
                raise InputError(
                    f"tenant {t.slug} ({t.id}) was closed {t.closed_at:%Y-%m-%d}: "
                    f"past its {GRACE.days}-day export window"
                )
            return t
    raise InputError(f"no tenant {tenant_ref!r} in stack {outputs.stack}")


def _queries(conn: psycopg.Connection, tenant: directory.Tenant) -> list[tuple[str, sql.Composed]]:
    schema = TenantNames(tenant.id).schema
    tables = [
        r[0]
        for r in conn.execute(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = %s and c.relkind in ('r', 'p') order by c.relname",
            (schema,),
        ).fetchall()
    ]
    out = []
    for table in tables:
        out.append(
            (
                f"{schema}.{table}",
                sql.SQL("copy (select * from {} order by 1) to stdout with (format csv, header)").format(
                    sql.Identifier(schema, table)
                ),
            )
        )
    for table, key in SHARED.items():
        extra = (
            sql.SQL(" and action <> {}").format(sql.Literal(EXPORT_ACTION)) if table == "audit_events" else sql.SQL("")
        )
        out.append(
            (
                f"platform.{table}",
                sql.SQL(
                    "copy (select * from {} where tenant_id = {}{} order by {}) to stdout with (format csv, header)"
                ).format(sql.Identifier("platform", table), sql.Literal(tenant.id), extra, sql.SQL(key)),
            )
        )
    return out


def stream(conn: psycopg.Connection, query: sql.Composed, sink: BinaryIO) -> tuple[int, str, int]:
    """COPY's rows into `sink` and the digest, a MiB at a time (COPY sends one message a row)."""
    digest = hashlib.sha256()
    size = 0
    buf = bytearray()
    with conn.cursor() as cur, cur.copy(query) as copy:
        for chunk in copy:
            buf += chunk
            if len(buf) >= FLUSH:
                digest.update(buf)
                sink.write(buf)
                size += len(buf)
                buf.clear()
        rows = cur.rowcount  # from COPY's command tag, read once the stream ended
    digest.update(buf)
    sink.write(buf)
    return rows, digest.hexdigest(), size + len(buf)


def export_tenant(outputs: StackOutputs, tenant: directory.Tenant, to: Destination) -> Export:
    result = Export(tenant, to.describe())
    owner = TenantNames(tenant.id).owner_role
    staging = Path(tempfile.mkdtemp(prefix="askasia-export-")) if to.bucket else None
    base = (to.directory / tenant.id) if to.directory else staging
    assert base is not None
    base.mkdir(parents=True, exist_ok=True)
    with connect_master(outputs.cluster(tenant.cell), outputs.region, autocommit=True) as conn:
        conn.execute(sql.SQL("grant {} to current_user").format(sql.Identifier(owner)))
        try:
            with conn.transaction():
                conn.execute("set transaction isolation level repeatable read, read only")
                result.snapshot_at = conn.execute("select now()").fetchone()[0].isoformat()  # type: ignore[index]
                for name, query in _queries(conn, tenant):
                    file = f"{name}.csv"
                    with open(base / file, "wb") as sink:
                        rows, sha, size = stream(conn, query, sink)
                    result.files.append(TableFile(name, file, rows, sha, size))
        finally:
            conn.execute(sql.SQL("revoke {} from current_user").format(sql.Identifier(owner)))
        manifest = json.dumps(result.manifest(), indent=2, sort_keys=True) + "\n"
        (base / "manifest.json").write_text(manifest)
        if to.bucket:
            upload(outputs, base, to, tenant.id)
        detail = {"to": to.describe(), "files": len(result.files)}
        audit.record(conn, EXPORT_ACTION, detail, tenant.id, tenant.partner_id)
    return result


def upload(outputs: StackOutputs, base: Path, to: Destination, folder: str) -> None:
    s3 = aws.client("s3", outputs.region)
    key_id = outputs.kms["data"]
    for path in sorted(base.iterdir()):
        key = "/".join(p for p in (to.prefix, folder, path.name) if p)
        s3.upload_file(str(path), to.bucket, key, ExtraArgs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": key_id})
        os.unlink(path)
    base.rmdir()
