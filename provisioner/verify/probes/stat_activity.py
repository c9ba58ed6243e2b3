"""Tenant A cannot read what B's sessions run: B's own session runs a query carrying a random
marker and sits idle while A looks for it in pg_stat_activity (and pg_stat_statements, when
installed), and for any query text of B's app role."""

from __future__ import annotations

from provisioner.verify.probing import ProbeCheck, TenantProbe, TenantRef

NAME = "probe_stat_activity"


def reads_no_query_of(probe: TenantProbe, b: TenantRef, marker: str) -> None:
    s, context = probe.session, f"while {b.names.app_role} sits idle"
    s.catalog("select pg_stat_clear_snapshot()")  # the activity snapshot is cached per transaction
    s.sees_nothing(
        NAME,
        "pg_stat_activity",
        "reads another session's query text",
        (
            "select count(*) from pg_stat_activity where pid <> pg_backend_pid() and strpos(query, %(marker)s) > 0",
            {"marker": marker},
        ),
        context,
    )
    s.sees_nothing(
        NAME,
        "pg_stat_activity",
        "reads another tenant's query text",
        (
            "select count(*) from pg_stat_activity where usename = %(role)s "
            "and query is distinct from '<insufficient privilege>'",
            {"role": b.names.app_role},
        ),
        context,
    )
    if s.catalog("select to_regclass('pg_stat_statements') is not null")[0][0]:
        s.sees_nothing(
            NAME,
            "pg_stat_statements",
            "reads another session's statement",
            ("select count(*) from pg_stat_statements where strpos(query, %(marker)s) > 0", {"marker": marker}),
            context,
        )


CHECK = ProbeCheck(NAME, witnessed=reads_no_query_of)
