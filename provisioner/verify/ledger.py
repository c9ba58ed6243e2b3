"""Ledger drift: the checksums recorded in platform.schema_ledger against the templates rendered
now (provisioner/targets.py), in the verifier's row shape under the check name `ledger_drift`.

A versioned step whose text changed after it ran is drift (error); a versioned step never run,
a repeatable step whose rendering changed, or app credentials never set is a ledger out of
date (warn): `provision tenants apply` brings it current.
"""

from __future__ import annotations

import psycopg

from provisioner import ledger
from provisioner.ledger import CREDENTIALS_STEP, TargetPlan
from provisioner.targets import platform_target
from provisioner.verify.findings import Finding

CHECK = "ledger_drift"
APPLY = "provision tenants apply --stack <stack>"


def plan_findings(plan: TargetPlan) -> list[Finding]:
    key = plan.target.key
    found = [
        Finding(
            CHECK, "error", f"{key} {d.step}", d.detail, "restore the applied text and put the change in a new V step"
        )
        for d in plan.drift
    ]
    for rendered in plan.pending:
        previous = plan.recorded.get(rendered.step.name)
        if previous is None:
            detail = "step never applied"
        elif previous == rendered.checksum:  # re-run because the roles drifted
            detail = "its roles' own defaults or default privileges changed since this step ran"
        else:
            detail = f"repeatable step out of date (recorded {previous[:12]}, rendered {rendered.checksum[:12]})"
        found.append(Finding(CHECK, "warn", f"{key} {rendered.step.name}", detail, APPLY))
    if plan.needs_credentials:
        found.append(
            Finding(
                CHECK,
                "warn",
                f"{key} {CREDENTIALS_STEP}",
                f"credentials of {plan.role} never set from Secrets Manager",
                APPLY,
            )
        )
    return found


def ledger_findings(conn: psycopg.Connection, database: str) -> list[Finding]:
    platform = ledger.recorded_plan(conn, platform_target(database))
    found = plan_findings(platform)
    # The server judges which targets are current, as apply's no-op does, where the ledger has its
    # seals (they come with the platform's steps); a current target has nothing to report.
    judged = not platform.pending and not platform.drift
    for kind in ledger.KINDS:
        for page in ledger.pages(conn, kind, judged=judged):
            for plan in page.plans:
                found.extend(plan_findings(plan))
    return found
