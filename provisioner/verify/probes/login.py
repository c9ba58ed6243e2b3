"""Every sampled tenant and partner logs in with the credentials Secrets Manager holds for it,
and its login role carries exactly the role defaults the templates set. What a tenant did to
itself (changed its password, spent its connections, set default_transaction_read_only,
work_mem or search_path on its own role) is a finding of this check naming that tenant and
what it changed, not a cell that could not be verified. Its own probes are not run (they would
judge its setting, not isolation); the other tenants are probed as usual.

The prober runs the login part itself (provisioner/verify/logins.py): the master reads the
sampled roles' defaults from pg_db_role_setting before any of them logs in. Once in, the
session must be what the templates make it, whatever set it otherwise (a database default,
say): read-write, searching only the role's own schema (a partner: only the catalog)."""

from __future__ import annotations

from provisioner.verify.logins import NAME
from provisioner.verify.probing import PartnerProbe, ProbeCheck, TenantProbe
from provisioner.verify.session import Session


def session_as_templated(s: Session, search_path: str) -> None:
    s.works(
        NAME,
        "its session",
        "runs read-write",
        ("select current_setting('transaction_read_only')", None),
        expect=lambda o: o.rows == [("off",)],
    )
    s.works(
        NAME,
        "its session",
        f"searches {search_path}",
        ("select current_setting('search_path')", None),
        expect=lambda o: o.rows == [(search_path,)],
    )


def tenant_session(probe: TenantProbe) -> None:
    session_as_templated(probe.session, f"{probe.tenant.names.schema}, pg_temp")


def partner_session(probe: PartnerProbe) -> None:
    session_as_templated(probe.session, "pg_catalog, pg_temp")


CHECK = ProbeCheck(NAME, alone=tenant_session, partner=partner_session)
