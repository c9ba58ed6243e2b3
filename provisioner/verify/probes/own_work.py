"""A tenant's app role does its own work: it sees its own tenant row and binding, writes and
reads its own leads through its search_path, inserts shared rows with its own ids and sees the
worker run it inserted (all rolled back). A partner's console role sees exactly its own tenants
and partner row, and at least the worker runs of its tenants the master counted.
Isolation that breaks a role's own work proves nothing, so this is a check as well."""

from __future__ import annotations

from provisioner.verify.probing import PartnerProbe, ProbeCheck, TenantProbe
from provisioner.verify.statements import MARK, SHARED_ROW, insert

NAME = "probe_own_work"


def tenant_work(probe: TenantProbe) -> None:
    a, s, own = probe.tenant, probe.session, {**probe.mine, "mark": probe.run}
    s.works(
        NAME,
        "platform.tenants",
        "sees its own tenant row",
        ("select count(*) from platform.tenants where id = %(tenant)s", own),
        expect=lambda o: o.count == 1,
    )
    s.works(
        NAME,
        "platform.role_bindings",
        "sees its own binding",
        ("select count(*) from platform.role_bindings where role_name = current_user", None),
        expect=lambda o: o.count == 1,
    )
    run: dict[str, object] = {"tenant_id": a.id, "partner_id": a.partner_id, "worker": MARK, "status": probe.run}
    s.works(
        NAME,
        "platform.worker_runs",
        "inserts a worker run and sees it",
        insert("platform", "worker_runs", run),
        ("select count(*) from platform.worker_runs where status = %(mark)s and tenant_id = %(tenant)s", own),
        expect=lambda o: o.count == 1,
    )
    s.works(
        NAME,
        f"{a.names.schema}.leads",
        "inserts and reads its own leads through its search_path",
        ("insert into leads (name) values (%(mark)s)", own),
        ("select count(*) from leads where name = %(mark)s", own),
        expect=lambda o: o.count == 1,
    )
    present = {rel.name for rel in probe.shared if rel.schema == "platform"}
    for table, extra in SHARED_ROW.items():
        if table in present:
            s.works(
                NAME,
                f"platform.{table}",
                "inserts a row with its own ids",
                insert("platform", table, {"tenant_id": a.id, "partner_id": a.partner_id, **extra}),
            )


def partner_view(probe: PartnerProbe) -> None:
    s, own, tenants, runs = probe.session, probe.mine, probe.tenants, probe.runs
    s.works(
        NAME,
        "platform.tenants",
        f"sees its {tenants} tenants",
        ("select count(*) from platform.tenants where partner_id = %(partner)s", own),
        expect=lambda o: o.count == tenants,
    )
    s.works(
        NAME,
        "platform.partners",
        "sees its own partner row",
        ("select count(*) from platform.partners where id = %(partner)s", own),
        expect=lambda o: o.count == 1,
    )
    s.works(
        NAME,
        "platform.worker_runs",
        f"sees the {runs} worker runs of its tenants (or more, started since)",
        ("select count(*) from platform.worker_runs where partner_id = %(partner)s", own),
        expect=lambda o: o.count >= runs,
    )


CHECK = ProbeCheck(NAME, alone=tenant_work, partner=partner_view)
