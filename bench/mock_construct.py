"""Time to construct every stack under the SDK's mocks (what tests and `provision plan` pay).

    .venv/bin/python bench/mock_construct.py

cold: a fresh process importing the program and running every stacks/Pulumi.*.yaml once
      (pulumi_aws modules load lazily, so the first run carries their import).   target: <= 5 s
warm: the same stacks again in the same process.                                  (reported)
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_SECONDS = 5.0


def main() -> int:
    warnings.simplefilter("ignore", DeprecationWarning)  # pulumi_aws warns about its own aliases
    started = time.perf_counter()
    from offline.mockrun import run_under_mocks
    from stackconfig.files import load_stack_config

    stacks = sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in (REPO / "stacks").glob("Pulumi.*.yaml"))
    configs = [load_stack_config(s, REPO / "stacks") for s in stacks]
    per_stack = []
    for cfg in configs:
        t = time.perf_counter()
        run = run_under_mocks(cfg)
        per_stack.append((cfg.stack, len(run.resources), time.perf_counter() - t))
    cold = time.perf_counter() - started

    t = time.perf_counter()
    for cfg in configs:
        run_under_mocks(cfg)
    warm = time.perf_counter() - t

    for stack, count, seconds in per_stack:
        print(f"  {stack:<20} {count:>4} resources  {seconds:6.2f} s")
    verdict = "ok" if cold <= TARGET_SECONDS else "OVER"
    print(f"cold, {len(configs)} stacks incl. imports: {cold:.2f} s   target: <= {TARGET_SECONDS:.0f} s  [{verdict}]")
    print(f"warm, {len(configs)} stacks:               {warm:.2f} s")
    return 0 if cold <= TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())
