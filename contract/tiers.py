"""Plan tiers and what the privacy policy promises each: audit logs kept 90 days (Starter,
Growth) or 13 months (Enterprise; 400 days, the CloudWatch value that covers 13 months).

Adding a tier is one edit here: the database's check constraint, the per-tier log groups, the
stack outputs' `audit_log_groups` keys and input validation all derive from this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contract.logs import CLOUDWATCH_RETENTION_DAYS


@dataclass(frozen=True)
class Tier:
    name: str
    audit_retention_days: int


TIERS: tuple[Tier, ...] = (
    Tier("starter", audit_retention_days=90),
    Tier("growth", audit_retention_days=90),
    Tier("enterprise", audit_retention_days=400),
)
PLAN_TIERS: tuple[str, ...] = tuple(t.name for t in TIERS)
AUDIT_RETENTION_DAYS: Mapping[str, int] = {t.name: t.audit_retention_days for t in TIERS}

for _tier in TIERS:  # a typo here would only surface as an AWS API error at deploy time
    if _tier.audit_retention_days not in CLOUDWATCH_RETENTION_DAYS:
        raise ValueError(f"tier {_tier.name}: {_tier.audit_retention_days} is not a CloudWatch retention value")


def tier(name: str) -> Tier:
    for candidate in TIERS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"plan {name!r} is not one of {', '.join(PLAN_TIERS)}")
