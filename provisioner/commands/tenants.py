"""`provision tenants`: add, import, list, apply, verify, close, reopen, purge, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from contract.status import ExitStatus
from contract.tiers import PLAN_TIERS
from provisioner.console import err, out, print_json
from provisioner.destructive import AsOfOption, DryRunOption, YesOption, confirm
from provisioner.errors import InputError
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

# Each command imports the services it runs (a run loads one command: `tenants list` needs
# neither apply nor the lifecycle).

app = typer.Typer(
    help="Tenants: onboard, list, reconcile their schemas, roles and grants, and verify isolation.",
    no_args_is_help=True,
)

JobsOption = Annotated[Optional[int], typer.Option(help="Cells applied at once (default: all).")]


@app.command()
def add(
    stack: StackOption,
    partner: Annotated[str, typer.Option(help="The partner's slug.")],
    tenant: Annotated[str, typer.Option(help="The tenant's slug (its handle; catalog names use an opaque id).")],
    plan: Annotated[str, typer.Option(help=" | ".join(PLAN_TIERS))],
    region: Annotated[Optional[str], typer.Option(help="Home region (default: the stack's).")] = None,
    cell: Annotated[Optional[str], typer.Option(help="Cell to place it in (default: the least loaded).")] = None,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record one tenant in the control plane and apply its schema, roles and grants."""
    from provisioner.onboarding import Onboarding
    from provisioner.progress import cell_progress

    outputs = resolve(stack, outputs_file)
    row = {"partner": partner, "tenant": tenant, "plan": plan, "region": region}
    with cell_progress(not as_json) as progress:
        onboarding = Onboarding(outputs, credential_store(outputs), progress)
        down = onboarding.skip_cells_down()  # placed among the cells that answer
        done = onboarding.add_tenant(row, cell=cell)
    code = show_apply(done.results, as_json, dry_run=False)
    if not as_json:
        placed = done.placements[0]
        state = "added" if placed.new else "already present"
        out.print(f"tenant [bold]{tenant}[/] ({placed.id}) {state} in {placed.cell} of {stack}")
    raise typer.Exit(ExitStatus.worst([code, show_cells_down(down, "placed and applied")]))


