"""`provision tenants verify`: every catalog check is shown to catch the break it exists for
(broken inside a superuser transaction, checked on that same connection, rolled back), every
behaviour probe check passes on a clean stack and fails when isolation is broken on purpose
(committed breaks, repaired in `finally`), a cell with one tenant or none reports the probe
checks it had nothing for as skipped, and the command's exit codes: 0 clean, 1 violations, 2
could not run."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import sql

from provisioner import aws, canaries, directory
from provisioner.connect import read_secret_json
from provisioner.credentials import secret_name
from provisioner.verify import prober as prober_module
from provisioner.verify.catalog import catalog_checks, run_checks
from provisioner.verify.findings import CellReport, Finding, verify_status
from provisioner.verify.ledger import ledger_findings
from provisioner.verify.probes import probe_checks
from provisioner.verify.report import as_json
from provisioner.verify.runner import VerifyOptions, check_names, verify_cell, verify_stack
from provisioner.verify.secrets import CHECK as SECRETS_CHECK
from provisioner.verify.secrets import judge as judge_secrets
from provisioner.verify.secrets import list_names as list_secret_names
from provisioner.verify.statements import MARK
from tests.helpers import RunningStack, connect_as, converge, onboard, started_stack, unique

MASTER = "askasia_master"
PLANT = "verify_plant"


@dataclass(frozen=True)
class World:
    """Three tenants in cell-1: a and b of one partner, c of another."""

    a: directory.Tenant
    b: directory.Tenant
    c: directory.Tenant
    partition: tuple[str, str]

    @property
    def tenant_ids(self) -> frozenset[str]:
        return frozenset({self.a.id, self.b.id, self.c.id})

    def names(self) -> dict[str, str | tuple[str, ...]]:
        """Placeholders for the break statements and the expected rows."""
        out: dict[str, str | tuple[str, ...]] = {}
        for key, t in (("a", self.a), ("b", self.b), ("c", self.c)):
            schema = f"t_{t.id}"
            out |= {
                f"{key}_id": t.id,
                f"{key}_schema": schema,
                f"{key}_app": f"{schema}_app",
                f"{key}_twin": f"{schema}_app2",
                f"{key}_ro": f"{schema}_ro",
                f"{key}_owner": f"{schema}_owner",
                f"{key}_leads": (schema, "leads"),
                f"{key}_seq": (schema, "leads_id_seq"),
                f"{key}_fn": (schema, f"{PLANT}_fn"),
                f"{key}_type": (schema, f"{PLANT}_type"),
                f"p{key}": t.partner_id,
                f"p{key}_app": f"p_{t.partner_id}_app",
            }
        orphan = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
        out |= {
            "plant": PLANT,
            "partition": self.partition,
            "slug_role": self.a.slug.replace("-", "_"),
            "orphan_schema": f"t_{orphan}",
            "orphan_role": f"t_{orphan}_app",
        }
        return out


def render(text: str, names: dict) -> sql.Composed:
    """Identifiers from `{name}`, literals from `{name_lit}`: no SQL string formatting."""
    args = {k: sql.Identifier(*v) if isinstance(v, tuple) else sql.Identifier(v) for k, v in names.items()}
    args |= {f"{k}_lit": sql.Literal(v if isinstance(v, str) else ".".join(v)) for k, v in names.items()}
    return sql.SQL(text).format(**args)


def shown(text: str, names: dict) -> str:
    return text.format(**{k: v if isinstance(v, str) else ".".join(v) for k, v in names.items()})


@pytest.fixture(scope="module")
def world(local_stack, outputs) -> World:
    converge(outputs)  # the command's tests verify the whole stack: nothing recorded may be left unapplied
    p1, p2 = unique("verify-p"), unique("verify-q")
    slugs = [unique("vfy") for _ in range(3)]
    tenants = onboard(
        outputs,
        {p1: "EU", p2: "UK"},
        [(p1, slugs[0], "growth"), (p1, slugs[1], "starter"), (p2, slugs[2], "enterprise")],
        cell="cell-1",
    )
    with local_stack.superuser() as su:
        partition = su.execute(
            "select n.nspname, c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid "
            "join pg_namespace n on n.oid = c.relnamespace "
            "where i.inhparent = 'platform.audit_events'::regclass order by c.relname limit 1"
        ).fetchone()
    return World(*(tenants[s] for s in slugs), partition=tuple(partition))


@pytest.fixture(scope="module")
def su_conn(local_stack, world) -> Iterator[psycopg.Connection]:
    conn = local_stack.superuser()
    yield conn
    conn.rollback()
    conn.close()


@pytest.fixture
def su(su_conn) -> Iterator[psycopg.Connection]:
    """The superuser connection, inside a transaction every test rolls back."""
    su_conn.rollback()
    yield su_conn
    su_conn.rollback()


@contextmanager
def committed(local_stack, names: dict, breaks: list[str], repairs: list[str]) -> Iterator[None]:
    """A break other sessions can see (probes log in separately), repaired whatever happens."""
    with local_stack.superuser(autocommit=True) as conn:
        try:
            for statement in breaks:
                conn.execute(render(statement, names))
            yield
        finally:
            for statement in repairs:
                conn.execute(render(statement, names))


def check_rows(su: psycopg.Connection, check: str) -> list[Finding]:
    if check == "ledger_drift":
        return ledger_findings(su, "platform")
    (selected,) = [c for c in catalog_checks() if c.name == check]
    return run_checks(su, MASTER, (selected,))


# -- catalog checks: (check, case, break statements, object, detail, level) ----------------------
BREAKS = [
    (
        "tenant_acl",
        "table granted to another tenant",
        ["grant select on {b_leads} to {a_app}"],
        "table {b_leads}",
        "SELECT held by {a_app}",
        "error",
    ),
    (
        "tenant_acl",
        "table granted to public",
        ["grant select on {b_leads} to public"],
        "table {b_leads}",
        "SELECT held by PUBLIC",
        "error",
    ),
    (
        "tenant_acl",
        "schema usage for another tenant",
        ["grant usage on schema {b_schema} to {a_app}"],
        "schema {b_schema}",
        "USAGE held by {a_app}",
        "error",
    ),
    (
        "tenant_acl",
        "column grant",
        ["grant select (email) on {b_leads} to {a_app}"],
        "column {b_leads}.email",
        "SELECT held by {a_app}",
        "error",
    ),
    (
        "tenant_acl",
        "sequence grant",
        ["grant usage on sequence {b_seq} to {a_ro}"],
        "sequence {b_seq}",
        "USAGE held by {a_ro}",
        "error",
    ),
    (
        "tenant_acl",
        "function granted to another tenant",
        [
            "create function {b_fn}() returns int language sql as 'select 1'",
            "alter function {b_fn}() owner to {b_owner}",
            "revoke execute on function {b_fn}() from public",
            "grant execute on function {b_fn}() to {a_app}",
        ],
        "function {b_fn}()",
        "EXECUTE held by {a_app}",
        "error",
    ),
    (
        "tenant_acl",
        "function executable by PUBLIC by default",
        [
            "create function {b_fn}() returns int language sql as 'select 1'",
            "alter function {b_fn}() owner to {b_owner}",
        ],
        "function {b_fn}()",
        "EXECUTE held by PUBLIC",
        "error",
    ),
    (
        "tenant_acl",
        "type granted to another tenant",
        [
            "create type {b_type} as enum ('x')",
            "alter type {b_type} owner to {b_owner}",
            "grant usage on type {b_type} to {a_app}",
        ],
        "type {b_type}",
        "USAGE held by {a_app}",
        "error",
    ),
    (
        "tenant_acl",
        "default privileges in a tenant schema",
        ["alter default privileges for role {b_owner} in schema {b_schema} grant select on tables to {a_app}"],
        "default privileges for role {b_owner} in schema {b_schema} on tables",
        "SELECT held by {a_app}",
        "error",
    ),
    (
        "tenant_acl",
        "default privileges elsewhere handing a tenant role objects",
        ["alter default privileges for role askasia_master grant select on tables to {a_app}"],
        "default privileges for role askasia_master on tables",
        "SELECT held by {a_app}",
        "error",
    ),
    (
        "tenant_acl",
        "large object of a tenant granted to another",
        [
            "select lo_create(424242)",
            "alter large object 424242 owner to {b_owner}",
            "grant select on large object 424242 to {a_app}",
        ],
        "large object 424242",
        "SELECT held by {a_app}",
        "error",
    ),
    (
        "tenant_ownership",
        "table owned by another tenant's owner",
        ["alter table {b_leads} owner to {a_owner}"],
        "table {b_leads}",
        "not by the tenant's owner role {b_owner}",
        "error",
    ),
    (
        "tenant_ownership",
        "tenant role owns an object outside its schema",
        ["create table public.{plant} (id int)", "alter table public.{plant} owner to {a_owner}"],
        "table public.{plant}",
        "outside its schema {a_schema}",
        "error",
    ),
    (
        "tenant_role_privileges",
        "app role may create in its schema",
        ["grant create on schema {a_schema} to {a_app}"],
        "schema {a_schema}",
        "CREATE held by {a_app}",
        "warn",
    ),
    (
        "tenant_role_privileges",
        "read-only role writes",
        ["grant insert on {a_leads} to {a_ro}"],
        "table {a_leads}",
        "INSERT held by {a_ro}",
        "warn",
    ),
    (
        "tenant_role_privileges",
        "app role truncates",
        ["grant truncate on {a_leads} to {a_app}"],
        "table {a_leads}",
        "TRUNCATE held by {a_app}",
        "warn",
    ),
    (
        "rls_not_forced",
        "FORCE off on one partition",
        ["alter table {partition} no force row level security"],
        "table {partition}",
        "enabled but not forced",
        "error",
    ),
    (
        "rls_not_forced",
        "ENABLE without FORCE on a shared table",
        ["alter table platform.worker_runs no force row level security"],
        "table platform.worker_runs",
        "enabled but not forced",
        "error",
    ),
    (
        "rls_not_forced",
        "RLS off on a shared table",
        ["alter table platform.cost_entries disable row level security"],
        "table platform.cost_entries",
        "not enabled",
        "error",
    ),
    (
        "rls_not_forced",
        "a partition attached from another schema",
        [
            "create table public.{plant} (like platform.audit_events)",
            "alter table platform.audit_events attach partition public.{plant} for values from ('2090-01-01') to "
            "('2090-02-01')",
        ],
        "table public.{plant}",
        "not enabled",
        "error",
    ),
    (
        "rls_no_policy",
        "a partition's policies dropped",
        [
            "drop policy operator_all on {partition}",
            "drop policy tenant_rows on {partition}",
            "drop policy tenant_read_rows on {partition}",
            "drop policy partner_rows on {partition}",
            "drop policy owner_maintenance on {partition}",
        ],
        "table {partition}",
        "no policy",
        "warn",
    ),
    (
        "policy_using_true",
        "permissive USING (true) for the tenant group",
        ["create policy {plant} on platform.worker_runs for select to askasia_tenant_app using (true)"],
        "policy {plant} on platform.worker_runs",
        "USING (true)",
        "error",
    ),
    (
        "policy_using_true",
        "a constant qual",
        ["create policy {plant} on platform.audit_events for select to askasia_tenant_read using (1 = 1)"],
        "policy {plant} on platform.audit_events",
        "does not depend on the row",
        "error",
    ),
    (
        "policy_using_true",
        "WITH CHECK (true)",
        ["create policy {plant} on platform.cost_entries for insert to askasia_tenant_app with check (true)"],
        "policy {plant} on platform.cost_entries",
        "WITH CHECK (true)",
        "error",
    ),
    (
        "policy_using_true",
        "operator_all widened to the tenant group",
        ["alter policy operator_all on platform.tenants to askasia_operator, askasia_tenant_app"],
        "policy operator_all on platform.tenants",
        "askasia_tenant_app",
        "error",
    ),
    (
        "policy_to_public",
        "a policy TO PUBLIC",
        [
            "create policy {plant} on platform.cost_entries for select to public "
            "using (tenant_id = (select platform.bound_tenant()))"
        ],
        "policy {plant} on platform.cost_entries",
        "TO PUBLIC",
        "error",
    ),
    (
        "policy_to_public",
        "pg_cron's schema opened to PUBLIC: its job list's TO PUBLIC policy reaches tenants",
        ["grant usage on schema cron to public"],
        "policy cron_job_policy on cron.job",
        "TO PUBLIC",
        "error",
    ),
    (
        "policy_missing_with_check",
        "FOR ALL without WITH CHECK",
        [
            "create policy {plant} on platform.worker_runs for all to askasia_tenant_app "
            "using (tenant_id = (select platform.bound_tenant()))"
        ],
        "policy {plant} on platform.worker_runs",
        "policy for all without WITH CHECK",
        "warn",
    ),
    (
        "policy_client_setting",
        "a policy reading current_setting",
        [
            "create policy {plant} on platform.worker_runs for select to askasia_tenant_app "
            "using (tenant_id = current_setting('app.tenant_id'))"
        ],
        "policy {plant} on platform.worker_runs",
        "current_setting('app.tenant_id'",
        "error",
    ),
    (
        "policy_client_setting",
        "a function the policies call reads a setting",
        [
            "create or replace function platform.bound_tenant() returns text language sql stable "
            "as $$ select current_setting('app.tenant_id', true) $$"
        ],
        "policy tenant_rows on platform.worker_runs",
        "calls platform.bound_tenant()",
        "error",
    ),
    (
        "role_attributes",
        "BYPASSRLS on an app role",
        ["alter role {a_app} bypassrls"],
        "role {a_app}",
        "has BYPASSRLS",
        "error",
    ),
    (
        "role_attributes",
        "CREATEDB on a read-only role",
        ["alter role {a_ro} createdb"],
        "role {a_ro}",
        "has CREATEDB",
        "error",
    ),
    (
        "role_attributes",
        "LOGIN on an owner role",
        ["alter role {a_owner} login"],
        "role {a_owner}",
        "has LOGIN",
        "error",
    ),
    (
        "role_attributes",
        "CREATEROLE on the tenant group",
        ["alter role askasia_tenant_app createrole"],
        "role askasia_tenant_app",
        "has CREATEROLE",
        "error",
    ),
    (
        "role_attributes",
        "SUPERUSER on a partner role",
        ["alter role {pa_app} superuser"],
        "role {pa_app}",
        "has SUPERUSER",
        "error",
    ),
    (
        "role_membership",
        "another tenant's role granted",
        ["grant {b_app} to {a_app}"],
        "role {a_app}",
        "a role of tenant {b_id}",
        "error",
    ),
    (
        "role_membership",
        "pg_read_all_data granted",
        ["grant pg_read_all_data to {a_app}"],
        "role {a_app}",
        "predefined role pg_read_all_data",
        "error",
    ),
    (
        "role_membership",
        "pg_read_all_stats granted to the tenant group",
        ["grant pg_read_all_stats to askasia_tenant_app"],
        "role askasia_tenant_app",
        "predefined role pg_read_all_stats",
        "error",
    ),
    (
        "role_membership",
        "a chain through another role",
        ["create role {plant}", "grant {plant} to {a_app}", "grant {b_owner} to {plant}"],
        "role {a_app}",
        "a role of tenant {b_id} (via {a_app} -> {plant} -> {b_owner})",
        "error",
    ),
    (
        "role_membership",
        "a partner role granted",
        ["grant {pc_app} to {a_app}"],
        "role {a_app}",
        "partner role {pc_app}",
        "error",
    ),
    (
        "role_membership",
        "an outsider inside a tenant's owner role",
        ["create role {plant}", "grant {a_owner} to {plant}"],
        "role {plant}",
        "is a member of {a_owner}",
        "error",
    ),
    (
        "role_membership",
        "an outsider inside the tenant group",
        ["create role {plant} login", "grant askasia_tenant_app to {plant}"],
        "role {plant}",
        "member of the group askasia_tenant_app",
        "error",
    ),
    (
        "role_membership",
        "ADMIN OPTION on the group",
        ["grant askasia_tenant_app to {a_app} with admin option"],
        "role {a_app}",
        "ADMIN OPTION",
        "error",
    ),
    (
        "role_membership",
        "an outsider in the operator role",
        ["create role {plant}", "grant askasia_operator to {plant}"],
        "role {plant}",
        "reads every tenant's shared rows",
        "error",
    ),
    (
        "public_schema",
        "CREATE on public for PUBLIC",
        ["grant create on schema public to public"],
        "schema public",
        "CREATE held by PUBLIC",
        "error",
    ),
    (
        "public_schema",
        "USAGE on public for a tenant",
        ["grant usage on schema public to {a_app}"],
        "schema public",
        "USAGE held by {a_app}",
        "error",
    ),
    (
        "database_public_access",
        "CONNECT for PUBLIC",
        ["grant connect on database platform to public"],
        "database platform",
        "CONNECT held by PUBLIC",
        "error",
    ),
    (
        "database_public_access",
        "TEMP for PUBLIC",
        ["grant temporary on database platform to public"],
        "database platform",
        "TEMPORARY held by PUBLIC",
        "error",
    ),
    (
        "database_public_access",
        "TEMP for the tenant group",
        ["grant temporary on database platform to askasia_tenant_app"],
        "database platform",
        "TEMPORARY held by askasia_tenant_app",
        "error",
    ),
    (
        "security_definer_search_path",
        "no pinned search_path",
        ["create function public.{plant}() returns int language sql security definer as 'select 1'"],
        "function public.{plant}()",
        "without a pinned search_path",
        "error",
    ),
    (
        "security_definer_search_path",
        "pg_temp not last",
        [
            "create function public.{plant}() returns int language sql security definer set search_path = public "
            "as 'select 1'"
        ],
        "function public.{plant}()",
        "pg_temp is not last",
        "warn",
    ),
    (
        "security_definer_executable",
        "executable by PUBLIC by default",
        [
            "create function platform.{plant}() returns int language sql security definer "
            "set search_path = pg_catalog, pg_temp as 'select 1'"
        ],
        "function platform.{plant}()",
        "executable by PUBLIC",
        "error",
    ),
    (
        "security_definer_executable",
        "executable by the tenant group",
        [
            "create function platform.{plant}() returns int language sql security definer "
            "set search_path = pg_catalog, pg_temp as 'select 1'",
            "revoke execute on function platform.{plant}() from public",
            "grant execute on function platform.{plant}() to askasia_tenant_app",
        ],
        "function platform.{plant}()",
        "executable by askasia_tenant_app",
        "error",
    ),
    (
        "view_security_invoker",
        "a definer-rights view over a shared table",
        [
            "create view platform.{plant} as select * from platform.worker_runs",
            "grant select on platform.{plant} to askasia_tenant_app",
        ],
        "view platform.{plant}",
        "selectable by askasia_tenant_app",
        "error",
    ),
    (
        "view_security_invoker",
        "a materialized view granted to a tenant",
        [
            "create materialized view public.{plant} as select * from platform.tenants",
            "grant select on public.{plant} to {a_app}",
        ],
        "materialized view public.{plant}",
        "selectable by {a_app}",
        "error",
    ),
    (
        "foreign_data_access",
        "USAGE on a wrapper for PUBLIC",
        ["create foreign data wrapper {plant}", "grant usage on foreign data wrapper {plant} to public"],
        "foreign data wrapper {plant}",
        "USAGE held by PUBLIC",
        "error",
    ),
    (
        "foreign_data_access",
        "USAGE on a server for a tenant",
        [
            "create foreign data wrapper {plant}",
            "create server {plant} foreign data wrapper {plant}",
            "grant usage on foreign server {plant} to {a_app}",
        ],
        "server {plant}",
        "USAGE held by {a_app}",
        "error",
    ),
    (
        "foreign_data_access",
        "a user mapping for a tenant",
        [
            "create foreign data wrapper {plant}",
            "create server {plant} foreign data wrapper {plant}",
            "create user mapping for {a_app} server {plant}",
        ],
        "user mapping for {a_app} server {plant}",
        "stored login",
        "error",
    ),
    (
        "foreign_data_access",
        "dblink installed with its default grants",
        ["create extension if not exists dblink schema public"],
        "function public.dblink_connect(text)",
        "EXECUTE held by PUBLIC",
        "error",
    ),
    (
        "opaque_names",
        "a role named t_bad_name",
        ["create role t_bad_name"],
        "role t_bad_name",
        "not t_<id>_owner|app|app2|ro",
        "error",
    ),
    (
        "opaque_names",
        "a schema in the t_ namespace without an id",
        ["create schema t_short"],
        "schema t_short",
        "not t_ + a 12-character opaque id",
        "error",
    ),
    (
        "opaque_names",
        "a role named after a tenant's slug",
        ["create role {slug_role}"],
        "role {slug_role}",
        "named after a tenant's slug",
        "error",
    ),
    (
        "tenant_orphans",
        "a t_ schema with no tenant row",
        ["create schema {orphan_schema}"],
        "schema {orphan_schema}",
        "an orphan schema",
        "error",
    ),
    (
        "tenant_orphans",
        "a t_ role with no tenant row",
        ["create role {orphan_role}"],
        "role {orphan_role}",
        "an orphan role",
        "error",
    ),
    (
        "tenant_orphans",
        "an active tenant's schema dropped",
        ["drop schema {c_schema} cascade"],
        "tenant {c_id}",
        "without its schema {c_schema}",
        "error",
    ),
    (
        "tenant_orphans",
        "an active tenant's role dropped",
        ["drop owned by {c_ro}", "drop role {c_ro}"],
        "tenant {c_id}",
        "without its role {c_ro}",
        "error",
    ),
    (
        "role_bindings",
        "an app role bound to another tenant",
        ["update platform.role_bindings set tenant_id = {b_id_lit} where role_name = {a_app_lit}"],
        "binding '{a_app}'",
        "to tenant {b_id}",
        "error",
    ),
    (
        "role_bindings",
        "a tenant bound to another partner",
        ["update platform.role_bindings set partner_id = {pc_lit} where role_name = {a_app_lit}"],
        "binding '{a_app}'",
        "not its partner {pa}",
        "error",
    ),
    (
        "role_bindings",
        "the tenant group bound to a tenant",
        ["insert into platform.role_bindings values ('askasia_tenant_app', {b_id_lit}, {pb_lit})"],
        "binding 'askasia_tenant_app'",
        "not a tenant app/ro or partner role",
        "error",
    ),
    (
        "role_bindings",
        "a binding for a role that does not exist",
        ["insert into platform.role_bindings values ({orphan_role_lit}, {b_id_lit}, {pb_lit})"],
        "binding '{orphan_role}'",
        "does not exist",
        "error",
    ),
    (
        "role_bindings",
        "a tenant role without its binding",
        ["delete from platform.role_bindings where role_name = {a_ro_lit}"],
        "role {a_ro}",
        "without a binding",
        "warn",
    ),
    (
        "lo_compat_privileges",
        "on for the session",
        ["set local lo_compat_privileges = on"],
        "setting lo_compat_privileges",
        "readable and writable by every role",
        "error",
    ),
    (
        "lo_compat_privileges",
        "on for one role",
        ["alter role {a_app} set lo_compat_privileges = on"],
        "setting lo_compat_privileges for role {a_app}",
        "override",
        "error",
    ),
    (
        "platform_acl",
        "TRUNCATE on a shared table",
        ["grant truncate on platform.worker_runs to askasia_tenant_app"],
        "table platform.worker_runs",
        "TRUNCATE ignores row level security",
        "error",
    ),
    (
        "platform_acl",
        "a grant on a partition",
        ["grant select on {partition} to askasia_tenant_app"],
        "table {partition}",
        "on a partition",
        "error",
    ),
    (
        "platform_acl",
        "a shared table for PUBLIC",
        ["grant select on platform.partners to public"],
        "table platform.partners",
        "PUBLIC holds SELECT",
        "error",
    ),
    (
        "platform_acl",
        "CREATE in schema platform",
        ["grant create on schema platform to askasia_operator"],
        "schema platform",
        "CREATE held by askasia_operator: it lets its holder plant objects",
        "error",
    ),
    (
        "platform_acl",
        "a platform function for PUBLIC",
        ["grant execute on function platform.bound_tenant() to public"],
        "function platform.bound_tenant()",
        "PUBLIC holds EXECUTE",
        "error",
    ),
    (
        "platform_acl",
        "a direct grant to one tenant's role",
        ["grant select on platform.tenants to {a_app}"],
        "table platform.tenants",
        "not to its group",
        "warn",
    ),
    (
        "platform_ownership",
        "a shared table owned by the master",
        ["alter table platform.cost_entries owner to askasia_master"],
        "table platform.cost_entries",
        "owned by askasia_master",
        "error",
    ),
    (
        "role_search_path",
        "search_path pointing elsewhere",
        ["alter role {a_app} set search_path = {b_schema}, public"],
        "role {a_app}",
        "search_path is {b_schema}, public",
        "warn",
    ),
    (
        "role_search_path",
        "search_path not pinned",
        ["alter role {a_app} reset search_path"],
        "role {a_app}",
        "not pinned",
        "warn",
    ),
    (
        "role_search_path",
        "a database-specific override",
        ["alter role {a_ro} in database platform set search_path = public"],
        "role {a_ro}",
        "search_path is public",
        "warn",
    ),
    (
        "function_default_privileges",
        "a tenant owner's default EXECUTE for PUBLIC back",
        ["alter default privileges for role {a_owner} grant execute on functions to public"],
        "role {a_owner}",
        "executable by PUBLIC",
        "warn",
    ),
    (
        "ledger_drift",
        "a versioned step's checksum tampered with",
        [
            "update platform.schema_ledger set checksum = 'tampered' where target = 'tenant:' || {a_id_lit} "
            "and step = 'V002__tables'"
        ],
        "tenant:{a_id} V002__tables",
        "changed after it was applied",
        "error",
    ),
    (
        "ledger_drift",
        "a repeatable step out of date",
        ["update platform.schema_ledger set checksum = 'stale' where target = 'platform' and step = 'R__policies'"],
        "platform R__policies",
        "out of date",
        "warn",
    ),
    (
        "ledger_drift",
        "credentials never set",
        ["delete from platform.schema_ledger where target = 'tenant:' || {b_id_lit} and step = 'credentials'"],
        "tenant:{b_id} credentials",
        "never set",
        "warn",
    ),
    (
        "ledger_drift",
        "a versioned step never applied",
        ["delete from platform.schema_ledger where target = 'partner:' || {pc_lit} and step = 'V001__partner_role'"],
        "partner:{pc} V001__partner_role",
        "never applied",
        "warn",
    ),
    (
        "audit_partitions_ahead",
        "monthly partitions ending within 30 days",
        [
            "do $$ declare p regclass; begin for p in select c.oid::regclass from pg_inherits i "
            "join pg_class c on c.oid = i.inhrelid where i.inhparent = 'platform.audit_events'::regclass "
            "and pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT' and substring(pg_get_expr(c.relpartbound, c.oid) "
            "from 'TO [(]''([^'']+)''[)]')::timestamptz > now() + interval '30 days' loop "
            "execute format('alter table platform.audit_events detach partition %s', p); end loop; end $$"
        ],
        "table platform.audit_events",
        "within 30 days",
        "error",
    ),
    (
        "audit_partitions_ahead",
        "no DEFAULT partition",
        ["alter table platform.audit_events detach partition platform.audit_events_default"],
        "table platform.audit_events",
        "no DEFAULT partition",
        "error",
    ),
    (
        "unindexed_foreign_keys",
        "a platform foreign key without its index",
        ["drop index platform.cost_entries_partner_idx"],
        "foreign key cost_entries_partner_id_fkey on platform.cost_entries",
        "no index leads with (partner_id)",
        "warn",
    ),
    (
        "unindexed_foreign_keys",
        "a tenant foreign key without its index",
        ["drop index {a_schema}.emails_ticket_idx"],
        "foreign key emails_ticket_id_fkey on {a_schema}.emails",
        "no index leads with (ticket_id)",
        "warn",
    ),
    (
        "unindexed_foreign_keys",
        "an index that does not lead with the key",
        ["drop index {b_schema}.tickets_lead_idx", "create index on {b_schema}.tickets (subject, lead_id)"],
        "foreign key tickets_lead_id_fkey on {b_schema}.tickets",
        "no index leads with (lead_id)",
        "warn",
    ),
    (
        "audit_past_retention",
        "a starter tenant's event kept 200 days",
        [
            "insert into platform.audit_events (tenant_id, partner_id, occurred_at, actor, action) "
            "values ({b_id_lit}, {pb_lit}, now() - interval '200 days', 'verify', 'test')"
        ],
        "audit events of tenant {b_id}",
        "older than the starter plan's 90 days",
        "error",
    ),
    (
        "audit_past_retention",
        "an enterprise tenant's event kept 14 months",
        [
            "insert into platform.audit_events (tenant_id, partner_id, occurred_at, actor, action) "
            "values ({c_id_lit}, {pc_lit}, now() - interval '430 days', 'verify', 'test')"
        ],
        "audit events of tenant {c_id}",
        "older than the enterprise plan's 400 days",
        "error",
    ),
    (
        "purge_overdue",
        "a tenant closed 31 days ago still on record",
        ["update platform.tenants set status = 'closed', closed_at = now() - interval '31 days' where id = {b_id_lit}"],
        "tenant {b_id}",
        "more than 30 days ago, and still holds: schema {b_schema}, roles",
        "error",
    ),
    (
        "purge_overdue",
        "a partner terminated 31 days ago still on record",
        [
            "update platform.partners set status = 'terminated', terminated_at = now() - interval '31 days' "
            "where id = {pc_lit}"
        ],
        "partner {pc}",
        "more than 30 days ago, and still holds: role {pc_app}, tenants",
        "error",
    ),
    (
        "dsr_overdue",
        "an access request open past its due date",
        [
            "insert into platform.dsr_requests (email, kind, opened_at, due_at) "
            "values ('overdue@example.com', 'access', now() - interval '31 days', now() - interval '1 day')"
        ],
        "data-subject request",
        "access request opened",
        "error",
    ),
    (
        "closed_tenant_login",
        "a closed tenant whose app role keeps LOGIN",
        ["update platform.tenants set status = 'closed', closed_at = now() where id = {a_id_lit}"],
        "role {a_app}",
        "is closed",
        "error",
    ),
    (
        "export_window",
        "a tenant closed 29 days ago whose schema is gone",
        [
            "update platform.tenants set status = 'closed', closed_at = now() - interval '29 days' "
            "where id = {b_id_lit}",
            "drop schema {b_schema} cascade",
        ],
        "tenant {b_id}",
        "inside its 30-day export window, and no longer holds: schema {b_schema}",
        "error",
    ),
    (
        "export_window",
        "a tenant closed yesterday whose owner role is gone",
        [
            "update platform.tenants set status = 'closed', closed_at = now() - interval '1 day' where id = {c_id_lit}",
            "drop schema {c_schema} cascade",
            "drop owned by {c_owner}",
            "drop role {c_owner}",
        ],
        "tenant {c_id}",
        "no longer holds: schema {c_schema}, role {c_owner}",
        "error",
    ),
    (
        "terminated_partner_login",
        "a terminated partner whose console role keeps LOGIN",
        ["update platform.partners set status = 'terminated', terminated_at = now() where id = {pc_lit}"],
        "role {pc_app}",
        "can still log in",
        "error",
    ),
    (
        "password_encryption",
        "md5 for the session",
        ["set local password_encryption = 'md5'"],
        "setting password_encryption",
        "md5: a password set in plain text is stored with it",
        "error",
    ),
    (
        "password_encryption",
        "md5 as a tenant's own default",
        ["alter role {a_app} set password_encryption = 'md5'"],
        "setting password_encryption for role {a_app}",
        "an override chooses password_encryption=md5",
        "error",
    ),
    (
        "shared_row_integrity",
        "the trigger dating audit events dropped",
        ["drop trigger stamped_now on platform.audit_events"],
        "trigger stamped_now on platform.audit_events",
        "missing",
        "error",
    ),
    (
        "shared_row_integrity",
        "the trigger dating cost entries disabled",
        ["alter table platform.cost_entries disable trigger stamped_now"],
        "trigger stamped_now on platform.cost_entries",
        "disabled",
        "error",
    ),
    (
        "shared_row_integrity",
        "audit events deletable by the operator",
        ["grant delete on platform.audit_events to askasia_operator"],
        "table platform.audit_events",
        "DELETE held by askasia_operator",
        "error",
    ),
    (
        "shared_row_integrity",
        "worker runs updatable in every column",
        ["grant update on platform.worker_runs to askasia_tenant_app"],
        "table platform.worker_runs",
        "UPDATE held by askasia_tenant_app",
        "error",
    ),
    (
        "shared_row_integrity",
        "a run's start time updatable",
        ["grant update (started_at) on platform.worker_runs to askasia_tenant_app"],
        "column platform.worker_runs.started_at",
        "UPDATE held by askasia_tenant_app",
        "error",
    ),
    (
        "shared_row_integrity",
        "negative amounts accepted",
        ["alter table platform.cost_entries drop constraint cost_entries_amount_check"],
        "constraint cost_entries_amount_check on platform.cost_entries",
        "missing",
        "error",
    ),
    (
        "shared_row_integrity",
        "a currency constraint left NOT VALID",
        [
            "alter table platform.cost_entries drop constraint cost_entries_currency_check",
            "alter table platform.cost_entries add constraint cost_entries_currency_check "
            "check (currency <> 'XXX') not valid",
        ],
        "constraint cost_entries_currency_check on platform.cost_entries",
        "NOT VALID",
        "warn",
    ),
    (
        "statistics_target",
        "statistics collected on a shared table's tenant column",
        ["alter table platform.worker_runs alter column tenant_id set statistics 100"],
        "column platform.worker_runs.tenant_id",
        "statistics target 100",
        "error",
    ),
    (
        "statistics_target",
        "a partition back at the default target",
        ["alter table {partition} alter column actor set statistics -1"],
        "column {partition}.actor",
        "statistics target -1",
        "error",
    ),
    (
        "role_membership",
        "the proxy's service role made the owner",
        ["grant askasia_platform_owner to askasia_platform_service"],
        "role askasia_platform_service",
        "is a member of askasia_platform_owner",
        "error",
    ),
]
# A tenant's rotation twin (t_<id>_app2, tenant V020) is judged as strictly as its app role.
BREAKS += [
    (
        "role_attributes",
        "BYPASSRLS on a rotation twin",
        ["alter role {a_twin} bypassrls"],
        "role {a_twin}",
        "has BYPASSRLS",
        "error",
    ),
    (
        "role_membership",
        "another tenant's role granted to a twin",
        ["grant {b_app} to {a_twin}"],
        "role {a_twin}",
        "a role of tenant {b_id}",
        "error",
    ),
    (
        "role_membership",
        "a twin made a member of another tenant's app role",
        ["revoke {a_app} from {a_twin}", "grant {b_app} to {a_twin}"],
        "role {a_twin}",
        "reaches {b_app}, a role of tenant {b_id}",
        "error",
    ),
    (
        "role_membership",
        "ADMIN OPTION for a twin on its app role",
        ["grant {a_app} to {a_twin} with admin option"],
        "role {a_twin}",
        "holds ADMIN OPTION on {a_app}",
        "error",
    ),
    (
        "role_membership",
        "an outsider inside a tenant's twin",
        ["create role {plant}", "grant {a_twin} to {plant}"],
        "role {plant}",
        "is a member of {a_twin}",
        "error",
    ),
    (
        "role_bindings",
        "a twin bound to another tenant",
        ["update platform.role_bindings set tenant_id = {b_id_lit} where role_name = {a_twin_lit}"],
        "binding '{a_twin}'",
        "to tenant {b_id}",
        "error",
    ),
    (
        "role_bindings",
        "a twin without its binding",
        ["delete from platform.role_bindings where role_name = {a_twin_lit}"],
        "role {a_twin}",
        "without a binding",
        "warn",
    ),
    (
        "role_search_path",
        "a twin searching public",
        ["alter role {a_twin} set search_path = public"],
        "role {a_twin}",
        "search_path is public",
        "warn",
    ),
    (
        "connection_limit",
        "a twin without a limit",
        ["alter role {a_twin} connection limit -1"],
        "role {a_twin}",
        "no connection limit",
        "error",
    ),
    (
        "role_settings",
        "a twin raising its own work_mem",
        ["alter role {b_twin} set work_mem = '1GB'"],
        "role {b_twin}",
        "work_mem=1GB",
        "error",
    ),
    (
        "closed_tenant_login",
        "a closed tenant whose twin keeps LOGIN",
        [
            "update platform.tenants set status = 'closed', closed_at = now() where id = {a_id_lit}",
            "alter role {a_app} nologin",
        ],
        "role {a_twin}",
        "is closed",
        "error",
    ),
    (
        "tenant_orphans",
        "an active tenant's twin dropped",
        ["drop role {c_twin}"],
        "tenant {c_id}",
        "without its role {c_twin}",
        "error",
    ),
]
BREAKS += [
    (
        "connection_limit",
        "a tenant's login role without a limit",
        ["alter role {a_app} connection limit -1"],
        "role {a_app}",
        "no connection limit",
        "error",
    ),
    (
        "connection_limit",
        "a partner's limit above its share",
        ["alter role {pc_app} connection limit 500"],
        "role {pc_app}",
        "connection limit 500 is above",
        "error",
    ),
    (
        "role_settings",
        "a tenant raising its own work_mem",
        ["alter role {a_app} set work_mem = '1GB'"],
        "role {a_app}",
        "work_mem=1GB",
        "error",
    ),
    (
        "role_settings",
        "a tenant switching its statement_timeout off",
        ["alter role {b_app} reset statement_timeout"],
        "role {b_app}",
        "statement_timeout=30s is missing",
        "error",
    ),
    (
        "role_settings",
        "a database-specific override",
        ["alter role {pa_app} in database platform set lock_timeout = 0"],
        "role {pa_app}",
        "database-specific override lock_timeout=0",
        "error",
    ),
    (
        "role_settings",
        "a setting on the read-only role",
        ["alter role {c_ro} set idle_in_transaction_session_timeout = 0"],
        "role {c_ro}",
        "idle_in_transaction_session_timeout=0",
        "error",
    ),
    (
        "strong_lock_privileges",
        "table-wide UPDATE on a shared table for the tenant group",
        ["grant update on platform.worker_runs to askasia_tenant_app"],
        "table platform.worker_runs",
        "UPDATE held by askasia_tenant_app",
        "error",
    ),
    (
        "strong_lock_privileges",
        "TRIGGER on a shared table for one partner",
        ["grant trigger on platform.tenants to {pa_app}"],
        "table platform.tenants",
        "TRIGGER held by {pa_app}",
        "error",
    ),
    (
        "advisory_lock_functions",
        "pg_advisory_lock back for PUBLIC",
        ["grant execute on function pg_advisory_lock(bigint) to public"],
        "function pg_advisory_lock(bigint)",
        "EXECUTE held by PUBLIC",
        "error",
    ),
    (
        "advisory_lock_functions",
        "the shared variant granted to one tenant",
        ["grant execute on function pg_advisory_lock_shared(bigint) to {a_app}"],
        "function pg_advisory_lock_shared(bigint)",
        "EXECUTE held by {a_app}",
        "error",
    ),
]
BREAKS += [
    (
        "cell_capacity",
        "a budget below what the cell has committed",
        ["select set_config('askasia.connection_budget', '31', true)"],
        "database platform",
        "exceed the cell's budget of 31",
        "error",
    ),
    (
        "cell_capacity",
        "one role's limit raised past the whole budget",
        ["alter role {a_app} connection limit 60000"],
        "database platform",
        "exceed the cell's budget of 50000",
        "error",
    ),
]
# The operator roles (V040) and the master, judged as strictly as tenants' roles.
BREAKS += [
    (
        "operator_attributes",
        "the verifier given BYPASSRLS",
        ["alter role askasia_verifier bypassrls"],
        "role askasia_verifier",
        "has BYPASSRLS",
        "error",
    ),
    (
        "operator_attributes",
        "the guard given CREATEROLE",
        ["alter role askasia_guard createrole"],
        "role askasia_guard",
        "has CREATEROLE",
        "error",
    ),
    (
        "operator_attributes",
        "the migrator made unable to log in",
        ["alter role askasia_migrator nologin"],
        "role askasia_migrator",
        "has NOLOGIN",
        "error",
    ),
    (
        "operator_membership",
        "a committed master grant of a tenant's owner role",
        ["grant {a_owner} to " + MASTER],
        "role " + MASTER,
        "the master reaches {a_owner}",
        "error",
    ),
    (
        "operator_membership",
        "the master granted pg_execute_server_program",
        ["grant pg_execute_server_program to " + MASTER],
        "role " + MASTER,
        "the master reaches pg_execute_server_program",
        "error",
    ),
    (
        "operator_membership",
        "the master granted pg_signal_backend directly",
        ["grant pg_signal_backend to " + MASTER],
        "role " + MASTER,
        "holds pg_signal_backend directly",
        "error",
    ),
    (
        "operator_membership",
        "the migrator keeping a tenant's owner role after its step",
        ["grant {b_owner} to askasia_migrator"],
        "role askasia_migrator",
        "the migrator reaches {b_owner}",
        "error",
    ),
    (
        "operator_membership",
        "the migrator granted pg_execute_server_program",
        ["grant pg_execute_server_program to askasia_migrator"],
        "role askasia_migrator",
        "the migrator reaches the predefined role pg_execute_server_program",
        "error",
    ),
    (
        "operator_membership",
        "the verifier made a member of the platform owner",
        ["grant askasia_platform_owner to askasia_verifier"],
        "role askasia_verifier",
        "the verifier reaches askasia_platform_owner",
        "error",
    ),
    (
        "operator_membership",
        "the verifier made a member of a tenant's app role",
        ["grant {c_app} to askasia_verifier"],
        "role askasia_verifier",
        "the verifier reaches {c_app}",
        "error",
    ),
    (
        "operator_membership",
        "pg_read_all_data for the operator group reaches the migrator",
        ["grant pg_read_all_data to askasia_operator"],
        "role askasia_migrator",
        "the migrator reaches the predefined role pg_read_all_data, beyond its job (via askasia_migrator",
        "error",
    ),
]
# Checks whose breaks cannot happen inside a transaction (server settings, a plain-text login),
# and the module that breaks them on purpose.
BROKEN_ELSEWHERE = {"tls_required": "tests/db/test_verify_tls.py"}
# Stack-wide checks (Secrets Manager against every cell's records), and the test that breaks each.
STACK_WIDE = {SECRETS_CHECK: "test_orphan_secrets_reports_a_secret_whose_tenant_is_gone_and_passes_once_it_goes"}


def test_every_check_has_a_negative_case():
    covered = {case[0] for case in BREAKS} | set(BROKEN_ELSEWHERE) | set(STACK_WIDE)
    assert {c.name for c in catalog_checks()} | {"ledger_drift", SECRETS_CHECK} <= covered


def test_export_window_passes_a_closed_tenant_that_still_holds_its_data(su, world):
    names = world.names()
    su.execute(render("update platform.tenants set status = 'closed', closed_at = now() where id = {a_id_lit}", names))
    assert [f for f in check_rows(su, "export_window") if world.a.id in f.object] == []


def test_orphan_secrets_reports_a_secret_whose_tenant_is_gone_and_passes_once_it_goes(outputs, world):
    sm = aws.client("secretsmanager", outputs.region)
    gone = "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12))
    name = secret_name(outputs.stack, "tenant", gone)  # a purged tenant's credentials, left behind
    options = VerifyOptions(probes=0, ledger=False)

    def orphans() -> list[Finding]:
        reports = verify_stack(outputs, options)
        assert [r.errors for r in reports] == [[], []]
        return [f for r in reports for f in r.findings if f.check == SECRETS_CHECK]

    mine = f"secret {name}"
    assert [f.object for f in orphans()].count(mine) == 0
    sm.create_secret(Name=name, SecretString=json.dumps({"username": f"t_{gone}_app", "password": "x"}))
    try:
        found = [f for f in orphans() if f.object == mine]
        assert len(found) == 1 and found[0].level == "error" and f"no tenant {gone} in any cell" in found[0].detail
        # the tenants still on record keep theirs without a finding
        assert not any(world.a.id in f.object or world.c.partner_id in f.object for f in orphans())
        # judged once, on the first cell; the other says where
        reports = verify_stack(outputs, options)
        assert reports[1].check_status(SECRETS_CHECK) == ("skip", "stack-wide: judged on cell-1")
        assert reports[0].check_status(SECRETS_CHECK) == ("fail", "")
        # one cell only: the other cell's tenants are unknown, so nothing is judged
        (alone,) = verify_stack(outputs, options, cells=["cell-2"])
        assert alone.check_status(SECRETS_CHECK)[0] == "skip" and "cell-1" in alone.check_status(SECRETS_CHECK)[1]
    finally:
        sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert [f.object for f in orphans()].count(mine) == 0


def test_orphan_secrets_listed_before_a_purge_deleted_them_are_not_reported(outputs, world):
    """The listing runs while the cells are verified: a secret listed, then deleted by a purge
    before its records went, is gone when judged and no finding; one still there is reported."""
    sm = aws.client("secretsmanager", outputs.region)
    ids = ["".join(secrets.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(12)) for _ in range(2)]
    purged, left = (secret_name(outputs.stack, "tenant", i) for i in ids)
    for name, tenant in ((purged, ids[0]), (left, ids[1])):
        sm.create_secret(Name=name, SecretString=json.dumps({"username": f"t_{tenant}_app", "password": "x"}))
    try:
        listing: Future[dict[str, str]] = Future()
        listing.set_result(list_secret_names(outputs))
        sm.delete_secret(SecretId=purged, ForceDeleteWithoutRecovery=True)  # the purge, after the listing
        reports = [CellReport(c) for c in outputs.cells]
        owners = {c: set() for c in outputs.cells}
        judge_secrets(outputs, reports, owners, listing)
        objects = [f.object for f in reports[0].findings if f.check == SECRETS_CHECK]
        assert f"secret {left}" in objects and f"secret {purged}" not in objects
    finally:
        sm.delete_secret(SecretId=left, ForceDeleteWithoutRecovery=True)


@pytest.mark.parametrize(
    ("check", "case", "statements", "obj", "detail", "level"), BREAKS, ids=[f"{b[0]}: {b[1]}" for b in BREAKS]
)
def test_check_catches_its_break(su, world, check, case, statements, obj, detail, level):
    names = world.names()
    want_obj, want_detail = shown(obj, names), shown(detail, names)

    def matching() -> list[Finding]:
        return [f for f in check_rows(su, check) if want_obj in f.object and want_detail in f.detail]

    assert matching() == [], "the row must not be there before the break"
    if (
        check == "foreign_data_access"
        and "dblink" in case
        and not su.execute("select 1 from pg_available_extensions where name = 'dblink'").fetchone()
    ):
        pytest.skip("dblink is not installed on this PostgreSQL")
    for statement in statements:
        su.execute(render(statement, names))
    found = matching()
    assert found, f"{check} missed: {case}; it returned {check_rows(su, check)}"
    assert {f.level for f in found} == {level}
    assert all(f.remediation for f in found)


def test_closed_tenant_login_reports_a_session_left_open(local_stack, outputs, su, world):
    """A session opened before the close and never ended: LOGIN revoked is not enough."""
    names = world.names()
    with connect_as(outputs, "tenant", world.a.id, world.a.cell) as session:
        session.execute("select 1")
        with committed(
            local_stack,
            names,
            [
                "update platform.tenants set status = 'closed', closed_at = now() where id = {a_id_lit}",
                "alter role {a_app} nologin",
                "alter role {a_twin} nologin",
            ],
            [
                "update platform.tenants set status = 'active', closed_at = null where id = {a_id_lit}",
                "alter role {a_app} login",
                "alter role {a_twin} login",
            ],
        ):
            su.rollback()
            found = [f for f in check_rows(su, "closed_tenant_login") if world.a.id in f.detail]
            su.rollback()
    assert [(f.object, f.level) for f in found] == [(shown("role {a_app}", names), "error")]
    assert "1 session(s) of it are still open" in found[0].detail


def test_a_security_definer_function_done_right_is_not_flagged(su, world):
    su.execute(
        render(
            "create function platform.{plant}() returns int language sql security definer "
            "set search_path = pg_catalog, pg_temp as 'select 1'",
            world.names(),
        )
    )
    su.execute(render("revoke execute on function platform.{plant}() from public", world.names()))
    rows = check_rows(su, "security_definer_search_path") + check_rows(su, "security_definer_executable")
    assert [f for f in rows if PLANT in f.object] == []


def test_a_security_invoker_view_is_not_flagged(su, world):
    names = world.names()
    su.execute(
        render(
            "create view platform.{plant} with (security_invoker = true) as select * from platform.worker_runs", names
        )
    )
    su.execute(render("grant select on platform.{plant} to askasia_tenant_app", names))
    assert [f for f in check_rows(su, "view_security_invoker") if PLANT in f.object] == []


def test_the_operator_policy_and_the_master_are_not_flagged(su, world):
    rows = check_rows(su, "policy_using_true") + check_rows(su, "role_membership")
    assert [f for f in rows if "operator_all" in f.object or MASTER in f.object] == []


def test_the_operator_roles_as_applied_are_not_flagged(su, world):
    """The verifier's read policies, the migrator's CREATEROLE and operator membership, the
    guard's predefined roles and the master's platform roles are what the model gives them."""
    rows = check_rows(su, "policy_using_true") + check_rows(su, "role_membership")
    rows += check_rows(su, "operator_attributes") + check_rows(su, "operator_membership")
    assert [f for f in rows if "verifier_reads" in f.object or "askasia_" in f.object] == []


# -- behaviour probes ------------------------------------------------------------------------
CAUGHT: set[str] = set()  # the probe checks some test below breaks on purpose and shows failing


def catches(*checks: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Marks a test that breaks isolation on purpose and asserts these probe checks report it."""

    def mark(test: Callable[..., None]) -> Callable[..., None]:
        CAUGHT.update(checks)
        return test

    return mark


