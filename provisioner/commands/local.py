"""`provision local`: the local embedded stack (PostgreSQL cells over TLS + moto), loopback only."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from contract.status import ExitStatus
from provisioner.console import err, out, print_json
from provisioner.errors import InputError
from provisioner.local.drill import TARGETS
from provisioner.local.drill import drill as run_drill
from provisioner.local.layout import Layout, default_root
from provisioner.local.stack import LocalStack
from provisioner.stackref import LOCAL_STACK, StackOption, resolve

app = typer.Typer(help="The local embedded stack: PostgreSQL cells over TLS and a moto server.", no_args_is_help=True)

RootOption = Annotated[Optional[Path], typer.Option("--root", help="State directory (default .local/).")]


def _stack(root: Optional[Path]) -> LocalStack:
    return LocalStack(Layout((root or default_root()).resolve()))


@app.command()
def up(
    cells: Annotated[
        Optional[int],
        typer.Option(help="PostgreSQL servers to run, one per cell (default: the cells the stack has, or 1)."),
    ] = None,
    pg_port: Annotated[Optional[int], typer.Option(help="First cell's port (default: a free one).")] = None,
    moto_port: Annotated[Optional[int], typer.Option(help="moto server port (default: a free one).")] = None,
    root: RootOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the stack outputs as JSON.")] = False,
) -> None:
    """Start (or reuse) the local stack and write .local/outputs.json."""
    stack = _stack(root)
    outputs = stack.up(
        cells=cells,
        pg_port=pg_port,
        moto_port=moto_port,
        report=(lambda m: None) if json_out else (lambda m: err.print(m)),
    )
    if json_out:
        print_json(outputs)
    else:
        count = len(outputs["clusters"])
        out.print(f"[green]local stack up[/]: {count} cell(s); outputs in {stack.layout.outputs_file}")


@app.command()
def down(
    wipe: Annotated[bool, typer.Option(help="Also delete all local data, keys and certificates.")] = False,
    root: RootOption = None,
) -> None:
    """Stop exactly what `local up` started."""
    _stack(root).down(wipe=wipe, report=lambda m: out.print(m))


@app.command()
def status(
    root: RootOption = None, json_out: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False
) -> None:
    """Say what runs where."""
    info = _stack(root).status()
    if json_out:
        print_json(info)
        return
    table = Table(title=f"local stack in {info['root']}")
    for column in ("service", "address", "running", "data"):
        table.add_column(column)
    if info["moto"]:
        table.add_row("moto", info["moto"]["endpoint"], str(info["moto"]["running"]), info["moto"]["journal"])
    for cell in info["cells"]:
        table.add_row(f"postgres {cell['cell']}", f"{cell['host']}:{cell['port']}", str(cell["running"]), cell["data"])
    out.print(table)


@app.command()
def env(root: RootOption = None) -> None:
    """Print shell exports for boto3, the aws CLI and psql: eval "$(provision local env)"."""
    for key, value in _stack(root).env().items():
        print(f"export {key}={shlex.quote(value)}")


def drill(
    stack: StackOption,
    cell: Annotated[Optional[list[str]], typer.Option(help="Only this cell (repeatable; default: every cell).")] = None,
    probes: Annotated[int, typer.Option(min=0, help="Tenant pairs verify probes on the copy.")] = 5,
    to: Annotated[
        str, typer.Option("--to", help="failure (PITR to the failure instant) or backup-end (no WAL after it).")
    ] = "failure",
    root: RootOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Machine-readable result.")] = False,
) -> None:
    """Back up a running local cell (pg_basebackup with WAL), restore it into a fresh PostgreSQL
    to the failure instant, apply and verify the copy, and compare every tenant's rows with the
    source. Prints RTO and RPO; exit 1 if anything was lost or differs."""
    if stack != LOCAL_STACK:
        raise InputError(
            f"the drill runs on the local stack (--stack {LOCAL_STACK}); on AWS, rebuild with `dr rebuild`"
        )
    if to not in TARGETS:
        raise InputError(f"--to {to!r}: use one of {', '.join(TARGETS)}")
    local = _stack(root)
    outputs = resolve(LOCAL_STACK)
    for name in cell or []:
        outputs.cluster(name)  # an unknown cell is refused before anything starts
    with err.status(f"drilling {len(cell or outputs.cells)} cell(s) of the local stack"):
        results = run_drill(local, outputs, cell, probes=probes, target=to)
    if json_out:
        print_json([r.as_json() for r in results])
    for r in results:
        if not json_out:
            steps = ", ".join(f"{step} {seconds:.2f} s" for step, seconds in r.seconds.items())
            out.print(f"{r.cell}: {steps}", highlight=False)
            verdict = "[green]nothing lost[/]" if not r.lost else f"[red]{len(r.differences)} difference(s)[/]"
            out.print(
                f"{r.cell}: RTO {r.rto:.2f} s, RPO {r.rpo:.2f} s "
                f"(restored to the {r.target} point, WAL {r.recovery_lsn}); "
                f"{r.tenants} tenant(s), {r.tables} table(s), {r.rows} row(s) compared: {verdict}",
                highlight=False,
            )
        for line in r.differences[:20] + r.problems[:20]:
            err.print(f"[red]{r.cell}[/]: {line}", highlight=False, soft_wrap=True)
    raise typer.Exit(ExitStatus.worst([r.exit_code for r in results]))