@app.command("import")
def import_(
    stack: StackOption,
    file: Annotated[Path, typer.Argument(help="CSV or JSON Lines with partner, tenant, plan, region.")],
    no_apply: Annotated[bool, typer.Option("--no-apply", help="Record the tenants only.")] = False,
    jobs: JobsOption = None,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bulk onboarding: every row is validated before any is written; re-running converges."""
    from provisioner.onboarding import Onboarding, read_tenant_rows
    from provisioner.progress import cell_progress

    outputs = resolve(stack, outputs_file)
    rows = read_tenant_rows(file)
    with cell_progress(not as_json) as progress:
        done = Onboarding(outputs, credential_store(outputs), progress).import_tenants(
            rows, apply=not no_apply, jobs=jobs
        )
    per_cell = done.added_per_cell(outputs.cells)
    if not as_json:
        out.print(
            f"recorded {done.added} new tenant(s) ({len(rows) - done.added} already present) across "
            + ", ".join(f"{c}: {n}" for c, n in per_cell.items())
        )
    if no_apply:
        if as_json:
            print_json({"recorded": done.added, "cells": per_cell})
        return
    raise typer.Exit(show_apply(done.results, as_json, dry_run=False))


@app.command("list")
def list_(stack: StackOption, outputs_file: OutputsOption = None, as_json: JsonOption = False) -> None:
    """Every tenant of the stack, from all cells."""
    from provisioner import directory

    rows, down = directory.reachable_tenants(resolve(stack, outputs_file))
    if as_json:
        print_json([t.as_json() for t in rows])
        raise typer.Exit(show_cells_down(down, "listed"))
    table = Table(title=f"tenants of {stack}")
    for column in ("id", "slug", "partner", "plan", "region", "cell", "status"):
        table.add_column(column)
    for t in rows:
        table.add_row(t.id, t.slug, t.partner, t.plan, t.region, t.cell, t.status)
    out.print(table)
    raise typer.Exit(show_cells_down(down, "listed"))


@app.command("apply")
def apply_(
    stack: StackOption,
    jobs: JobsOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would run; change nothing.")] = False,
    expect_no_changes: Annotated[
        bool,
        typer.Option("--expect-no-changes", help="With --dry-run: exit 1 if anything would run (drift checks)."),
    ] = False,
    lock_wait: Annotated[float, typer.Option(help="Seconds to wait for another apply's lock.")] = 0.0,
    check_logins: Annotated[
        bool,
        typer.Option(
            "--check-logins", help="Also log in as every partner and tenant: finds passwords changed in the database."
        ),
    ] = False,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reconcile the platform, all partners and all tenants on all cells (cells in parallel); warn of
    credentials that do not work (missing or replaced secrets; with --check-logins, refused ones)."""
    from provisioner.apply import ApplyOptions
    from provisioner.onboarding import Onboarding
    from provisioner.progress import cell_progress

    if expect_no_changes and not dry_run:
        raise InputError("--expect-no-changes goes with --dry-run")
    outputs = resolve(stack, outputs_file)
    options = ApplyOptions(dry_run=dry_run, lock_wait=lock_wait, report_credentials=True, check_logins=check_logins)
    with cell_progress(not as_json) as progress:
        results = Onboarding(outputs, credential_store(outputs), progress).apply(options, jobs=jobs)
    code = show_apply(results, as_json, dry_run)
    pending = sum(len(r.planned) for r in results)
    if expect_no_changes and pending and code is ExitStatus.OK:
        err.print(f"[red]drift[/]: {pending} step(s) would run on {stack}; expected none", highlight=False)
        code = ExitStatus.VIOLATIONS
    raise typer.Exit(code)


@app.command()
def close(
    stack: StackOption,
    tenant: Annotated[str, typer.Option(help="The tenant's slug or id.")],
    as_of: AsOfOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    outputs_file: OutputsOption = None,
) -> None:
    """Close a tenant: status closed, its app role loses LOGIN and its sessions end; data kept 30 days."""
    from provisioner.lifecycle import closure
    from provisioner.lifecycle.clock import acting_moment

    moment = acting_moment(as_of, dry_run)
    outputs = resolve(stack, outputs_file)
    planned = closure.close_plan(outputs, tenant)
    confirm([planned.detail], dry_run, yes)
    ended = closure.close(outputs, planned, moment)
    out.print(f"tenant {planned.tenant.slug} ({planned.tenant.id}) closed; {ended} session(s) ended")


@app.command()
def reopen(
    stack: StackOption,
    tenant: Annotated[str, typer.Option(help="The tenant's slug or id.")],
    outputs_file: OutputsOption = None,
) -> None:
    """Reopen a closed tenant inside its 30-day grace period (by the database's clock): active again, its app
    role logs in."""
    from provisioner.lifecycle import closure

    outputs = resolve(stack, outputs_file)
    done = closure.reopen(outputs, tenant)
    out.print(f"tenant {done.slug} ({done.id}) reopened")


@app.command()
def purge(
    stack: StackOption,
    tenant: Annotated[Optional[str], typer.Option(help="Only this tenant (default: every one past its grace).")] = None,
    as_of: AsOfOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    outputs_file: OutputsOption = None,
) -> None:
    """Delete the schema, roles, secret and shared rows of tenants closed more than 30 days ago."""
    from provisioner.lifecycle import closure
    from provisioner.lifecycle.clock import acting_moment

    moment = acting_moment(as_of, dry_run)
    outputs = resolve(stack, outputs_file)
    plan = closure.purge_plan(outputs, tenant, moment)
    if plan.refused:
        raise InputError("; ".join(plan.refused))
    if not plan.planned:
        out.print("no closed tenant is past its grace period: nothing to purge")
        raise typer.Exit(ExitStatus.OK)
    confirm([p.detail for p in plan.planned], dry_run, yes)
    purged = closure.purge(outputs, plan)
    out.print(f"purged {len(purged)} tenant(s): {', '.join(purged)}")


@app.command()
def export(
    stack: StackOption,
    tenant: Annotated[str, typer.Option(help="The tenant's slug or id.")],
    to: Annotated[str, typer.Option("--to", help="A directory, or s3://bucket/prefix (SSE-KMS, the data key).")],
    format_: ExportFormatOption = "csv",
    as_of: AsOfOption = None,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export a tenant's tables and its shared rows as CSV or JSON Lines with a checksummed manifest (active, or
    closed inside its 30-day grace period)."""
    from provisioner.lifecycle import export as export_lifecycle
    from provisioner.lifecycle.clock import parse_as_of

    moment = parse_as_of(as_of)
    destination = export_lifecycle.Destination.parse(to)
    fmt = export_lifecycle.parse_format(format_)
    outputs = resolve(stack, outputs_file)
    found = export_lifecycle.find_exportable(outputs, tenant, moment)
    done = export_lifecycle.export_tenant(outputs, found, destination, fmt)
    show_export(done, f"export of tenant {found.slug} ({found.id})", as_json)


@app.command("rotate-credentials")
def rotate_credentials(
    stack: StackOption,
    tenant: Annotated[Optional[str], typer.Option(help="The tenant (id or slug) to rotate.")] = None,
    all_: EveryOption = False,
    lock_wait: RotationLockWait = 0.0,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """New app credentials on the login the application does not hold (alternating users), tested,
    then made current; repairs a tenant whose secret is missing, malformed or refused."""
    raise typer.Exit(run_rotation("tenant", stack, tenant, all_, lock_wait, outputs_file, as_json))
