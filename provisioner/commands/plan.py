"""`provision plan`: the offline compliance plan of one stack (no engine, no credentials)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from provisioner.console import print_json
from provisioner.errors import InputError, ViolationsFound
from provisioner.local.layout import REPO_ROOT
from provisioner.plan import PlanCouldNotRun, format_report, plan_stack

STACKS_DIR = REPO_ROOT / "stacks"


def plan(
    stack: Annotated[str, typer.Option("--stack", help="Stack name: stacks/Pulumi.<stack>.yaml.")],
    stacks_dir: Annotated[Path, typer.Option("--stacks-dir", help="Directory of stack configs.")] = STACKS_DIR,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
) -> None:
    """Run the program under mocks, list what it declares, and check every compliance rule.

    Exit 0 clean, 1 on a mandatory violation (a refused transfer is one), 2 if it cannot run.
    """
    try:
        report = plan_stack(stack, stacks_dir)
    except PlanCouldNotRun as exc:
        raise InputError(str(exc)) from None
    if json_out:
        print_json(report.as_dict())
    else:
        typer.echo(format_report(report), nl=False)
    if report.mandatory:
        first = report.mandatory[0]
        more = f" (+{len(report.mandatory) - 1} more)" if len(report.mandatory) > 1 else ""
        raise ViolationsFound(f"{first.rule_id}: {first.message}{more}")
