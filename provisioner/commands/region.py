"""`provision region add`: a stack for another region, derived from an existing one."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from provisioner import regions
from provisioner.console import err, out
from provisioner.stackdirs import StacksDirOption, stacks_dir_or_fail

app = typer.Typer(help="Region expansion: new stacks for regions the transfer gate accepts.", no_args_is_help=True)


@app.command()
def add(
    region: Annotated[str, typer.Option(help="The new stack's AWS region, e.g. eu-west-2.")],
    from_stack: Annotated[str, typer.Option("--from-stack", help="The stack whose config it starts from.")],
    dr_region: Annotated[
        Optional[str],
        typer.Option(help="Where its backups are copied (default: the source's DR region, else the source's region)."),
    ] = None,
    stack: Annotated[
        Optional[str], typer.Option(help="The new stack's name (default: <environment>-<region>).")
    ] = None,
    vpc_id: Annotated[Optional[str], typer.Option(help="The region's VPC (default: copied, to be replaced).")] = None,
    subnet_id: Annotated[Optional[list[str]], typer.Option(help="A private subnet (repeat for each AZ).")] = None,
    source_security_group_id: Annotated[
        Optional[list[str]], typer.Option(help="A security group allowed to connect (repeatable).")
    ] = None,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Write stacks/Pulumi.<stack>.yaml for REGION from FROM_STACK.

    Refused, with the reason and nothing written, when the transfer gate has no basis for an
    origin the stack serves in the region or its DR region, or when the config would be invalid.
    Then `provision plan --stack NEW` and `provision register --stack NEW` show it before any deploy.
    """
    directory = stacks_dir_or_fail(stacks_dir)
    network = regions.network_from_options(vpc_id, subnet_id or [], source_security_group_id or [])
    new = regions.derive(directory, region, from_stack, dr_region=dr_region, name=stack, network=network)
    regions.write(new)
    config = new.config
    out.print(
        f"wrote {new.path} ({config.region}, DR {config.dr_region}, origins {', '.join(config.origins)}, "
        f"{len(config.cells)} cell(s), from {from_stack})",
        highlight=False,
        soft_wrap=True,
    )
    out.print("transfers it draws:", highlight=False)
    for arrow in new.arrows:
        out.print(f"  {arrow}", highlight=False, soft_wrap=True)
    if new.network_copied:
        err.print(
            f"[yellow]note[/]: askasia:vpcId, privateSubnetIds and allowedSourceSecurityGroupIds are {from_stack}'s: "
            f"set {config.region}'s before pulumi up",
            highlight=False,
            soft_wrap=True,
        )
    if new.watched_elsewhere:
        err.print(
            f"[yellow]note[/]: {config.dr_region} already has GuardDuty from {new.watched_elsewhere}: "
            "askasia:drBreachDetection is false here",
            highlight=False,
            soft_wrap=True,
        )
    if new.detector_elsewhere:
        err.print(
            f"[yellow]note[/]: {config.region}'s GuardDuty detector is {new.detector_elsewhere}'s: "
            "askasia:guardDutyDetector is false here (its findings still reach this stack's topic)",
            highlight=False,
            soft_wrap=True,
        )
    out.print(f"next: provision plan --stack {new.name}; provision register --stack {new.name}", highlight=False)
