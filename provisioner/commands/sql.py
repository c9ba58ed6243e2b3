"""`provision sql render`: print the SQL that apply would run (without credentials)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from provisioner import directory
from provisioner.stackref import OutputsOption, StackOption, resolve
from provisioner.targets import platform_target, tenant_target

app = typer.Typer(help="The SQL templates in sql/.", no_args_is_help=True)


@app.command()
def render(
    stack: StackOption,
    tenant: Annotated[Optional[str], typer.Option(help="A tenant's slug or id (default: the platform).")] = None,
    outputs_file: OutputsOption = None,
) -> None:
    """Print the rendered steps of the platform, or of one tenant."""
    outputs = resolve(stack, outputs_file)
    if tenant is None:
        target = platform_target(outputs.clusters[0].database)
    else:
        record = directory.tenant_by_slug_or_id(outputs, tenant)
        target = tenant_target(record.id, record.partner_id, record.plan)
    for rendered in target.rendered:
        print(f"-- {target.key} {rendered.step.name} (checksum {rendered.checksum})")
        print(rendered.text)
