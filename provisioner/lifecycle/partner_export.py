"""A partner's account data, exported (privacy policy: partner data kept 30 days after
termination to allow data export): in every cell, its row of `platform.partners`, its tenants'
records, its role bindings and its rows of `worker_runs`, `cost_entries` and `audit_events`, as
CSV with a header or JSON Lines, streamed with server-side COPY in one repeatable-read snapshot per cell,
ordered by key (unchanged data gives equal files); plus manifest.json with each file's row count
and SHA-256. To a directory or to S3 under the stack's data key, like `tenants export`.

Its tenants' own schemas are theirs: `tenants export` exports each. The audit rows an export
itself writes (`partner.exported`) are left out of later exports, as `tenants export` does.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from psycopg import sql

from contract.outputs import StackOutputs
from provisioner.errors import InputError
from provisioner.lifecycle import audit
from provisioner.lifecycle.closure import GRACE
from provisioner.lifecycle.export import FORMATS, Destination, Format, TableFile, stream, upload
from provisioner.lifecycle.partners import PartnerState, find_partner
from provisioner.operators import MIGRATOR, connect_operator

# shared table -> ordering key; rows chosen by partner_id (platform.partners by id)
TABLES = {
    "partners": "id",
    "tenants": "id",
    "role_bindings": "role_name",
    "worker_runs": "id",
    "cost_entries": "id",
    "audit_events": "occurred_at, id",
}
EXPORT_ACTION = "partner.exported"


@dataclass
class CellFile(TableFile):
    cell: str = ""


@dataclass
class PartnerExport:
    partner: PartnerState
    destination: str
    format: Format = FORMATS["csv"]
    snapshots: dict[str, str] = field(default_factory=dict)  # cell -> snapshot time
    files: list[CellFile] = field(default_factory=list)

    def manifest(self) -> dict:
        return {
            "partner": self.partner.id,
            "slug": self.partner.slug,
            "status": self.partner.status,
            "terminated_at": self.partner.terminated_at.isoformat() if self.partner.terminated_at else None,
            "snapshots": self.snapshots,
            "format": self.format.label,
            "files": [f.__dict__ for f in self.files],
        }


def find_exportable(outputs: StackOutputs, ref: str, as_of: dt.datetime | None = None) -> PartnerState:
    partner = find_partner(outputs, ref)
    now = as_of or dt.datetime.now(dt.UTC)
    if partner.terminated_at is not None and now >= partner.terminated_at + GRACE:
        raise InputError(
            f"partner {partner.slug} ({partner.id}) was terminated {partner.terminated_at:%Y-%m-%d}: "
            f"past its {GRACE.days}-day export window"
        )
    return partner


def _query(table: str, key: str, partner_id: str, fmt: Format) -> sql.Composed:
    column = "id" if table == "partners" else "partner_id"
    where = sql.SQL(" where x.{} = {}").format(sql.Identifier(column), sql.Literal(partner_id))
    if table == "audit_events":
        where += sql.SQL(" and x.action <> {}").format(sql.Literal(EXPORT_ACTION))
    return fmt.copy(sql.Identifier("platform", table), where, sql.SQL(key))


def export_partner(
    outputs: StackOutputs, partner: PartnerState, to: Destination, fmt: Format = FORMATS["csv"]
) -> PartnerExport:
    result = PartnerExport(partner, to.describe(), fmt)
    staging = Path(tempfile.mkdtemp(prefix="askasia-export-")) if to.bucket else None
    base = (to.directory / partner.id) if to.directory else staging
    assert base is not None
    base.mkdir(parents=True, exist_ok=True)
    for cluster in outputs.clusters:
        with connect_operator(outputs, cluster, MIGRATOR, autocommit=True) as conn:
            with conn.transaction():
                conn.execute("set transaction isolation level repeatable read, read only")
                result.snapshots[cluster.cell] = conn.execute("select now()").fetchone()[0].isoformat()  # type: ignore[index]
                for table, key in TABLES.items():
                    name = f"platform.{table}"
                    file = f"{cluster.cell}.{name}.{fmt.extension}"
                    with open(base / file, "wb") as sink:
                        rows, sha, size = stream(conn, _query(table, key, partner.id, fmt), sink)
                    result.files.append(CellFile(name, file, rows, sha, size, cluster.cell))
    (base / "manifest.json").write_text(json.dumps(result.manifest(), indent=2, sort_keys=True) + "\n")
    if to.bucket:
        upload(outputs, base, to, partner.id)
    with connect_operator(outputs, outputs.clusters[0], MIGRATOR) as conn:
        audit.record(
            conn,
            EXPORT_ACTION,
            {"to": to.describe(), "format": fmt.name, "files": len(result.files)},
            partner_id=partner.id,
        )
    return result
