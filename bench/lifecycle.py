"""Lifecycle benchmarks on a local stack of its own (.local/bench-lifecycle, or --name); each figure is
printed beside its target.

    .venv/bin/python bench/lifecycle.py [--rows 10000000] [--tenants 1000] [--purge 1000] [--export-rows 1000000]

1. retention over --rows audit events of --tenants tenants spread over 16 months: whole expired
   months detached and dropped (target: under 10 s), then mixed months cleaned in bounded
   batches (rows/s reported).
2. purge of --purge closed tenants (`tenants purge`: secrets, schemas, roles, rows) vs `psql -f`
   of the same DROP and DELETE statements on as many other tenants (target: ratio <= 1.2).
3. export of one tenant with --export-rows leads, as CSV and as JSON Lines, vs `psql \\copy` of
   the same COPY queries (target: ratio <= 1.25; tool and psql alternate, best of --runs each);
   peak Python memory at a tenth of the rows vs all (flat), measured in runs of their own
   (tracing every allocation slows an export several times over).
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
import tracemalloc
from pathlib import Path

from _stack import fresh_stack, line, psql_file, record_tenants

from provisioner import directory
from provisioner.apply import ApplyOptions, apply_stack
from provisioner.connect import connect_master
from provisioner.lifecycle import closure, export
from provisioner.names import TenantNames
from provisioner.stackref import credential_store


def retention(outputs, rows: int, tenants: int) -> None:
    partner = directory.add_partner_rows(outputs, "bench-retention", "EU").slug
    placed = record_tenants(outputs, partner, tenants, "ret")
    with connect_master(outputs.clusters[0], outputs.region, autocommit=True) as conn:
        # seeded as the master: only an owner member may date a row in the past
        plans = ["starter", "growth", "enterprise"]
        for i, p in enumerate(placed):
            conn.execute("update platform.tenants set plan = %s where id = %s", (plans[i % 3], p.id))
        now = conn.execute("select now()").fetchone()[0]
        for months in range(17, -1, -1):
            conn.execute("select count(*) from platform.audit_maintain(%s)", (now - dt.timedelta(days=30 * months),))
        ids = [p.id for p in placed]
        started = time.perf_counter()
        step = 1_000_000
        for offset in range(0, rows, step):
            conn.execute(
                "insert into platform.audit_events (tenant_id, partner_id, occurred_at, actor, action) "
                "select t.id, t.partner_id, %s - (g %% 480) * interval '1 day' - (g %% 86400) * interval '1 second', "
                "'bench', 'event' from generate_series(%s::bigint, %s::bigint) g "
                "join platform.tenants t on t.id = (%s::text[])[1 + g %% %s]",
                (now, offset, min(rows, offset + step) - 1, ids, len(ids)),
            )
        print(f"seeded {rows:,} audit rows over {len(ids)} tenants in {time.perf_counter() - started:.1f} s")
        conn.execute("analyze platform.audit_events")
        conn.execute("set role askasia_operator")  # retention runs as the operator, as `retention run` does
        started = time.perf_counter()
        dropped = conn.execute(
            "select count(*), coalesce(sum(rows_removed), 0) from platform.audit_drop_expired(%s)", (now,)
        ).fetchone()
        whole = time.perf_counter() - started
        print(line("retention: whole expired months detached + dropped", f"{whole:.2f} s", "< 10 s", whole < 10))
        print(f"    ({int(dropped[1]):,} rows in the dropped months)")
        started = time.perf_counter()
        deleted = batches = 0
        while True:
            got = conn.execute(
                "select coalesce(sum(rows_removed), 0), count(*) from platform.audit_clean_batch(%s, 10000)", (now,)
            ).fetchone()
            if got[1] == 0:
                break
            deleted += int(got[0])
            batches += 1
        cleaning = time.perf_counter() - started
        rate = deleted / cleaning if cleaning else 0
        print(line("retention: bounded batches (10,000 rows each)", f"{rate:,.0f} rows/s", "reported", True))
        print(f"    ({deleted:,} rows in {batches} batches, {cleaning:.1f} s)")


def purge(stack, outputs, count: int) -> None:
    partner = directory.add_partner_rows(outputs, "bench-purge", "EU").slug
    tool = record_tenants(outputs, partner, count, "pt")
    raw = record_tenants(outputs, partner, count, "pr")
    apply_stack(outputs, ApplyOptions(), credential_store(outputs))
    closed_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=31)
    with connect_master(outputs.clusters[0], outputs.region, autocommit=True) as conn:
        conn.execute(
            "update platform.tenants set status = 'closed', closed_at = %s where partner_id = "
            "(select id from platform.partners where slug = %s)",
            (closed_at, partner),
        )
        mine = {t.id: t for t in directory.tenants(outputs) if t.partner == partner}
        statements = []
        for p in raw:
            t = mine[p.id]
            names = TenantNames(t.id)
            roles = [names.owner_role, names.app_role, names.ro_role]
            statements.append("begin;")
            statements += [s.as_string(conn) + ";" for s in closure._purge_sql(t, roles)]
            statements.append("commit;")
    path = Path(tempfile.mkdtemp()) / "purge.sql"
    # quiet as the tool is: no NOTICE per cascaded table
    path.write_text("set client_min_messages = warning;\n" + "\n".join(statements) + "\n")
    started = time.perf_counter()
    psql_file(stack, path)
    floor = time.perf_counter() - started
    plan = closure.Done(planned=[closure.Planned(mine[p.id], "purge", "") for p in tool])
    started = time.perf_counter()
    done = closure.purge(outputs, plan)
    took = time.perf_counter() - started
    assert len(done) == count
    ratio = took / floor
    print(
        line(
            f"purge of {count} closed tenants vs psql -f of the same SQL",
            f"{took:.1f}/{floor:.1f} s",
            "<= 1.2x",
            ratio <= 1.2,
        )
    )
    print(f"    ratio {ratio:.2f}x (the tool also deletes {count} secrets and ends sessions)")


def _seed_leads(outputs, schema: str, n: int) -> None:
    with connect_master(outputs.clusters[0], outputs.region, autocommit=True) as conn:
        conn.execute(f'grant "{schema}_owner" to current_user')
        conn.execute(f'truncate "{schema}".leads cascade')
        conn.execute(
            f"insert into \"{schema}\".leads (name, email, data) select 'lead ' || g, g || '@example.com', "
            f"jsonb_build_object('n', g) from generate_series(1, %s::int) g",
            (n,),
        )
        conn.execute(f'vacuum analyze "{schema}".leads')  # as autovacuum would, before an export reads it
        conn.execute(f'revoke "{schema}_owner" from current_user')


def _export_peak(outputs, tenant, fmt) -> int:
    """Peak Python memory of one export (its own run: tracing every allocation slows it down)."""
    tracemalloc.start()
    export.export_tenant(outputs, tenant, export.Destination(directory=Path(tempfile.mkdtemp())), fmt)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def _psql_copy_script(outputs, tenant, schema: str, fmt) -> Path:
    """The same COPY queries as the tool, each to its own file with psql's \\copy."""
    with connect_master(outputs.clusters[0], outputs.region, autocommit=True) as conn:
        queries = [q.as_string(conn) for _, q in export._queries(conn, tenant, fmt)]
    script = Path(tempfile.mkdtemp()) / "copy.sql"
    lines = [f'grant "{schema}_owner" to current_user;', "begin isolation level repeatable read, read only;"]
    for i, q in enumerate(queries):
        inner, options = q.removeprefix("copy ").rsplit(" to stdout", 1)
        lines.append(f"\\copy {inner} to '{script.parent}/{i}.{fmt.extension}'{options}")
    lines += ["commit;", f'revoke "{schema}_owner" from current_user;']
    script.write_text("\n".join(lines) + "\n")
    return script


