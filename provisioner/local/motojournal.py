"""What the local moto server keeps across restarts: moto's own recorder, as a journal.

moto holds its state in memory. Of the two ways to keep it, moto's recorder
(MOTO_ENABLE_RECORDING, replayed through /moto-api/recorder/replay-recording) is used rather
than a file of secrets re-seeded by `local up`: the app credentials are written by
`partners add` / `tenants add` through the production code, which knows nothing of the local
stack, so only moto sees every write when it happens. A journal kept by moto survives a
reboot or a killed server, where a snapshot taken at `local down` would lose what came after
the last one. moto 5.2.5 has no other persistence (no state snapshot or restore).

The journal holds request bodies, passwords among them: it lives in the moto server's 0700
directory as a 0600 file, and `local down --wipe` deletes it with the rest.

The server records only the requests that change state (motoserve), so the journal grows
with what the stack holds, not with its use; before each replay it is compacted to those
requests again, which drops the reads of a journal an older server wrote and a line cut short
by a killed server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

RECORDING_ENV = {"MOTO_ENABLE_RECORDING": "true"}
READ_ACTIONS = ("Get", "List", "Describe")
SEED_PATH = "/moto-api/seed"


def recording_env(journal: Path) -> dict[str, str]:
    """The moto server's environment for recording every request into `journal`."""
    return {**RECORDING_ENV, "MOTO_RECORDER_FILEPATH": str(journal)}


def changes_state(entry: dict) -> bool:
    """A request worth replaying: not a read, not a look at moto's own API (but its seed)."""
    path = urlsplit(entry["url"]).path
    if path.startswith("/moto-api/"):
        return path == SEED_PATH
    action = entry["headers"].get("X-Amz-Target", "").rpartition(".")[2]
    return not action.startswith(READ_ACTIONS)


def compact(journal: Path) -> int:
    """Rewrite `journal` (created empty and private when missing) with the requests that
    change state, in their order; return how many there are."""
    kept: list[str] = []
    if journal.exists():
        for line in journal.read_text().splitlines():
            try:
                keep = changes_state(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a line cut short when the server was killed
            if keep:
                kept.append(line)
    scratch = journal.with_suffix(".compacting")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("".join(f"{line}\n" for line in kept))
    os.replace(scratch, journal)
    return len(kept)
