"""Behaviour probes: what a tenant's (or partner's) real app role can actually do, tried inside a
rolled-back transaction (see session.py for how an attempt is judged).

Tenant A against tenant B: read, insert, update, delete and truncate B's tables, take B's
sequences, call B's functions; SET ROLE to B's roles, B's partner, the groups, the operator and
the owner; count other tenants' rows in every shared table and partition, plainly, after setting
each client setting a careless policy might read (app.tenant_id, app.current_tenant,
app.partner_id, request.jwt.claims) to B's ids, after SET ROLE to the tenant group, and both;
write shared rows claiming B; create objects in public, platform, B's schema, pg_temp or a new
schema; read B's idle session's query text. A must still do its own work.

A partner's console role: sees exactly its own tenants' shared rows, nothing of other
partners' in any context, nothing in any tenant schema, and takes no tenant or platform role.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from psycopg import sql

from provisioner.names import PartnerNames, TenantNames
from provisioner.targets import ROLES
from provisioner.verify.seeding import MARK, SEED_ACTION, SEED_CURRENCY
from provisioner.verify.session import Session, Statement, set_role

PLANT = MARK.replace("-", "_")  # the name of every object a probe tries to create
# Columns a probe fills to write a plausible row into a shared table, beside tenant_id/partner_id.
SHARED_ROW: dict[str, dict] = {
    "worker_runs": {"worker": MARK, "status": "probe"},
    "cost_entries": {"amount": 0, "currency": SEED_CURRENCY},
    "audit_events": {"actor": MARK, "action": SEED_ACTION},
}


@dataclass(frozen=True)
class TenantRef:
    id: str
    partner_id: str

    @property
    def names(self) -> TenantNames:
        return TenantNames(self.id)


@dataclass(frozen=True)
class SharedRelation:
    schema: str
    name: str
    has_tenant: bool
    has_partner: bool

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.name}"


def shared_relations(session: Session) -> list[SharedRelation]:
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
    return [SharedRelation(*row) for row in rows]


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


def count_where(rel: SharedRelation, predicate: str, params: dict) -> Statement:
    return sql.SQL("select count(*) from {} where " + predicate).format(sql.Identifier(rel.schema, rel.name)), params


def insert(schema: str, table: str, values: dict) -> Statement:
    query = sql.SQL("insert into {} ({}) values ({})").format(
        sql.Identifier(schema, table),
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder(k) for k in values),
    )
    return query, values


def create_table(*name: str) -> Statement:
    return sql.SQL("create table {} (id int)").format(sql.Identifier(*name)), None


def setting_contexts(claims: dict[str, str], group: str) -> list[tuple[str, list[Statement]]]:
    """No settings; each client setting claiming someone else; the group role; both at once."""
    statements = [
        (sql.SQL("select set_config({}, {}, false)").format(sql.Literal(k), sql.Literal(v)), None)
        for k, v in claims.items()
    ]
    contexts: list[tuple[str, list[Statement]]] = [("with no settings", [])]
    contexts += [(f"after set {name}", [stmt]) for name, stmt in zip(claims, statements, strict=True)]
    contexts.append((f"after set role {group}", [set_role(group)]))
    contexts.append((f"after set role {group} and every setting", [set_role(group), *statements]))
    return contexts


class TenantProbe:
    """Tenant A's app role, logged in with its own credentials, against other tenants."""

    def __init__(self, session: Session, tenant: TenantRef, seeded: bool):
        self.s, self.a, self.seeded = session, tenant, seeded
        self.shared = shared_relations(session)
        self.mine = {
            "tenant": tenant.id,
            "partner": tenant.partner_id,
            "role": tenant.names.app_role,
            "target": f"tenant:{tenant.id}",
        }

    def own_work(self, run: str) -> None:
        a, s, own = self.a, self.s, {**self.mine, "mark": run}
        s.works(
            "platform.tenants",
            "sees its own tenant row",
            ("select count(*) from platform.tenants where id = %(tenant)s", own),
            expect=lambda o: o.count == 1,
        )
        s.works(
            "platform.role_bindings",
            "sees its own binding",
            ("select count(*) from platform.role_bindings where role_name = current_user", None),
            expect=lambda o: o.count == 1,
        )
        if self.seeded:
            s.works(
                "platform.worker_runs",
                "sees its own seeded worker run",
                ("select count(*) from platform.worker_runs where status = %(mark)s and tenant_id = %(tenant)s", own),
                expect=lambda o: o.count == 1,
            )
        s.works(
            f"{a.names.schema}.leads",
            "inserts and reads its own leads through its search_path",
            ("insert into leads (name) values (%(mark)s)", own),
            ("select count(*) from leads where name = %(mark)s", own),
            expect=lambda o: o.count == 1,
        )
        present = {rel.name for rel in self.shared if rel.schema == "platform"}
        for table, extra in SHARED_ROW.items():
            if table in present:
                s.works(
                    f"platform.{table}",
                    "inserts a row with its own ids",
                    insert("platform", table, {"tenant_id": a.id, "partner_id": a.partner_id, **extra}),
                )

    def creates_nothing(self) -> None:
        s = self.s
        for schema in ("public", "platform"):
            s.blocked("probe_create", f"schema {schema}", "CREATE TABLE", create_table(schema, PLANT))
        s.blocked(
            "probe_create",
            "pg_temp",
            "CREATE TEMP TABLE",
            (sql.SQL("create temp table {} (id int)").format(sql.Identifier(PLANT)), None),
        )
        s.blocked(
            "probe_create",
            "database",
            "CREATE SCHEMA",
            (sql.SQL("create schema {}").format(sql.Identifier(PLANT)), None),
        )

    def against(self, b: TenantRef, witness_marker: str | None = None) -> None:
        self.tenant_objects(b)
        self.set_roles(b)
        self.shared_rows(b)
        self.shared_writes(b)
        self.s.blocked("probe_create", f"schema {b.names.schema}", "CREATE TABLE", create_table(b.names.schema, PLANT))
        if witness_marker is not None:
            self.stat_activity(b, witness_marker)

    def tenant_objects(self, b: TenantRef) -> None:
        s, schema, check = self.s, b.names.schema, "probe_tenant_objects"
        relations, functions = tenant_objects(s, schema)
        for oid, name, kind, column in relations:
            rel, obj = sql.Identifier(schema, name), f"{schema}.{name}"
            if kind == "S":
                s.blocked(check, obj, "nextval", ("select nextval(%(oid)s::oid::regclass)", {"oid": oid}))
            s.blocked(check, obj, "SELECT", (sql.SQL("select count(*) from {}").format(rel), None))
            if kind in ("r", "p", "f"):
                s.blocked(check, obj, "INSERT", (sql.SQL("insert into {} default values").format(rel), None))
                if column:
                    col = sql.Identifier(column)
                    s.blocked(
                        check, obj, "UPDATE", (sql.SQL("update {} set {} = {} where false").format(rel, col, col), None)
                    )
                s.blocked(check, obj, "DELETE", (sql.SQL("delete from {} where false").format(rel), None))
            if kind in ("r", "p"):
                s.blocked(check, obj, "TRUNCATE", (sql.SQL("truncate {}").format(rel), None))
        for name, kind, nargs in functions:  # only what exists; none is created for the probe
            call = sql.SQL("call {}({})" if kind == "p" else "select {}({})").format(
                sql.Identifier(schema, name), sql.SQL(", ").join([sql.NULL] * nargs)
            )
            s.blocked(check, f"{schema}.{name}()", "EXECUTE", (call, None))

    def set_roles(self, b: TenantRef) -> None:
        s, names = self.s, b.names
        for role in (
            names.owner_role,
            names.app_role,
            names.ro_role,
            PartnerNames(b.partner_id).app_role,
            ROLES["tenant_read"],
            ROLES["partner_app"],
            ROLES["operator"],
            ROLES["owner"],
        ):
            s.blocked("probe_set_role", f"role {role}", "SET ROLE", set_role(role))
        s.blocked(
            "probe_set_role",
            f"role {names.app_role}",
            "SET SESSION AUTHORIZATION",
            (sql.SQL("set session authorization {}").format(sql.Identifier(names.app_role)), None),
        )

    @staticmethod
    def not_mine(rel: SharedRelation) -> str:
        """The rows of a shared table that are not tenant A's."""
        special = {
            "tenants": "id is distinct from %(tenant)s",
            "partners": "id is distinct from %(partner)s",
            "role_bindings": "role_name is distinct from %(role)s",
            "schema_ledger": "target is distinct from %(target)s",
        }
        if rel.schema == "platform" and rel.name in special:
            return special[rel.name]
        return "tenant_id is distinct from %(tenant)s" if rel.has_tenant else "true"

    def shared_rows(self, b: TenantRef) -> None:
        s = self.s
        claims = {
            "app.tenant_id": b.id,
            "app.current_tenant": b.id,
            "app.partner_id": b.partner_id,
            "request.jwt.claims": json.dumps(
                {"tenant_id": b.id, "partner_id": b.partner_id, "role": b.names.app_role, "sub": b.id}
            ),
        }
        for label, setup in setting_contexts(claims, ROLES["tenant_app"]):
            with s.within(setup) as entered:
                if entered:
                    for rel in self.shared:
                        s.sees_nothing(
                            "probe_shared_rows",
                            rel.label,
                            "sees rows of other tenants",
                            count_where(rel, self.not_mine(rel), self.mine),
                            label,
                        )

    def shared_writes(self, b: TenantRef) -> None:
        a, s, check = self.a, self.s, "probe_shared_write"
        claims = [(b.id, b.partner_id), (b.id, a.partner_id)]
        if a.partner_id != b.partner_id:
            claims.append((a.id, b.partner_id))
        for rel in self.shared:
            if rel.schema != "platform" or not (rel.has_tenant and rel.has_partner):
                continue
            extra, table = SHARED_ROW.get(rel.name, {}), sql.Identifier(rel.schema, rel.name)
            for tenant_id, partner_id in claims:
                row = insert(rel.schema, rel.name, {"tenant_id": tenant_id, "partner_id": partner_id, **extra})
                what = f"INSERT claiming tenant {tenant_id} of partner {partner_id}"
                s.blocked(check, rel.label, what, row)
                with s.within([set_role(ROLES["tenant_app"])]) as entered:
                    if entered:
                        s.blocked(check, rel.label, f"{what} as {ROLES['tenant_app']}", row)
            target = {"b": b.id}
            s.changes_nothing(
                check,
                rel.label,
                f"UPDATE of tenant {b.id}'s rows",
                (sql.SQL("update {} set tenant_id = tenant_id where tenant_id = %(b)s").format(table), target),
            )
            s.changes_nothing(
                check,
                rel.label,
                f"DELETE of tenant {b.id}'s rows",
                (sql.SQL("delete from {} where tenant_id = %(b)s").format(table), target),
            )
            if rel.name == "worker_runs":
                s.blocked(
                    check,
                    rel.label,
                    f"UPDATE of its own row to tenant {b.id}",
                    insert("platform", "worker_runs", {"tenant_id": a.id, "partner_id": a.partner_id, **extra}),
                    (
                        "update platform.worker_runs set tenant_id = %(b)s, partner_id = %(bp)s "
                        "where worker = %(mark)s and tenant_id = %(a)s",
                        {"b": b.id, "bp": b.partner_id, "mark": MARK, "a": a.id},
                    ),
                )
        s.changes_nothing(
            check,
            "platform.tenants",
            f"UPDATE of tenant {b.id}'s row",
            ("update platform.tenants set slug = slug where id = %(b)s", {"b": b.id}),
        )

    def stat_activity(self, b: TenantRef, marker: str) -> None:
        """B's session ran a query carrying `marker` and sits idle: A must not read its text."""
        s, context = self.s, f"while {b.names.app_role} sits idle"
        s.catalog("select pg_stat_clear_snapshot()")  # the activity snapshot is cached per transaction
        s.sees_nothing(
            "probe_stat_activity",
            "pg_stat_activity",
            "reads another session's query text",
            (
                "select count(*) from pg_stat_activity where pid <> pg_backend_pid() and strpos(query, %(marker)s) > 0",
                {"marker": marker},
            ),
            context,
        )
        s.sees_nothing(
            "probe_stat_activity",
            "pg_stat_activity",
            "reads another tenant's query text",
            (
                "select count(*) from pg_stat_activity where usename = %(role)s "
                "and query is distinct from '<insufficient privilege>'",
                {"role": b.names.app_role},
            ),
            context,
        )
        if s.catalog("select to_regclass('pg_stat_statements') is not null")[0][0]:
            s.sees_nothing(
                "probe_stat_activity",
                "pg_stat_statements",
                "reads another session's statement",
                ("select count(*) from pg_stat_statements where strpos(query, %(marker)s) > 0", {"marker": marker}),
                context,
            )


