"""Shared console output: rich for people, JSON for machines."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

# Logs and pipes get a wide console: rich would otherwise cut ids at 80 columns.
out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True) if sys.stderr.isatty() else Console(stderr=True, width=160)


def print_json(data: Any) -> None:
    if isinstance(data, list) and data:
        # A listing (ten thousand tenants): one compact object a line. json's C encoder runs
        # only without indent; the indenting one is pure Python, most of `tenants list --json`.
        items = ",\n".join("  " + json.dumps(item, default=str) for item in data)
        sys.stdout.write("[\n" + items + "\n]\n")
        return
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
