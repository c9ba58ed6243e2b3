"""A rich progress bar per cell for long runs (quiet under --json)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from provisioner.console import err


@contextmanager
def cell_progress(enabled: bool) -> Iterator:
    if not enabled:
        yield None
        return
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    tasks: dict[str, TaskID] = {}

    def update(cell: str, done: int, total: int) -> None:
        if cell not in tasks:
            tasks[cell] = bars.add_task(cell, total=total)
        bars.update(tasks[cell], completed=done, total=total)

    with bars:
        yield update
