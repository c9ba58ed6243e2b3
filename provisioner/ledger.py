"""The schema ledger (platform.schema_ledger): what ran on a cell, and what each target still
needs. Apply runs the pending steps; verify reports them. Both read the ledger through here.

A versioned step whose rendered text changed after it ran is drift (a `Drift` value): that
target stops; a repeatable step whose checksum changed is pending, like a step never run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from contract.tiers import PLAN_TIERS
from provisioner import render
from provisioner.errors import ProvisionError
from provisioner.names import ID_LENGTH, PartnerNames, TenantNames
from provisioner.targets import RenderedStep, Target, partner_target, tenant_target

CREDENTIALS_STEP = "credentials"  # recorded once a login role's password came from Secrets Manager
CHUNK = 1000  # targets read per ledger query
PLANNED = 100  # targets planned at most a page: what bounds memory (a query's rows are read one at a time)
KINDS = ("partner", "tenant")

ROLE_STATE_STEP = "role_state"  # recorded: a fingerprint of the login roles' own defaults and default privileges
# The steps that set those (each starts from none of the role's own): re-run when the fingerprint drifted.
REASSERTS = {"tenant": ("R__grants", "R__limits"), "partner": ("R__partner_role",)}


# Per role: its defaults (in every database) and default privileges, which any role may change
# for itself (ALTER ROLE ... SET, ALTER DEFAULT PRIVILEGES). Read for the roles at hand only
# (`roles`: a subquery of their oids): over every role of the cell, each page and each batch's
# record would cost time growing with the cell's tenants, the whole apply with their square.
# A role's fingerprint depends on its own rows alone, so it is the same either way.
#
# The fingerprints come as one row, a jsonb object from role oid to fingerprint, looked up per
# target: the planner, with no column statistics on platform.tenants (statistics target 0),
# takes a page for a row or two, and joined the per-role rows to it in nested loops that
# aggregated them again for each target (a page's cost grew with its square).
def _role_state(roles: str) -> str:
    return (
        "role_state as materialized (select jsonb_object_agg(role::text, fp) as fp from ("
        "select role, md5(string_agg(entry, ';' order by entry)) as fp from ("
        "select d.setrole as role, d.setdatabase::text || ' ' || d.setconfig::text as entry from pg_db_role_setting d "
        f"where d.setrole in ({roles}) "
        "union all select a.defaclrole, "
        "a.defaclnamespace::text || ' ' || a.defaclobjtype::text || ' ' || a.defaclacl::text "
        f"from pg_default_acl a where a.defaclrole in ({roles})) e group by role) r)"
    )


def _fingerprint(t: str) -> str:
    """A target's fingerprint from its login role (ra), its read-only role (rr, a tenant's) and
    its rotation twin (rt), the roles' oids being columns of `t`; `rs` is the role_state row."""
    return "md5(" + " || '|' || ".join(f"coalesce(rs.fp ->> {t}.{r}::oid::text, '')" for r in ("ra", "rr", "rt")) + ")"


# The roles' oids (ra: login, rr: read-only, rt: the login's twin) of the targets in `t` (id) or `k` (id, kind).
_ROLES = {
    "tenant": "to_regrole('t_' || c.id || '_app') as ra, to_regrole('t_' || c.id || '_ro') as rr, "
    "to_regrole('t_' || c.id || '_app2') as rt",
    "partner": "to_regrole('p_' || c.id || '_app') as ra, null::regrole as rr, "
    "to_regrole('p_' || c.id || '_app2') as rt",
}
_TABLES = {"tenant": "platform.tenants t", "partner": "platform.partners t"}
_OWNER = {"tenant": "t.partner_id, t.plan", "partner": "t.id as partner_id, null as plan"}
_ROLES_OF = "select ra from {0} union select rr from {0} union select rt from {0}"
# Each step's seal (Target.seal), read through to_jsonb so that a cell whose ledger has no
# `inputs` column yet (platform V070 not applied: a dry run, a verify) reads none.
_SEALS = "jsonb_object_agg(l.step, to_jsonb(l) -> 'inputs')"

# A page's targets, chosen first: their roles (and, judged, their contexts) are computed for
# these alone (computed beside the choice, they were computed for every row the sort read).
_CHOSEN = {
    kind: (
        f"with chosen as (select t.id, {_OWNER[kind]} from {_TABLES[kind]} "
        "where t.status = 'active' and t.id > %(after)s and (%(only)s::text[] is null or t.id = any(%(only)s)) "
        "order by t.id limit %(limit)s)"
    )
    for kind in KINDS
}

