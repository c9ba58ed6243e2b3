"""A tenant's data, exported for portability (privacy policy: export possible until 30 days
after closure): every table of its schema and its rows of the shared tables, as CSV with a
header or as JSON Lines (one JSON object a row), each streamed with server-side COPY (memory
flat whatever the row count), in one repeatable-read snapshot, ordered by key so that unchanged
data gives equal files; plus manifest.json with each file's row count and SHA-256. To a
directory, or to S3 under server-side encryption with the stack's data key (aws:kms).

The audit rows an export itself writes (`tenant.exported`) are left out of later exports: they
describe the exports, and would make two exports of unchanged data differ.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import selectors
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import psycopg
from psycopg import pq, sql
from psycopg.pq.abc import PGresult

from contract.outputs import StackOutputs
from provisioner import aws, directory
from provisioner.errors import InputError
from provisioner.lifecycle import audit
from provisioner.lifecycle.closure import GRACE
from provisioner.names import TenantNames
from provisioner.operators import MIGRATOR, connect_operator

# shared table -> ordering key; rows chosen by tenant_id
SHARED = {"worker_runs": "id", "cost_entries": "id", "audit_events": "occurred_at, id"}
EXPORT_ACTION = "tenant.exported"
FLUSH = 1 << 20  # bytes buffered between writes: memory stays flat whatever the row count


@dataclass(frozen=True)
class Format:
    """How a COPY writes rows: `copy (select <row> from <table> x <where> order by <key>) to stdout
    with (<options>)`, the same rows in the same order whatever the format."""

    name: str
    extension: str
    label: str  # for the manifest
    row: sql.SQL  # what each row is selected as, from alias x
    options: sql.SQL

    def copy(self, source: sql.Composable, where: sql.Composable, key: sql.Composable) -> sql.Composed:
        return sql.SQL("copy (select {} from {} x{} order by {}) to stdout with ({})").format(
            self.row, source, where, key, self.options
        )


FORMATS = {
    "csv": Format("csv", "csv", "csv (header, UTF-8)", sql.SQL("x.*"), sql.SQL("format csv, header")),
    # row_to_json's text verbatim: as CSV with a quote and a delimiter JSON text never holds (it
    # escapes every control character), so COPY neither quotes nor escapes it (text format would
    # double every backslash).
    "jsonl": Format(
        "jsonl",
        "jsonl",
        "jsonl (one JSON object a line, UTF-8)",
        sql.SQL("row_to_json(x)::text"),
        sql.SQL("format csv, delimiter e'\\x02', quote e'\\x01'"),
    ),
}


def parse_format(value: str) -> Format:
    try:
        return FORMATS[value]
    except KeyError:
        raise InputError(f"--format {value!r}: one of {', '.join(FORMATS)}") from None


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
    format: Format = FORMATS["csv"]
    snapshot_at: str = ""
    files: list[TableFile] = field(default_factory=list)

    def manifest(self) -> dict:
        return {
            "tenant": self.tenant.id,
            "slug": self.tenant.slug,
            "partner": self.tenant.partner_id,
            "status": self.tenant.status,
            "snapshot_at": self.snapshot_at,
            "format": self.format.label,
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


def _queries(conn: psycopg.Connection, tenant: directory.Tenant, fmt: Format) -> list[tuple[str, sql.Composed]]:
    """(name, COPY) for each of the tenant's tables (ordered by its first column) and shared tables."""
    schema = TenantNames(tenant.id).schema
    tables = conn.execute(
        "select c.relname, a.attname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "join pg_attribute a on a.attrelid = c.oid and a.attnum = 1 "
        "where n.nspname = %s and c.relkind in ('r', 'p') order by c.relname",
        (schema,),
    ).fetchall()
    out = []
    for table, first in tables:
        query = fmt.copy(sql.Identifier(schema, table), sql.SQL(""), sql.Identifier("x", first))
        out.append((f"{schema}.{table}", query))
    for table, key in SHARED.items():
        where = sql.SQL(" where x.tenant_id = {}").format(sql.Literal(tenant.id))
        if table == "audit_events":
            where += sql.SQL(" and x.action <> {}").format(sql.Literal(EXPORT_ACTION))
        out.append((f"platform.{table}", fmt.copy(sql.Identifier("platform", table), where, sql.SQL(key))))
    return out


