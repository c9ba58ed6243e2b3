"""`provision dr rebuild`: restore a stack's cells from a recovery point and deploy them.
(`provision dr drill`, on the local stack, lives with the local stack's commands.)"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from provisioner import recovery
from provisioner.apply import ApplyOptions
from provisioner.automation import INSTALL_HINT, require_cli
from provisioner.console import err, out
from provisioner.deploy import Deploy
from provisioner.reporting import show_deploy
from provisioner.stackdirs import StacksDirOption, stacks_dir_or_fail
from provisioner.stackref import StackOption, project_dir
from provisioner.verify.runner import VerifyOptions

app = typer.Typer(help="Disaster recovery: rebuild cells from recovery points; drill it locally.", no_args_is_help=True)


@app.command()
def rebuild(
    stack: StackOption,
    from_: Annotated[
        Optional[str],
        typer.Option("--from", help="latest (the newest copy in the DR region) or a cluster snapshot ARN."),
    ] = None,
    pitr: Annotated[Optional[str], typer.Option(help="Point in time (UTC, 2026-05-01T10:00:00Z), same region.")] = None,
    cell: Annotated[Optional[list[str]], typer.Option(help="Only this cell (repeatable; in-place restores).")] = None,
    as_stack: Annotated[
        Optional[str],
        typer.Option("--as", help="Name of the stack rebuilt in the DR region (default: <env>-<dr region>)."),
    ] = None,
    no_deploy: Annotated[bool, typer.Option("--no-deploy", help="Write the restore config only.")] = False,
    probes: Annotated[int, typer.Option(min=0, help="Tenant pairs verify probes per cell.")] = 20,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Find the recovery point (boto3), write the restore into stack config so the program
    declares new restored cells, then deploy: preview, up, apply (every login role checked
    against its secret, set again where they disagree), verify.

    In place for --pitr or a snapshot of the stack's own region; for `latest` or a snapshot in
    the DR region, a new stack in the DR region on the network askasia:drNetwork records.
    """
    if not no_deploy:
        require_cli(stack, INSTALL_HINT)  # before anything is looked up or written
    plan = recovery.plan_rebuild(stacks_dir_or_fail(stacks_dir), stack, from_, pitr, cell, as_stack)
    recovery.write(plan)
    where = "in the DR region as a new stack" if plan.regional else "in place"
    out.print(f"wrote {plan.path}: {plan.stack} rebuilt {where}", highlight=False, soft_wrap=True)
    for name, point in plan.points.items():
        if isinstance(point, recovery.RecoveryPoint):
            taken = f"{point.created:%Y-%m-%dT%H:%M:%SZ}"
            out.print(f"  {name}: {point.source} {point.arn} ({taken}, key {point.kms_key})", highlight=False)
        else:
            out.print(f"  {name}: {point['sourceClusterIdentifier']} at {point['restoreToTime']}", highlight=False)
    if no_deploy:
        out.print(f"next: provision deploy --stack {plan.stack}", highlight=False)
        return
    runner = Deploy(
        plan.stack,
        project_dir(),
        apply_options=ApplyOptions(check_credentials=True),
        verify_options=VerifyOptions(probes=probes),
        create=plan.regional,
        report=lambda line: err.print(line, highlight=False, soft_wrap=True),
        on_output=lambda line: err.print(line.rstrip("\n"), highlight=False, markup=False, soft_wrap=True),
    )
    show_deploy(runner.run(), tap=False)