class PartnerProbe:
    """A partner's console role: its own tenants' shared rows, nothing else, no tenant schema."""

    def __init__(self, session: Session, partner_id: str):
        self.s, self.partner_id = session, partner_id
        self.role = PartnerNames(partner_id).app_role
        self.shared = shared_relations(session)
        self.mine = {"partner": partner_id, "role": self.role}

    def own_view(self, tenants: int, seeds: int, run: str) -> None:
        s, own = self.s, {**self.mine, "mark": run}
        s.works(
            "platform.tenants",
            f"sees its {tenants} tenants",
            ("select count(*) from platform.tenants where partner_id = %(partner)s", own),
            expect=lambda o: o.count == tenants,
        )
        s.works(
            "platform.partners",
            "sees its own partner row",
            ("select count(*) from platform.partners where id = %(partner)s", own),
            expect=lambda o: o.count == 1,
        )
        s.works(
            "platform.worker_runs",
            f"sees the {seeds} seeded runs of its tenants, and no others",
            ("select count(*) from platform.worker_runs where status = %(mark)s", own),
            expect=lambda o: o.count == seeds,
        )

    def not_mine(self, rel: SharedRelation) -> str:
        special = {
            "partners": "id is distinct from %(partner)s",
            "role_bindings": "role_name is distinct from %(role)s",
        }
        if rel.schema == "platform" and rel.name in special:
            return special[rel.name]
        return "partner_id is distinct from %(partner)s" if rel.has_partner else "true"

    def others(self, other: TenantRef | None) -> None:
        s = self.s
        claims = {
            "app.partner_id": other.partner_id if other else "",
            "app.tenant_id": other.id if other else "",
            "request.jwt.claims": json.dumps(
                {"partner_id": other.partner_id if other else None, "tenant_id": other.id if other else None}
            ),
        }
        for label, setup in setting_contexts(claims, ROLES["partner_app"]):
            with s.within(setup) as entered:
                if entered:
                    for rel in self.shared:
                        s.sees_nothing(
                            "probe_partner",
                            rel.label,
                            "sees rows of other partners",
                            count_where(rel, self.not_mine(rel), self.mine),
                            label,
                        )

    def tenant_schemas(self, tenants: Sequence[TenantRef]) -> None:
        s = self.s
        for tenant in tenants:
            schema = tenant.names.schema
            relations, _ = tenant_objects(s, schema)
            for _, name, kind, _ in relations:
                rel = sql.Identifier(schema, name)
                s.blocked(
                    "probe_partner",
                    f"{schema}.{name}",
                    "SELECT",
                    (sql.SQL("select count(*) from {}").format(rel), None),
                )
                if kind in ("r", "p"):
                    s.blocked(
                        "probe_partner",
                        f"{schema}.{name}",
                        "INSERT",
                        (sql.SQL("insert into {} default values").format(rel), None),
                    )
            for role in (tenant.names.owner_role, tenant.names.app_role, tenant.names.ro_role):
                s.blocked("probe_partner", f"role {role}", "SET ROLE", set_role(role))
            s.blocked(
                "probe_partner",
                "platform.worker_runs",
                f"INSERT claiming tenant {tenant.id}",
                insert(
                    "platform",
                    "worker_runs",
                    {"tenant_id": tenant.id, "partner_id": tenant.partner_id, **SHARED_ROW["worker_runs"]},
                ),
            )
        for role in (ROLES["tenant_app"], ROLES["tenant_read"], ROLES["operator"], ROLES["owner"]):
            s.blocked("probe_partner", f"role {role}", "SET ROLE", set_role(role))
        s.blocked("probe_partner", "schema public", "CREATE TABLE", create_table("public", PLANT))