def test_every_probe_check_has_a_negative_case():
    assert {c.name for c in probe_checks()} <= CAUGHT


def probe(outputs, world: World, **options) -> CellReport:
    opts = VerifyOptions(
        probes=options.pop("probes", 10), catalog=False, ledger=False, tenants=options.pop("tenants", world.tenant_ids)
    )
    return verify_cell(outputs, outputs.cluster("cell-1"), opts)


def probe_findings(report: CellReport, check: str) -> list[Finding]:
    return [f for f in report.findings if f.check == check]


def marked_rows(local_stack) -> tuple[int, int]:
    with local_stack.superuser() as su:
        return (
            su.execute("select count(*) from platform.worker_runs where worker = %s", (MARK,)).fetchone()[0],
            su.execute("select count(*) from platform.audit_events where actor = %s", (MARK,)).fetchone()[0],
        )


def test_probes_pass_on_a_clean_stack(local_stack, outputs, world):
    before = marked_rows(local_stack)  # a tenant may have marked rows of its own (another test does)
    report = probe(outputs, world)
    assert report.errors == [] and report.findings == []
    assert (report.probe_pairs, report.probe_partners) == (6, 2)  # every ordered pair of 3 tenants
    assert report.probe_attempts > 600
    assert marked_rows(local_stack) == before  # every attempt was rolled back: nothing it wrote was committed


