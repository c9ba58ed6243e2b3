"""One audit row for a lifecycle action, written by the operator's session (the actor is its
login role) in the caller's transaction, so the row commits or rolls back with the action."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

INSERT = (
    "insert into platform.audit_events (tenant_id, partner_id, actor, action, detail) "
    "values (%s, %s, current_user, %s, %s)"
)


def record(conn: psycopg.Connection, action: str, detail: dict, tenant_id: str = "", partner_id: str = "") -> None:
    conn.execute(INSERT, (tenant_id, partner_id, action, Jsonb(detail)))


def record_many(conn: psycopg.Connection, action: str, rows: list[tuple[dict, str, str]]) -> None:
    """One row per (detail, tenant_id, partner_id), pipelined: one round trip for the lot."""
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            INSERT, [(tenant_id, partner_id, action, Jsonb(detail)) for detail, tenant_id, partner_id in rows]
        )
