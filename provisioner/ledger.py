"""The schema ledger (platform.schema_ledger): what ran on a cell, and what each target still
needs. Apply runs the pending steps; verify reports them. Both read the ledger through here.

A versioned step whose rendered text changed after it ran is drift (a `Drift` value): that
target stops; a repeatable step whose checksum changed is pending, like a step never run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import psycopg

from provisioner.names import PartnerNames, TenantNames
from provisioner.targets import RenderedStep, Target, partner_target, tenant_target

CREDENTIALS_STEP = "credentials"  # recorded once a login role's password came from Secrets Manager
CHUNK = 1000  # targets read per ledger query; bounds memory whatever the tenant count
KINDS = ("partner", "tenant")

# Keyset pages of (id, partner_id, plan, {step: checksum}) for active partners or tenants.
_PAGES = {
    "tenant": (
        "select t.id, t.partner_id, t.plan, coalesce(jsonb_object_agg(l.step, l.checksum) "
        "filter (where l.step is not null), '{}') from platform.tenants t "
        "left join platform.schema_ledger l on l.target = 'tenant:' || t.id "
        "where t.status = 'active' and t.id > %(after)s and (%(only)s::text[] is null "
        "or t.id = any(%(only)s)) group by t.id order by t.id limit %(limit)s"
    ),
    "partner": (
        "select p.id, p.id, null, coalesce(jsonb_object_agg(l.step, l.checksum) "
        "filter (where l.step is not null), '{}') from platform.partners p "
        "left join platform.schema_ledger l on l.target = 'partner:' || p.id "
        "where p.status = 'active' and p.id > %(after)s and (%(only)s::text[] is null "
        "or p.id = any(%(only)s)) group by p.id order by p.id limit %(limit)s"
    ),
}


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


@dataclass
class TargetPlan:
    target: Target
    recorded: dict[str, str]  # step -> checksum, as the ledger holds it
    pending: list[RenderedStep]
    drift: list[Drift] = field(default_factory=list)
    needs_credentials: bool = False
    role: str | None = None  # the login role whose password the tool sets

    @property
    def has_work(self) -> bool:
        return bool(self.pending or self.needs_credentials) and not self.drift


def plan_target(target: Target, recorded: dict[str, str], login_role: str | None = None) -> TargetPlan:
    pending, drift = [], []
    for rendered in target.rendered:
        previous = recorded.get(rendered.step.name)
        if rendered.step.repeatable:
            if previous != rendered.checksum:
                pending.append(rendered)
        elif previous is None:
            pending.append(rendered)
        elif previous != rendered.checksum:
            drift.append(Drift(target.key, rendered.step.name, previous, rendered.checksum))
    needs = login_role is not None and CREDENTIALS_STEP not in recorded
    return TargetPlan(target, recorded, pending, drift, needs_credentials=needs, role=login_role)


def recorded_steps(conn: psycopg.Connection, target: str) -> dict[str, str]:
    rows = conn.execute("select step, checksum from platform.schema_ledger where target = %s", (target,))
    return dict(rows.fetchall())


def login_target(kind: str, target_id: str, partner_id: str, plan: str | None) -> tuple[Target, str]:
    """A partner's or tenant's target and its login role."""
    if kind == "tenant":
        return tenant_target(target_id, partner_id, plan or ""), TenantNames(target_id).app_role
    return partner_target(target_id), PartnerNames(target_id).app_role


def plans(
    conn: psycopg.Connection, kind: str, only: frozenset[str] | None = None, chunk: int = CHUNK
) -> Iterator[list[TargetPlan]]:
    """Pages of plans for every active partner or tenant (or those in `only`), one query a page."""
    after = ""
    while True:
        rows = conn.execute(
            _PAGES[kind], {"after": after, "only": sorted(only) if only is not None else None, "limit": chunk}
        ).fetchall()
        if not rows:
            return
        page = []
        for target_id, partner_id, plan_name, recorded in rows:
            target, role = login_target(kind, target_id, partner_id, plan_name)
            page.append(plan_target(target, recorded, role))
        yield page
        after = rows[-1][0]