def stream(conn: psycopg.Connection, query: sql.Composed, sink: BinaryIO) -> tuple[int, str, int]:
    """COPY ... TO STDOUT into `sink` and the digest, a MiB at a time: (rows, sha256, bytes).

    COPY sends one message a row. psycopg's Copy iterator resumes a generator and a wait loop
    for each, about a microsecond a row (a million rows: 1.0 s of client CPU; this loop takes
    0.46 s). This is psycopg's own loop (generators.copy_from) without that machinery: messages
    are taken from libpq's buffer as long as it holds any, and the socket is waited on only
    when it is empty; on the connection's lock, which is psycopg's contract for using
    `conn.pgconn` directly."""
    digest = hashlib.sha256()
    size = 0
    buf = bytearray()
    pgconn = conn.pgconn
    with conn.lock, selectors.DefaultSelector() as ready:
        pgconn.send_query(query.as_bytes(conn))
        ready.register(pgconn.socket, selectors.EVENT_WRITE)
        while pgconn.flush():  # the socket took part of the query: wait until it takes the rest
            ready.select()
        ready.modify(pgconn.socket, selectors.EVENT_READ)
        _expect(conn, pgconn.get_result(), pq.ExecStatus.COPY_OUT)
        take = pgconn.get_copy_data
        while True:
            nbytes, data = take(1)  # 1: return 0 rather than block when nothing is buffered
            if nbytes > 0:
                buf += data
                if len(buf) >= FLUSH:
                    digest.update(buf)
                    sink.write(buf)
                    size += len(buf)
                    buf.clear()
            elif nbytes == 0:
                ready.select()
                pgconn.consume_input()
            else:
                break  # -1: the copy is done; its result follows
        done = _expect(conn, pgconn.get_result(), pq.ExecStatus.COMMAND_OK)
        while pgconn.get_result() is not None:
            pass
    digest.update(buf)
    sink.write(buf)
    return done.command_tuples or 0, digest.hexdigest(), size + len(buf)


def _expect(conn: psycopg.Connection, result: PGresult | None, status: pq.ExecStatus) -> PGresult:
    """`result` when it has `status`; otherwise the server's error (results drained first, so
    the transaction rolls back as usual)."""
    if result is not None and result.status == status:
        return result
    while conn.pgconn.get_result() is not None:
        pass
    if result is not None and result.status == pq.ExecStatus.FATAL_ERROR:
        raise psycopg.errors.error_from_result(result, encoding=conn.info.encoding)
    got = pq.ExecStatus(result.status).name if result is not None else "nothing"
    raise psycopg.OperationalError(f"COPY TO STDOUT: expected {status.name}, got {got}")


def export_tenant(
    outputs: StackOutputs, tenant: directory.Tenant, to: Destination, fmt: Format = FORMATS["csv"]
) -> Export:
    result = Export(tenant, to.describe(), fmt)
    owner = TenantNames(tenant.id).owner_role
    staging = Path(tempfile.mkdtemp(prefix="askasia-export-")) if to.bucket else None
    base = (to.directory / tenant.id) if to.directory else staging
    assert base is not None
    base.mkdir(parents=True, exist_ok=True)
    with connect_operator(outputs, outputs.cluster(tenant.cell), MIGRATOR, autocommit=True) as conn:
        # The migrator reads the tenant's schema as its owner only inside this transaction, which
        # is rolled back: the membership is never committed, so a killed export leaves none.
        with conn.transaction():
            conn.execute("set transaction isolation level repeatable read")
            conn.execute(sql.SQL("grant {} to current_user").format(sql.Identifier(owner)))
            conn.execute("set transaction read only")  # read-write may turn read-only mid-way
            result.snapshot_at = conn.execute("select now()").fetchone()[0].isoformat()  # type: ignore[index]
            for name, query in _queries(conn, tenant, fmt):
                file = f"{name}.{fmt.extension}"
                with open(base / file, "wb") as sink:
                    rows, sha, size = stream(conn, query, sink)
                result.files.append(TableFile(name, file, rows, sha, size))
            raise psycopg.Rollback()
        manifest = json.dumps(result.manifest(), indent=2, sort_keys=True) + "\n"
        (base / "manifest.json").write_text(manifest)
        if to.bucket:
            upload(outputs, base, to, tenant.id)
        detail = {"to": to.describe(), "format": fmt.name, "files": len(result.files)}
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