@catches("probe_tenant_objects")
def test_probe_catches_a_grant_on_another_tenants_table(local_stack, outputs, world):
    names = world.names()
    with committed(
        local_stack,
        names,
        ["grant usage on schema {b_schema} to {a_app}", "grant select, insert on {b_leads} to {a_app}"],
        ["revoke usage on schema {b_schema} from {a_app}", "revoke select, insert on {b_leads} from {a_app}"],
    ):
        report = probe(outputs, world, tenants=frozenset({world.a.id, world.b.id}))
    found = {
        f.detail
        for f in probe_findings(report, "probe_tenant_objects")
        if f.object == shown("{a_app} -> {b_schema}.leads", names)
    }
    assert any(d.startswith("SELECT succeeded") for d in found)
    assert any(d.startswith("INSERT got past the privilege checks") for d in found)  # leads.name is NOT NULL
    assert verify_status([report]) == 1


@catches("probe_statistics")
def test_probe_catches_statistics_on_a_shared_table(local_stack, outputs, world):
    names = world.names()
    with committed(
        local_stack,
        names,
        [
            "alter table platform.worker_runs alter column tenant_id set statistics 100",
            "insert into platform.worker_runs (tenant_id, partner_id, worker) "
            "select {b_id_lit}, {pb_lit}, {plant_lit} from generate_series(1, 500)",
            "analyze platform.worker_runs",
        ],
        [
            "delete from platform.worker_runs where worker = {plant_lit}",
            "alter table platform.worker_runs alter column tenant_id set statistics 0",
            "delete from pg_statistic where starelid = 'platform.worker_runs'::regclass",
        ],
    ):
        report = probe(outputs, world, tenants=frozenset({world.a.id, world.b.id}))
    found = [
        f
        for f in probe_findings(report, "probe_statistics")
        if f.object == shown("{a_app} -> platform.worker_runs", names)
    ]
    assert found and shown("tenant_id = tenant {b_id}", names) in found[0].detail
    assert verify_status([report]) == 1


