"""Apply targets: the platform, each partner and each tenant, with their template context."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from functools import cached_property

from contract.outputs import PROXY_USER
from contract.tiers import AUDIT_RETENTION_DAYS, PARTNER_LIMITS, PLAN_TIERS, RoleLimits, tier
from provisioner import canaries, render
from provisioner.names import ROLES, PartnerNames, TenantNames

# The schedule pg_cron runs as the maintenance role (R__schedule): partitions ahead and whole
# expired months dropped daily, off the hour; expired rows of mixed months cleaned one bounded
# batch (its own transaction) every ten minutes.
RETENTION_BATCH = 10000
MAINTENANCE_JOBS = (
    {
        "name": "askasia-audit-maintenance",
        "schedule": "17 3 * * *",
        "command": "select count(*) from platform.audit_maintain(); "
        "select count(*) from platform.audit_drop_expired(now());",
    },
    {
        "name": "askasia-audit-retention",
        "schedule": "*/10 * * * *",
        "command": f"select count(*) from platform.audit_clean_batch(now(), {RETENTION_BATCH});",
    },
)
# The guard's pass in the database (R__guard_pass), every minute: the smallest interval before
# pg_cron 1.5; `provision cells guard --every` runs it every few seconds.
GUARD_JOBS = ({"name": "askasia-guard", "schedule": "* * * * *", "command": "select guard.pass(1000, 30)"},)
# Every pg_cron job, with the least-privilege role it runs as (R__schedule).
SCHEDULES = ({"role": ROLES["maintenance"], "jobs": MAINTENANCE_JOBS}, {"role": ROLES["guard"], "jobs": GUARD_JOBS})
AUDIT_MONTHS_BEHIND, AUDIT_MONTHS_AHEAD = 1, 3
# The tables sql/tenant/ creates; R__grants names them (tests check this matches the database).
TENANT_TABLES = ("leads", "tickets", "emails", "outputs")


@dataclass(frozen=True)
class RenderedStep:
    step: render.Step
    text: str
    checksum: str


@dataclass(frozen=True)
class Target:
    key: str  # the ledger's target column
    kind: str  # sql/<kind>/
    context: dict
    owner_id: str = ""  # the partner's or tenant's id ("" for the platform)

    @cached_property
    def rendered(self) -> tuple[RenderedStep, ...]:
        return tuple(self.render_step(step) for step in render.steps(self.kind))

    @cached_property
    def _renders(self) -> dict[str, RenderedStep]:
        return {}

    def render_step(self, step: render.Step) -> RenderedStep:
        if step.name not in self._renders:
            self._renders[step.name] = self.render_once(step)
        return self._renders[step.name]

    def render_once(self, step: render.Step) -> RenderedStep:
        """Rendered and not kept: apply renders a new target's steps into its batch's text only."""
        text = step.render(self.context)
        return RenderedStep(step, text, render.checksum(text))

    @property
    def context_text(self) -> str:
        """The context as its seals digest it."""
        return json.dumps(self.context, sort_keys=True, default=str)

    @cached_property
    def _context_digest(self) -> str:
        return hashlib.sha256(self.context_text.encode()).hexdigest()

    def seal(self, step: render.Step, checksum: str) -> str:
        """What the ledger records beside a step's checksum: a digest of the template, the
        context and that checksum. The same seal later means the same inputs rendered that
        text, so a re-run need not render it again; a checksum changed by hand breaks it."""
        made_of = f"{step.digest}:{self._context_digest}:{checksum}"
        return hashlib.sha256(made_of.encode()).hexdigest()[:32]


def _month_start(day: dt.date, offset: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + offset
    return dt.date(index // 12, index % 12 + 1, 1)


def audit_months(today: dt.date) -> list[dict]:
    months = []
    for offset in range(-AUDIT_MONTHS_BEHIND, AUDIT_MONTHS_AHEAD + 1):
        start, end = _month_start(today, offset), _month_start(today, offset + 1)
        months.append({"name": f"audit_events_{start:%Y_%m}", "start": start.isoformat(), "end": end.isoformat()})
    return months


def platform_target(database: str, today: dt.date | None = None) -> Target:
    today = today or dt.datetime.now(dt.UTC).date()
    context = {
        "roles": ROLES,
        "database": database,
        "audit_months": audit_months(today),
        "plan_tiers": PLAN_TIERS,
        "service_role": PROXY_USER,
        "schedules": SCHEDULES,
        "audit_retention": [{"plan": plan, "days": days} for plan, days in AUDIT_RETENTION_DAYS.items()],
        "audit_retention_longest": max(AUDIT_RETENTION_DAYS.values()),
        "audit_retention_shortest": min(AUDIT_RETENTION_DAYS.values()),
        "canaries": canaries.context(f"{today:%Y_%m}"),
    }
    return Target("platform", "platform", context)


def _limits(limits: RoleLimits) -> dict:
    """A login role's connection limit and role defaults, as the templates set them."""
    return {"connection_limit": limits.connection_limit, "settings": sorted(limits.settings().items())}


def partner_target(partner_id: str) -> Target:
    names = PartnerNames(partner_id)
    partner = {"id": partner_id, "app_role": names.app_role, "twin_role": names.twin_role, **_limits(PARTNER_LIMITS)}
    return Target(f"partner:{partner_id}", "partner", {"roles": ROLES, "partner": partner}, owner_id=partner_id)


def tenant_target(tenant_id: str, partner_id: str, plan: str) -> Target:
    names = TenantNames(tenant_id)
    tenant = {
        "id": tenant_id,
        "partner_id": partner_id,
        "plan": plan,
        "schema": names.schema,
        "owner_role": names.owner_role,
        "app_role": names.app_role,
        "twin_role": names.twin_role,
        "ro_role": names.ro_role,
        **_limits(tier(plan).limits),
    }
    context = {"roles": ROLES, "tenant": tenant, "tables": TENANT_TABLES}
    return Target(f"tenant:{tenant_id}", "tenant", context, owner_id=tenant_id)
