"""The contract's per-tier limits: every tier has them, and a cell's capacity follows from them."""

from __future__ import annotations

from contract.tiers import OPERATOR_RESERVE, PARTNER_LIMITS, PLATFORM_POOL, TIERS, cell_tenant_capacity, tier


def test_every_tier_has_a_connection_limit_and_all_four_role_defaults():
    for t in TIERS:
        assert t.limits.connection_limit > 0
        assert set(t.limits.settings()) == {
            "statement_timeout",
            "idle_in_transaction_session_timeout",
            "lock_timeout",
            "work_mem",
        }


def test_a_cell_at_capacity_keeps_the_reserve_and_the_pool_free():
    for t in TIERS:
        for max_connections, partners in ((100, 2), (5000, 10), (1000, 0)):
            n = cell_tenant_capacity(max_connections, t.name, partners)
            used = OPERATOR_RESERVE + PLATFORM_POOL + partners * PARTNER_LIMITS.connection_limit
            assert used + n * t.limits.connection_limit <= max_connections
            assert used + (n + 1) * t.limits.connection_limit > max_connections
    assert cell_tenant_capacity(20, "starter") == 0
    assert cell_tenant_capacity(5000, "starter", 10) == (5000 - 30 - 30) // tier("starter").limits.connection_limit


def test_committed_connections_add_the_reserve_the_pool_and_every_limit():
    from contract.tiers import committed_connections

    assert committed_connections({}, 0) == OPERATOR_RESERVE + PLATFORM_POOL
    assert committed_connections({"starter": 2, "enterprise": 1}, 3) == (
        OPERATOR_RESERVE + PLATFORM_POOL + 3 * PARTNER_LIMITS.connection_limit + 2 * 3 + 10
    )
    # a cell at its capacity has committed no more than max_connections; one more tenant would
    n = cell_tenant_capacity(100, "growth", 2)
    assert committed_connections({"growth": n}, 2) <= 100 < committed_connections({"growth": n + 1}, 2)
