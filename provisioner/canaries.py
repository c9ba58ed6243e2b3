"""Verify's canaries: per cell, a partner and tenants of status 'canary' that hold nobody's data,
with rows in every shared table (created by apply: sql/platform/R__verify_canaries). Every
sampled tenant probes against them, so a leaking policy shows on rows that are there, without
verify writing anything into tenants' data. Status 'canary' keeps them out of `tenants list`,
placement, registers, billing and lifecycle commands, which all choose rows by status."""

from __future__ import annotations

STATUS = "canary"
PARTNER = "canary000000"
TENANTS = ("canary000001", "canary000002")
MARK = "askasia-verify-canary"  # their worker runs' worker and their audit events' actor


def context(month: str) -> dict:
    """The template context of R__verify_canaries for the month (YYYY_MM) it runs in."""
    return {
        "partner": PARTNER,
        "partner_slug": "askasia-verify-canary",
        "jurisdiction": "EU",
        "tenants": [{"id": t, "slug": f"verify-canary-{n}"} for n, t in enumerate(TENANTS, start=1)],
        "mark": MARK,
        "month": month,
    }
