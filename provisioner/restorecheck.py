"""Did a restore lose anything? Per-tenant row counts and checksums of a source cell and a restored
copy, compared: every tenant table, and each tenant's rows in the shared platform tables.

A checksum is the sum of a 64-bit hash of every row's text: independent of row order and of
the physical layout a restore may change, sensitive to any row missing, added or altered.
The connections must see every row (RLS is forced on the shared tables: a superuser, or a role
with BYPASSRLS); the source's may sit in a snapshot taken at the failure instant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from provisioner import canaries
from provisioner.names import TenantNames
from provisioner.targets import TENANT_TABLES

Key = tuple[str, str]  # (tenant id, table)
_HASH = "count(*), coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)"


@dataclass
class CellContents:
    tables: dict[Key, tuple[int, int]] = field(default_factory=dict)  # -> (rows, checksum)

    @property
    def tenants(self) -> set[str]:
        return {tenant for tenant, _ in self.tables}

    @property
    def rows(self) -> int:
        return sum(rows for rows, _ in self.tables.values())


def shared_tables(conn: psycopg.Connection[Any]) -> list[str]:
    """Tables of schema platform holding a tenant_id (a partitioned table counts once, as its parent)."""
    rows = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
        "join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped "
        "where n.nspname = 'platform' and c.relkind in ('r', 'p') and not c.relispartition order by 1"
    ).fetchall()
    return [r[0] for r in rows]


def contents(conn: psycopg.Connection[Any]) -> CellContents:
    """Counts and checksums of every active or closed tenant's data in this cell."""
    found = CellContents()
    rows = conn.execute("select id from platform.tenants where status <> %s order by id", (canaries.STATUS,))
    tenants = [r[0] for r in rows.fetchall()]
    for tenant in tenants:
        schema = TenantNames(tenant).schema
        parts = [
            sql.SQL("select {}, " + _HASH + " from {}.{} t").format(
                sql.Literal(table), sql.Identifier(schema), sql.Identifier(table)
            )
            for table in TENANT_TABLES
        ]
        for table, rows, checksum in conn.execute(sql.SQL(" union all ").join(parts)).fetchall():
            found.tables[(tenant, table)] = (rows, int(checksum))
    for table in shared_tables(conn):
        query = sql.SQL("select tenant_id, " + _HASH + " from platform.{} t group by tenant_id").format(
            sql.Identifier(table)
        )
        per_tenant = {r[0]: (r[1], int(r[2])) for r in conn.execute(query).fetchall()}
        for tenant in tenants:
            found.tables[(tenant, f"platform.{table}")] = per_tenant.get(tenant, (0, 0))
    return found


def differences(source: CellContents, restored: CellContents) -> list[str]:
    """What the restored copy lacks or holds differently, one line each (empty: nothing lost)."""
    lines = []
    for key in sorted(source.tables.keys() | restored.tables.keys()):
        tenant, table = key
        before, after = source.tables.get(key), restored.tables.get(key)
        if before == after:
            continue
        if before is None:
            lines.append(f"tenant {tenant} {table}: only in the copy ({after[0] if after else 0} row(s))")
        elif after is None:
            lines.append(f"tenant {tenant} {table}: missing from the copy ({before[0]} row(s) in the source)")
        elif before[0] != after[0]:
            lines.append(f"tenant {tenant} {table}: {before[0]} row(s) in the source, {after[0]} in the copy")
        else:
            lines.append(f"tenant {tenant} {table}: {before[0]} row(s) each, but their contents differ")
    return lines
