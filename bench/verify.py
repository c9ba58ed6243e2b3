"""Verify benchmarks on a local stack of its own (.local/bench-verify); each figure is printed
beside its target.

    .venv/bin/python bench/verify.py [--tenants 1000] [--partners 10] [--keep]

1. all catalog checks (sql/verify/) over every tenant, one snapshot.   target: <= 5 s
2. ledger drift: every tenant's templates rendered and compared.        (reported)
3. behaviour probes: cost per tenant pair (marginal, 40 vs 20 pairs),
   attempts per pair, and the partner probe.                           (reported)
4. `provision tenants verify` end to end with the default sample.      (reported)
The stack must verify clean: a false positive at scale fails the bench.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

from _stack import REPO, fresh_stack, line, provision_tenants

from provisioner.connect import connect_master, secret_credentials
from provisioner.verify.catalog import run_catalog
from provisioner.verify.ledger import ledger_findings
from provisioner.verify.prober import CellProber

ROUNDS = 5


def probe_run(outputs, cluster, pairs: int) -> tuple[float, object]:
    with connect_master(cluster, outputs.region, autocommit=True) as conn:
        started = time.perf_counter()
        result = CellProber(cluster, outputs.stack, outputs.region, conn, pairs, random.Random(7)).run()
        return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--partners", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="leave the stack running afterwards")
    args = parser.parse_args()
    stack, outputs = fresh_stack("bench-verify")
    cluster = outputs.clusters[0]
    report = []
    try:
        seconds = provision_tenants(outputs, args.tenants, args.partners)
        print(f"provisioned {args.tenants} tenants of {args.partners} partners in {seconds:.1f} s", file=sys.stderr)
        master = secret_credentials(cluster.master_secret_arn, outputs.region).username

        # 1. Catalog checks, warm: the first round pays for the catalog cache.
        with connect_master(cluster, outputs.region, autocommit=True) as conn:
            rounds, slowest = [], {}
            for _ in range(ROUNDS + 1):
                timings: dict[str, float] = {}
                started = time.perf_counter()
                findings = run_catalog(conn, master, timings)
                rounds.append(time.perf_counter() - started)
                slowest = timings
            if findings:
                raise SystemExit(f"a clean stack has {len(findings)} catalog findings, e.g. {findings[:3]}")
            warm = rounds[1:]
            top = ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in sorted(slowest.items(), key=lambda kv: -kv[1])[:3])
            report.append(
                line(
                    f"catalog checks, {args.tenants} tenants (median of {ROUNDS}; first {rounds[0]:.2f} s)",
                    f"{statistics.median(warm):.2f} s",
                    "<= 5 s",
                    max(warm) <= 5,
                )
            )
            report.append(f"    slowest: {top}")

            # 2. Ledger drift.
            started = time.perf_counter()
            drift = ledger_findings(conn, cluster.database)
            ledger = time.perf_counter() - started
            if drift:
                raise SystemExit(f"a freshly applied stack has ledger drift: {drift[:3]}")
            report.append(line(f"ledger drift, {args.tenants} tenants rendered", f"{ledger:.2f} s", "reported", True))

        # 3. Probes: marginal cost per pair, the partner probe included in both runs.
        t20, r20 = probe_run(outputs, cluster, 20)
        t40, r40 = probe_run(outputs, cluster, 40)
        for result in (r20, r40):
            if result.findings or result.errors:
                raise SystemExit(f"probes on a clean stack: {result.findings[:3]} {result.errors[:3]}")
        per_pair = (t40 - t20) / (r40.pairs - r20.pairs)
        attempts = (r40.attempts - r20.attempts) / (r40.pairs - r20.pairs)
        report.append(
            line(
                f"probe cost per tenant pair ({attempts:.0f} attempts, a login: the pairs are a path)",
                f"{per_pair * 1000:.0f} ms",
                "reported",
                True,
            )
        )
        fixed = t20 - 20 * per_pair
        report.append(
            line(
                f"probe run overhead: logins, canaries, {r20.partners} partner probes",
                f"{fixed:.2f} s",
                "reported",
                True,
            )
        )

        # 4. The command end to end (default sample of 20 pairs).
        env = {**os.environ, **stack.env(), "ASKASIA_LOCAL_DIR": str(stack.layout.root)}
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "provisioner", "tenants", "verify", "--stack", "local", "--json"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - started
        report.append(
            line(
                f"provision tenants verify, {args.tenants} tenants (exit {done.returncode})",
                f"{wall:.2f} s",
                "reported",
                done.returncode == 0,
            )
        )
        if done.returncode != 0:
            cells = json.loads(done.stdout)["cells"] if done.stdout.strip() else []
            report += [f"    {f['check']}: {f['object']}: {f['detail']}" for c in cells for f in c["findings"][:10]]
            report += [f"    could not run: {e}" for c in cells for e in c["errors"][:10]] or [done.stderr[-2000:]]
    finally:
        print("\n".join(report))
        if not args.keep:
            stack.down(wipe=True)


if __name__ == "__main__":
    main()
