"""The tool's own data, found inside the installed package: the SQL templates and checks.

Found through importlib.resources, never relative to a source checkout, and checked: a tool that
finds no templates or no checks stops with one line (exit 2), it never reports a clean run.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from provisioner.errors import ProvisionError


class PackageIncomplete(ProvisionError):
    """Files the package must carry are missing: a broken install, never a clean result."""


@cache
def sql_dir() -> Path:
    """provisioner/sql as a directory on disk (the package is installed unzipped)."""
    path = Path(str(resources.files("provisioner") / "sql"))
    if not path.is_dir():
        raise PackageIncomplete(f"the SQL templates are missing from the installed package (looked in {path})")
    return path


def sql_files(subdir: str, pattern: str) -> list[Path]:
    """Files of sql/<subdir>/ matching `pattern`, sorted; none found is an error."""
    found = sorted((sql_dir() / subdir).glob(pattern))
    if not found:
        raise PackageIncomplete(f"no {pattern} files in {sql_dir() / subdir}: the package is incomplete")
    return found
