"""A tenant's app role creates nothing: no table in public, platform or another tenant's
schema, no temporary table, no schema. What a tenant may create it may use to plant objects
other roles resolve, or to hold data outside its own schema."""

from __future__ import annotations

from psycopg import sql

from provisioner.verify.probing import ProbeCheck, TenantProbe, TenantRef
from provisioner.verify.statements import PLANT, create_table

NAME = "probe_create"


def creates_nothing(probe: TenantProbe) -> None:
    s = probe.session
    for schema in ("public", "platform"):
        s.blocked(NAME, f"schema {schema}", "CREATE TABLE", create_table(schema, PLANT))
    s.blocked(
        NAME,
        "pg_temp",
        "CREATE TEMP TABLE",
        (sql.SQL("create temp table {} (id int)").format(sql.Identifier(PLANT)), None),
    )
    s.blocked(NAME, "database", "CREATE SCHEMA", (sql.SQL("create schema {}").format(sql.Identifier(PLANT)), None))


def creates_nothing_in(probe: TenantProbe, b: TenantRef) -> None:
    schema = b.names.schema
    probe.session.blocked(NAME, f"schema {schema}", "CREATE TABLE", create_table(schema, PLANT))


CHECK = ProbeCheck(NAME, alone=creates_nothing, against=creates_nothing_in)
