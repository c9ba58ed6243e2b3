"""Tenant A writes no shared row as someone else: no insert claiming B's tenant id (with B's
partner, with A's partner, or A's tenant id with B's partner), plainly or as the tenant group;
no update or delete of B's rows; no update moving its own row to B; no change to B's tenant
row."""

from __future__ import annotations

from psycopg import sql

from provisioner.targets import ROLES
from provisioner.verify.probing import ProbeCheck, TenantProbe, TenantRef
from provisioner.verify.session import set_role
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
        extra, table = SHARED_ROW.get(rel.name, {}), sql.Identifier(rel.schema, rel.name)
        for tenant_id, partner_id in claims:
            row = insert(rel.schema, rel.name, {"tenant_id": tenant_id, "partner_id": partner_id, **extra})
            what = f"INSERT claiming tenant {tenant_id} of partner {partner_id}"
            s.blocked(NAME, rel.label, what, row)
            with s.within([set_role(ROLES["tenant_app"])]):
                s.blocked(NAME, rel.label, f"{what} as {ROLES['tenant_app']}", row)
        target = {"b": b.id}
        s.changes_nothing(
            NAME,
            rel.label,
            f"UPDATE of tenant {b.id}'s rows",
            (sql.SQL("update {} set tenant_id = tenant_id where tenant_id = %(b)s").format(table), target),
        )
        s.changes_nothing(
            NAME,
            rel.label,
            f"DELETE of tenant {b.id}'s rows",
            (sql.SQL("delete from {} where tenant_id = %(b)s").format(table), target),
        )
        if rel.name == "worker_runs":
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
    s.changes_nothing(
        NAME,
        "platform.tenants",
        f"UPDATE of tenant {b.id}'s row",
        ("update platform.tenants set slug = slug where id = %(b)s", {"b": b.id}),
    )


CHECK = ProbeCheck(NAME, against=writes_nothing_as)