def export_bench(stack, outputs, rows: int, runs: int) -> None:
    partner = directory.add_partner_rows(outputs, "bench-export", "EU").slug
    (placed,) = record_tenants(outputs, partner, 1, "ex")
    apply_stack(outputs, ApplyOptions(), credential_store(outputs))
    tenant = next(t for t in directory.tenants(outputs) if t.id == placed.id)
    schema = TenantNames(tenant.id).schema
    peaks: dict[tuple[str, int], int] = {}
    for n in (rows // 10, rows):
        _seed_leads(outputs, schema, n)
        for fmt in export.FORMATS.values():
            peaks[fmt.name, n] = _export_peak(outputs, tenant, fmt)
    # The machine is shared: tool and floor alternate, and each keeps its best of `runs`.
    for fmt in export.FORMATS.values():
        script = _psql_copy_script(outputs, tenant, schema, fmt)
        took, floor = [], []
        for _ in range(runs):
            started = time.perf_counter()
            export.export_tenant(outputs, tenant, export.Destination(directory=Path(tempfile.mkdtemp())), fmt)
            took.append(time.perf_counter() - started)
            started = time.perf_counter()
            psql_file(stack, script)
            floor.append(time.perf_counter() - started)
        ratio = min(took) / min(floor)
        print(
            line(
                f"export ({fmt.name}) of one tenant, {rows:,} rows, vs psql \\copy",
                f"{min(took):.2f}/{min(floor):.2f} s",
                "<= 1.25x",
                ratio <= 1.25,
            )
        )
        print(
            f"    ratio {ratio:.2f}x; every run: tool {', '.join(f'{t:.2f}' for t in took)} s, "
            f"psql {', '.join(f'{t:.2f}' for t in floor)} s"
        )
        small, big = peaks[fmt.name, rows // 10], peaks[fmt.name, rows]
        print(
            line(
                f"peak Python memory ({fmt.name}), {rows // 10:,} vs {rows:,} rows",
                f"{small / 2**10:.0f}/{big / 2**10:.0f} KiB",
                "flat",
                big <= small * 1.5 + 2**20,
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--purge", type=int, default=1000)
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="Runs of each timed side (best kept).")
    parser.add_argument("--keep", action="store_true", help="Leave the stack up.")
    parser.add_argument("--name", default="bench-lifecycle", help="The stack's folder under .local/.")
    parser.add_argument(
        "--only", choices=("retention", "purge", "export"), action="append", help="Run these parts (default: all)."
    )
    args = parser.parse_args()
    stack, outputs = fresh_stack(args.name)
    try:
        apply_stack(outputs, ApplyOptions(), None)  # the control plane every part needs
        parts = args.only or ["retention", "purge", "export"]
        if "retention" in parts:
            retention(outputs, args.rows, args.tenants)
        if "purge" in parts:
            purge(stack, outputs, args.purge)
        if "export" in parts:
            export_bench(stack, outputs, args.export_rows, args.runs)
    finally:
        if not args.keep:
            stack.down(wipe=True)


if __name__ == "__main__":
    main()
