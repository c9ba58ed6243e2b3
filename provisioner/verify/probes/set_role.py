"""Tenant A takes no other role: SET ROLE to B's owner, app and read-only roles, B's partner,
(and its rotation twin), the tenant and partner groups, the operator and the owner all fail, and so does SET SESSION
AUTHORIZATION to B's app role. A role that does not exist (a canary tenant has none) cannot be
taken, and PostgreSQL refuses it with another error than for lack of privilege: only existing
roles are tried."""

from __future__ import annotations

from psycopg import sql

from provisioner.names import PartnerNames
from provisioner.targets import ROLES
from provisioner.verify.probing import ProbeCheck, TenantProbe, TenantRef
from provisioner.verify.session import set_role

NAME = "probe_set_role"


def becomes_no_one(probe: TenantProbe, b: TenantRef) -> None:
    s, names = probe.session, b.names
    roles = [
        names.owner_role,
        names.app_role,
        names.twin_role,
        names.ro_role,
        PartnerNames(b.partner_id).app_role,
        ROLES["tenant_read"],
        ROLES["partner_app"],
        ROLES["operator"],
        ROLES["owner"],
    ]
    existing = {r for (r,) in s.catalog("select r from unnest(%s::text[]) r where to_regrole(r) is not null", [roles])}
    for role in roles:  # a role another target named as well (a group, a partner) is tried once (Session._enqueue)
        if role in existing:
            s.blocked(NAME, f"role {role}", "SET ROLE", set_role(role))
    if names.app_role in existing:
        s.blocked(
            NAME,
            f"role {names.app_role}",
            "SET SESSION AUTHORIZATION",
            (sql.SQL("set session authorization {}").format(sql.Identifier(names.app_role)), None),
        )


CHECK = ProbeCheck(NAME, against=becomes_no_one)
