"""`provision plan`: the offline compliance plan of one stack (no engine, no credentials)."""

from __future__ import annotations

from typing import Annotated

import typer

from provisioner.console import print_json
from provisioner.errors import InputError, ProvisionError, ViolationsFound
from provisioner.stackdirs import StacksDirOption, stacks_dir_or_fail


def plan(
    stack: Annotated[str, typer.Option("--stack", help="Stack name: stacks/Pulumi.<stack>.yaml.")],
    stacks_dir: StacksDirOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable report.")] = False,
) -> None:
    """Run the program under mocks, list what it declares, and check every compliance rule.

    Exit 0 clean, 1 on a mandatory violation (a refused transfer is one), 2 if it cannot run.
    """
    directory = stacks_dir_or_fail(stacks_dir)
    try:
        # The one door from the database tool to the Pulumi program: imported only when it runs.
        from offline.plan import PlanCouldNotRun, format_report, plan_stack
    except ImportError as exc:
        raise ProvisionError(
            f"provision plan needs the Pulumi SDK ({exc.name}): pip install 'askasia-provisioner[pulumi]'"
        ) from None
    try:
        report = plan_stack(stack, directory)
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
