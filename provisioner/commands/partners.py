"""`provision partners`: add, list, terminate, purge, export."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from contract.status import ExitStatus
from provisioner import directory
from provisioner.console import out, print_json
from provisioner.destructive import AsOfOption, DryRunOption, YesOption, confirm
from provisioner.lifecycle import export as export_lifecycle
from provisioner.lifecycle import partner_export
from provisioner.lifecycle import partners as partner_lifecycle
from provisioner.lifecycle.clock import acting_moment, parse_as_of
from provisioner.onboarding import Onboarding
from provisioner.progress import cell_progress
from provisioner.reporting import (
    EveryOption,
    ExportFormatOption,
    RotationLockWait,
    run_rotation,
    show_apply,
    show_cells_down,
    show_export,
)
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


@app.command()
def terminate(
    stack: StackOption,
    partner: Annotated[str, typer.Option(help="The partner's slug or id.")],
    close_tenants: Annotated[bool, typer.Option("--close-tenants", help="Close its active tenants too.")] = False,
    as_of: AsOfOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    outputs_file: OutputsOption = None,
) -> None:
    """Terminate a partner: its console role loses LOGIN; its account data is kept 30 days for export."""
    moment = acting_moment(as_of, dry_run)
    outputs = resolve(stack, outputs_file)
    plan = partner_lifecycle.terminate_plan(outputs, partner, close_tenants)
    confirm(plan.lines, dry_run, yes)
    partner_lifecycle.terminate(outputs, plan, moment)
    out.print(f"partner {plan.partner.slug} ({plan.partner.id}) terminated; {len(plan.close)} tenant(s) closed")


@app.command()
def purge(
    stack: StackOption,
    partner: Annotated[str, typer.Option(help="The partner's slug or id.")],
    as_of: AsOfOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    outputs_file: OutputsOption = None,
) -> None:
    """Delete a partner terminated more than 30 days ago, with its tenants past their grace period."""
    moment = acting_moment(as_of, dry_run)
    outputs = resolve(stack, outputs_file)
    plan = partner_lifecycle.purge_plan(outputs, partner, moment)
    confirm(plan.lines, dry_run, yes)
    purged = partner_lifecycle.purge(outputs, plan)
    out.print(f"partner {plan.partner.slug} ({plan.partner.id}) purged with {len(purged)} tenant(s)")


@app.command()
def export(
    stack: StackOption,
    partner: Annotated[str, typer.Option(help="The partner's slug or id.")],
    to: Annotated[str, typer.Option("--to", help="A directory, or s3://bucket/prefix (SSE-KMS, the data key).")],
    format_: ExportFormatOption = "csv",
    as_of: AsOfOption = None,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export a partner's account data in the shared tables of every cell as CSV or JSON Lines with a checksummed
    manifest (active, or terminated inside its 30-day window)."""
    moment = parse_as_of(as_of)
    destination = export_lifecycle.Destination.parse(to)
    fmt = export_lifecycle.parse_format(format_)
    outputs = resolve(stack, outputs_file)
    found = partner_export.find_exportable(outputs, partner, moment)
    done = partner_export.export_partner(outputs, found, destination, fmt)
    show_export(done, f"export of partner {found.slug} ({found.id})", as_json)


@app.command("rotate-credentials")
def rotate_credentials(
    stack: StackOption,
    partner: Annotated[Optional[str], typer.Option(help="The partner (id or slug) to rotate.")] = None,
    all_: EveryOption = False,
    lock_wait: RotationLockWait = 0.0,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """New console credentials on the login the partner does not hold, set and tested in every
    cell, then made current; repairs a missing, malformed or refused secret."""
    raise typer.Exit(run_rotation("partner", stack, partner, all_, lock_wait, outputs_file, as_json))
