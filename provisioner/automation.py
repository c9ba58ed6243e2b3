"""The Pulumi Automation API seam: the one module of the tool that imports the Pulumi SDK.

It needs the `pulumi` CLI and a logged-in backend; where either is missing it says so in one
line (exit 2) instead of pretending.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionError


def require_cli(stack: str, hint: str) -> None:
    if shutil.which("pulumi") is None:
        raise ProvisionError(f"stack {stack}: the pulumi CLI is not on PATH; {hint}")


def stack_outputs(stack: str, work_dir: Path) -> dict[str, Any]:
    """The stack's outputs as plain values, read through the Automation API."""
    require_cli(stack, f"pass --outputs FILE written by `pulumi stack output --json --stack {stack}`")
    try:
        from pulumi import automation
    except ImportError:
        raise ProvisionError("the Pulumi SDK is not installed: pip install 'askasia-provisioner[pulumi]'") from None
    selected = automation.select_stack(stack_name=stack, work_dir=str(work_dir))
    return {k: v.value for k, v in selected.outputs().items()}