@catches("probe_shared_rows")
def test_probe_catches_an_open_policy_on_a_shared_table(local_stack, outputs, world):
    names = world.names()
    with committed(
        local_stack,
        names,
        ["create policy {plant} on platform.worker_runs for select to askasia_tenant_app using (true)"],
        ["drop policy {plant} on platform.worker_runs"],
    ):
        report = probe(outputs, world)
    leaks = [f for f in probe_findings(report, "probe_shared_rows") if f.object.endswith("-> platform.worker_runs")]
    assert {f.object.split(" ")[0] for f in leaks} == {f"t_{t.id}_app" for t in (world.a, world.b, world.c)}
    assert all("with no settings" in f.detail for f in leaks)


@catches("probe_shared_rows")
def test_probe_catches_a_policy_that_trusts_a_client_setting(local_stack, outputs, world):
    names = world.names()
    with committed(
        local_stack,
        names,
        [
            "create policy {plant} on platform.cost_entries for select to askasia_tenant_app "
            "using (tenant_id = current_setting('app.tenant_id', true))"
        ],
        ["drop policy {plant} on platform.cost_entries"],
    ):
        report = probe(outputs, world, tenants=frozenset({world.a.id, world.b.id}))
    (leak,) = [
        f
        for f in probe_findings(report, "probe_shared_rows")
        if f.object == shown("{a_app} -> platform.cost_entries", names)
    ]
    assert "after set app.tenant_id" in leak.detail and "with no settings" not in leak.detail


