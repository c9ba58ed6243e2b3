"""Small query helpers shared by apply, verify and the directory."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.abc import Params

Query = str | sql.SQL | sql.Composed


def scalar(conn: psycopg.Connection[Any], query: Query, params: Params | None = None) -> Any:
    """The first column of the one row a query returns (count(*), a function call, exists)."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise LookupError(f"expected one row from {query!r}")
    return row[0]


def platform_present(conn: psycopg.Connection[Any]) -> bool:
    """Whether the cell has a control plane (apply creates it with its first step)."""
    return bool(scalar(conn, "select to_regclass('platform.schema_ledger') is not null"))
