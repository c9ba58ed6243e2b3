"""No statistics oracle: tenant A's EXPLAIN of a shared table estimates the same number of
rows for tenant B's id as for an id nobody has, and a partner's for another partner's id as
for an id nobody has. Planner statistics are read under row level security for leakproof
operators, so a difference is another tenant's or partner's row count showing through. A
relation closed to the tenant (an audit partition) refuses EXPLAIN whatever the id: it is
tried with the tenant's first target only."""

from __future__ import annotations

from typing import Any

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


def _compare(s: Session, rel: SharedRelation, column: str, theirs: str, whose: str) -> None:
    """EXPLAIN for their id and for an id nobody has; judged once both estimates are in."""
    query = composed("explain (format json) select * from {} where {} = %(v)s", (rel.schema, rel.name), (column,))
    estimates: list[float | None] = []

    def judge(outcome: Outcome) -> None:
        estimates.append(plan_rows(outcome.rows[0][0]) if outcome.kind == "ok" and outcome.rows else None)
        if len(estimates) < 2:
            return
        known, unknown = estimates
        if known is not None and unknown is not None and known != unknown:
            s.log.violation(
                NAME,
                f"{s.who} -> {rel.label}",
                f"EXPLAIN estimates {known:g} rows for {column} = {whose}, {unknown:g} for an id nobody has",
            )

    for value in (theirs, new_id()):  # an id of the tenants' shape that nobody has (one chance in 36^12)
        s.attempt(NAME, (query, {"v": value}), then=judge)


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
