"""`provision register`: the sub-processor list and the data-location and transfer register."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from compliance.register import FORMATS, RegisterError, build_register, render
from provisioner.directory import cells_view
from provisioner.errors import InputError, ViolationsFound
from provisioner.stackdirs import StacksDirOption, stacks_dir_or_fail
from provisioner.stackref import OutputsOption, resolve
from stackconfig.files import stack_names


def register(
    stack: Annotated[Optional[list[str]], typer.Option("--stack", help="Stack name (repeatable).")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Every stacks/Pulumi.*.yaml.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="md, json or html.")] = "md",
    output: Annotated[Optional[Path], typer.Option("--output", help="Write here instead of stdout.")] = None,
    cells: Annotated[
        bool, typer.Option("--cells", help="Also read each stack's cells: the transfers the data they hold makes.")
    ] = False,
    outputs_file: OutputsOption = None,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Generate the register from subprocessors.yaml, transfers.yaml and the stack configs (with
    --cells, also from each stack's outputs and directory).

    Exit 1 if a transfer (origin -> primary or DR region, or to a sub-processor's country) has no
    recorded basis, or if the cells hold data the placement gate would refuse.
    """
    if bool(stack) == all_stacks:
        raise InputError("give --stack NAME (one or more) or --all, not both and not neither")
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if outputs_file is not None and not (cells and stack and len(stack) == 1):
        raise InputError("--outputs goes with --cells and one --stack")
    directory_ = stacks_dir_or_fail(stacks_dir)
    names = list(stack) if stack else stack_names(directory_)
    views = {name: cells_view(resolve(name, outputs_file)) for name in names} if cells else None
    try:
        reg = build_register(names, directory_, cells=views)
        text = render(reg, fmt)
    except RegisterError as exc:
        raise InputError(str(exc)) from None
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(
            f"wrote {output} ({fmt}, {len(reg.stacks)} stack(s), {len(reg.subprocessors)} sub-processors)", err=True
        )
    problems = [f"{check}: {line}" for check, lines in reg.problems().items() for line in lines]
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ViolationsFound(f"{problems[0]}{more}")
