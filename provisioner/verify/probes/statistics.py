"""No statistics oracle: tenant A's EXPLAIN of a shared table estimates the same number of
rows for tenant B's id as for an id nobody has, and a partner's for another partner's id as
for an id nobody has. Planner statistics are read under row level security for leakproof
operators, so a difference is another tenant's or partner's row count showing through. The
estimate for an id nobody has is asked once a login and relation: it is the same whatever the
target. A relation closed to the tenant (an audit partition) refuses EXPLAIN whatever the id:
it is tried with the tenant's first target only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from weakref import WeakKeyDictionary

from provisioner.names import new_id
from provisioner.verify.probing import PartnerProbe, ProbeCheck, TenantProbe, TenantRef
from provisioner.verify.session import Outcome, Session, composed
from provisioner.verify.statements import SharedRelation

NAME = "probe_statistics"


def plan_rows(explained: Any) -> float | None:
    """The top node's row estimate from EXPLAIN (FORMAT JSON)."""
    try:
        return float(explained[0]["Plan"]["Plan Rows"])
    except (TypeError, KeyError, IndexError, ValueError):
        return None


@dataclass
class Reference:
    """A session's estimate for an id nobody has on one relation's column: asked once a login,
    as it is the same whichever target it is compared with; comparisons that arrive before it
    wait for it."""

    estimate: float | None = None
    arrived: bool = False
    waiting: list[Callable[[float | None], None]] = field(default_factory=list)

    def settle(self, outcome: Outcome) -> None:
        self.estimate, self.arrived = _estimate(outcome), True
        for compare in self.waiting:
            compare(self.estimate)
        self.waiting.clear()

    def then(self, compare: Callable[[float | None], None]) -> None:
        if self.arrived:
            compare(self.estimate)
        else:
            self.waiting.append(compare)


_references: WeakKeyDictionary[Session, dict[tuple[str, str], Reference]] = WeakKeyDictionary()


def _estimate(outcome: Outcome) -> float | None:
    return plan_rows(outcome.rows[0][0]) if outcome.kind == "ok" and outcome.rows else None


def _explain(rel: SharedRelation, column: str) -> str:
    return composed("explain (format json) select * from {} where {} = %(v)s", (rel.schema, rel.name), (column,))


def _reference(s: Session, rel: SharedRelation, column: str) -> Reference:
    references = _references.setdefault(s, {})
    reference = references.get((rel.label, column))
    if reference is None:
        reference = references[(rel.label, column)] = Reference()
        # an id of the tenants' shape that nobody has (one chance in 36^12)
        s.attempt(NAME, (_explain(rel, column), {"v": new_id()}), then=reference.settle)
    return reference


def _compare(s: Session, rel: SharedRelation, column: str, theirs: str, whose: str) -> None:
    """EXPLAIN for their id, judged against the session's estimate for an id nobody has."""

    def differs(known: float | None, unknown: float | None) -> None:
        if known is not None and unknown is not None and known != unknown:
            s.log.violation(
                NAME,
                f"{s.who} -> {rel.label}",
                f"EXPLAIN estimates {known:g} rows for {column} = {whose}, {unknown:g} for an id nobody has",
            )

    reference = _reference(s, rel, column)
    s.attempt(
        NAME,
        (_explain(rel, column), {"v": theirs}),
        then=lambda outcome: reference.then(partial(differs, _estimate(outcome))),
    )


def _with(shared: tuple[SharedRelation, ...], column: str) -> list[SharedRelation]:
    """Platform relations carrying `column` (a partition, refused to a tenant, estimates nothing)."""
    flag = {"tenant_id": "has_tenant", "partner_id": "has_partner"}[column]
    return [r for r in shared if r.schema == "platform" and getattr(r, flag)]


def tenant_against(probe: TenantProbe, b: TenantRef) -> None:
    for rel in _with(probe.shared, "tenant_id"):  # a closed one is refused whatever the id
        if probe.per_target(not rel.closed, f"{NAME}:{rel.label}"):
            _compare(probe.session, rel, "tenant_id", b.id, f"tenant {b.id}")


def partner_view(probe: PartnerProbe) -> None:
    if probe.other is None:
        return
    for rel in _with(probe.shared, "partner_id"):
        _compare(probe.session, rel, "partner_id", probe.other.partner_id, f"partner {probe.other.partner_id}")


CHECK = ProbeCheck(NAME, against=tenant_against, partner=partner_view)