@catches("probe_shared_rows")
def test_probe_names_each_relation_when_counting_them_together_fails(local_stack, outputs, world):
    """The relations a context may read are counted in one statement; when it fails (here a
    policy that errors on cost_entries), each is counted alone, so a leak still names its table."""
    names = world.names()
    with committed(
        local_stack,
        names,
        [
            "create policy {plant} on platform.worker_runs for select to askasia_tenant_app using (true)",
            "create policy {plant} on platform.cost_entries for select to askasia_tenant_app using (1 / 0 = 1)",
        ],
        ["drop policy {plant} on platform.worker_runs", "drop policy {plant} on platform.cost_entries"],
    ):
        report = probe(outputs, world, tenants=frozenset({world.a.id, world.b.id}))
    (leak,) = [
        f
        for f in probe_findings(report, "probe_shared_rows")
        if f.object == shown("{a_app} -> platform.worker_runs", names)
    ]
    assert "with no settings" in leak.detail and "after set app.tenant_id" in leak.detail
    assert any(shown("{a_app}: sees rows of other tenants", names) in e and "cost_entries" in e for e in report.errors)


@catches("probe_shared_write")
def test_probe_tries_a_held_privilege_against_every_target(local_stack, outputs, world):
    """A DELETE the tenant has no privilege for is refused whatever the target: tried once a login.
    Once it holds DELETE, every target's rows are tried (here the canaries')."""
    names = world.names()
    with committed(
        local_stack,
        names,
        [
            "grant delete on platform.cost_entries to askasia_tenant_app",
            # a DELETE ... WHERE reads the rows too: the policy opens them for every command
            "create policy {plant} on platform.cost_entries for all to askasia_tenant_app using (true)",
        ],
        [
            "drop policy {plant} on platform.cost_entries",
            "revoke delete on platform.cost_entries from askasia_tenant_app",
        ],
    ):
        report = probe(outputs, world, tenants=frozenset({world.a.id, world.b.id}))
    deletes = {
        f.detail
        for f in probe_findings(report, "probe_shared_write")
        if f.object == shown("{a_app} -> platform.cost_entries", names)
    }
    for canary in canaries.TENANTS:
        assert any(d.startswith(f"DELETE of tenant {canary}'s rows changed") for d in deletes), deletes


