"""Tenant A writes no shared row as someone else: no insert claiming B's tenant id (with B's
partner, with A's partner, or A's tenant id with B's partner), plainly or as the tenant group;
no update or delete of B's rows; no update moving its own row to B; no change to B's tenant
row.

A statement A lacks the privilege for (any statement on a relation closed to A and its group,
such as an audit partition; an UPDATE of a column A may not update; a DELETE) is refused on
the role's privileges alone, before PostgreSQL looks at a value: each such statement is tried
once a login, with A's first target (and, on a closed relation, its first claim)."""

from __future__ import annotations

from provisioner.targets import ROLES
from provisioner.verify.probing import ProbeCheck, TenantProbe, TenantRef
from provisioner.verify.session import composed, set_role
from provisioner.verify.statements import MARK, SHARED_ROW, insert

NAME = "probe_shared_write"


def writes_nothing_as(probe: TenantProbe, b: TenantRef) -> None:
    a, s = probe.tenant, probe.session
    claims = [(b.id, b.partner_id), (b.id, a.partner_id)]
    if a.partner_id != b.partner_id:
        claims.append((a.id, b.partner_id))
    for rel in probe.shared:
        if rel.schema != "platform" or not (rel.has_tenant and rel.has_partner):
            continue
        extra, table, key = SHARED_ROW.get(rel.name, {}), (rel.schema, rel.name), f"{NAME}:{rel.label}"
        if probe.per_target(not rel.closed, f"{key}:insert"):
            for tenant_id, partner_id in claims[:1] if rel.closed else claims:
                row = insert(rel.schema, rel.name, {"tenant_id": tenant_id, "partner_id": partner_id, **extra})
                what = f"INSERT claiming tenant {tenant_id} of partner {partner_id}"
                s.blocked(NAME, rel.label, what, row)
                with s.within([set_role(ROLES["tenant_app"])]):
                    s.blocked(NAME, rel.label, f"{what} as {ROLES['tenant_app']}", row)
        target = {"b": b.id}
        if probe.per_target("tenant_id" in rel.updatable, f"{key}:update"):
            s.changes_nothing(
                NAME,
                rel.label,
                f"UPDATE of tenant {b.id}'s rows",
                (composed("update {} set tenant_id = tenant_id where tenant_id = %(b)s", table), target),
            )
        if probe.per_target(rel.deletable, f"{key}:delete"):
            s.changes_nothing(
                NAME,
                rel.label,
                f"DELETE of tenant {b.id}'s rows",
                (composed("delete from {} where tenant_id = %(b)s", table), target),
            )
        if rel.name == "worker_runs" and probe.per_target({"tenant_id", "partner_id"} <= rel.updatable, f"{key}:move"):
            s.blocked(
                NAME,
                rel.label,
                f"UPDATE of its own row to tenant {b.id}",
                insert("platform", "worker_runs", {"tenant_id": a.id, "partner_id": a.partner_id, **extra}),
                (
                    "update platform.worker_runs set tenant_id = %(b)s, partner_id = %(bp)s "
                    "where worker = %(mark)s and tenant_id = %(a)s",
                    {"b": b.id, "bp": b.partner_id, "mark": MARK, "a": a.id},
                ),
            )
    tenants = next((r for r in probe.shared if r.label == "platform.tenants"), None)
    if probe.per_target(tenants is None or "slug" in tenants.updatable, f"{NAME}:platform.tenants:update"):
        s.changes_nothing(
            NAME,
            "platform.tenants",
            f"UPDATE of tenant {b.id}'s row",
            ("update platform.tenants set slug = slug where id = %(b)s", {"b": b.id}),
        )


CHECK = ProbeCheck(NAME, against=writes_nothing_as)
