"""Where one cell's behaviour probes spend their time: attempts, wall time and the server's CPU
per probe check, the logins apart, on a local stack of its own (.local/bench-verify, which
`bench/verify.py --keep` leaves; built here when absent).

    .venv/bin/python bench/probes.py [--tenants 1000] [--partners 10] [--pairs 20] [--rounds 3] [--keep]

1. the probe run as verify makes it (default sample: 20 pairs), median of the rounds: wall
   time, the client's CPU and the server's (every backend the run started, read from the
   postmaster's reaped children, plus the verifier's own backend).             (reported)
2. one profiled run: each check's hooks flushed on their own, so each check's attempts, wall
   time and its backend's CPU (/proc/<pid>/schedstat) are its own; logins timed apart.
The server's CPU is what ten cells on two cores share: the figure to bring down.
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from _stack import REPO, fresh_stack, kept_stack, line, provision_tenants, reaped_cpu

from provisioner.connect import connect_master
from provisioner.verify import prober as prober_module
from provisioner.verify.prober import CellProber, ProbeRun

GRANTED = prober_module.granted

NAME = "bench-verify"


def backend_cpu(pid: int) -> float:
    """Seconds a live process has run on a CPU (nanoseconds in schedstat)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def postmaster_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(row.split()[1] for row in status.splitlines() if row.startswith("PPid:")))


class Costs:
    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def add(self, name: str, wall: float, cpu: float) -> None:
        self.wall[name] += wall
        self.cpu[name] += cpu
        self.calls[name] += 1


def timed_hook(costs: Costs, name: str, hook: Callable | None) -> Callable | None:
    """The hook, then a flush of what it queued; its wall time and its backend's CPU."""
    if hook is None:
        return None

    def run(probe, *args):
        pid = probe.session.conn.info.backend_pid
        wall, cpu = time.perf_counter(), backend_cpu(pid)
        hook(probe, *args)
        probe.session.flush()
        costs.add(name, time.perf_counter() - wall, backend_cpu(pid) - cpu)

    return run


def timed_read(costs: Costs, read: Callable) -> Callable:
    def run(session, relations, group):
        pid = session.conn.info.backend_pid
        wall, cpu = time.perf_counter(), backend_cpu(pid)
        try:
            return read(session, relations, group)
        finally:
            costs.add("privileges read", time.perf_counter() - wall, backend_cpu(pid) - cpu)

    return run


class ProfiledProber(CellProber):
    def __init__(self, *args, costs: Costs, **kwargs):
        super().__init__(*args, **kwargs)
        self.costs = costs
        self.checks = tuple(
            dataclasses.replace(
                c, **{h: timed_hook(costs, c.name, getattr(c, h)) for h in ("alone", "against", "witnessed", "partner")}
            )
            for c in self.checks
        )

    def login(self, kind, owner_id, who):
        """Login and the session's start (its settings, the savepoint), the login's CPU apart."""
        started, before = time.perf_counter(), self.costs.cpu["logins (TLS + SCRAM)"]
        session = super().login(kind, owner_id, who)
        if session is not None:
            login = self.costs.cpu["logins (TLS + SCRAM)"] - before
            cpu = backend_cpu(session.conn.info.backend_pid) - login
            self.costs.add("session start", time.perf_counter() - started, cpu)
        return session

    def connect_as(self, kind, owner_id, who, autocommit=False):
        started = time.perf_counter()
        conn = super().connect_as(kind, owner_id, who, autocommit)
        # a backend's CPU when its login is done: fork, TLS handshake, SCRAM
        self.costs.add(
            "logins (TLS + SCRAM)", time.perf_counter() - started, backend_cpu(conn.info.backend_pid) if conn else 0.0
        )
        return conn


def probe_run(
    outputs, cluster, pairs: int, costs: Costs | None = None
) -> tuple[CellProber, ProbeRun, float, float, float]:
    """The prober, its run's result, wall seconds, client CPU seconds and server CPU seconds."""
    with connect_master(cluster, outputs.region, autocommit=True) as conn:
        own, postmaster = conn.info.backend_pid, postmaster_of(conn.info.backend_pid)
        server, own_cpu = reaped_cpu(postmaster), backend_cpu(own)
        wall, client = time.perf_counter(), time.process_time()
        args = (cluster, outputs.stack, outputs.region, conn, pairs, random.Random(7))
        prober = ProfiledProber(*args, costs=costs) if costs else CellProber(*args)
        if costs:
            prober_module.granted = timed_read(costs, GRANTED)
        try:
            result = prober.run()
        finally:
            prober_module.granted = GRANTED
        wall, client = time.perf_counter() - wall, time.process_time() - client
        own_cpu = backend_cpu(own) - own_cpu
        if costs:
            costs.add("the verifier's own reads", 0.0, own_cpu)
    time.sleep(0.5)  # the probe sessions' backends exit and are reaped
    return prober, result, wall, client, reaped_cpu(postmaster) - server + own_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--partners", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="leave the stack up (a later run reuses it)")
    args = parser.parse_args()
    if (REPO / ".local" / NAME / "outputs.json").is_file():
        stack, outputs = kept_stack(NAME)
        print(f"reusing the stack in .local/{NAME}", file=sys.stderr)
    else:
        stack, outputs = fresh_stack(NAME)
        provision_tenants(outputs, args.tenants, args.partners)
    report: list[str] = []
    try:
        measure(outputs, args, report)
    finally:
        if not args.keep:
            stack.down(wipe=True)
        print("\n".join(report))


def measure(outputs, args, report: list[str]) -> None:
    """Appends the figures to `report` as they are taken (a failure keeps what was measured)."""
    cluster = outputs.clusters[0]
    runs = [probe_run(outputs, cluster, args.pairs) for _ in range(args.rounds)]
    for _, result, *_ in runs:
        if result.findings or result.errors:
            raise SystemExit(f"probes on a clean stack: {result.findings[:3]} {result.errors[:3]}")
    result = runs[0][1]
    wall, client, server = (statistics.median(r[i] for r in runs) for i in (2, 3, 4))
    what = f"{result.pairs} pairs, {result.partners} partners, {result.attempts} attempts"
    report.append(line(f"probe run, one cell ({what}), median of {args.rounds}", f"{wall:.2f} s", "reported", True))
    report.append(f"    CPU: server {server:.2f} s, client {client:.2f} s; rounds {[round(r[2], 2) for r in runs]}")

    costs = Costs()
    prober, _, wall, _, server = probe_run(outputs, cluster, args.pairs, costs)
    report.append(f"profiled run (each check flushed alone): {wall:.2f} s wall, server CPU {server:.2f} s")
    report.append(f"    {'check':<24} {'attempts':>9} {'wall s':>8} {'server CPU s':>13} {'calls':>7}")
    for name in sorted(costs.wall, key=lambda n: -costs.cpu[n]):
        attempts = prober.log.attempted[name] if name in prober.log.attempted else costs.calls[name]
        report.append(
            f"    {name:<24} {attempts:>9} {costs.wall[name]:>8.2f} {costs.cpu[name]:>13.2f} {costs.calls[name]:>7}"
        )


if __name__ == "__main__":
    main()
