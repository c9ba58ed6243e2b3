"""Data-subject requests against the platform's own data (privacy policy section 7: access,
correction, deletion, portability, answered within 30 days).

A request is recorded with its due date in the stack's first cell (the platform's own records
live in the control plane; one place per stack keeps `dsr list` whole). What the platform holds
of a person is found across every cell: audit events whose actor is the address or whose detail
mentions it. Erasure pseudonymises: the audit row keeps its facts, the address becomes
`erased:<sha256 prefix>`. A tenant's own data is the tenant's (the platform is its processor):
`search_tenant` looks through one tenant's schema for an address as that tenant's own role.

The requests are the migrator's job (V040), never the master's: it records and reads them,
searches the audit trail, and erases through platform.dsr_erase (V060), the only change to audit
rows it may ask for.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from contract.outputs import Cluster, StackOutputs
from provisioner import directory
from provisioner.connect import Credentials, connect, read_secret_json
from provisioner.credentials import secret_name
from provisioner.errors import InputError
from provisioner.lifecycle import audit
from provisioner.operators import MIGRATOR, connect_operator

DUE = dt.timedelta(days=30)
KINDS = ("access", "correction", "deletion", "portability")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def check_email(email: str) -> str:
    if not _EMAIL.match(email) or len(email) > 254:
        raise InputError(f"{email!r} is not an e-mail address")
    return email.lower()


def pseudonym(email: str) -> str:
    return "erased:" + hashlib.sha256(email.lower().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Request:
    id: str
    email: str
    partner_id: str | None
    kind: str
    opened_at: dt.datetime
    due_at: dt.datetime
    closed_at: dt.datetime | None
    overdue: bool


def _partner_id(outputs: StackOutputs, partner: str | None) -> str | None:
    if partner is None:
        return None
    for p in directory.partners(outputs):
        if partner in (p.id, p.slug):
            return p.id
    raise InputError(f"no partner {partner!r} in stack {outputs.stack}")


def _session(outputs: StackOutputs, cluster: Cluster | None = None) -> psycopg.Connection:
    """The migrator's session on `cluster`, by default the stack's first cell (the requests')."""
    return connect_operator(outputs, cluster or outputs.clusters[0], MIGRATOR)


def _audit(outputs: StackOutputs, action: str, detail: dict, partner_id: str | None = None) -> None:
    """One audit row in the stack's first cell, where the requests live; the subject appears
    only as its pseudonym."""
    with _session(outputs) as conn:
        audit.record(conn, action, detail, partner_id=partner_id or "")


def open_request(
    outputs: StackOutputs, email: str, kind: str, partner: str | None = None, as_of: dt.datetime | None = None
) -> Request:
    email = check_email(email)
    if kind not in KINDS:
        raise InputError(f"--kind must be one of {', '.join(KINDS)}, not {kind!r}")
    partner_id = _partner_id(outputs, partner)
    with _session(outputs) as conn:
        row = conn.execute(
            "insert into platform.dsr_requests (email, partner_id, kind, opened_at, due_at) "
            "select %(e)s, %(p)s, %(k)s, m, m + %(due)s from (select coalesce(%(at)s::timestamptz, now()) m) x "
            "returning id::text, email, partner_id, kind, opened_at, due_at, closed_at, false",
            {"e": email, "p": partner_id, "k": kind, "due": DUE, "at": as_of},
        ).fetchone()
        detail = {"request": row[0], "kind": kind, "subject": pseudonym(email)}  # type: ignore[index]
        audit.record(conn, "dsr.opened", detail, partner_id=partner_id or "")
    return Request(*row)  # type: ignore[misc]


def list_requests(outputs: StackOutputs, as_of: dt.datetime | None = None, email: str | None = None) -> list[Request]:
    with _session(outputs) as conn:
        rows = conn.execute(
            "select id::text, email, partner_id, kind, opened_at, due_at, closed_at, "
            "closed_at is null and due_at < coalesce(%(at)s::timestamptz, now()) "
            "from platform.dsr_requests where %(e)s::text is null or email = %(e)s order by due_at",
            {"at": as_of, "e": check_email(email) if email else None},
        ).fetchall()
    requests = [Request(*r) for r in rows]
    _audit(
        outputs,
        "dsr.listed",
        {
            "subject": pseudonym(email) if email else None,
            "requests": len(requests),
            "overdue": sum(r.overdue for r in requests),
        },
    )
    return requests


_FIND = (
    "select %(cell)s::text, 'platform.audit_events', id::text, occurred_at, tenant_id, partner_id, actor, action, "
    "detail from platform.audit_events where lower(actor) = %(e)s or strpos(lower(detail::text), %(e)s) > 0 "
    "order by occurred_at, id"
)


# Audit events are append-only: the platform owner's platform.dsr_erase (V060) changes only who
# acted (the actor, and the address inside the detail) to the pseudonym, never the fact itself.
_ERASE = "select platform.dsr_erase(%s)"


def find(outputs: StackOutputs, email: str) -> list[dict]:
    """Everything the platform itself holds of this address, across every cell."""
    email = check_email(email)
    found = []
    for cluster in outputs.clusters:
        with _session(outputs, cluster) as conn:
            for row in conn.execute(_FIND, {"cell": cluster.cell, "e": email}).fetchall():
                keys = ("cell", "table", "id", "occurred_at", "tenant_id", "partner_id", "actor", "action", "detail")
                item = dict(zip(keys, row, strict=True))
                item["occurred_at"] = item["occurred_at"].isoformat()
                found.append(item)
    return found


def export(outputs: StackOutputs, email: str) -> list[dict]:
    """`find`, recorded in the audit trail (after the search: the row names the pseudonym only)."""
    found = find(outputs, email)
    _audit(
        outputs,
        "dsr.exported",
        {"subject": pseudonym(email), "records": len(found), "cells": sorted({f["cell"] for f in found})},
    )
    return found


def erase(outputs: StackOutputs, email: str) -> dict[str, int]:
    """Pseudonymise the address in every cell's audit rows; close the address's open deletion
    requests. Returns rows changed per cell."""
    email = check_email(email)
    alias = pseudonym(email)
    changed = {}
    for cluster in outputs.clusters:
        with _session(outputs, cluster) as conn:
            changed[cluster.cell] = conn.execute(_ERASE, (email,)).fetchone()[0]  # type: ignore[index]
    with _session(outputs) as conn:
        conn.execute(
            "update platform.dsr_requests set closed_at = now(), detail = detail || %s "
            "where email = %s and kind = 'deletion' and closed_at is null",
            (Jsonb({"erased_rows": changed, "subject": alias}), email),
        )
        audit.record(conn, "dsr.erased", {"subject": alias, "rows": changed})
    return changed


def search_tenant(outputs: StackOutputs, tenant_ref: str, email: str) -> dict[str, int]:
    """Rows of each table in one tenant's schema that mention the address, searched as the
    tenant's own app role (its credentials): the platform reads nothing the tenant could not."""
    email = check_email(email)
    tenant = next((t for t in directory.tenants(outputs) if tenant_ref in (t.id, t.slug)), None)
    if tenant is None:
        raise InputError(f"no tenant {tenant_ref!r} in stack {outputs.stack}")
    doc = read_secret_json(secret_name(outputs.stack, "tenant", tenant.id), outputs.region)
    with connect(outputs.cluster(tenant.cell), Credentials(doc["username"], doc["password"])) as conn:
        tables = [r[0] for r in conn.execute("select tablename from pg_tables where schemaname = current_schema()")]
        return {
            table: conn.execute(
                sql.SQL("select count(*) from {} x where strpos(lower(x::text), %s) > 0").format(sql.Identifier(table)),
                (email,),
            ).fetchone()[0]  # type: ignore[index]
            for table in sorted(tables)
        }
