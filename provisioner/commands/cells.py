"""`provision cells guard`: terminate tenants' and partners' backends that take a cell down."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from provisioner.console import err, out
from provisioner.errors import InputError
from provisioner.guard import Action, GuardLimits, guard_credentials, open_guard, run_guard
from provisioner.stackref import OutputsOption, StackOption, credential_store, resolve

app = typer.Typer(help="Cells: keep each cell serving every tenant.", no_args_is_help=True)


@app.command()
def guard(
    stack: StackOption,
    cell: Annotated[str, typer.Option(help="The cell to guard.")] = "cell-1",
    every: Annotated[Optional[float], typer.Option(help="Run a pass every SECONDS (default: once).")] = None,
    passes: Annotated[Optional[int], typer.Option(help="With --every: stop after this many passes.")] = None,
    max_locks: Annotated[int, typer.Option(help="Locks one tenant backend may hold.")] = GuardLimits.max_locks,
    idle_seconds: Annotated[
        int, typer.Option(help="Seconds a tenant backend may sit idle in a transaction.")
    ] = GuardLimits.idle_seconds,
    outputs_file: OutputsOption = None,
) -> None:
    """As the guard role (pg_signal_backend + pg_read_all_stats), terminate tenant and partner
    backends holding too many locks, idle in a transaction too long, or past their connection
    share; each action goes to the audit trail. The session stays open between passes."""
    if every is not None and every <= 0:
        raise InputError("--every must be a positive number of seconds")
    if passes is not None and passes < 1:
        raise InputError("--passes must be at least 1")
    if max_locks < 1 or idle_seconds < 1:
        raise InputError("--max-locks and --idle-seconds must be at least 1")
    outputs = resolve(stack, outputs_file)
    cluster = outputs.cluster(cell)
    creds = guard_credentials(outputs, cluster, credential_store(outputs))
    conn, db = open_guard(cluster, creds)

    def report(actions: list[Action]) -> None:
        for a in actions:
            verb = "terminated" if a.terminated else "could not terminate"
            out.print(f"{cell}: {verb} pid {a.pid} ({a.role}): {a.reason}", highlight=False)

    with conn:
        taken = run_guard(
            conn,
            db,
            GuardLimits(max_locks, idle_seconds),
            every,
            passes,
            report,
            lambda reason: err.print(f"{cell}: a pass failed: {reason}", highlight=False),
        )
    err.print(f"{cell}: {taken} backend(s) terminated", highlight=False)
