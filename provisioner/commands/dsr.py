"""`provision dsr`: data-subject requests against the platform's own data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from contract.status import ExitStatus
from provisioner.console import out, print_json
from provisioner.destructive import AsOfOption, YesOption
from provisioner.errors import InputError
from provisioner.lifecycle import dsr
from provisioner.lifecycle.clock import parse_as_of
from provisioner.stackref import JsonOption, OutputsOption, StackOption, resolve

app = typer.Typer(
    help="Data-subject requests: open, list, export, erase (answer within 30 days).", no_args_is_help=True
)

EmailOption = Annotated[str, typer.Option(help="The person's e-mail address.")]


@app.command("open")
def open_(
    stack: StackOption,
    email: EmailOption,
    kind: Annotated[str, typer.Option(help=" | ".join(dsr.KINDS))] = "access",
    partner: Annotated[Optional[str], typer.Option(help="The partner the person belongs to.")] = None,
    as_of: AsOfOption = None,
    outputs_file: OutputsOption = None,
) -> None:
    """Record a request with its due date (30 days)."""
    moment = parse_as_of(as_of)
    dsr.check_email(email)
    request = dsr.open_request(resolve(stack, outputs_file), email, kind, partner, moment)
    out.print(f"request {request.id} ({request.kind}) opened, due {request.due_at:%Y-%m-%d %H:%M} UTC")


@app.command("list")
def list_(
    stack: StackOption,
    email: Annotated[Optional[str], typer.Option(help="Only this address.")] = None,
    as_of: AsOfOption = None,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Every request, overdue ones marked; exit 1 when one is overdue."""
    rows = dsr.list_requests(resolve(stack, outputs_file), parse_as_of(as_of), email)
    if as_json:
        print_json(
            [
                {
                    **r.__dict__,
                    "opened_at": str(r.opened_at),
                    "due_at": str(r.due_at),
                    "closed_at": str(r.closed_at) if r.closed_at else None,
                }
                for r in rows
            ]
        )
    else:
        table = Table(title=f"data-subject requests of {stack}")
        for column in ("id", "email", "kind", "opened", "due", "state"):
            table.add_column(column)
        for r in rows:
            state = "closed" if r.closed_at else ("OVERDUE" if r.overdue else "open")
            table.add_row(r.id, r.email, r.kind, f"{r.opened_at:%Y-%m-%d}", f"{r.due_at:%Y-%m-%d}", state)
        out.print(table)
    raise typer.Exit(ExitStatus.VIOLATIONS if any(r.overdue for r in rows) else ExitStatus.OK)


@app.command("export")
def export_(
    stack: StackOption,
    email: EmailOption,
    to: Annotated[Optional[Path], typer.Option("--to", help="Write the JSON here (default: stdout).")] = None,
    outputs_file: OutputsOption = None,
) -> None:
    """Everything the platform holds of the address, across every cell, as JSON."""
    dsr.check_email(email)
    found = dsr.export(resolve(stack, outputs_file), email)
    text = json.dumps({"email": email.lower(), "records": found}, indent=2, default=str)
    if to is None:
        print(text)
    else:
        to.write_text(text + "\n")
        out.print(f"{len(found)} record(s) written to {to}")


@app.command()
def erase(
    stack: StackOption,
    email: EmailOption,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what would change.")] = False,
    yes: YesOption = False,
    outputs_file: OutputsOption = None,
) -> None:
    """Pseudonymise the address in the platform's records (audit rows keep their facts)."""
    dsr.check_email(email)
    outputs = resolve(stack, outputs_file)
    found = dsr.find(outputs, email)
    verb = "would" if dry_run else "will"
    out.print(f"{verb} replace {email.lower()} with {dsr.pseudonym(email)} in {len(found)} audit row(s)")
    if dry_run:
        raise typer.Exit(ExitStatus.OK)
    if not yes:
        raise InputError("nothing done: add --yes to do it (or --dry-run)")
    changed = dsr.erase(outputs, email)
    out.print(f"pseudonymised {sum(changed.values())} row(s): " + ", ".join(f"{c}: {n}" for c, n in changed.items()))


@app.command("search-tenant")
def search_tenant(
    stack: StackOption,
    tenant: Annotated[str, typer.Option(help="The tenant's slug or id.")],
    email: EmailOption,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rows of a tenant's own tables mentioning the address, searched as the tenant's role (for the
    tenant's own request: its data is its own)."""
    counts = dsr.search_tenant(resolve(stack, outputs_file), tenant, email)
    if as_json:
        print_json(counts)
        return
    for table, n in counts.items():
        out.print(f"{table}: {n} row(s)")
