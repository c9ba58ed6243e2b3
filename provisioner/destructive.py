"""What every destructive command shares: its clock, its dry run, and the --yes it needs."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from contract.status import ExitStatus
from provisioner.console import out
from provisioner.errors import InputError

AsOfOption = Annotated[
    Optional[str],
    typer.Option(
        "--as-of",
        help="Act as at this ISO 8601 moment (default: now; no zone = UTC); a run that changes data takes it only "
        "with --dry-run.",
    ),
]
YesOption = Annotated[bool, typer.Option("--yes", help="Do it (needed unless --dry-run).")]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print what would be done; change nothing.")]


def confirm(lines: list[str], dry_run: bool, yes: bool) -> None:
    """Print what will be done (or would be, on a dry run, which stops here); without --yes,
    refuse with nothing done."""
    for line in lines:
        out.print(f"would {line}" if dry_run else f"will {line}", highlight=False, soft_wrap=True)
    if dry_run:
        raise typer.Exit(ExitStatus.OK)
    if not yes:
        raise InputError("nothing done: add --yes to do it (or --dry-run)")
