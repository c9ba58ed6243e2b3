"""Rows to be seen. A policy that leaks is invisible on an empty table, and shared tables may
hold nothing for the sampled tenants; the probe sessions, being other sessions, see only
committed rows. So the master seeds, in a committed transaction, one marked row per sampled
tenant in worker_runs, cost_entries and audit_events, and deletes them when the probes end
(whatever happens). Seeds a killed run left behind are deleted by the next run after an hour.

Markers: worker and actor 'askasia-verify-probe', status and detail.run 'probe:<run id>',
currency XTS (ISO 4217's code for testing), amount 0, audit action 'askasia.verify.probe'.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import psycopg

MARK = "askasia-verify-probe"
SEED_ACTION = "askasia.verify.probe"
SEED_CURRENCY = "XTS"
STALE_AFTER = "1 hour"


class Seedable(Protocol):
    # Read-only, so that frozen dataclasses (TenantRef) qualify.
    @property
    def id(self) -> str: ...

    @property
    def partner_id(self) -> str: ...


def seed(master: psycopg.Connection, tenants: Iterable[Seedable], run: str) -> int:
    """One marked, committed row per tenant in each seeded shared table; returns the tenants seeded."""
    rows = [
        {"t": t.id, "p": t.partner_id, "mark": MARK, "run": run, "currency": SEED_CURRENCY, "action": SEED_ACTION}
        for t in tenants
    ]
    if not rows:
        return 0
    with master.transaction(), master.cursor() as cur:
        cur.executemany(
            "with run as (insert into platform.worker_runs (tenant_id, partner_id, worker, status) "
            "values (%(t)s, %(p)s, %(mark)s, %(run)s) returning id) "
            "insert into platform.cost_entries (tenant_id, partner_id, worker_run_id, amount, currency) "
            "select %(t)s, %(p)s, id, 0, %(currency)s from run",
            rows,
        )
        cur.executemany(
            "insert into platform.audit_events (tenant_id, partner_id, actor, action, detail) "
            "values (%(t)s, %(p)s, %(mark)s, %(action)s, jsonb_build_object('run', %(run)s::text))",
            rows,
        )
    return len(rows)


def unseed(master: psycopg.Connection, run: str | None) -> None:
    """Delete one run's seeds, or (run=None) the seeds of runs killed more than an hour ago."""
    if run is not None:
        runs, audits = "status = %(run)s", "detail ->> 'run' = %(run)s"
    else:
        runs = f"started_at < now() - interval '{STALE_AFTER}'"
        audits = f"occurred_at < now() - interval '{STALE_AFTER}'"
    params = {"mark": MARK, "run": run, "action": SEED_ACTION, "currency": SEED_CURRENCY}
    with master.transaction():
        master.execute(
            "delete from platform.cost_entries where currency = %(currency)s and worker_run_id in "
            f"(select id from platform.worker_runs where worker = %(mark)s and {runs})",
            params,
        )
        master.execute(f"delete from platform.worker_runs where worker = %(mark)s and {runs}", params)
        master.execute(
            f"delete from platform.audit_events where actor = %(mark)s and action = %(action)s and {audits}", params
        )
