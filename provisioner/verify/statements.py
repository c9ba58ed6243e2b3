"""What the probe checks share: the catalog reads that steer them (every role may read the
catalog) and the statements they attempt, built with psycopg composition only."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from itertools import groupby
from operator import itemgetter

import psycopg
from psycopg import sql

from provisioner.verify.session import Session, Statement, composed, set_role

# What marks a row or query a probe writes or runs; never committed (every attempt is rolled
# back), so nothing is ever looked for or deleted by it.
MARK = "askasia-verify-probe"
PLANT = MARK.replace("-", "_")  # the name of every object a probe tries to create
# Columns a probe fills to write a plausible row into a shared table, beside tenant_id/partner_id.
SHARED_ROW: dict[str, dict[str, object]] = {
    "worker_runs": {"worker": MARK, "status": "probe"},
    "cost_entries": {"amount": 0, "currency": "XTS"},  # ISO 4217's code for testing
    "audit_events": {"actor": MARK, "action": "askasia.verify.probe"},
}


@dataclass(frozen=True)
class SharedRelation:
    schema: str
    name: str
    has_tenant: bool
    has_partner: bool
    oid: int = 0
    # What the catalog grants the login probed (directly or through its memberships) and its
    # group role (the role a probe SETs): SELECT on any column, and any privilege at all.
    readable: bool = False
    group_readable: bool = False
    closed: bool = False  # no privilege of the login or its group: PostgreSQL refuses every statement on it
    updatable: frozenset[str] = frozenset()  # columns the login may UPDATE
    deletable: bool = False  # the login may DELETE

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"


def shared_relations(conn: psycopg.Connection) -> tuple[SharedRelation, ...]:
    """Every platform table and every partition or child of one, wherever it lives: read once
    a cell (a scan of pg_class, which holds every tenant's relations), the same for every login."""
    rows = conn.execute("""
        with recursive rel as (
            select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'platform' and c.relkind in ('r', 'p')
            union
            select i.inhrelid from pg_inherits i join rel on rel.oid = i.inhparent
        )
        select n.nspname, c.relname,
               exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id'
                       and not a.attisdropped),
               exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'partner_id'
                       and not a.attisdropped),
               c.oid::int8
        from rel join pg_class c on c.oid = rel.oid join pg_namespace n on n.oid = c.relnamespace
        order by 1, 2""").fetchall()
    return tuple(SharedRelation(*row) for row in rows)


def granted(session: Session, relations: tuple[SharedRelation, ...], group: str) -> tuple[SharedRelation, ...]:
    """The relations with the privileges the session's login and `group` hold on each, as the
    catalog (which every role may read) says; a role or relation that is gone holds nothing."""
    rows = session.catalog(
        """
        select r.oid::int8, coalesce(has_any_column_privilege(r.oid, 'SELECT'), false),
               coalesce(has_any_column_privilege(g.name, r.oid, 'SELECT'), false),
               not coalesce(has_any_column_privilege(r.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
                            or has_table_privilege(r.oid, 'DELETE, TRUNCATE, TRIGGER')
                            or has_any_column_privilege(g.name, r.oid, 'SELECT, INSERT, UPDATE, REFERENCES')
                            or has_table_privilege(g.name, r.oid, 'DELETE, TRUNCATE, TRIGGER'), false),
               array(select a.attname::text from pg_attribute a where a.attrelid = r.oid and a.attnum > 0
                     and not a.attisdropped and has_column_privilege(r.oid, a.attnum, 'UPDATE')),
               coalesce(has_table_privilege(r.oid, 'DELETE'), false)
        from unnest(%(oids)s::oid[]) r (oid),
             (select case when to_regrole(%(group)s) is not null then %(group)s::text end) g (name)""",
        {"oids": [rel.oid for rel in relations], "group": group},
    )
    grants = {oid: flags for oid, *flags in rows}
    return tuple(
        replace(rel, readable=reads, group_readable=group, closed=closed, updatable=frozenset(cols), deletable=deletes)
        for rel in relations
        for reads, group, closed, cols, deletes in [grants.get(rel.oid, (False, False, True, [], False))]
    )


@dataclass(frozen=True)
class SchemaObjects:
    relations: tuple[tuple, ...] = ()  # (oid, name, relkind, a plainly writable column), by name
    functions: tuple[tuple, ...] = ()  # (name, kind, input argument count), by name


def tenant_objects(conn: psycopg.Connection, schemas: list[str]) -> dict[str, SchemaObjects]:
    """Relations and functions in each of `schemas`, from the catalog every role reads alike:
    read once a cell for every schema the probes try. pg_class and pg_proc have no index led by
    the namespace, so a read per schema scanned each of them whole (1-2 ms a target)."""
    found = {schema: SchemaObjects() for schema in schemas}
    relations = conn.execute(
        """
        select n.nspname, c.oid, c.relname, c.relkind,
               (select a.attname from pg_attribute a where a.attrelid = c.oid and a.attnum > 0
                  and not a.attisdropped and a.attidentity = '' and a.attgenerated = '' order by a.attnum limit 1)
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = any(%(schemas)s::text[]) and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
        order by 1, c.relname""",
        {"schemas": schemas},
    ).fetchall()
    functions = conn.execute(
        """
        select n.nspname, p.proname, p.prokind, p.pronargs
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = any(%(schemas)s::text[]) and p.prokind in ('f', 'p')
        order by 1, p.proname, p.oid""",
        {"schemas": schemas},
    ).fetchall()
    for schema, rows in groupby(relations, key=itemgetter(0)):
        found[schema] = replace(found[schema], relations=tuple(row[1:] for row in rows))
    for schema, rows in groupby(functions, key=itemgetter(0)):
        found[schema] = replace(found[schema], functions=tuple(row[1:] for row in rows))
    return found


def count_where(rel: SharedRelation, predicate: str, params: dict[str, str]) -> Statement:
    return composed("select count(*) from {} where " + predicate, (rel.schema, rel.name)), params


def select_count(schema: str, name: str) -> Statement:
    return composed("select count(*) from {}", (schema, name)), None


def insert(schema: str, table: str, values: dict[str, object]) -> Statement:
    return _insert(schema, table, tuple(values)), values


@cache
def _insert(schema: str, table: str, columns: tuple[str, ...]) -> str:
    return (
        sql.SQL("insert into {} ({}) values ({})")
        .format(
            sql.Identifier(schema, table),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder(k) for k in columns),
        )
        .as_string()
    )


