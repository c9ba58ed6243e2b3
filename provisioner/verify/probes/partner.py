"""A partner's console role sees nothing of other partners in any shared table or partition,
in any context (plainly, after setting the client settings to another partner's tenant, as
the partner group, both); reads and writes nothing in tenant schemas; claims no tenant in a
shared row; and takes no tenant or platform role."""

from __future__ import annotations

import json

from provisioner.targets import ROLES
from provisioner.verify.probing import PartnerProbe, ProbeCheck
from provisioner.verify.session import set_role
from provisioner.verify.statements import (
    PLANT,
    SHARED_ROW,
    SharedRelation,
    count_where,
    create_table,
    insert,
    insert_defaults,
    sees_no_rows,
    select_count,
    setting_contexts,
)

NAME = "probe_partner"
# The rows of a platform table that are not the partner's, where partner_id does not say it.
NOT_MINE = {
    "partners": "id is distinct from %(partner)s",
    "role_bindings": "role_name is distinct from %(role)s",
}


def not_mine(rel: SharedRelation) -> str:
    if rel.schema == "platform" and rel.name in NOT_MINE:
        return NOT_MINE[rel.name]
    return "partner_id is distinct from %(partner)s" if rel.has_partner else "true"


def sees_no_other_partner(probe: PartnerProbe) -> None:
    s, other = probe.session, probe.other
    claims = {
        "app.partner_id": other.partner_id if other else "",
        "app.tenant_id": other.id if other else "",
        "request.jwt.claims": json.dumps(
            {"partner_id": other.partner_id if other else None, "tenant_id": other.id if other else None}
        ),
    }
    counts = [(rel, count_where(rel, not_mine(rel), probe.mine)) for rel in probe.shared]
    for context in setting_contexts(claims, ROLES["partner_app"]):
        sees_no_rows(s, NAME, "sees rows of other partners", context, counts)


def stays_out_of_tenants(probe: PartnerProbe) -> None:
    s = probe.session
    for tenant in probe.schemas:
        schema = tenant.names.schema
        for _, name, kind, _ in probe.objects[schema].relations:
            s.blocked(NAME, f"{schema}.{name}", "SELECT", select_count(schema, name))
            if kind in ("r", "p"):
                s.blocked(NAME, f"{schema}.{name}", "INSERT", insert_defaults(schema, name))
        for role in (tenant.names.owner_role, tenant.names.app_role, tenant.names.ro_role):
            s.blocked(NAME, f"role {role}", "SET ROLE", set_role(role))
        s.blocked(
            NAME,
            "platform.worker_runs",
            f"INSERT claiming tenant {tenant.id}",
            insert(
                "platform",
                "worker_runs",
                {"tenant_id": tenant.id, "partner_id": tenant.partner_id, **SHARED_ROW["worker_runs"]},
            ),
        )
    for role in (ROLES["tenant_app"], ROLES["tenant_read"], ROLES["operator"], ROLES["owner"]):
        s.blocked(NAME, f"role {role}", "SET ROLE", set_role(role))
    s.blocked(NAME, "schema public", "CREATE TABLE", create_table("public", PLANT))


def probes_partner(probe: PartnerProbe) -> None:
    sees_no_other_partner(probe)
    stays_out_of_tenants(probe)


CHECK = ProbeCheck(NAME, partner=probes_partner)