# Keyset pages of (id, partner_id, plan, {step: checksum}, role-state fingerprint, {step: seal})
# for active partners or tenants: the one query that makes a no-op apply cheap also sees a role's
# drift. The page is chosen first; its ledger rows (by the ledger's key, a target at a time) and
# roles are read for it alone.
_PAGES = {
    kind: (
        f"{_CHOSEN[kind]}, page as (select c.*, {_ROLES[kind]} from chosen c), "
        f"{_role_state(_ROLES_OF.format('page'))} "
        "select p.id, p.partner_id, p.plan, coalesce(s.checksums, '{}'), "
        f"{_fingerprint('p')}, coalesce(s.seals, '{{}}') from page p cross join role_state rs "
        "left join lateral (select jsonb_object_agg(l.step, l.checksum) as checksums, "
        f"{_SEALS} as seals from platform.schema_ledger l where l.target = '{kind}:' || p.id) s on true "
        "order by p.id"
    )
    for kind in KINDS
}


# The same pages judged by the server: a target whose every step's seal is the one its template
# digest, context and recorded checksum make (Target.seal, in SQL), whose roles' fingerprint is
# the recorded one and whose credentials were set is current, and comes back as its id and
# credentials version alone; any other comes whole, for plan_target. Each context is its kind's
# shape (the context text of sentinel ids, per plan) with the target's ids put in.
_CONTEXT = (
    "encode(sha256(convert_to(replace(replace(%(shapes)s::jsonb ->> coalesce(c.plan, ''), "
    "%(sentinel)s, c.id), %(sentinel_partner)s, c.partner_id), 'UTF8')), 'hex')"
)
# The seals read from their column (a row made jsonb for each, as _SEALS reads them, was a third
# of the query): the server judges only ledgers that have it (pages' `judged`).
_SEALED = (
    "count(*) filter (where l.inputs = left(encode(sha256(convert_to("
    "(%(digests)s::jsonb ->> l.step) || ':' || p.ctx || ':' || l.checksum, 'UTF8')), 'hex'), 32))"
)
_JUDGED = {
    kind: (
        f"{_CHOSEN[kind]}, page as (select c.*, {_ROLES[kind]}, {_CONTEXT} as ctx from chosen c), "
        f"{_role_state(_ROLES_OF.format('page'))}, "
        "judged as (select p.id, p.partner_id, p.plan, f.fp, s.credentials, "
        "coalesce(s.sealed = %(steps)s and s.role_state = f.fp and s.credentials is not null, false) as current "
        f"from page p cross join role_state rs cross join lateral (select {_fingerprint('p')} as fp) f "
        f"left join lateral (select {_SEALED} as sealed, "
        f"max(l.checksum) filter (where l.step = '{CREDENTIALS_STEP}') as credentials, "
        f"max(l.checksum) filter (where l.step = '{ROLE_STATE_STEP}') as role_state "
        f"from platform.schema_ledger l where l.target = '{kind}:' || p.id) s on true) "
        "select j.id, j.current, j.credentials, j.partner_id, j.plan, s.checksums, j.fp, s.seals from judged j "
        "left join lateral (select jsonb_object_agg(l.step, l.checksum) as checksums, "
        f"{_SEALS} as seals from platform.schema_ledger l "
        f"where not j.current and l.target = '{kind}:' || j.id) s on true order by j.id"
    )
    for kind in KINDS
}


def record_role_states(keys: list[str]) -> str:
    """The statement that records, after their steps ran, the role-state fingerprint of these
    targets ('tenant:<id>' / 'partner:<id>'), computed by the server as the pages compute it."""
    values = sql.SQL(", ").join(sql.SQL("({})").format(sql.Literal(key)) for key in keys)
    return (
        sql.SQL(
            "with v (target) as (values {}), "
            "t as (select target, split_part(target, ':', 1) as kind, split_part(target, ':', 2) as id from v), "
            "k as (select target, case kind when 'tenant' then to_regrole('t_' || id || '_app') "
            "else to_regrole('p_' || id || '_app') end as ra, "
            "case kind when 'tenant' then to_regrole('t_' || id || '_ro') end as rr, "
            "case kind when 'tenant' then to_regrole('t_' || id || '_app2') "
            "else to_regrole('p_' || id || '_app2') end as rt from t), "
            + _role_state(_ROLES_OF.format("k"))
            + " insert into platform.schema_ledger (target, step, checksum, repeatable) "
            "select k.target, {}, " + _fingerprint("k") + ", true from k cross join role_state rs "
            "on conflict (target, step) do update set checksum = excluded.checksum, applied_at = now();"
        )
        .format(values, sql.Literal(ROLE_STATE_STEP))
        .as_string(None)
    )


