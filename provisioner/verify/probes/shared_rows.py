"""Tenant A sees no other tenant's rows in any shared table or partition: counted plainly,
after setting each client setting a careless policy might read (app.tenant_id,
app.current_tenant, app.partner_id, request.jwt.claims) to B's ids, after SET ROLE to the
tenant group, and both at once."""

from __future__ import annotations

import json

from provisioner.targets import ROLES
from provisioner.verify.probing import ProbeCheck, TenantProbe, TenantRef
from provisioner.verify.statements import SharedRelation, count_where, setting_contexts

NAME = "probe_shared_rows"
# The rows of a platform table that are not tenant A's, where tenant_id does not say it.
NOT_MINE = {
    "tenants": "id is distinct from %(tenant)s",
    "partners": "id is distinct from %(partner)s",
    "role_bindings": "role_name is distinct from %(role)s",
    "schema_ledger": "target is distinct from %(target)s",
}


def not_mine(rel: SharedRelation) -> str:
    if rel.schema == "platform" and rel.name in NOT_MINE:
        return NOT_MINE[rel.name]
    return "tenant_id is distinct from %(tenant)s" if rel.has_tenant else "true"


def sees_only_its_own(probe: TenantProbe, b: TenantRef) -> None:
    s = probe.session
    claims = {
        "app.tenant_id": b.id,
        "app.current_tenant": b.id,
        "app.partner_id": b.partner_id,
        "request.jwt.claims": json.dumps(
            {"tenant_id": b.id, "partner_id": b.partner_id, "role": b.names.app_role, "sub": b.id}
        ),
    }
    counts = [(rel.label, count_where(rel, not_mine(rel), probe.mine)) for rel in probe.shared]
    s.sees_nothing_anywhere(NAME, "sees rows of other tenants", setting_contexts(claims, ROLES["tenant_app"]), counts)


CHECK = ProbeCheck(NAME, against=sees_only_its_own)
