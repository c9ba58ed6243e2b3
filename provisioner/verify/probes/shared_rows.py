"""Tenant A sees no other tenant's rows in any shared table or partition: counted plainly,
after setting each client setting a careless policy might read (app.tenant_id,
app.current_tenant, app.partner_id, request.jwt.claims) to B's ids, after SET ROLE to the
tenant group, and both at once.

Each context counts, in one statement, every relation its role may read, and tries each other
one alone (it must be refused; see statements.sees_no_rows). The contexts without settings do
not depend on B: they run once per login, the others for each B."""

from __future__ import annotations

import json

from provisioner.targets import ROLES
from provisioner.verify.probing import ProbeCheck, TenantProbe, TenantRef
from provisioner.verify.session import Statement
from provisioner.verify.statements import SettingContext, SharedRelation, count_where, sees_no_rows, setting_contexts

NAME = "probe_shared_rows"
WHAT = "sees rows of other tenants"
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


def _counts(probe: TenantProbe) -> list[tuple[SharedRelation, Statement]]:
    return [(rel, count_where(rel, not_mine(rel), probe.mine)) for rel in probe.shared]


def _contexts(b: TenantRef | None) -> list[SettingContext]:
    """The contexts with B's claims or, without B, the ones that claim no one."""
    claims = (
        {
            "app.tenant_id": b.id,
            "app.current_tenant": b.id,
            "app.partner_id": b.partner_id,
            "request.jwt.claims": json.dumps(
                {"tenant_id": b.id, "partner_id": b.partner_id, "role": b.names.app_role, "sub": b.id}
            ),
        }
        if b
        else {}
    )
    return [c for c in setting_contexts(claims, ROLES["tenant_app"]) if c.claims == (b is not None)]


def sees_only_its_own(probe: TenantProbe) -> None:
    """The contexts that claim no one are the same for every target: once per login."""
    for context in _contexts(None):
        sees_no_rows(probe.session, NAME, WHAT, context, _counts(probe))


def sees_only_its_own_claiming(probe: TenantProbe, b: TenantRef) -> None:
    for context in _contexts(b):
        sees_no_rows(probe.session, NAME, WHAT, context, _counts(probe))


CHECK = ProbeCheck(NAME, alone=sees_only_its_own, against=sees_only_its_own_claiming)