@catches("probe_set_role", "probe_stat_activity")
def test_probe_catches_a_membership_and_stats_visibility(local_stack, outputs, world):
    names = world.names()
    with committed(
        local_stack,
        names,
        ["grant {b_ro} to {a_app}", "grant pg_read_all_stats to {a_app}"],
        ["revoke {b_ro} from {a_app}", "revoke pg_read_all_stats from {a_app}"],
    ):
        report = probe(outputs, world, tenants=frozenset({world.a.id, world.b.id}))
    assert shown("{a_app} -> role {b_ro}", names) in {f.object for f in probe_findings(report, "probe_set_role")}
    stats = probe_findings(report, "probe_stat_activity")
    assert any(f.object.startswith(shown("{a_app} ->", names)) and "query text" in f.detail for f in stats)


def test_a_witness_session_goes_on_to_probe_and_still_catches(local_stack, outputs, world, monkeypatch):
    """Two pairs among three tenants are a path a -> b -> c: b's witness session is b's probing
    session too (three logins, not four), and what it sees as a prober is still caught."""
    names = world.names()
    logins: list[str] = []
    connect_as = prober_module.CellProber.connect_as

    def counted(self, kind, owner_id, who, autocommit=False):
        if kind == "tenant":
            logins.append(owner_id)
        return connect_as(self, kind, owner_id, who, autocommit)

    monkeypatch.setattr(prober_module.CellProber, "connect_as", counted)
    grants = [f"grant pg_read_all_stats to {{{t}_app}}" for t in "abc"]
    revokes = [f"revoke pg_read_all_stats from {{{t}_app}}" for t in "abc"]
    with committed(local_stack, names, grants, revokes):
        report = probe(outputs, world, probes=2)
    assert (report.probe_pairs, len(logins), len(set(logins))) == (2, 3, 3)
    seers = {f.object.split(" ->")[0] for f in probe_findings(report, "probe_stat_activity")}
    assert len(seers) == 2 and seers <= {shown(f"{{{t}_{role}}}", names) for t in "abc" for role in ("app", "twin")}


