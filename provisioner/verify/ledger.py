"""Ledger drift: the checksums recorded in platform.schema_ledger against the templates rendered
now (provisioner/targets.py), in the verifier's row shape under the check name `ledger_drift`.

A versioned step whose text changed after it ran is drift (error); a versioned step never run,
a repeatable step whose rendering changed, or app credentials never set is a ledger out of
date (warn): `provision tenants apply` brings it current.
"""

from __future__ import annotations

import psycopg

from provisioner.apply import CREDENTIALS_STEP, plan_target
from provisioner.names import PartnerNames, TenantNames
from provisioner.targets import Target, partner_target, platform_target, tenant_target
from provisioner.verify.findings import Finding

CHECK = "ledger_drift"
APPLY = "provision tenants apply --stack <stack>"

_ACTIVE = {
    "tenant": "select t.id, t.partner_id, t.plan, coalesce(jsonb_object_agg(l.step, l.checksum) "
    "filter (where l.step is not null), '{}') from platform.tenants t "
    "left join platform.schema_ledger l on l.target = 'tenant:' || t.id "
    "where t.status = 'active' group by t.id order by t.id",
    "partner": "select p.id, p.id, null, coalesce(jsonb_object_agg(l.step, l.checksum) "
    "filter (where l.step is not null), '{}') from platform.partners p "
    "left join platform.schema_ledger l on l.target = 'partner:' || p.id "
    "where p.status = 'active' group by p.id order by p.id",
}


def target_findings(target: Target, recorded: dict[str, str], login_role: str | None = None) -> list[Finding]:
    plan = plan_target(target, recorded, login_role)
    changed = [
        r.step.name
        for r in target.rendered
        if not r.step.repeatable and recorded.get(r.step.name) not in (None, r.checksum)
    ]
    # plan.drift holds one line per changed versioned step, in the same (template) order.
    found = [
        Finding(
            CHECK,
            "error",
            f"{target.key} {name}",
            line.split(": ", 1)[1],
            "restore the applied text and put the change in a new V step",
        )
        for name, line in zip(changed, plan.drift, strict=True)
    ]
    for rendered in plan.pending:
        name = rendered.step.name
        previous = recorded.get(name)
        if previous is None:
            detail = "step never applied"
        else:
            detail = f"repeatable step out of date (recorded {previous[:12]}, rendered {rendered.checksum[:12]})"
        found.append(Finding(CHECK, "warn", f"{target.key} {name}", detail, APPLY))
    if plan.needs_credentials:
        found.append(
            Finding(
                CHECK,
                "warn",
                f"{target.key} {CREDENTIALS_STEP}",
                f"credentials of {login_role} never set from Secrets Manager",
                APPLY,
            )
        )
    return found


def ledger_findings(conn: psycopg.Connection, database: str) -> list[Finding]:
    recorded = dict(
        conn.execute("select step, checksum from platform.schema_ledger where target = 'platform'").fetchall()
    )
    found = target_findings(platform_target(database), recorded)
    for kind, query in _ACTIVE.items():
        for target_id, partner_id, plan, steps in conn.execute(query):
            if kind == "tenant":
                target, role = tenant_target(target_id, partner_id, plan), TenantNames(target_id).app_role
            else:
                target, role = partner_target(target_id), PartnerNames(target_id).app_role
            found.extend(target_findings(target, steps, role))
    return found
