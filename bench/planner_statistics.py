"""What running without planner statistics costs (no statistics oracle, V031/R__statistics),
on a local stack of its own (.local/bench-statistics) whose worker_runs holds 10 million rows.

    .venv/bin/python bench/planner_statistics.py [--rows 10000000] [--tenants 1000] [--keep]

Tenants' row counts are skewed (one tenant holds a fifth of the rows, the rest share the
remainder) so that statistics, where collected, matter. Each query a tenant's application runs
on its shared rows is planned and run (EXPLAIN ANALYZE, as a role bound to a tenant, under row
level security) twice: with statistics collected (the floor: what PostgreSQL does by default)
and with none (target 0, what the platform keeps). Printed per query and tenant size: the plan's
top node, its estimated vs actual rows, the planner's cost, and the execution time beside the
floor's. Target: the same plan shape, and execution within 2x the floor (or within 5 ms).
"""

from __future__ import annotations

import argparse
import json
import time

import psycopg
from _stack import fresh_stack, line
from psycopg import sql

from provisioner.apply import ApplyOptions, apply_stack

ROLE = "bench_stat_tenant"
QUERIES = {
    "latest 50 runs": "select * from platform.worker_runs where tenant_id = %(t)s order by started_at desc limit 50",
    "runs of the last day": "select count(*) from platform.worker_runs where tenant_id = %(t)s "
    "and started_at > now() - interval '1 day'",
    "queued runs": "select id from platform.worker_runs where tenant_id = %(t)s and status = 'queued'",
    "one run by id": "select * from platform.worker_runs where tenant_id = %(t)s and id = %(id)s",
}


def load(su: psycopg.Connection, rows: int, tenants: int) -> tuple[str, str]:
    """Partners, tenants and worker runs written directly (triggers and foreign keys off while
    loading, as a restore does); returns (the big tenant, a small one)."""
    su.execute("set session_replication_role = replica")
    su.execute("insert into platform.partners (id, slug, jurisdiction) values ('benchpartner', 'bench-p', 'EU')")
    su.execute(
        "insert into platform.tenants (id, partner_id, slug, plan, home_region, cell) "
        "select 'bt' || lpad(g::text, 10, '0'), 'benchpartner', 'bench-' || g, 'starter', 'eu-west-1', 'cell-1' "
        "from generate_series(1, %s) g",
        (tenants,),
    )
    big = rows // 5
    su.execute(
        "insert into platform.worker_runs (tenant_id, partner_id, worker, status, started_at) "
        "select case when g <= %(big)s then 'bt0000000001' "
        "            else 'bt' || lpad((2 + (g %% (%(tenants)s - 1)))::text, 10, '0') end, "
        "       'benchpartner', 'w', case when g %% 50 = 0 then 'queued' else 'done' end, "
        "       now() - (g %% 100000) * interval '1 minute' "
        "from generate_series(1, %(rows)s) g",
        {"big": big, "tenants": tenants, "rows": rows},
    )
    su.execute("reset session_replication_role")
    su.execute(sql.SQL("create role {} nologin in role askasia_tenant_app").format(sql.Identifier(ROLE)))
    su.commit()
    return "bt0000000001", f"bt{tenants // 2:010d}"


def statistics(su: psycopg.Connection, collected: bool) -> None:
    target = -1 if collected else 0
    columns = [
        r[0]
        for r in su.execute(
            "select attname from pg_attribute where attrelid = 'platform.worker_runs'::regclass "
            "and attnum > 0 and not attisdropped"
        )
    ]
    for column in columns:
        su.execute(
            sql.SQL("alter table platform.worker_runs alter column {} set statistics {}").format(
                sql.Identifier(column), sql.Literal(target)
            )
        )
    su.execute("delete from pg_statistic where starelid = 'platform.worker_runs'::regclass")
    su.commit()
    su.autocommit = True
    su.execute("analyze platform.worker_runs")
    su.autocommit = False


def measure(su: psycopg.Connection, tenant: str, run_id: str, query: str) -> dict:
    su.execute("delete from platform.role_bindings where role_name = %s", (ROLE,))
    su.execute("insert into platform.role_bindings values (%s, %s, 'benchpartner')", (ROLE, tenant))
    su.execute(sql.SQL("set local role {}").format(sql.Identifier(ROLE)))
    best = None
    for _ in range(3):
        plan = su.execute("explain (analyze, format json) " + query, {"t": tenant, "id": run_id}).fetchone()[0][0]
        if best is None or plan["Execution Time"] < best["Execution Time"]:
            best = plan
    su.rollback()
    top = best["Plan"]
    path, scan = [], top
    while True:  # down the main branch (not the init plan that binds the tenant) to the scan
        path.append(scan["Node Type"])
        children = [p for p in scan.get("Plans", []) if p.get("Parent Relationship") != "InitPlan"]
        if "Scan" in scan["Node Type"] or not children:
            break
        scan = children[0]
    return {
        "shape": " > ".join(n for n in path if n != "Result"),
        "cost": top["Total Cost"],
        "estimated": scan["Plan Rows"],
        "actual": scan["Actual Rows"] * scan.get("Actual Loops", 1),
        "ms": best["Execution Time"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    stack, outputs = fresh_stack("bench-statistics")
    try:
        results = apply_stack(outputs, ApplyOptions(statement_timeout="3600s"), None)
        if any(r.status != "ok" for r in results):
            raise SystemExit(f"apply failed: {[r.errors for r in results]}")
        cell = next(iter(stack.cells()))
        with psycopg.connect(**stack.bootstrap_conninfo(cell, "platform")) as su:
            started = time.perf_counter()
            big, small = load(su, args.rows, args.tenants)
            print(
                f"loaded {args.rows:,} worker runs for {args.tenants} tenants in {time.perf_counter() - started:.0f} s"
            )
            ids = {
                t: su.execute("select id from platform.worker_runs where tenant_id = %s limit 1", (t,)).fetchone()[0]
                for t in (big, small)
            }
            su.rollback()
            figures: dict[str, dict] = {}
            for collected in (True, False):
                statistics(su, collected)
                for label, query in QUERIES.items():
                    for size, tenant in (("big", big), ("small", small)):
                        figures[f"{label} ({size} tenant) {'floor' if collected else 'none'}"] = measure(
                            su, tenant, str(ids[tenant]), query
                        )
        print(f"{'query (tenant)':<40} {'stats':<6} {'plan':<40} {'est':>9} {'actual':>9} {'cost':>10} {'ms':>9}")
        for key, f in figures.items():
            name, _, state = key.rpartition(" ")
            print(
                f"{name:<40} {state:<6} {f['shape']:<40} {f['estimated']:>9.0f} {f['actual']:>9.0f} "
                f"{f['cost']:>10.1f} {f['ms']:>9.2f}"
            )
        print()
        for label in QUERIES:
            for size in ("big", "small"):
                floor, none = figures[f"{label} ({size} tenant) floor"], figures[f"{label} ({size} tenant) none"]
                ok = none["ms"] <= max(2 * floor["ms"], floor["ms"] + 5)
                print(
                    line(
                        f"{label} ({size}): no statistics vs floor",
                        f"{none['ms']:.1f}/{floor['ms']:.1f} ms",
                        "<= 2x",
                        ok,
                    )
                )
        print(json.dumps({"rows": args.rows, "tenants": args.tenants}))
    finally:
        if not args.keep:
            stack.down(wipe=True)


if __name__ == "__main__":
    main()
