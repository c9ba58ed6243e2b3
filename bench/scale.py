"""Scale benchmark: many cells and tenants through the CLI; each figure beside its target.

    .venv/bin/python bench/scale.py [--cells 10 --tenants 10000] [--repeat 3]

On a private local stack (.local/bench-scale) with one partner and `--tenants` spread over
`--cells` cells (recorded as `tenants import --no-apply` records them), each `provision`
command runs as its own process, as an operator runs it (start-up and imports included):

1. `tenants apply` of all new tenants (its peak RSS too);
2. `tenants apply` again with nothing changed            target <= 2 s
3. `tenants list --json`                                 target <= 1 s
4. `tenants verify --json` (default sample)              target <= 10 s, catalog checks <= 3 s
5. apply of new tenants vs `psql -f` of the same rendered SQL against the same cells (one psql
   per cell, all at once, as the tool runs its cells): two halves alternated, floor first then
   tool first; the floor's tenants are recorded closed so the tool leaves them alone.
                                                         target ratio <= 1.0
6. peak RSS of `tenants apply` for all new tenants vs a tenth of them   target <= 1.5x

2-4 are repeated `--repeat` times and the median printed. `--keep` leaves the stack up (and its
tenants) at the end; `--reuse` measures 2-4 and the no-op and verify profiles again on a kept
stack without building it (1, 5, 6 and the new-tenant profile add tenants: not run then, and said).
Then where the time goes: the same no-op apply, an apply of new tenants and a verify in this
process with the suspected costs timed (template rendering, TLS connections, Secrets Manager
calls, ledger queries, SCRAM hashing, batches, catalog checks, probes), summed over the cells'
threads. The machine's speed (a fixed loop, `_stack.yardstick`) is printed at the start and the
end: the figures of two runs compare only beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from _stack import REPO, fresh_stack, kept_stack, line, own_cpu, reaped_cpu, record_tenants, yardstick
from botocore.client import BaseClient

from provisioner import apply as apply_module
from provisioner import directory, ledger, render
from provisioner.apply import ApplyOptions, CellApplier, apply_stack
from provisioner.connect import connect_master
from provisioner.stackref import LOCAL_DIR_ENV, credential_store
from provisioner.targets import tenant_target
from provisioner.verify import runner
from provisioner.verify.runner import VerifyOptions, verify_stack


# -- the CLI, as its own process -------------------------------------------------------------
def cli(root: Path, *args: str, ok: tuple[int, ...] = (0,)) -> tuple[float, int, str]:
    """Seconds, peak RSS (KiB) and stdout of one `provision` command on the bench stack; an exit
    status outside `ok` stops the bench (an apply that failed a target measures nothing)."""
    env = {**os.environ, LOCAL_DIR_ENV: str(root)}
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "provisioner", *args, "--stack", "local"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=errors,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode()
        if proc.returncode not in ok:
            # Its own words (moto's HTTP 500 under concurrent CreateSecret, a cell down...).
            errors.seek(0)
            raise SystemExit(f"provision {' '.join(args)} exited {proc.returncode}:\n{errors.read().decode()[-4000:]}")
    return seconds, usage.ru_maxrss, text


def median_of(repeat: int, run: Callable[[], float]) -> float:
    return statistics.median(run() for _ in range(repeat))


# -- the floor -------------------------------------------------------------------------------
def floor_files(outputs, work: Path, placed: list[directory.Placement], partner_id: str) -> dict[str, Path]:
    """Per cell, the rendered SQL of its tenants, one transaction each, as psql would run it."""
    files = {}
    for cell in outputs.cells:
        path = work / f"floor-{cell}.sql"
        with path.open("w") as fh:
            for p in placed:
                if p.cell == cell:
                    fh.write("begin;\n")
                    fh.writelines(r.text for r in tenant_target(p.id, partner_id, "starter").rendered)
                    fh.write("commit;\n")
        files[cell] = path
    return files


def psql_cells(stack, files: dict[str, Path]) -> float:
    """One `psql -f` per cell, all at once; the seconds until the last one ends."""
    ports = {c.name: c.port for c in stack.cells()}
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
            env={**os.environ, **stack.env(), "PGPORT": str(ports[cell])},
            stdout=subprocess.DEVNULL,
        )
        for cell, path in files.items()
    ]
    if any(p.wait() for p in procs):
        raise SystemExit("psql -f failed")
    return time.perf_counter() - started


class CpuMeter:
    """CPU seconds spent since the last reading: by the cells' servers (the backends their
    postmasters have reaped), by this process's reaped children (the CLI, or psql) and by the
    moto server. A backend is reaped a moment after its client leaves, hence the pause."""

    def __init__(self, stack) -> None:
        pidfiles = [stack.server(c).data / "postmaster.pid" for c in stack.cells()]
        self.postmasters = [int(path.read_text().split()[0]) for path in pidfiles]
        self.moto = stack.moto().pid()
        self.last = self._now()

    def _now(self) -> dict[str, float]:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "servers": sum(map(reaped_cpu, self.postmasters)),
            "client": children.ru_utime + children.ru_stime,
            "moto": own_cpu(self.moto),
        }

    def spent(self) -> dict[str, float]:
        time.sleep(0.5)
        now = self._now()
        spent, self.last = {k: now[k] - self.last[k] for k in now}, now
        return spent


def record_closed(outputs, partner, count: int, prefix: str) -> list[directory.Placement]:
    placed = record_tenants(outputs, partner.slug, count, prefix)
    for cluster in outputs.clusters:
        with connect_master(cluster, outputs.region) as conn:
            conn.execute(
                "update platform.tenants set status = 'closed', closed_at = now() where slug like %s",
                (f"{prefix}-%",),
            )
    return placed


# -- where the time goes ---------------------------------------------------------------------
class Profile:
    """Seconds and calls per phase, summed over threads, from wrappers around the suspects."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def add(self, phase: str, seconds: float) -> None:
        with self._lock:
            self.seconds[phase] += seconds
            self.calls[phase] += 1

    def wrap(self, phase: str | Callable[..., str | None], fn: Callable) -> Callable:
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                name = phase(*args, **kwargs) if callable(phase) else phase
                if name:
                    self.add(name, time.perf_counter() - started)

        return timed

    def summary(self, title: str, wall: float) -> str:
        rows = [f"  {title}: {wall:.2f} s wall; phases summed over the cells' threads:"]
        for phase, seconds in sorted(self.seconds.items(), key=lambda kv: -kv[1]):
            rows.append(f"    {phase:<44} {seconds:8.2f} s  {self.calls[phase]:>7} calls")
        return "\n".join(rows)


