"""What a behaviour probe check is: its declaration (ProbeCheck), and the logins it probes
through, a tenant's app role (TenantProbe) or a partner's console role (PartnerProbe), each
inside a rolled-back transaction (see session.py for how an attempt is judged).

A check declares only the hooks it needs; the prober (prober.py) calls every hook once per
login of its kind. A check that made no attempt in a cell reports SKIP with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from provisioner.names import TenantNames
from provisioner.verify.session import Session
from provisioner.verify.statements import SchemaObjects, SharedRelation


@dataclass(frozen=True)
class TenantRef:
    id: str
    partner_id: str

    @property
    def names(self) -> TenantNames:
        return TenantNames(self.id)


@dataclass(frozen=True)
class TenantProbe:
    """Tenant A's app role, logged in with its own credentials."""

    session: Session
    tenant: TenantRef
    run: str  # this run's id, which what a probe writes (and rolls back) carries
    shared: tuple[SharedRelation, ...]
    objects: Mapping[str, SchemaObjects]  # what each target's schema holds, read once a cell
    _done: set[str] = field(default_factory=set, compare=False, repr=False)

    def first(self, key: str) -> bool:
        """True once per login for `key`: for attempts whose outcome cannot depend on the
        target (the same statement, or one PostgreSQL refuses whatever its values), made with
        the login's first target only."""
        if key in self._done:
            return False
        self._done.add(key)
        return True

    def per_target(self, held: bool, key: str) -> bool:
        """Whether to make a target's attempt of a statement (`key`, without the target's
        values): always when the login holds the privilege the statement needs (rows and
        policies decide then, which the target changes); else once per login, since
        PostgreSQL refuses it on the role's privileges alone, before it looks at a value."""
        return held or self.first(key)

    @property
    def mine(self) -> dict[str, str]:
        """A's own ids, the parameters of the statements that tell its rows from others'."""
        t = self.tenant  # role: the login probed, the app role or its rotation twin (each sees its own binding)
        return {"tenant": t.id, "partner": t.partner_id, "role": self.session.who, "target": f"tenant:{t.id}"}


@dataclass(frozen=True)
class PartnerProbe:
    """A partner's console role, logged in with its own credentials."""

    session: Session
    partner_id: str
    run: str
    shared: tuple[SharedRelation, ...]
    tenants: int  # its tenants in the cell
    runs: int  # its tenants' worker runs, as the master counted them before it logged in
    other: TenantRef | None  # a sampled tenant of another partner, whose ids it claims
    schemas: tuple[TenantRef, ...]  # the tenant schemas it tries
    objects: Mapping[str, SchemaObjects]  # what each of them holds, read once a cell

    @property
    def role(self) -> str:
        return self.session.who  # the login probed: the console role or its rotation twin

    @property
    def mine(self) -> dict[str, str]:
        return {"partner": self.partner_id, "role": self.role}


@dataclass(frozen=True)
class ProbeCheck:
    """One probe check, declared by its module in probes/ as CHECK; the module's docstring
    says what it proves."""

    name: str
    alone: Callable[[TenantProbe], None] | None = None  # once per tenant login
    against: Callable[[TenantProbe, TenantRef], None] | None = None  # per pair: tenant A against tenant B
    # per pair, while B's own session sits idle after a query carrying the marker (the third argument)
    witnessed: Callable[[TenantProbe, TenantRef, str], None] | None = None
    partner: Callable[[PartnerProbe], None] | None = None  # once per partner login

    @property
    def needs_pair(self) -> bool:
        return self.against is not None or self.witnessed is not None
