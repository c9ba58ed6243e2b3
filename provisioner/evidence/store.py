"""Source runs kept as files: <evidence dir>/<stack>/<finished, UTC>-<source>.json, one per run,
never rewritten, so a report can be regenerated for any past moment from what was recorded then.

The directory is the local stack's own for `local` (wiped with it), else evidence/ of the
project; CI keeps it (an artifact or a synced bucket) as the audit trail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from compliance.evidence import EvidenceError, SourceRun
from provisioner.errors import ProvisionError
from provisioner.stackref import LOCAL_STACK, local_root, project_dir

EVIDENCE_DIR_ENV = "ASKASIA_EVIDENCE_DIR"


def default_dir(stack: str) -> Path:
    explicit = os.environ.get(EVIDENCE_DIR_ENV)
    if explicit:
        return Path(explicit).resolve()
    return local_root() / "evidence" if stack == LOCAL_STACK else project_dir() / "evidence"


def record(root: Path, run: SourceRun) -> Path:
    folder = root / run.stack
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run.finished_at:%Y%m%dT%H%M%S.%fZ}-{run.source}.json"
    staged = path.with_suffix(".json.new")
    staged.write_text(json.dumps(run.as_dict(), indent=2) + "\n", encoding="utf-8")
    os.replace(staged, path)  # a reader never sees half a record
    return path


def recorded(root: Path, stack: str) -> list[SourceRun]:
    """Every run recorded for the stack, oldest first; a file that is not a record stops it."""
    runs = []
    for path in sorted((root / stack).glob("*.json")):
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            runs.append(SourceRun.from_dict(raw, str(path)))
        except json.JSONDecodeError:
            raise ProvisionError(f"{path}: not JSON") from None
        except EvidenceError as exc:
            raise ProvisionError(str(exc)) from None
    return runs