LEDGER_QUERIES = set(ledger._PAGES.values()) | set(ledger._JUDGED.values())


@contextmanager
def profiled() -> Iterator[Profile]:
    profile = Profile()
    patches = [
        (render.Step, "render", profile.wrap("template rendering", render.Step.render)),
        (psycopg, "connect", profile.wrap("connections (TLS handshake + SCRAM login)", psycopg.connect)),
        (
            BaseClient,
            "_make_api_call",
            profile.wrap(
                lambda client, op, *_: f"AWS {client.meta.service_model.service_name} {op}",
                BaseClient._make_api_call,
            ),
        ),
        (
            psycopg.Connection,
            "execute",
            profile.wrap(
                lambda conn, query, *_a, **_k: (
                    "ledger queries" if isinstance(query, str) and query in LEDGER_QUERIES else None
                ),
                psycopg.Connection.execute,
            ),
        ),
        (apply_module, "scram_verifier", profile.wrap("SCRAM verifiers (hashing)", apply_module.scram_verifier)),
        (CellApplier, "_execute_waiting", profile.wrap("apply batches (SQL)", CellApplier._execute_waiting)),
        (runner, "run_catalog", profile.wrap("catalog checks", runner.run_catalog)),
        (runner.CellProber, "run", profile.wrap("probes (logins, attempts, seeds)", runner.CellProber.run)),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, wrapper in patches:
        setattr(owner, name, wrapper)
    try:
        yield profile
    finally:
        for owner, name, original in saved:
            setattr(owner, name, original)


def profile_run(title: str, run: Callable[[], object]) -> str:
    with profiled() as profile:
        started = time.perf_counter()
        run()
        return profile.summary(title, time.perf_counter() - started)


# -- the run ---------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=2)
    parser.add_argument("--tenants", type=int, default=1000, help="tenants in all, spread over the cells")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each no-op, list and verify (median)")
    parser.add_argument("--no-floor", action="store_true", help="skip 5 and 6 (the psql -f floor and the tenth)")
    parser.add_argument("--no-verify", action="store_true", help="skip 4 and the verify profile")
    parser.add_argument("--keep", action="store_true", help="leave the stack up at the end, for --reuse")
    parser.add_argument("--reuse", action="store_true", help="measure 2-4 again on the stack a --keep run left")
    args = parser.parse_args()
    if args.reuse:
        stack, outputs = kept_stack("bench-scale")
        n = sum(1 for t in directory.tenants(outputs) if t.status == "active")
        args.cells = len(outputs.clusters)
    else:
        stack, outputs = fresh_stack("bench-scale", cells=args.cells)
        n = args.tenants
    where = f"{args.cells} cell(s) x {n} tenants"
    root = stack.layout.root
    work = Path(tempfile.mkdtemp(prefix="askasia-scale-"))
    report, profiles = [f"machine speed at the start: a fixed loop in {yardstick():.3f} s (lower is faster)"], []
    try:
        if args.reuse:
            # The same stack again: its tenants were applied by the run that built it.
            report.append(f"reused stack: {where} active; 1, 5, 6 not measured in this run")
            cli(root, "tenants", "apply")  # must exit 0: a no-op measured below is a no-op
        else:
            cli(root, "tenants", "apply")  # the control plane
            cli(root, "partners", "add", "--partner", "bench-partner", "--jurisdiction", "EU")
            partner = next(p for p in directory.partners(outputs) if p.slug == "bench-partner")

            # 1. All new tenants at once.
            record_tenants(outputs, partner.slug, n, "tool")
            seconds, rss_all, _ = cli(root, "tenants", "apply")
            report.append(
                line(
                    f"apply {n} new tenants ({where}; peak RSS {rss_all / 1024:.0f} MiB)",
                    f"{seconds:.1f} s",
                    "reported",
                    True,
                )
            )

        # 2-4. Nothing changed, list, verify.
        meter = CpuMeter(stack)
        noop = median_of(args.repeat, lambda: cli(root, "tenants", "apply")[0])
        report.append(line(f"re-apply, nothing changed ({where})", f"{noop:.2f} s", "<= 2 s", noop <= 2))
        # Ten cells on two cores: the no-op's wall is bounded by the CPU all its parts spend.
        spent = ", ".join(f"{part} {seconds / args.repeat:.2f} s" for part, seconds in meter.spent().items())
        report.append(f"  its CPU, a run's mean: {spent} (client: the CLI)")
        listed = median_of(args.repeat, lambda: cli(root, "tenants", "list", "--json")[0])
        report.append(line(f"tenants list --json ({where})", f"{listed:.2f} s", "<= 1 s", listed <= 1))
        if args.no_verify:
            report.append("tenants verify: not run (--no-verify)")
        else:
            runs = []
            for _ in range(args.repeat):
                seconds, _, text = cli(root, "tenants", "verify", "--json", ok=(0, 1))  # findings are reported
                doc = json.loads(text)
                catalog = max(c["timings"].get("catalog", 0.0) for c in doc["cells"])
                probes = max(c["timings"].get("probes", 0.0) for c in doc["cells"])
                runs.append((seconds, catalog, probes, doc["exit_code"]))
            verify_s = statistics.median(r[0] for r in runs)
            catalog_s = statistics.median(r[1] for r in runs)
            probes_s = statistics.median(r[2] for r in runs)
            codes = sorted({r[3] for r in runs})
            report.append(
                line(
                    f"tenants verify, default sample (exit {codes}; probes {probes_s:.1f} s)",
                    f"{verify_s:.2f} s",
                    "<= 10 s",
                    verify_s <= 10,
                )
            )
            report.append(line("  its catalog checks (slowest cell)", f"{catalog_s:.2f} s", "<= 3 s", catalog_s <= 3))

        store = credential_store(outputs)
        profiles.append(profile_run("no-op apply", lambda: apply_stack(outputs, ApplyOptions(), store)))
        if not args.no_verify:
            profiles.append(profile_run("verify", lambda: verify_stack(outputs, VerifyOptions())))
        if args.reuse:
            return
        record_tenants(outputs, partner.slug, max(args.cells, n // 10), "profiled")
        profiles.append(
            profile_run(f"apply {max(args.cells, n // 10)} new", lambda: apply_stack(outputs, ApplyOptions(), store))
        )

        if args.no_floor:
            return
        # 5. Tool vs floor, alternated over two halves.
        half = n // 2
        floor = ours = 0.0
        cpu: dict[str, dict[str, float]] = {"tool": defaultdict(float), "floor": defaultdict(float)}
        for round_number in range(2):
            placed = record_closed(outputs, partner, half, f"floor{round_number}")
            files = floor_files(outputs, work, placed, partner.id)
            record_tenants(outputs, partner.slug, half, f"half{round_number}")
            meter = CpuMeter(stack)
            for side in ("floor", "tool") if round_number == 0 else ("tool", "floor"):
                if side == "floor":
                    floor += psql_cells(stack, files)
                else:
                    ours += cli(root, "tenants", "apply")[0]
                for part, seconds in meter.spent().items():
                    cpu[side][part] += seconds
        ratio = ours / floor
        report.append(
            line(
                f"apply {2 * half} new: tool {ours:.1f} s / psql -f {floor:.1f} s",
                f"{ratio:.2f}x",
                "<= 1.0x",
                ratio <= 1.0,
            )
        )
        # Two cores: what each side spends in all, not only its wall time, says where it goes.
        spent = ", ".join(f"{part} {cpu['tool'][part]:.1f} vs {cpu['floor'][part]:.1f} s" for part in cpu["tool"])
        report.append(f"  CPU, tool vs floor: {spent} (client: the CLI, or the psqls)")

        # 6. Peak RSS: a tenth as many new tenants.
        record_tenants(outputs, partner.slug, max(args.cells, n // 10), "tenth")
        rss_tenth = cli(root, "tenants", "apply")[1]
        mem = rss_all / rss_tenth
        report.append(
            line(
                f"peak RSS: {n} new {rss_all / 1024:.0f} MiB, {n // 10} new {rss_tenth / 1024:.0f} MiB",
                f"{mem:.2f}x",
                "<= 1.5x",
                mem <= 1.5,
            )
        )
    finally:
        report.append(f"machine speed at the end: the same loop in {yardstick():.3f} s")
        print("\n".join(report))
        print("where the time goes (in-process runs):")
        print("\n".join(profiles))
        if not (args.keep or args.reuse):
            stack.down(wipe=True)


if __name__ == "__main__":
    main()
