"""Apply benchmarks on the local stack; each figure is printed beside its target.

    .venv/bin/python bench/apply.py [--tenants 1000]

1. 1,000 new tenants: `provision tenants apply` vs `psql -f` of the same rendered SQL
   (one transaction per tenant) on the same server.            target: ratio <= 1.2
2. re-apply with nothing changed over all tenants.               target: <= 2 s
3. one changed repeatable step across all tenants vs `psql -f` of that step's rendered
   statements.                                                    target: ratio <= 1.2
4. peak Python memory of the tool, 50 vs 500 new tenants.        target: flat (<= 1.5x)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path

from _stack import fresh_stack, line, psql_file, record_tenants

from provisioner import directory, render, resources
from provisioner.apply import ApplyOptions, apply_stack
from provisioner.connect import connect_master
from provisioner.stackref import credential_store
from provisioner.targets import tenant_target


def timed_apply(outputs, trace_memory: bool = False) -> tuple[float, int, list]:
    """Seconds, peak traced Python memory (only when asked: tracing slows Python down), results."""
    if trace_memory:
        tracemalloc.start()
    started = time.perf_counter()
    results = apply_stack(outputs, ApplyOptions(), credential_store(outputs))
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if trace_memory else 0
    tracemalloc.stop()
    bad = [e for r in results for e in r.errors + r.drift]
    if bad:
        raise SystemExit(f"apply failed: {bad[:3]}")
    return seconds, peak, results


def write_sql(path: Path, tenants: list[tuple[str, str]], step_filter=None) -> int:
    """The rendered SQL of each tenant, one transaction each, as psql would run it."""
    statements = 0
    with path.open("w") as fh:
        for tenant_id, partner_id in tenants:
            fh.write("begin;\n")
            for rendered in tenant_target(tenant_id, partner_id, "starter").rendered:
                if step_filter is None or rendered.step.name == step_filter:
                    fh.write(rendered.text)
                    statements += rendered.text.count(";")
            fh.write("commit;\n")
    return statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    n = parser.parse_args().tenants
    stack, outputs = fresh_stack("bench-apply")
    apply_stack(outputs, ApplyOptions(), None)  # the control plane
    partner = directory.add_partner_rows(outputs, "bench-partner", "EU")
    apply_stack(outputs, ApplyOptions(), credential_store(outputs))
    work = Path(tempfile.mkdtemp(prefix="askasia-bench-"))
    report = []

    # 1. Two rounds in alternating order (floor first, then tool first) so warm-up and
    #    background noise fall on both sides. Floor tenants are recorded as closed, so the
    #    tool leaves them alone.
    half = n // 2
    floor = ours = 0.0
    for round_number in range(2):
        floor_ids = [(p.id, partner.id) for p in record_tenants(outputs, partner.slug, half, f"floor{round_number}")]
        with connect_master(outputs.clusters[0], outputs.region) as conn:
            conn.execute("update platform.tenants set status = 'closed', closed_at = now() where slug like 'floor%'")
        write_sql(work / "floor.sql", floor_ids)
        record_tenants(outputs, partner.slug, half, f"tool{round_number}")
        for side in ("floor", "tool") if round_number == 0 else ("tool", "floor"):
            if side == "floor":
                started = time.perf_counter()
                psql_file(stack, work / "floor.sql")
                floor += time.perf_counter() - started
            else:
                ours += timed_apply(outputs)[0]
    report.append(
        line(
            f"apply {2 * half} new tenants: tool {ours:.1f} s / psql -f {floor:.1f} s",
            f"{ours / floor:.2f}x",
            "<= 1.2x",
            ours / floor <= 1.2,
        )
    )

    # 4. Memory, traced: 50 new tenants, then 500.
    peaks = {}
    for count in (50, 500):
        record_tenants(outputs, partner.slug, count, f"mem{count}")
        peaks[count] = timed_apply(outputs, trace_memory=True)[1]
    ratio = peaks[500] / peaks[50]
    report.append(
        line(
            f"peak memory: 500 new {peaks[500] / 2**20:.1f} MiB, 50 new {peaks[50] / 2**20:.1f} MiB",
            f"{ratio:.2f}x",
            "<= 1.5x",
            ratio <= 1.5,
        )
    )

    # 2. No-op re-apply (timed untraced; then traced for its memory).
    active = 2 * half + 550
    noop, _, results = timed_apply(outputs)
    assert sum(r.steps_run for r in results) == 0
    peak_noop = timed_apply(outputs, trace_memory=True)[1]
    report.append(
        line(
            f"re-apply, nothing changed, {active} tenants (peak {peak_noop / 2**20:.1f} MiB)",
            f"{noop:.2f} s",
            "<= 2 s",
            noop <= 2,
        )
    )

    # 3. One more grant in the repeatable step: a copy of sql/ with the change.
    changed_sql = work / "sql"
    shutil.copytree(resources.sql_dir(), changed_sql)
    grants = changed_sql / "tenant" / "R__grants.sql.j2"
    text = grants.read_text()
    last = text.rindex("revoke {{ owner }} from current_user;")  # the step ends by dropping the membership
    extra = "grant references on {{ schema }}.leads to {{ ro }};\n"
    grants.write_text(text[:last] + extra + text[last:])
    resources.sql_dir = lambda: changed_sql  # the changed copy stands in for the packaged templates
    render.environment.cache_clear()
    render.steps.cache_clear()
    with connect_master(outputs.clusters[0], outputs.region) as conn:
        tool_ids = [
            tuple(r)
            for r in conn.execute("select id, partner_id from platform.tenants where status = 'active' order by id")
        ]
    write_sql(work / "changed.sql", tool_ids, step_filter="R__grants")
    changed, _, results = timed_apply(outputs)
    assert sum(r.steps_run for r in results) == active
    started = time.perf_counter()
    psql_file(stack, work / "changed.sql")
    changed_floor = time.perf_counter() - started
    report.append(
        line(
            f"one changed R step x {active}: tool {changed:.2f} s / psql -f {changed_floor:.2f} s",
            f"{changed / changed_floor:.2f}x",
            "<= 1.2x",
            changed / changed_floor <= 1.2,
        )
    )

    print("\n".join(report))
    shutil.rmtree(work, ignore_errors=True)
    stack.down(wipe=True)


if __name__ == "__main__":
    main()
