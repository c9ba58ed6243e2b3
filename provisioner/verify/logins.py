"""What stops a sampled tenant or partner from being probed as itself, found before it logs in:
its login role's own defaults differ from the templates' (any role may ALTER ROLE itself SET
...). Reported under the probe check probe_login (probes/login.py), which says what it proves."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from contract.tiers import PARTNER_LIMITS, tier
from provisioner.names import PartnerNames, TenantNames

NAME = "probe_login"
APPLY = "provision tenants apply --stack <stack> (resets the role's defaults to the templates')"
RESET_PASSWORD = "set the role's password from its secret again: provision tenants rotate-credentials --tenant <id>"


def tenant_defaults(tenant_id: str, plan: str) -> set[str]:
    """pg_db_role_setting's entries for a tenant's app role, as R__limits and R__grants set them."""
    entries = {f"{k}={v}" for k, v in tier(plan).limits.settings().items()}
    return entries | {f"search_path={TenantNames(tenant_id).schema}, pg_temp"}


def partner_defaults() -> set[str]:
    return {f"{k}={v}" for k, v in PARTNER_LIMITS.settings().items()} | {"search_path=pg_catalog, pg_temp"}


def role_drift(master: psycopg.Connection, tenants: Iterable[str], partners: Iterable[str]) -> dict[str, str]:
    """Login role -> what its defaults have that the templates do not set, or lack, for the given
    tenant and partner ids; roles as the templates left them are absent."""
    rows = master.execute(
        "select r.rolname, t.id, t.plan, coalesce(array_agg(case when d.setdatabase = 0 then c "
        "else c || ' (in database ' || coalesce(db.datname, '?') || ')' end) filter (where c is not null), '{}') "
        "from pg_roles r left join platform.tenants t "
        "on r.rolname in ('t_' || t.id || '_app', 't_' || t.id || '_app2') "
        "left join pg_db_role_setting d on d.setrole = r.oid left join pg_database db on db.oid = d.setdatabase "
        "left join lateral unnest(d.setconfig) c on true "
        "where r.rolname = any(%(roles)s) group by r.rolname, t.id, t.plan",
        {
            "roles": [r for t in tenants for r in TenantNames(t).login_roles]
            + [r for p in partners for r in PartnerNames(p).login_roles],
        },
    ).fetchall()
    drift = {}
    for role, tenant_id, plan, entries in rows:
        wanted = partner_defaults() if tenant_id is None else tenant_defaults(tenant_id, plan)
        extra, missing = sorted(set(entries) - wanted), sorted(wanted - set(entries))
        parts = [f"sets {e}" for e in extra] + [f"lacks {e}" for e in missing]
        if parts:
            drift[role] = "; ".join(parts)
    return drift