def insert_defaults(schema: str, name: str) -> Statement:
    return composed("insert into {} default values", (schema, name)), None


def create_table(*name: str) -> Statement:
    return composed("create table {} (id int)", name), None


@dataclass(frozen=True)
class SettingContext:
    label: str
    setup: list[Statement]
    group: bool  # SET ROLE to the group: the group's privileges apply, not the login's
    claims: bool  # sets client settings claiming someone else (what differs from one target to the next)


def setting_contexts(claims: dict[str, str], group: str) -> list[SettingContext]:
    """No settings; each client setting claiming someone else; the group role; both at once.
    The settings are custom (dotted) ones: no privilege check of PostgreSQL reads them, so a
    context with settings is refused exactly what the context of the same role without them is."""
    statements: list[Statement] = [
        ("select set_config(%(name)s, %(value)s, false)", {"name": k, "value": v}) for k, v in claims.items()
    ]
    contexts = [SettingContext("with no settings", [], group=False, claims=False)]
    contexts += [
        SettingContext(f"after set {name}", [stmt], group=False, claims=True)
        for name, stmt in zip(claims, statements, strict=True)
    ]
    contexts.append(SettingContext(f"after set role {group}", [set_role(group)], group=True, claims=False))
    contexts.append(
        SettingContext(
            f"after set role {group} and every setting", [set_role(group), *statements], group=True, claims=True
        )
    )
    return contexts


def sees_no_rows(
    s: Session, check: str, what: str, context: SettingContext, counts: list[tuple[SharedRelation, Statement]]
) -> None:
    """In one context, each count of rows that are not the session's sees nothing: the
    relations the context's role may read counted in one statement, each other one alone (it
    must be refused). A relation closed to the login and its group is tried in the contexts
    that set no client setting only: PostgreSQL refuses it on the role's privileges alone,
    which the settings do not change, so a context with settings is refused it exactly as the
    context of the same role without them."""
    readable: list[tuple[str, Statement]] = []
    alone: list[tuple[str, Statement]] = []
    for rel, statement in counts:
        if rel.group_readable if context.group else rel.readable:
            readable.append((rel.label, statement))
        elif not (rel.closed and context.claims):
            alone.append((rel.label, statement))
    with s.within(context.setup):
        s.sees_nothing_together(check, what, readable, context.label)
        for obj, statement in alone:
            s.sees_nothing(check, obj, what, statement, context.label)