@catches("probe_partner")
def test_probe_catches_a_partner_seeing_other_partners(local_stack, outputs, world):
    names = world.names()
    with committed(
        local_stack,
        names,
        ["create policy {plant} on platform.tenants for select to askasia_partner_app using (true)"],
        ["drop policy {plant} on platform.tenants"],
    ):
        report = probe(outputs, world)
    objects = {f.object for f in probe_findings(report, "probe_partner")}
    assert shown("{pa_app} -> platform.tenants", names) in objects
    assert shown("{pc_app} -> platform.tenants", names) in objects


@catches("probe_own_work")
def test_probe_reports_a_tenant_that_cannot_do_its_own_work(local_stack, outputs, world):
    names = world.names()
    with committed(
        local_stack, names, ["revoke insert on {a_leads} from {a_app}"], ["grant insert on {a_leads} to {a_app}"]
    ):
        report = probe(outputs, world, tenants=frozenset({world.a.id, world.b.id}))
    assert [f.object for f in probe_findings(report, "probe_own_work")] == [shown("{a_app} -> {a_schema}.leads", names)]


@catches("probe_create")
def test_probe_catches_a_tenant_creating_in_another_tenants_schema(local_stack, outputs, world):
    names = world.names()
    with committed(
        local_stack,
        names,
        ["grant create on schema {b_schema} to {a_app}"],
        ["revoke create on schema {b_schema} from {a_app}"],
    ):
        report = probe(outputs, world, tenants=frozenset({world.a.id, world.b.id}))
    (found,) = probe_findings(report, "probe_create")
    assert (found.object, found.detail) == (shown("{a_app} -> schema {b_schema}", names), "CREATE TABLE succeeded")


@catches("probe_shared_write")
def test_probe_catches_a_tenant_writing_shared_rows_as_another(local_stack, outputs, world):
    names = world.names()
    with committed(
        local_stack,
        names,
        ["create policy {plant} on platform.worker_runs for insert to askasia_tenant_app with check (true)"],
        ["drop policy {plant} on platform.worker_runs"],
    ):
        report = probe(outputs, world, tenants=frozenset({world.a.id, world.b.id}))
    writes = {
        f.detail
        for f in probe_findings(report, "probe_shared_write")
        if f.object == shown("{a_app} -> platform.worker_runs", names)
    }
    assert shown("INSERT claiming tenant {b_id} of partner {pb} succeeded", names) in writes
    assert shown("INSERT claiming tenant {b_id} of partner {pb} as askasia_tenant_app succeeded", names) in writes
    assert {f.check for f in report.findings} == {"probe_shared_write"}


def the_finding_naming_a(report: CellReport, world: World) -> Finding:
    """What tenant a did to itself is one finding naming it; b and c were probed as usual."""
    assert report.errors == []  # not a cell that could not run
    (found,) = report.findings
    assert (found.check, found.object) == ("probe_login", f"tenant {world.a.id} (role t_{world.a.id}_app)")
    assert (report.probe_pairs, report.probe_partners) == (4, 2)  # b and c probed each other and a
    assert verify_status([report]) == 1
    return found


@contextmanager
def as_tenant(
    local_stack, outputs, tenant: directory.Tenant, statements: list[sql.Composable], repairs: list[str]
) -> Iterator[None]:
    """What a tenant does to itself with its own credentials; repaired by the superuser after
    (`{app}` in a repair is the tenant's app role, `{password}` its secret's password)."""
    with connect_as(outputs, "tenant", tenant.id, tenant.cell) as conn:
        conn.autocommit = True
        for statement in statements:
            conn.execute(statement)
    try:
        yield
    finally:
        password = read_secret_json(secret_name(outputs.stack, "tenant", tenant.id), outputs.region)["password"]
        with local_stack.superuser(cell=tenant.cell, autocommit=True) as su:
            for statement in repairs:
                su.execute(
                    sql.SQL(statement).format(app=sql.Identifier(f"t_{tenant.id}_app"), password=sql.Literal(password))
                )


@catches("probe_login")
def test_a_tenant_that_changed_its_own_password_is_named_and_the_others_are_probed(local_stack, outputs, world):
    changed = [sql.SQL("alter role current_user password {}").format(sql.Literal(secrets.token_urlsafe(24)))]
    with as_tenant(local_stack, outputs, world.a, changed, ["alter role {app} password {password}"]):
        report = probe(outputs, world)
    found = the_finding_naming_a(report, world)
    assert "cannot log in with the credentials Secrets Manager holds" in found.detail
    assert "password authentication failed" in found.detail


@catches("probe_login")
def test_a_tenant_that_set_its_own_role_defaults_is_named_with_the_settings(local_stack, outputs, world):
    changed = [
        sql.SQL("alter role current_user set default_transaction_read_only = on"),
        sql.SQL("alter role current_user set work_mem = '1GB'"),
    ]
    repairs = ["alter role {app} reset default_transaction_read_only", "alter role {app} set work_mem = '16MB'"]
    with as_tenant(local_stack, outputs, world.a, changed, repairs):
        report = probe(outputs, world)
        with local_stack.superuser() as su:
            drift = [f for f in ledger_findings(su, "platform") if world.a.id in f.object]
    found = the_finding_naming_a(report, world)  # no false "got past the privilege checks" from a's session
    for part in ("sets default_transaction_read_only=on", "sets work_mem=1GB", "lacks work_mem=16MB"):
        assert part in found.detail
    assert "provision tenants apply" in found.remediation
    # the ledger check names the steps apply will re-run for that tenant, and only them
    assert sorted(f.object for f in drift) == [f"tenant:{world.a.id} R__grants", f"tenant:{world.a.id} R__limits"]
    assert all(f.level == "warn" and "changed since this step ran" in f.detail for f in drift)


@catches("probe_login")
def test_a_session_the_database_makes_read_only_is_reported_for_each_login(local_stack, outputs, world):
    names = world.names()
    breaks = ["alter database platform set default_transaction_read_only = on"]
    with committed(local_stack, names, breaks, ["alter database platform reset default_transaction_read_only"]):
        report = probe(outputs, world, tenants=frozenset({world.a.id, world.b.id}))
    read_only = {f.object for f in probe_findings(report, "probe_login") if f.detail.startswith("runs read-write")}
    assert read_only == {shown(f"{{{who}}} -> its session", names) for who in ("a_app", "b_app", "pa_app")}


def test_missing_credentials_mean_could_not_run(outputs, world):
    sm = aws.client("secretsmanager", outputs.region)
    name = secret_name(outputs.stack, "tenant", world.a.id)
    original = read_secret_json(name, outputs.region)
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    try:
        report = probe(outputs, world, tenants=frozenset({world.a.id, world.b.id}))
    finally:
        sm.create_secret(Name=name, SecretString=json.dumps(original))
    assert any(f"no credentials for tenant {world.a.id}" in e for e in report.errors)
    assert report.probe_pairs == 1  # b -> a still ran
    assert verify_status([report]) == 2
    # a's session was to be b's witness: with none, what only a witness shows is skipped, not passed
    assert report.skipped == {"probe_stat_activity": "no witness session: the other tenants could not log in"}


def shared_rows(su: psycopg.Connection) -> list[tuple]:
    """Every row of the shared tables a tenant reads, as text: what verify must leave as it was."""
    return su.execute(
        "select 'runs', array_agg(x::text order by x::text) from platform.worker_runs x union all "
        "select 'costs', array_agg(x::text order by x::text) from platform.cost_entries x union all "
        "select 'audit', array_agg(x::text order by x::text) from platform.audit_events x union all "
        "select 'tenants', array_agg(x::text order by x::text) from platform.tenants x"
    ).fetchall()


def test_verify_writes_nothing_and_deletes_no_row_a_tenant_marked(local_stack, outputs, world):
    """As tenant a, with its own credentials: rows of its own carrying every mark verify's probes
    use. Verify probes against the canary tenants apply keeps (rows in every shared table) and
    commits nothing: every shared row, a's marked ones and the canaries' included, is as before."""
    with connect_as(outputs, "tenant", world.a.id, "cell-1") as conn:
        conn.execute(
            "insert into platform.worker_runs (tenant_id, partner_id, worker, status) "
            "values (%(t)s, %(p)s, %(mark)s, 'probe:killed')",
            {"t": world.a.id, "p": world.a.partner_id, "mark": MARK},
        )
        conn.execute(
            "insert into platform.audit_events (tenant_id, partner_id, actor, action, detail) "
            "values (%(t)s, %(p)s, %(mark)s, 'askasia.verify.probe', '{\"run\": \"probe:killed\"}')",
            {"t": world.a.id, "p": world.a.partner_id, "mark": MARK},
        )
        conn.commit()
    with local_stack.superuser() as su:
        before = shared_rows(su)
        canary = su.execute(
            "select count(*) from platform.worker_runs r join platform.tenants t on t.id = r.tenant_id "
            "where t.status = 'canary'"
        ).fetchone()[0]
    report = probe(outputs, world)
    assert report.errors == [] and report.findings == []
    assert canary == len(canaries.TENANTS)  # someone else's rows were there to be seen
    with local_stack.superuser() as su:
        assert shared_rows(su) == before


