"""The behaviour probes, one check per module, as the catalog checks are one per file in
sql/verify/: the module `<name>.py` declares `CHECK = ProbeCheck("probe_<name>", ...)` and its
docstring says what the check proves. The probe checks are this package's modules, found when
the verifier starts: a package with none is a broken install and stops it (exit 2), never a
clean run."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Sequence
from functools import cache

from provisioner.resources import PackageIncomplete
from provisioner.verify.probing import ProbeCheck


def discover(package: str, path: Sequence[str]) -> tuple[ProbeCheck, ...]:
    """The CHECK of every module of `package` (whose directories are `path`), by module name."""
    checks = []
    for module in pkgutil.iter_modules(path):
        declared = getattr(importlib.import_module(f"{package}.{module.name}"), "CHECK", None)
        expected = f"probe_{module.name}"
        if not isinstance(declared, ProbeCheck) or declared.name != expected:
            raise PackageIncomplete(f"{package}.{module.name} does not declare CHECK = ProbeCheck({expected!r}, ...)")
        checks.append(declared)
    if not checks:
        raise PackageIncomplete(f"no probe checks in {', '.join(path)}: the package is incomplete")
    return tuple(checks)


@cache
def probe_checks() -> tuple[ProbeCheck, ...]:
    return discover(__name__, __path__)
