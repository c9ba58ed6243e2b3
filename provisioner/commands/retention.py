"""`provision retention run`: audit events past their plan's period, on every cell."""

from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from contract.status import ExitStatus
from provisioner.console import err, out, print_json
from provisioner.destructive import AsOfOption, YesOption
from provisioner.errors import InputError
from provisioner.lifecycle.clock import acting_moment
from provisioner.lifecycle.retention import CellRetention, run_retention
from provisioner.stackref import JsonOption, OutputsOption, StackOption, resolve
from provisioner.targets import RETENTION_BATCH

app = typer.Typer(help="Audit retention by plan (90 days starter/growth, 13 months enterprise).", no_args_is_help=True)

DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Report what would go; change nothing.")]


def _as_dict(r: CellRetention) -> dict:
    return {
        "cell": r.cell,
        "status": r.status,
        "dry_run": r.dry_run,
        "as_of": r.as_of,
        "partitions_dropped": r.partitions_dropped,
        "rows_in_dropped_partitions": r.rows_in_dropped_partitions,
        "rows_deleted": r.rows_deleted,
        "batches": r.batches,
        "per_tenant": dict(sorted(r.per_tenant.items())),
        "errors": r.errors,
        "seconds": round(r.seconds, 3),
    }


def _show(results: list[CellRetention], title: str) -> None:
    table = Table(title=title)
    for column in ("cell", "status", "partitions dropped", "rows in them", "rows deleted (batches)", "tenants"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r.cell,
            r.status,
            ", ".join(r.partitions_dropped) or "-",
            str(r.rows_in_dropped_partitions),
            f"{r.rows_deleted} ({r.batches})",
            str(len(r.per_tenant)),
        )
    out.print(table)
    for r in results:
        for line in r.errors:
            err.print(f"[red]{line}[/]", highlight=False)


@app.command()
def run(
    stack: StackOption,
    as_of: AsOfOption = None,
    dry_run: DryRunOption = False,
    yes: YesOption = False,
    batch: Annotated[int, typer.Option(help="Rows per bounded batch (one transaction each).")] = RETENTION_BATCH,
    cell: Annotated[Optional[list[str]], typer.Option(help="Only these cells (repeatable).")] = None,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove audit events older than each tenant's plan allows: whole expired months detached and
    dropped, mixed months cleaned in bounded batches. The schedule runs the same functions."""
    moment = acting_moment(as_of, dry_run)
    if not 1 <= batch <= 100_000:
        raise InputError(f"--batch must be between 1 and 100000, not {batch}")
    outputs = resolve(stack, outputs_file)
    plan = run_retention(outputs, moment, dry_run=True, batch=batch, cells=cell)
    if dry_run or not yes:
        if as_json:
            print_json({"dry_run": True, "cells": [_as_dict(r) for r in plan]})
        else:
            _show(plan, f"audit retention of {stack} would remove")
        if not dry_run:
            err.print("[bold red]error:[/] this deletes audit events: add --yes to do it (or --dry-run)")
            raise typer.Exit(ExitStatus.COULD_NOT_RUN)
        raise typer.Exit(_status(plan))
    if not as_json:
        _show(plan, f"audit retention of {stack}: removing")
    done = run_retention(outputs, moment, dry_run=False, batch=batch, cells=cell)
    if as_json:
        print_json({"dry_run": False, "cells": [_as_dict(r) for r in done]})
    else:
        _show(done, f"audit retention of {stack}: removed")
    raise typer.Exit(_status(done))


def _status(results: list[CellRetention]) -> ExitStatus:
    if any(r.status == "unreachable" for r in results):
        return ExitStatus.COULD_NOT_RUN
    return ExitStatus.VIOLATIONS if any(r.status != "ok" for r in results) else ExitStatus.OK
