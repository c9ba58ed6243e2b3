"""Terminating and purging partners (privacy policy: partner account data kept 30 days after
termination, for export, then deleted).

terminate: refused while the partner has active tenants, unless `close_tenants` closes them
first; then in every cell the partner row is marked terminated and its console role loses LOGIN
(its sessions end). purge: once the 30 days have passed and none of its tenants is left
unpurgeable, its tenants are purged (closure.purge) and then, in every cell, its secret, role,
bindings, ledger rows and partner row go, in one transaction per cell after the secret (a
re-run converges). Partner-level audit rows carry an empty tenant_id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from botocore.exceptions import ClientError
from psycopg import sql

from contract.outputs import StackOutputs
from provisioner import aws, canaries, directory
from provisioner.credentials import secret_name
from provisioner.errors import InputError
from provisioner.lifecycle import audit, closure
from provisioner.names import PartnerNames
from provisioner.operators import MIGRATOR, connect_operator

GRACE = closure.GRACE


@dataclass(frozen=True)
class PartnerState:
    id: str
    slug: str
    status: str
    terminated_at: dt.datetime | None


@dataclass
class PartnerPlan:
    partner: PartnerState
    lines: list[str] = field(default_factory=list)
    close: list[closure.Planned] = field(default_factory=list)
    purge_tenants: closure.Done = field(default_factory=closure.Done)


def find_partner(outputs: StackOutputs, ref: str) -> PartnerState:
    for cluster in outputs.clusters:
        with connect_operator(outputs, cluster, MIGRATOR) as conn:
            row = conn.execute(
                "select id, slug, status, terminated_at from platform.partners where (id = %s or slug = %s) "
                "and status <> %s",
                (ref, ref, canaries.STATUS),
            ).fetchone()
            if row:
                return PartnerState(*row)
    raise InputError(f"no partner {ref!r} in stack {outputs.stack}")


def terminate_plan(outputs: StackOutputs, ref: str, close_tenants: bool) -> PartnerPlan:
    partner = find_partner(outputs, ref)
    if partner.status != "active":
        raise InputError(f"partner {partner.slug} ({partner.id}) is already {partner.status}")
    active = [t for t in directory.tenants(outputs) if t.partner_id == partner.id and t.status == "active"]
    if active and not close_tenants:
        raise InputError(
            f"partner {partner.slug} has {len(active)} active tenant(s) ({', '.join(t.slug for t in active[:5])}"
            f"{', ...' if len(active) > 5 else ''}): add --close-tenants to close them too"
        )
    plan = PartnerPlan(partner)
    for t in active:
        planned = closure.close_plan(outputs, t.id)
        plan.close.append(planned)
        plan.lines.append(planned.detail)
    plan.lines.append(
        f"mark partner {partner.slug} ({partner.id}) terminated in every cell and revoke LOGIN from "
        f"{PartnerNames(partner.id).app_role}; its account data is kept {GRACE.days} days, then `partners purge`"
    )
    return plan


def terminate(outputs: StackOutputs, plan: PartnerPlan, as_of: dt.datetime | None) -> None:
    for planned in plan.close:
        closure.close(outputs, planned, as_of)
    logins = PartnerNames(plan.partner.id).login_roles
    for cluster in outputs.clusters:
        with connect_operator(outputs, cluster, MIGRATOR) as conn:
            moment = conn.execute("select coalesce(%s::timestamptz, now())", (as_of,)).fetchone()[0]  # type: ignore[index]
            conn.execute(
                "update platform.partners set status = 'terminated', terminated_at = %s where id = %s "
                "and status = 'active'",
                (moment, plan.partner.id),
            )
            closure.set_login(conn, logins, False)
            audit.record(conn, "partner.terminated", {"terminated_at": moment.isoformat()}, partner_id=plan.partner.id)
            conn.commit()
            conn.autocommit = True
            closure.end_sessions(conn, list(logins))


def purge_plan(outputs: StackOutputs, ref: str, as_of: dt.datetime | None) -> PartnerPlan:
    partner = find_partner(outputs, ref)
    now = as_of or dt.datetime.now(dt.UTC)
    if partner.status != "terminated" or partner.terminated_at is None:
        raise InputError(f"partner {partner.slug} ({partner.id}) is {partner.status}: terminate it first")
    due = partner.terminated_at + GRACE
    if now < due:
        raise InputError(
            f"partner {partner.slug} ({partner.id}) is inside its {GRACE.days}-day grace period "
            f"(terminated {partner.terminated_at:%Y-%m-%d}, purge from {due:%Y-%m-%d %H:%M} UTC)"
        )
    plan = PartnerPlan(partner)
    mine = [t for t in directory.tenants(outputs) if t.partner_id == partner.id]
    for t in mine:
        one = closure.purge_plan(outputs, t.id, now)
        if one.refused:
            raise InputError(f"partner {partner.slug}: {one.refused[0]}")
        plan.purge_tenants.planned.extend(one.planned)
        plan.lines.extend(p.detail for p in one.planned)
    plan.lines.append(
        f"delete partner {partner.slug} ({partner.id}): its secret, role {PartnerNames(partner.id).app_role}, "
        f"bindings, ledger rows and partner row in every cell (terminated {partner.terminated_at:%Y-%m-%d})"
    )
    return plan


def purge(outputs: StackOutputs, plan: PartnerPlan) -> list[str]:
    purged = closure.purge(outputs, plan.purge_tenants)
    pid = plan.partner.id
    logins = PartnerNames(pid).login_roles
    try:
        aws.client("secretsmanager", outputs.region).delete_secret(
            SecretId=secret_name(outputs.stack, "partner", pid), ForceDeleteWithoutRecovery=True
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    for cluster in outputs.clusters:
        with connect_operator(outputs, cluster, MIGRATOR, autocommit=True) as conn:
            closure.end_sessions(conn, list(logins))
            with conn.transaction():
                if conn.execute("select 1 from platform.partners where id = %s", (pid,)).fetchone() is None:
                    continue
                for role in logins:
                    if conn.execute("select to_regrole(%s)", (role,)).fetchone()[0] is None:  # type: ignore[index]
                        continue
                    ident = sql.Identifier(role)
                    conn.execute(sql.SQL("grant {} to current_user").format(ident))
                    conn.execute(sql.SQL("drop owned by {}").format(ident))
                    conn.execute(sql.SQL("revoke {} from current_user").format(ident))
                    conn.execute(sql.SQL("drop role {}").format(ident))
                conn.execute("delete from platform.role_bindings where partner_id = %s", (pid,))
                conn.execute("delete from platform.schema_ledger where target = %s", (f"partner:{pid}",))
                conn.execute("delete from platform.partners where id = %s", (pid,))
                audit.record(conn, "partner.purged", {"tenants_purged": purged}, partner_id=pid)
    return purged
