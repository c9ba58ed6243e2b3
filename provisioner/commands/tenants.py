"""`provision tenants`: add, import, list, apply."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from provisioner import directory
from provisioner.apply import ApplyOptions, apply_stack
from provisioner.commands.verify import verify
from provisioner.console import out, print_json
from provisioner.errors import InputError
from provisioner.progress import cell_progress
from provisioner.reporting import show_apply
from provisioner.stackref import JsonOption, OutputsOption, StackOption, credential_store, resolve

app = typer.Typer(
    help="Tenants: onboard, list, reconcile their schemas, roles and grants, and verify isolation.",
    no_args_is_help=True,
)
app.command("verify")(verify)


def _apply(
    outputs, options: ApplyOptions, as_json: bool, jobs: int | None = None, cells: list[str] | None = None
) -> int:
    with cell_progress(not as_json) as progress:
        results = apply_stack(outputs, options, credential_store(outputs), jobs=jobs, progress=progress, cells=cells)
    return show_apply(results, as_json, options.dry_run)


def _ensure_platform(outputs) -> None:
    """The control plane must exist before rows go into it."""
    from provisioner.reporting import exit_code

    results = apply_stack(outputs, ApplyOptions(tenant_ids=frozenset(), partner_ids=frozenset()), None)
    if exit_code(results):
        problems = "; ".join(line for r in results for line in r.errors + r.drift)
        raise InputError(f"the control plane is not in shape: {problems}")


@app.command()
def add(
    stack: StackOption,
    partner: Annotated[str, typer.Option(help="The partner's slug.")],
    tenant: Annotated[str, typer.Option(help="The tenant's slug (its handle; catalog names use an opaque id).")],
    plan: Annotated[str, typer.Option(help="starter | growth | enterprise")],
    region: Annotated[Optional[str], typer.Option(help="Home region (default: the stack's).")] = None,
    cell: Annotated[Optional[str], typer.Option(help="Cell to place it in (default: the least loaded).")] = None,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record one tenant in the control plane and apply its schema, roles and grants."""
    outputs = resolve(stack, outputs_file)
    new = directory.validate_new_tenants(
        outputs, [{"partner": partner, "tenant": tenant, "plan": plan, "region": region}]
    )
    _ensure_platform(outputs)
    placed = directory.place_tenants(outputs, new, cell=cell)[0]
    code = _apply(
        outputs, ApplyOptions(tenant_ids=frozenset([placed.id]), partner_ids=frozenset()), as_json, cells=[placed.cell]
    )
    if not as_json:
        state = "added" if placed.new else "already present"
        out.print(f"tenant [bold]{tenant}[/] ({placed.id}) {state} in {placed.cell} of {stack}")
    raise typer.Exit(code)


def _read_rows(path: Path) -> list[dict]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if path.suffix in (".jsonl", ".ndjson"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    raise InputError(f"{path}:{number}: not a JSON object") from None
        return rows
    if path.suffix == ".csv":
        return list(csv.DictReader(text.splitlines()))
    raise InputError(f"{path}: use .csv or .jsonl (columns partner, tenant, plan, region)")


@app.command("import")
def import_(
    stack: StackOption,
    file: Annotated[Path, typer.Argument(help="CSV or JSON Lines with partner, tenant, plan, region.")],
    no_apply: Annotated[bool, typer.Option("--no-apply", help="Record the tenants only.")] = False,
    jobs: Annotated[Optional[int], typer.Option(help="Cells applied at once (default: all).")] = None,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bulk onboarding: every row is validated before any is written; re-running converges."""
    outputs = resolve(stack, outputs_file)
    rows = _read_rows(file)
    if not rows:
        raise InputError(f"{file} has no rows")
    new = directory.validate_new_tenants(outputs, rows)
    _ensure_platform(outputs)
    placed = directory.place_tenants(outputs, new)
    per_cell = {c: sum(1 for p in placed if p.new and p.cell == c) for c in outputs.cells}
    added = sum(per_cell.values())
    if not as_json:
        out.print(
            f"recorded {added} new tenant(s) ({len(new) - added} already present) across "
            + ", ".join(f"{c}: {n}" for c, n in per_cell.items())
        )
    if no_apply:
        if as_json:
            print_json({"recorded": added, "cells": per_cell})
        return
    raise typer.Exit(_apply(outputs, ApplyOptions(), as_json, jobs=jobs))


@app.command("list")
def list_(stack: StackOption, outputs_file: OutputsOption = None, as_json: JsonOption = False) -> None:
    """Every tenant of the stack, from all cells."""
    rows = directory.tenants(resolve(stack, outputs_file))
    if as_json:
        print_json([t.as_json() for t in rows])
        return
    table = Table(title=f"tenants of {stack}")
    for column in ("id", "slug", "partner", "plan", "region", "cell", "status"):
        table.add_column(column)
    for t in rows:
        table.add_row(t.id, t.slug, t.partner, t.plan, t.region, t.cell, t.status)
    out.print(table)


@app.command("apply")
def apply_(
    stack: StackOption,
    jobs: Annotated[Optional[int], typer.Option(help="Cells applied at once (default: all).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would run; change nothing.")] = False,
    lock_wait: Annotated[float, typer.Option(help="Seconds to wait for another apply's lock.")] = 0.0,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reconcile the platform, all partners and all tenants on all cells (cells in parallel)."""
    outputs = resolve(stack, outputs_file)
    raise typer.Exit(_apply(outputs, ApplyOptions(dry_run=dry_run, lock_wait=lock_wait), as_json, jobs=jobs))
