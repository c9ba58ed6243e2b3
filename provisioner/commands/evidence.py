"""`provision evidence`: every privacy promise, the controls that keep it, their latest results."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from typing import Annotated, Optional

import typer

from compliance.evidence import FORMATS, build_report, render
from compliance.promises import PromisesInvalid, load_promises
from contract.outputs import StackOutputs
from provisioner.console import err
from provisioner.errors import InputError, ViolationsFound
from provisioner.evidence import sources, store
from provisioner.stackdirs import StacksDirOption
from provisioner.stackref import OutputsOption, StackOption, resolve
from stackconfig.files import StacksNotFound, find_stacks_dir


def parse_moment(text: str) -> dt.datetime:
    """A date (its end, UTC) or an ISO timestamp (UTC unless it says otherwise)."""
    try:
        if len(text) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time.max, dt.UTC)
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--as-of {text!r}: give a date (2026-06-01) or a timestamp (2026-06-01T12:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def evidence(
    stack: StackOption,
    fmt: Annotated[str, typer.Option("--format", help="html, json or md.")] = "md",
    output: Annotated[Optional[Path], typer.Option("--output", help="Write here instead of stdout.")] = None,
    recorded: Annotated[bool, typer.Option("--recorded", help="Run nothing: report the recorded runs.")] = False,
    as_of: Annotated[
        Optional[str], typer.Option("--as-of", help="Report as it stood then (a date or timestamp); runs nothing.")
    ] = None,
    source: Annotated[
        Optional[list[str]], typer.Option("--source", help=f"Run only this source ({', '.join(sources.SOURCES)}).")
    ] = None,
    probes: Annotated[int, typer.Option("--probes", min=0, help="Tenant pairs probed per cell by verify.")] = 20,
    outputs_file: OutputsOption = None,
    stacks_dir: StacksDirOption = None,
    evidence_dir: Annotated[
        Optional[Path], typer.Option("--evidence-dir", help="Where runs are kept (default: evidence/ of the project).")
    ] = None,
) -> None:
    """Run plan, verify, register and the key ring check (or read their recorded runs), keep each
    run, and report per promise its controls' latest results. Exit 1 when a promise is not kept."""
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    unknown = sorted(set(source or ()) - set(sources.SOURCES))
    if unknown:
        raise InputError(f"--source {unknown[0]!r}: use one of {', '.join(sources.SOURCES)}")
    moment = parse_moment(as_of) if as_of else None
    try:
        promises = load_promises()
    except PromisesInvalid as exc:
        raise InputError(str(exc)) from None
    root = (evidence_dir or store.default_dir(stack)).resolve()

    if not (recorded or as_of):
        try:
            directory: Path | None = find_stacks_dir(stacks_dir)
        except StacksNotFound as exc:
            if stacks_dir is not None:
                raise InputError(str(exc)) from None
            directory = None  # no stack configs here: plan does not apply

        @functools.cache
        def outputs() -> StackOutputs:
            return resolve(stack, outputs_file)

        for run in sources.run_sources(stack, tuple(source or sources.SOURCES), outputs, directory, probes):
            store.record(root, run)
            err.print(f"{run.source}: {run.outcome}{': ' + run.reason if run.reason else ''}", highlight=False)

    now = dt.datetime.now(dt.UTC)  # after the runs: a report of now includes them
    report = build_report(promises, stack, store.recorded(root, stack), moment or now, now)
    if not report.runs:
        raise InputError(f"no evidence recorded for stack {stack} at or before {report.as_of} in {root}")
    text = render(report, fmt)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
    kept = len(report.clauses) - len(report.failing)
    err.print(
        f"evidence {stack} as of {report.as_of}: {kept} of {len(report.clauses)} promises kept"
        + (f"; wrote {output}" if output else ""),
        highlight=False,
    )
    if report.failing:
        first = report.failing[0]
        where = f"{first.clause.id} (§ {first.clause.section})"
        raise ViolationsFound(f"{len(report.failing)} promise(s) not kept, e.g. {where}: {first.verdict}")