@dataclass(frozen=True)
class Drift:
    """A versioned step whose text changed after it was applied."""

    target: str
    step: str
    recorded: str
    rendered: str

    @property
    def detail(self) -> str:
        return (
            f"{self.step} changed after it was applied (recorded {self.recorded[:12]}, "
            f"now {self.rendered[:12]}); add a new V step instead"
        )

    def __str__(self) -> str:
        return f"{self.target}: {self.detail}"


@dataclass(frozen=True)
class PendingStep:
    """A step a target still needs. One never applied is rendered only when its batch is written,
    so that a page of a thousand new tenants holds none of their text; one rendered to compare
    with its recorded checksum keeps that rendering."""

    target: Target
    step: render.Step
    rendered: RenderedStep | None = None

    @property
    def checksum(self) -> str:
        return self.render().checksum

    def render(self) -> RenderedStep:
        return self.rendered or self.target.render_once(self.step)


@dataclass
class TargetPlan:
    target: Target
    recorded: dict[str, str]  # step -> checksum, as the ledger holds it
    pending: list[PendingStep]
    drift: list[Drift] = field(default_factory=list)
    needs_credentials: bool = False
    role: str | None = None  # the login role whose password the tool sets
    roles_drifted: bool = False  # its roles' own defaults or default privileges changed since apply
    unsealed: list[tuple[str, str]] = field(default_factory=list)  # current steps without their seal: (step, seal)

    @property
    def has_work(self) -> bool:
        return bool(self.pending or self.needs_credentials) and not self.drift


def values_sql(rows: Sequence[tuple[object, ...]]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("({})").format(sql.SQL(", ").join(map(sql.Literal, row))) for row in rows)


def upsert_sql(rows: list[tuple[str, str, str, bool, str | None]]) -> str:
    """One multi-row upsert for the whole transaction's ledger entries."""
    return (
        sql.SQL(
            "insert into platform.schema_ledger (target, step, checksum, repeatable, inputs) values {} "
            "on conflict (target, step) do update set checksum = excluded.checksum, inputs = excluded.inputs, "
            "applied_at = now();"
        )
        .format(values_sql(rows))
        .as_string(None)
    )


def plan_target(
    target: Target,
    recorded: dict[str, str],
    login_role: str | None = None,
    role_state: str | None = None,
    seals: dict[str, str] | None = None,
) -> TargetPlan:
    """What `target` needs; `role_state`, when given, is its roles' fingerprint now: one that
    differs from the recorded one re-runs the steps that reassert them. A step whose recorded
    seal matches its template, context and recorded checksum is current without being rendered
    (a no-op run renders nothing); any other is rendered and compared."""
    pending, drift, unsealed = [], [], []
    drifted = role_state is not None and recorded.get(ROLE_STATE_STEP) != role_state
    for step in render.steps(target.kind):
        previous = recorded.get(step.name)
        reassert = drifted and step.name in REASSERTS[target.kind]
        if previous is not None and not reassert and seals and seals.get(step.name) == target.seal(step, previous):
            continue
        if previous is None:
            pending.append(PendingStep(target, step))  # nothing to compare: rendered when it runs
            continue
        rendered = target.render_step(step)
        if previous == rendered.checksum and not reassert:
            unsealed.append((step.name, target.seal(step, previous)))
        elif step.repeatable:
            pending.append(PendingStep(target, step, rendered))
        else:
            drift.append(Drift(target.key, step.name, previous, rendered.checksum))
    needs = login_role is not None and CREDENTIALS_STEP not in recorded
    return TargetPlan(
        target,
        recorded,
        pending,
        drift,
        needs_credentials=needs,
        role=login_role,
        roles_drifted=drifted,
        unsealed=unsealed,
    )


