"""Plan tiers and what the privacy policy promises each: audit logs kept 90 days (Starter,
Growth) or 13 months (Enterprise; 400 days, the CloudWatch value that covers 13 months); and
what each tier's login role may take of its cell (connections and role defaults).

Adding a tier is one edit here: the database's check constraint, the per-tier log groups, the
stack outputs' `audit_log_groups` keys and input validation all derive from this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from contract.logs import CLOUDWATCH_RETENTION_DAYS


@dataclass(frozen=True)
class RoleLimits:
    """What one login role may take of its cell: a CONNECTION LIMIT and the role defaults the
    post-deploy SQL sets (ALTER ROLE ... SET). The defaults bound what a role does by accident;
    a role may still SET them higher in its own session, so the guard (`provision cells guard`)
    and the cluster's superuser-only settings (SERVER_LIMITS) bound what it does on purpose."""

    connection_limit: int
    statement_timeout: str = "30s"
    idle_in_transaction_session_timeout: str = "10s"
    lock_timeout: str = "5s"
    work_mem: str = "8MB"

    def settings(self) -> dict[str, str]:
        """The role's rolconfig entries besides search_path, by setting name."""
        return {
            "statement_timeout": self.statement_timeout,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_session_timeout,
            "lock_timeout": self.lock_timeout,
            "work_mem": self.work_mem,
        }


@dataclass(frozen=True)
class Tier:
    name: str
    audit_retention_days: int
    limits: RoleLimits


TIERS: tuple[Tier, ...] = (
    Tier("starter", audit_retention_days=90, limits=RoleLimits(connection_limit=3)),
    Tier("growth", audit_retention_days=90, limits=RoleLimits(connection_limit=5, work_mem="16MB")),
    Tier(
        "enterprise",
        audit_retention_days=400,
        limits=RoleLimits(connection_limit=10, statement_timeout="120s", work_mem="32MB"),
    ),
)
# A partner's console role: reads its tenants' shared rows, never long.
PARTNER_LIMITS = RoleLimits(connection_limit=3, statement_timeout="15s")
# Connections a cell keeps out of every tenant's and partner's reach: the platform's own pool
# (application servers, workers) and the operator roles (master, guard, verifier). The cell's
# tenant capacity follows (see cell_tenant_capacity): onboarding past it overcommits the cell.
PLATFORM_POOL = 20
OPERATOR_RESERVE = 10
# A cell's connection budget is its server's max_connections, unless the server declares this
# custom setting (the local stack does: see provisioner/local/pgserver.py). Placement and check
# 054 read the same value.
CONNECTION_BUDGET_SETTING = "askasia.connection_budget"
# Server settings for every session: the cluster parameter group and the local stack's server
# configuration both set these. temp_file_limit (kB) is superuser-only: no tenant can raise it.
# The idle timeout is the default for roles without their own; parallel workers are bounded by
# max_worker_processes, which only a restart changes (a session may raise max_parallel_workers).
SERVER_LIMITS: Mapping[str, str] = {
    "temp_file_limit": "1048576",  # 1 GB of temporary files per session
    "idle_in_transaction_session_timeout": "600000",  # ms: the default for roles without their own
    "log_lock_waits": "1",
}
PLAN_TIERS: tuple[str, ...] = tuple(t.name for t in TIERS)
AUDIT_RETENTION_DAYS: Mapping[str, int] = {t.name: t.audit_retention_days for t in TIERS}

for _tier in TIERS:  # a typo here would only surface as an AWS API error at deploy time
    if _tier.audit_retention_days not in CLOUDWATCH_RETENTION_DAYS:
        raise ValueError(f"tier {_tier.name}: {_tier.audit_retention_days} is not a CloudWatch retention value")


def cell_tenant_capacity(max_connections: int, tier_name: str, partners: int = 0) -> int:
    """How many tenants of one tier a cell holds with every connection limit reachable at once:
    (max_connections - OPERATOR_RESERVE - PLATFORM_POOL - partners x partner limit) / tier limit."""
    spare = max_connections - OPERATOR_RESERVE - PLATFORM_POOL - partners * PARTNER_LIMITS.connection_limit
    return max(0, spare // tier(tier_name).limits.connection_limit)


def committed_connections(tenants_per_tier: Mapping[str, int], partners: int) -> int:
    """The connections a cell has promised: the reserve, the platform's pool, and every
    tenant's and partner's connection limit."""
    tenants = sum(tier(name).limits.connection_limit * n for name, n in tenants_per_tier.items())
    return OPERATOR_RESERVE + PLATFORM_POOL + partners * PARTNER_LIMITS.connection_limit + tenants


def tier(name: str) -> Tier:
    for candidate in TIERS:
        if candidate.name == name:
            return candidate
    raise KeyError(f"plan {name!r} is not one of {', '.join(PLAN_TIERS)}")
