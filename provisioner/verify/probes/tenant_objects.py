"""Tenant A cannot touch tenant B's objects: read, insert, update, delete or truncate B's
tables, views and foreign tables, take B's sequences, call B's functions and procedures.
Tried on every object the catalog shows in B's schema (none is created for the probe), read
once a cell for every schema probed."""

from __future__ import annotations

from psycopg import sql

from provisioner.verify.probing import ProbeCheck, TenantProbe, TenantRef
from provisioner.verify.statements import insert_defaults, select_count

NAME = "probe_tenant_objects"


def touches_nothing_of(probe: TenantProbe, b: TenantRef) -> None:
    s, schema = probe.session, b.names.schema
    objects = probe.objects[schema]
    for oid, name, kind, column in objects.relations:
        rel, obj = sql.Identifier(schema, name), f"{schema}.{name}"
        if kind == "S":
            s.blocked(NAME, obj, "nextval", ("select nextval(%(oid)s::oid::regclass)", {"oid": oid}))
        s.blocked(NAME, obj, "SELECT", select_count(schema, name))
        if kind in ("r", "p", "f"):
            s.blocked(NAME, obj, "INSERT", insert_defaults(schema, name))
            if column:
                col = sql.Identifier(column)
                s.blocked(
                    NAME, obj, "UPDATE", (sql.SQL("update {} set {} = {} where false").format(rel, col, col), None)
                )
            s.blocked(NAME, obj, "DELETE", (sql.SQL("delete from {} where false").format(rel), None))
        if kind in ("r", "p"):
            s.blocked(NAME, obj, "TRUNCATE", (sql.SQL("truncate {}").format(rel), None))
    for name, kind, nargs in objects.functions:
        call = sql.SQL("call {}({})" if kind == "p" else "select {}({})").format(
            sql.Identifier(schema, name), sql.SQL(", ").join([sql.NULL] * nargs)
        )
        s.blocked(NAME, f"{schema}.{name}()", "EXECUTE", (call, None))


CHECK = ProbeCheck(NAME, against=touches_nothing_of)
