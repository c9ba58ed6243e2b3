"""How apply results and exports are shown, and which exit code apply's mean."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from contract.status import ExitStatus
from provisioner.console import err, out, print_json
from provisioner.errors import ProvisionError
from provisioner.lifecycle.export import FORMATS
from provisioner.stackref import credential_store, resolve

# Each command imports this module; what only some of them show is imported where shown, so
# that `tenants list` starts without apply, rotation, deploy or verify.
if TYPE_CHECKING:
    from provisioner.apply import CellResult
    from provisioner.deploy import Deployed
    from provisioner.lifecycle.export import Export
    from provisioner.lifecycle.partner_export import PartnerExport
    from provisioner.rotation import Rotation


def show_apply(results: list[CellResult], as_json: bool, dry_run: bool) -> ExitStatus:
    from provisioner.apply import COULD_NOT_RUN, apply_status

    code = apply_status(results)
    if as_json:
        print_json({"dry_run": dry_run, "exit_code": int(code), "cells": [asdict(r) for r in results]})
        return code
    table = Table(title="dry run: what would run" if dry_run else "apply")
    for column in ("cell", "status", "platform", "partners", "tenants", "steps", "seconds"):
        table.add_column(column, justify="right" if column not in ("cell", "status") else "left")
    for r in results:
        counts = r.targets_changed
        if dry_run:
            planned = {
                kind: len({t for t, _ in r.planned if t.split(":")[0] == kind})
                for kind in ("platform", "partner", "tenant")
            }
            counts, steps = planned, len(r.planned)
        else:
            steps = r.steps_run
        colour = "green" if r.status == "ok" else "red"
        table.add_row(
            r.cell,
            f"[{colour}]{r.status}[/]",
            str(counts["platform"]),
            str(counts["partner"]),
            str(counts["tenant"]),
            str(steps),
            f"{r.seconds:.2f}",
        )
    out.print(table)
    for r in results:
        for line in r.lock_waits:
            err.print(f"[yellow]{r.cell}[/]: {line}", highlight=False, soft_wrap=True)
        for line in r.credentials:
            err.print(f"[yellow]{r.cell}[/]: credentials do not work: {line}", highlight=False, soft_wrap=True)
        for line in r.drift + r.errors:
            err.print(f"[red]{r.cell}[/]: {line}", highlight=False, soft_wrap=True)
    missed = [r.cell for r in results if r.status in COULD_NOT_RUN]
    if missed and len(missed) < len(results):
        err.print(
            f"[red]partial[/]: {len(results) - len(missed)} of {len(results)} cell(s) done; not {', '.join(missed)}",
            highlight=False,
            soft_wrap=True,
        )
    if dry_run:
        for r in results:
            for target, step in r.planned[:50]:
                out.print(f"  {r.cell}  {target}  {step}", highlight=False)
            if len(r.planned) > 50:
                out.print(f"  {r.cell}  ... {len(r.planned) - 50} more")
    return code


EveryOption = Annotated[bool, typer.Option("--all", help="Every active one of the stack.")]
RotationLockWait = Annotated[float, typer.Option(help="Seconds to wait for an apply's lock.")]


def run_rotation(
    kind: str, stack: str, ref: str | None, every: bool, lock_wait: float, outputs_file: Path | None, as_json: bool
) -> ExitStatus:
    """`tenants|partners rotate-credentials`: input checked before the stack is read, progress
    bars on --all, the result shown."""
    from provisioner.progress import cell_progress
    from provisioner.rotation import chosen, rotate

    owner = chosen(kind, ref, every)
    outputs = resolve(stack, outputs_file)
    with cell_progress(not as_json and owner is None) as progress:
        done = rotate(outputs, kind, credential_store(outputs), owner, lock_wait, progress)
    return show_rotation(done, as_json)


def show_rotation(done: Rotation, as_json: bool) -> ExitStatus:
    """What rotate-credentials did per cell, which owners it repaired and which it could not rotate."""
    code = done.status
    if as_json:
        print_json(
            {
                "kind": done.kind,
                "exit_code": int(code),
                "rotated": done.rotated,
                "repaired": done.repaired,
                "failed": done.failed,
                "seconds": round(done.seconds, 3),
                "cells": [asdict(c) for c in done.cells],
            }
        )
        return code
    table = Table(title=f"{done.kind} credential rotation")
    for column in ("cell", "status", "passwords set", "seconds"):
        table.add_column(column, justify="left" if column in ("cell", "status") else "right")
    for c in done.cells:
        colour = "green" if c.status == "ok" else "red"
        table.add_row(c.cell, f"[{colour}]{c.status}[/]", str(c.set), f"{c.seconds:.2f}")
    out.print(table)
    for c in done.cells:
        for line in c.errors:
            err.print(f"[red]{c.cell}[/]: {line}", highlight=False, soft_wrap=True)
    for key, why in sorted(done.repaired.items()):
        out.print(f"repaired {key}: {why}", highlight=False)
    for key, why in sorted(done.failed.items()):
        err.print(f"[red]not rotated[/] {key}: {why}; its AWSCURRENT is unchanged", highlight=False, soft_wrap=True)
    out.print(f"rotated {len(done.rotated)} {done.kind}(s) in {done.seconds:.1f}s", highlight=False)
    return code


def show_cells_down(down: dict[str, str], done: str) -> ExitStatus:
    """One line per cell that was left out, and what that means: a partial result (exit 2)."""
    for cell, why in down.items():
        err.print(f"[red]{cell}[/]: {why}", highlight=False, soft_wrap=True)
    if not down:
        return ExitStatus.OK
    err.print(
        f"[red]partial[/]: {done} without {', '.join(down)}; run it again when the cell answers",
        highlight=False,
        soft_wrap=True,
    )
    return ExitStatus.COULD_NOT_RUN


class DeployStopped(ProvisionError):
    """A step failed: the exit status is that step's."""


def show_deploy(done: Deployed, tap: bool) -> None:
    """Apply's table and verify's report (TAP on stdout for CI), then the step that stopped it."""
    from provisioner.verify.report import show_table, show_tap

    if done.applied:
        show_apply(done.applied, as_json=False, dry_run=False)
    if done.verified:
        checks = sorted({c for r in done.verified for c in r.checks_run})
        (show_tap if tap else lambda reports, names: show_table(done.stack, reports, names))(done.verified, checks)
    failed = done.failed
    if failed is not None:
        error = DeployStopped(f"deploy of {done.stack} stopped at {failed.name}: {failed.detail}")
        error.exit_code = failed.status
        raise error


ExportFormatOption = Annotated[
    str, typer.Option("--format", help=" | ".join(FORMATS) + ": CSV with a header, or JSON Lines.")
]


def show_export(done: Export | PartnerExport, title: str, as_json: bool) -> None:
    """An export's manifest as JSON, or a table of its files (a partner's with each file's cell)."""
    from provisioner.lifecycle.partner_export import PartnerExport

    if as_json:
        print_json(done.manifest() | {"destination": done.destination})
        return
    columns = ["table", "rows", "sha256"]
    rows = [[f.name, str(f.rows), f.sha256] for f in done.files]
    if isinstance(done, PartnerExport):
        columns.insert(0, "cell")
        rows = [[f.cell, *row] for f, row in zip(done.files, rows, strict=True)]
    table = Table(*columns, title=f"{title} to {done.destination}")
    for row in rows:
        table.add_row(*row)
    out.print(table)