def recorded_plan(conn: psycopg.Connection, target: Target) -> TargetPlan:
    """One target's plan from its ledger rows, seals included (the platform's)."""
    rows = conn.execute(
        "select step, checksum, to_jsonb(l) ->> 'inputs' from platform.schema_ledger l where target = %s",
        (target.key,),
    ).fetchall()
    return plan_target(target, {step: checksum for step, checksum, _ in rows}, seals={s: i for s, _, i in rows if i})


def login_target(kind: str, target_id: str, partner_id: str, plan: str | None) -> tuple[Target, str]:
    """A partner's or tenant's target and its login role."""
    if kind == "tenant":
        return tenant_target(target_id, partner_id, plan or ""), TenantNames(target_id).app_role
    return partner_target(target_id), PartnerNames(target_id).app_role


# Sentinel ids for a kind's context shape: valid ids, so that the names made from them are the
# names made from any id; _shapes checks that putting ids in gives the very text a target has.
SENTINEL, SENTINEL_PARTNER = "0" * ID_LENGTH, "1" * ID_LENGTH
_SAMPLES = (("k3x9q0m2z7b1", "p4n8w2c6v0h5"), ("z0y9x8w7v6u5", "a1b2c3d4e5f6"))


@cache
def _shapes(kind: str) -> dict[str, str]:
    """Per plan ('' for partners), the context text of a target of `kind` with sentinel ids;
    empty (the server then finds no target current) if a sample's text is not its shape with its
    ids put in (names no longer made by putting an id in)."""
    shapes = {}
    for plan in PLAN_TIERS if kind == "tenant" else ("",):
        shape = login_target(kind, SENTINEL, SENTINEL_PARTNER, plan)[0].context_text
        for target_id, partner_id in _SAMPLES:
            partner_id = partner_id if kind == "tenant" else target_id  # a partner's page: its own id
            text = login_target(kind, target_id, partner_id, plan)[0].context_text
            if shape.replace(SENTINEL, target_id).replace(SENTINEL_PARTNER, partner_id) != text:
                return {}
        shapes[plan] = shape
    return shapes


def warm() -> None:
    """Every step's template digest and each kind's context shapes, computed before the cells'
    threads start: each thread missed the caches at once and parsed every template again. A
    package that cannot give them fails each cell, as it would without this."""
    with contextlib.suppress(ProvisionError):
        for kind in KINDS:
            _shapes(kind)
        for kind in ("platform", *KINDS):
            for step in render.steps(kind):
                _ = step.digest


@dataclass
class Page:
    plans: list[TargetPlan]  # targets to look at: all of them, or those the server did not find current
    current: list[tuple[str, str]] = field(default_factory=list)  # (id, credentials version) found current


def pages(
    conn: psycopg.Connection,
    kind: str,
    only: frozenset[str] | None = None,
    chunk: int = CHUNK,
    *,
    judged: bool = True,
) -> Iterator[Page]:
    """Pages of every active partner or tenant (or those in `only`), one query for up to `chunk`
    targets, a page for every PLANNED targets planned; `judged` (only where the ledger has its
    seals' column, platform V070): targets the server finds current come as (id, credentials
    version) only, unplanned."""
    after = ""
    base: dict[str, object] = {"only": sorted(only) if only is not None else None, "limit": chunk}
    if judged:
        steps = render.steps(kind)
        base |= {
            "shapes": Jsonb(_shapes(kind)),
            "sentinel": SENTINEL,
            "sentinel_partner": SENTINEL_PARTNER,
            "digests": Jsonb({step.name: step.digest for step in steps}),
            "steps": len(steps),
        }
    while True:
        read, page = 0, Page([])
        for row in conn.execute(_JUDGED[kind] if judged else _PAGES[kind], {**base, "after": after}):
            read, after = read + 1, row[0]
            if judged:
                target_id, current, credentials, *rest = row
                if current:
                    page.current.append((target_id, credentials))
                    continue
                row = (target_id, *rest)
            target_id, partner_id, plan_name, recorded, role_state, seals = row
            target, role = login_target(kind, target_id, partner_id, plan_name)
            page.plans.append(plan_target(target, recorded or {}, role, role_state, seals or {}))
            if len(page.plans) == PLANNED:
                yield page
                page = Page([])
        if page.plans or page.current:
            yield page
        if read < chunk:
            return  # a short query is the last: none for an empty one
