"""The compliance records and templates inside the installed package (importlib.resources)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_path(name: str) -> Path:
    """A file or directory shipped in the compliance package, as a path on disk."""
    return Path(str(resources.files("compliance") / name))


TRANSFERS_FILE = package_path("transfers.yaml")
SUBPROCESSORS_FILE = package_path("subprocessors.yaml")
TEMPLATES_DIR = package_path("templates")
