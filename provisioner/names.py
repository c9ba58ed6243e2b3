"""Validated names. Catalog names (schemas, roles) derive only from opaque ids we generate;
customer-chosen handles (slugs) are data, stored behind RLS, and checked before any SQL runs."""

from __future__ import annotations

import re
import secrets
from abc import ABC, abstractmethod
from dataclasses import dataclass

from contract.tiers import PLAN_TIERS
from provisioner.errors import InputError

MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1; longer names are silently truncated
ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
ID_LENGTH = 12
_ID = re.compile(rf"^[a-z0-9]{{{ID_LENGTH}}}$")
_SLUG = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
_JURISDICTION = re.compile(r"^[A-Z]{2,3}$")

# The platform's own roles; here rather than in targets so that the operators' logins need no
# template engine.
ROLES = {
    "owner": "askasia_platform_owner",
    "operator": "askasia_operator",
    "tenant_app": "askasia_tenant_app",
    "tenant_read": "askasia_tenant_read",
    "partner_app": "askasia_partner_app",
    # `provision cells guard`: signals tenants' and partners' backends, reads every session.
    "guard": "askasia_guard",
    "maintenance": "askasia_maintenance",
    # Operator roles with one job each (V040): apply's partner and tenant steps, and verify.
    "migrator": "askasia_migrator",
    "verifier": "askasia_verifier",
}


def new_id() -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_LENGTH))


def check_id(value: str, what: str = "id") -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InputError(f"{what} {value!r} is not an opaque id ({ID_LENGTH} lowercase letters or digits)")
    return value


def check_slug(value: object, what: str = "slug") -> str:
    # fullmatch on an ASCII-only class: no quotes, semicolons, spaces, unicode look-alikes or
    # a trailing newline get through.
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        shown = value if isinstance(value, str) and len(value) <= 80 else f"{str(value)[:80]}..."
        raise InputError(
            f"{what} {shown!r} is invalid: use 2-63 lowercase ASCII letters, digits or '-', starting with a letter"
        )
    return value


def check_plan(value: object) -> str:
    if not isinstance(value, str) or value not in PLAN_TIERS:
        raise InputError(f"plan {value!r} is invalid: choose one of {', '.join(PLAN_TIERS)}")
    return value


def check_jurisdiction(value: object) -> str:
    if not isinstance(value, str) or not _JURISDICTION.fullmatch(value):
        raise InputError(f"jurisdiction {value!r} is invalid: use a code such as EU, UK, IN, US")
    return value


def _identifier(name: str) -> str:
    if len(name.encode()) > MAX_IDENTIFIER_BYTES:
        raise InputError(f"identifier {name!r} exceeds PostgreSQL's {MAX_IDENTIFIER_BYTES}-byte limit")
    return name


class _Logins(ABC):
    """An owner's two logins: its app role and the twin credential rotation alternates with."""

    @property
    @abstractmethod
    def app_role(self) -> str: ...

    @property
    def twin_role(self) -> str:
        """The app role's alternate login (credential rotation's second user): a member of it."""
        return twin_of(self.app_role)

    @property
    def login_roles(self) -> tuple[str, str]:
        return (self.app_role, self.twin_role)


@dataclass(frozen=True)
class TenantNames(_Logins):
    """Every catalog name of one tenant, from its opaque id alone."""

    id: str

    def __post_init__(self) -> None:
        check_id(self.id, "tenant id")
        for name in (self.schema, self.owner_role, self.app_role, self.ro_role, self.twin_role):
            _identifier(name)

    @property
    def schema(self) -> str:
        return f"t_{self.id}"

    @property
    def owner_role(self) -> str:
        return f"t_{self.id}_owner"

    @property
    def app_role(self) -> str:
        return f"t_{self.id}_app"

    @property
    def ro_role(self) -> str:
        return f"t_{self.id}_ro"


@dataclass(frozen=True)
class PartnerNames(_Logins):
    id: str

    def __post_init__(self) -> None:
        check_id(self.id, "partner id")
        _identifier(self.twin_role)

    @property
    def app_role(self) -> str:
        return f"p_{self.id}_app"


TWIN_SUFFIX = "2"


def twin_of(app_role: str) -> str:
    """The alternate login of an app role (t_<id>_app2, p_<id>_app2): credential rotation sets a
    new password on whichever of the two the application does not hold (AWS Secrets Manager's
    alternating-users scheme), so the one it holds keeps working."""
    return app_role + TWIN_SUFFIX


def other_login(app_role: str, current: str | None) -> str:
    """The login rotation sets next: the twin when the secret names the app role, else the app role."""
    return twin_of(app_role) if current == app_role else app_role
