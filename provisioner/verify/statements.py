"""What the probe checks share: the catalog reads that steer them (every role may read the
catalog) and the statements they attempt, built with psycopg composition only."""

from __future__ import annotations

from dataclasses import dataclass

from psycopg import sql

from provisioner.verify.session import Session, Statement, set_role

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

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"


def shared_relations(session: Session) -> tuple[SharedRelation, ...]:
    """Every platform table and every partition or child of one, wherever it lives."""
    rows = session.catalog("""
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
                       and not a.attisdropped)
        from rel join pg_class c on c.oid = rel.oid join pg_namespace n on n.oid = c.relnamespace
        order by 1, 2""")
    return tuple(SharedRelation(*row) for row in rows)


def tenant_objects(session: Session, schema: str) -> tuple[list[tuple], list[tuple]]:
    """Relations (oid, name, relkind, a plainly writable column) and functions (name, kind,
    input argument count) in one tenant's schema, from the catalog every role can read."""
    relations = session.catalog(
        """
        select c.oid, c.relname, c.relkind,
               (select a.attname from pg_attribute a where a.attrelid = c.oid and a.attnum > 0
                  and not a.attisdropped and a.attidentity = '' and a.attgenerated = '' order by a.attnum limit 1)
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = %(schema)s and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S')
        order by c.relname""",
        {"schema": schema},
    )
    functions = session.catalog(
        """
        select p.proname, p.prokind, p.pronargs
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where n.nspname = %(schema)s and p.prokind in ('f', 'p')
        order by p.proname, p.oid""",
        {"schema": schema},
    )
    return relations, functions


def count_where(rel: SharedRelation, predicate: str, params: dict[str, str]) -> Statement:
    return sql.SQL("select count(*) from {} where " + predicate).format(sql.Identifier(rel.schema, rel.name)), params


def select_count(schema: str, name: str) -> Statement:
    return sql.SQL("select count(*) from {}").format(sql.Identifier(schema, name)), None


def insert(schema: str, table: str, values: dict[str, object]) -> Statement:
    query = sql.SQL("insert into {} ({}) values ({})").format(
        sql.Identifier(schema, table),
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder(k) for k in values),
    )
    return query, values


def insert_defaults(schema: str, name: str) -> Statement:
    return sql.SQL("insert into {} default values").format(sql.Identifier(schema, name)), None


def create_table(*name: str) -> Statement:
    return sql.SQL("create table {} (id int)").format(sql.Identifier(*name)), None


def setting_contexts(claims: dict[str, str], group: str) -> list[tuple[str, list[Statement]]]:
    """No settings; each client setting claiming someone else; the group role; both at once."""
    statements: list[Statement] = [
        (sql.SQL("select set_config({}, {}, false)").format(sql.Literal(k), sql.Literal(v)), None)
        for k, v in claims.items()
    ]
    contexts: list[tuple[str, list[Statement]]] = [("with no settings", [])]
    contexts += [(f"after set {name}", [stmt]) for name, stmt in zip(claims, statements, strict=True)]
    contexts.append((f"after set role {group}", [set_role(group)]))
    contexts.append((f"after set role {group} and every setting", [set_role(group), *statements]))
    return contexts
