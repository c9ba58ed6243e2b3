"""Resource governance, measured on a local stack:

1. the cost of one guard pass on a cell with N tenants (default 1,000) and some tenant sessions
   open, beside the floor: the bare reads of sessions and locks it is built on;
2. the time from an attack's start to the cell serving another tenant again, with the guard
   running every 5 s: a tenant fills the shared lock table with session-level advisory locks
   (granted to it here, as Aurora keeps them executable by PUBLIC) and every new login fails
   until the guard ends that session.

    .venv/bin/python bench/governance.py [--tenants 1000] [--every 5] [--keep]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time

from _stack import fresh_stack, line, record_tenants

from provisioner import directory
from provisioner.apply import ApplyOptions, apply_stack
from provisioner.connect import Credentials, connect, read_secret_json
from provisioner.credentials import secret_name
from provisioner.errors import ProvisionError
from provisioner.guard import GuardLimits, guard_credentials, guard_pass, open_guard
from provisioner.stackref import credential_store

ROUNDS = 30
SESSIONS = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--every", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    args = parser.parse_args()
    stack, outputs = fresh_stack("bench-governance")
    cluster = outputs.clusters[0]
    store = credential_store(outputs)
    report = []
    try:
        apply_stack(outputs, ApplyOptions(), store)  # the control plane first
        apply_stack(outputs, ApplyOptions(), store)  # the control plane first
        partner = directory.add_partner_rows(outputs, "bench-gov", "EU").id
        record_tenants(outputs, "bench-gov", args.tenants, "gov")
        started = time.perf_counter()
        results = apply_stack(outputs, ApplyOptions(), store)
        if any(r.status != "ok" for r in results):
            raise SystemExit(f"apply failed: {[r.errors for r in results]}")
        print(f"applied {args.tenants} tenants in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        tenants = [t for t in directory.tenants(outputs) if t.partner_id == partner]
        attacker, victim = tenants[0], tenants[1]

        def login(tenant_id: str):
            doc = read_secret_json(secret_name(outputs.stack, "tenant", tenant_id), outputs.region)
            return connect(cluster, Credentials(doc["username"], doc["password"]))

        guard, db = open_guard(cluster, guard_credentials(outputs, cluster, store))
        sessions = [login(t.id) for t in tenants[2 : 2 + SESSIONS]]
        try:
            # 1. The guard pass, warm, nothing to terminate.
            times = []
            for _ in range(ROUNDS):
                mark = time.perf_counter()
                if guard_pass(guard, GuardLimits(), db):
                    raise SystemExit("a quiet cell had offenders")
                times.append(time.perf_counter() - mark)
            floor = []
            for _ in range(ROUNDS):
                mark = time.perf_counter()
                guard.execute("select count(*) from pg_stat_get_activity(null)").fetchone()
                guard.execute("select count(*) from pg_lock_status()").fetchone()
                floor.append(time.perf_counter() - mark)
            median = statistics.median(times)
            report.append(
                line(
                    f"guard pass, {args.tenants} tenants, {SESSIONS} sessions (median of {ROUNDS})",
                    f"{median * 1000:.1f} ms",
                    "< 50 ms",
                    median < 0.05,
                )
            )
            report.append(f"    floor (reading sessions and locks alone): {statistics.median(floor) * 1000:.1f} ms")
        finally:
            for conn in sessions:
                conn.close()

        # 2. Attack start to the cell serving again, the guard every --every seconds.
        stop = threading.Event()

        def guard_loop() -> None:
            while not stop.wait(args.every):
                try:
                    guard_pass(guard, GuardLimits(max_locks=1000), db)
                except Exception as exc:  # report and go on, as `cells guard --every` does
                    print(f"a pass failed: {exc}", file=sys.stderr)

        with _granted(stack, attacker.id):
            loop = threading.Thread(target=guard_loop, daemon=True)
            loop.start()
            bad = login(attacker.id)
            start = time.perf_counter()
            try:
                bad.execute("select count(pg_advisory_lock(k)) from generate_series(1, 20000) k")
            except Exception as exc:  # the lock table is full: the attack has landed
                print(f"attack landed: {str(exc).splitlines()[0]}", file=sys.stderr)
            refused = 0
            while True:
                try:
                    with login(victim.id) as conn:
                        conn.execute("select count(*) from leads").fetchone()
                    break
                except ProvisionError:
                    refused += 1
                    time.sleep(0.1)
                if time.perf_counter() - start > 60:
                    raise SystemExit("the cell did not serve again within 60 s")
            served = time.perf_counter() - start
            stop.set()
            loop.join()
            bad.close()
        report.append(
            line(
                f"lock-table attack to serving again, guard every {args.every:g} s",
                f"{served:.2f} s",
                "< 10 s",
                served < 10,
            )
        )
        report.append(f"    logins refused meanwhile: {refused}")
        guard.close()
    finally:
        print("\n".join(report))
        if not args.keep:
            stack.down(wipe=True)


class _granted:
    """EXECUTE on pg_advisory_lock for one tenant, as Aurora leaves it (to PUBLIC), for the attack."""

    def __init__(self, stack, tenant_id: str):
        self.stack, self.role = stack, f"t_{tenant_id}_app"

    def _run(self, statement: str) -> None:
        import psycopg

        cell = self.stack.cells()[0]
        with psycopg.connect(**self.stack.bootstrap_conninfo(cell, "platform"), autocommit=True) as su:
            su.execute(statement)

    def __enter__(self):
        self._run(f"grant execute on function pg_advisory_lock(bigint) to {self.role}")

    def __exit__(self, *exc):
        self._run(f"revoke execute on function pg_advisory_lock(bigint) from {self.role}")


if __name__ == "__main__":
    main()