# -- the command -----------------------------------------------------------------------------
def run_cli(*args: str, root=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "250"}  # rich folds long names on a narrow console
    if root is not None:
        env["ASKASIA_LOCAL_DIR"] = str(root)
    return subprocess.run(
        [sys.executable, "-m", "provisioner", "tenants", "verify", "--stack", "local", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def only(world: World) -> list[str]:
    """Probe this module's tenants: other modules' tenants may have lost their secrets to a moto
    restart, and missing credentials rightly make verify exit 2."""
    return [arg for t in (world.a, world.b, world.c) for arg in ("--tenant", t.id)]


def test_cli_clean_stack_exits_0_with_no_rows(local_stack, world):
    result = run_cli("--probes", "4", "--json", *only(world), root=local_stack.root)
    report = json.loads(result.stdout)
    assert result.returncode == 0, [c["findings"] or c["errors"] for c in report["cells"]]
    assert [c["status"] for c in report["cells"]] == ["clean", "clean"]
    assert all(c["findings"] == [] and len(c["checks_run"]) > 30 for c in report["cells"])
    assert report["cells"][0]["probes"]["pairs"] == 4
    statuses = {c["cell"]: {k["check"]: (k["status"], k.get("reason")) for k in c["checks"]} for c in report["cells"]}
    assert set(statuses["cell-1"].values()) == {("pass", None)}
    # none of the tenants asked for lives in cell-2: its probe checks had nothing to probe
    skipped = ("skip", "no active tenant among the tenants asked for")
    assert {check: status for check, status in statuses["cell-2"].items() if status != ("pass", None)} == {
        c.name: skipped for c in probe_checks()
    } | {SECRETS_CHECK: ("skip", "stack-wide: judged on cell-1")}


def test_cli_violation_exits_1_with_tap_naming_the_checks(local_stack, world):
    names = world.names()
    with committed(
        local_stack,
        names,
        ["grant usage on schema {b_schema} to {a_app}", "grant select on {b_leads} to {a_app}"],
        ["revoke usage on schema {b_schema} from {a_app}", "revoke select on {b_leads} from {a_app}"],
    ):
        result = run_cli(
            "--tap", "--cell", "cell-1", "--tenant", world.a.id, "--tenant", world.b.id, root=local_stack.root
        )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "TAP version 14"
    points = [line for line in lines if line.startswith(("ok ", "not ok "))]
    assert lines[1] == f"1..{len(points)}"
    failing = {line.split(" - ", 1)[1] for line in points if line.startswith("not ok")}
    assert failing == {"cell-1: tenant_acl", "cell-1: probe_tenant_objects"}
    assert shown('"table {b_leads}"', names) in result.stdout  # the YAML block names the object


def test_cli_cell_down_exits_2_naming_it_and_still_reports_the_others(local_stack, outputs, world, tmp_path):
    down = dataclasses.replace(outputs.cluster("cell-2"), cell="cell-3", port=1)
    raw = json.loads(local_stack.stack.layout.outputs_file.read_text())
    raw["clusters"] = [c for c in raw["clusters"] if c["cell"] == "cell-1"] + [dataclasses.asdict(down)]
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(raw))
    result = run_cli("--outputs", str(path), "--probes", "2", "--json", *only(world))
    assert result.returncode == 2, result.stderr
    cells = {c["cell"]: c for c in json.loads(result.stdout)["cells"]}
    assert cells["cell-3"]["status"] == "could not run"
    error = cells["cell-3"]["errors"][0]
    # No server there, and no verifier secret for a cell no apply ever reached.
    assert "cell-3" in error and ("cannot connect" in error or "no credentials for the operator role" in error)
    assert cells["cell-1"]["status"] == "clean" and len(cells["cell-1"]["checks_run"]) > 30


def test_cli_human_table_and_exclusive_formats(local_stack, world):
    names = world.names()
    with committed(local_stack, names, ["alter role {c_ro} createdb"], ["alter role {c_ro} nocreatedb"]):
        result = run_cli("--probes", "0", "--cell", "cell-1", root=local_stack.root)
    assert result.returncode == 1
    assert "role_attributes" in result.stdout and shown("{c_ro}", names) in result.stdout
    both = run_cli("--json", "--tap", root=local_stack.root)
    assert both.returncode == 2 and "choose one" in both.stderr and "Traceback" not in both.stderr


def test_verify_does_not_run_while_an_apply_holds_the_cell(local_stack, outputs, world):
    from provisioner.verify.findings import verify_status

    with local_stack.superuser(cell="cell-1") as holder:
        holder.execute("lock table platform.apply_lock in share row exclusive mode")
        report = verify_cell(outputs, outputs.cluster("cell-1"), VerifyOptions(probes=0))
    assert any("an apply is running (an apply: role askasia_bootstrap" in e for e in report.errors), report.errors
    assert verify_status([report]) == 2


def test_cli_with_an_empty_probe_package_fails_closed_before_reaching_a_cell(local_stack, tmp_path):
    """An install whose probe package holds no check (its directory empty here) is broken: one
    line and exit 2, never a run reported clean."""
    empty = tmp_path / "probes"
    empty.mkdir()
    entry = (
        "import sys, provisioner.verify.probes as probes; probes.__path__[:] = [sys.argv.pop(1)]; "
        "from provisioner.cli import main; main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", entry, str(empty), "tenants", "verify", "--stack", "local"],
        capture_output=True,
        text=True,
        env={**os.environ, "ASKASIA_LOCAL_DIR": str(local_stack.root)},
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: no probe checks in {empty}: the package is incomplete"]
    assert result.stdout == ""


# -- a stack of its own: one tenant in cell-1, none in cell-2 ---------------------------------
PAIR_CHECKS = {"probe_tenant_objects", "probe_stat_activity"}  # what the canaries cannot stand in for


@pytest.fixture(scope="module")
def solo_stack(tmp_path_factory) -> Iterator[tuple[RunningStack, directory.Tenant]]:
    with started_stack(tmp_path_factory.mktemp("solo"), cells=2) as running:
        partner = unique("solo-p")
        tenants = onboard(running.outputs, {partner: "EU"}, [(partner, "alone", "starter")], cell="cell-1")
        yield running, tenants["alone"]


@pytest.fixture
def solo(solo_stack) -> tuple[RunningStack, directory.Tenant]:
    solo_stack[0].stack.activate()  # the test before may have pointed boto3 at the session stack
    return solo_stack


def test_a_cell_with_one_tenant_skips_the_pair_checks_and_an_empty_cell_every_probe(solo):
    running, alone = solo
    options = VerifyOptions()
    lone, empty = verify_stack(running.outputs, options)
    assert (lone.errors, lone.findings, empty.errors, empty.findings) == ([], [], [], [])
    # the canaries are probed in place of a pair: only what needs another tenant's objects or session is left
    assert lone.skipped == {check: "one active tenant in the cell: no pair to probe" for check in PAIR_CHECKS}
    assert (lone.probe_pairs, lone.probe_partners) == (0, 1) and lone.probe_attempts > 20  # probed alone
    assert empty.skipped == {c.name: "no active tenant in the cell" for c in probe_checks()} | {
        SECRETS_CHECK: "stack-wide: judged on cell-1"
    }
    assert (empty.probe_pairs, empty.probe_partners, empty.probe_attempts) == (0, 0, 0)
    assert verify_status([lone, empty]) == 0  # nothing was wrong; the skips say what was not probed
    cells = {
        c["cell"]: {k["check"]: k for k in c["checks"]}
        for c in as_json("solo", [lone, empty], check_names(options))["cells"]
    }
    assert cells["cell-1"]["probe_tenant_objects"] == {
        "check": "probe_tenant_objects",
        "status": "skip",
        "reason": "one active tenant in the cell: no pair to probe",
    }
    assert cells["cell-1"]["probe_shared_rows"] == {"check": "probe_shared_rows", "status": "pass"}
    assert cells["cell-1"]["probe_own_work"] == {"check": "probe_own_work", "status": "pass"}
    assert cells["cell-2"]["tenant_acl"] == {"check": "tenant_acl", "status": "pass"}
    assert {k["status"] for name, k in cells["cell-2"].items() if name.startswith("probe_")} == {"skip"}


@catches("probe_create")
def test_a_tenant_alone_in_its_cell_is_still_probed(solo):
    running, alone = solo
    app = f"t_{alone.id}_app"
    probes_only = VerifyOptions(catalog=False, ledger=False)
    breaks, repairs = ["grant create on schema public to {app}"], ["revoke create on schema public from {app}"]
    with committed(running, {"app": app}, breaks, repairs):
        report = verify_cell(running.outputs, running.outputs.cluster("cell-1"), probes_only)
    assert [(f.object, f.detail) for f in report.findings] == [(f"{app} -> schema public", "CREATE TABLE succeeded")]
    assert verify_status([report]) == 1


def test_cli_tap_shows_each_skip_with_its_reason(solo):
    running, _ = solo
    result = run_cli("--tap", root=running.root)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert [line for line in lines if line.startswith("not ok ")] == []
    points = [re.sub(r"^ok \d+ - ", "", line) for line in lines if line.startswith("ok ")]
    for check in sorted(PAIR_CHECKS):
        assert f"cell-1: {check} # SKIP one active tenant in the cell: no pair to probe" in points
    assert "cell-1: probe_own_work" in points and "cell-1: probe_partner" in points
    assert [p for p in points if p.startswith("cell-2: probe_")] == [
        f"cell-2: {c.name} # SKIP no active tenant in the cell" for c in probe_checks()
    ]
