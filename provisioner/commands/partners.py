"""`provision partners`: add and list partners."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from contract.status import ExitStatus
from provisioner import directory
from provisioner.console import out, print_json
from provisioner.onboarding import Onboarding
from provisioner.progress import cell_progress
from provisioner.reporting import show_apply, show_cells_down
from provisioner.stackref import JsonOption, OutputsOption, StackOption, credential_store, resolve
from provisioner.validation import validate_partner

app = typer.Typer(help="Partners: white-label operators whose tenants live on the platform.", no_args_is_help=True)


@app.command()
def add(
    stack: StackOption,
    partner: Annotated[str, typer.Option(help="The partner's slug.")],
    jurisdiction: Annotated[str, typer.Option(help="Where the partner's tenants' data comes from: EU, UK, IN, US...")],
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a partner in every cell and create its console role (credentials in Secrets Manager)."""
    validate_partner(partner, jurisdiction)  # before the stack is even looked up
    outputs = resolve(stack, outputs_file)
    with cell_progress(not as_json) as progress:
        onboarding = Onboarding(outputs, credential_store(outputs), progress)
        down = onboarding.skip_cells_down()  # recorded in the cells that answer
        record, results = onboarding.add_partner(partner, jurisdiction)
    code = show_apply(results, as_json, dry_run=False)
    if not as_json:
        out.print(f"partner [bold]{partner}[/] ({record.id}, {jurisdiction}) on {len(results)} cell(s)")
    raise typer.Exit(ExitStatus.worst([code, show_cells_down(down, "recorded")]))


@app.command("list")
def list_(stack: StackOption, outputs_file: OutputsOption = None, as_json: JsonOption = False) -> None:
    """Every partner of the stack."""
    up, down = directory.reachable(resolve(stack, outputs_file))
    rows = directory.partners(up)
    if as_json:
        print_json([p.__dict__ for p in rows])
        raise typer.Exit(show_cells_down(down, "listed"))
    table = Table(title=f"partners of {stack}")
    for column in ("id", "slug", "jurisdiction", "status"):
        table.add_column(column)
    for p in rows:
        table.add_row(p.id, p.slug, p.jurisdiction, p.status)
    out.print(table)
    raise typer.Exit(show_cells_down(down, "listed"))
