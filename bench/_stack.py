"""Shared bench plumbing: a private local stack, and onboarding many tenants quickly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from contract.outputs import StackOutputs, parse_outputs  # noqa: E402
from provisioner import directory, onboarding  # noqa: E402
from provisioner.apply import ApplyOptions, apply_stack  # noqa: E402
from provisioner.local.layout import Layout  # noqa: E402
from provisioner.local.stack import LocalStack  # noqa: E402
from provisioner.stackref import credential_store  # noqa: E402


def fresh_stack(name: str, cells: int = 1) -> tuple[LocalStack, StackOutputs]:
    """A new stack under .local/<name>, wiped first so every run measures the same thing."""
    layout = Layout(REPO / ".local" / name)
    stack = LocalStack(layout)
    stack.down(wipe=True)
    raw = stack.up(cells=cells)
    return stack, parse_outputs(raw)


def kept_stack(name: str) -> tuple[LocalStack, StackOutputs]:
    """The stack a `--keep` run left under .local/<name>, started again if it was stopped."""
    layout = Layout(REPO / ".local" / name)
    if not layout.outputs_file.is_file():
        raise SystemExit(f"no kept stack in {layout.root}: run once with --keep first")
    stack = LocalStack(layout)
    return stack, parse_outputs(stack.up())


def record_tenants(outputs: StackOutputs, partner: str, count: int, prefix: str) -> list[directory.Placement]:
    rows = [{"partner": partner, "tenant": f"{prefix}-{i:05d}", "plan": "starter"} for i in range(count)]
    return directory.place_tenants(outputs, onboarding.validate_new_tenants(outputs, rows))


def provision_tenants(outputs: StackOutputs, tenants: int, partners: int) -> float:
    """The control plane, then `tenants` tenants spread over `partners` partners, applied; seconds."""
    started = time.perf_counter()
    apply_stack(outputs, ApplyOptions(), None)  # the control plane
    slugs = [directory.add_partner_rows(outputs, f"bench-partner-{i:02d}", "EU").slug for i in range(partners)]
    for i, slug in enumerate(slugs):
        record_tenants(outputs, slug, tenants // partners, f"bench{i:02d}")
    results = apply_stack(outputs, ApplyOptions(), credential_store(outputs))
    bad = [e for r in results for e in r.errors + r.drift]
    if bad:
        raise SystemExit(f"apply failed: {bad[:3]}")
    return time.perf_counter() - started


def psql_file(stack: LocalStack, path: Path) -> None:
    env = {**os.environ, **stack.env()}
    subprocess.run(
        [shutil.which("psql") or "psql", "-q", "-X", "-v", "ON_ERROR_STOP=1", "-f", str(path)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _cpu_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields after the command name (which may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def own_cpu(pid: int) -> float:
    """User + system seconds a process has run (utime, stime)."""
    fields = _cpu_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reaped_cpu(pid: int) -> float:
    """User + system seconds of a process's children that have exited and been waited for
    (cutime, cstime): for a postmaster, its backends."""
    fields = _cpu_fields(pid)
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def yardstick() -> float:
    """Seconds a fixed piece of Python arithmetic takes on one core, best of three: how fast the
    machine is right now. Here its speed drifts by up to 40% within minutes (a shared host), so
    a run's figures compare with another run's only beside this."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        sum(i * i for i in range(5_000_000))
        best = min(best, time.perf_counter() - started)
    return best


def line(name: str, value: str, target: str, ok: bool) -> str:
    return f"{name:<58} {value:>14}   target {target:<12} {'OK' if ok else 'MISSED'}"
