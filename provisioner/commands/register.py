"""`provision register`: the sub-processor list and the data-location and transfer register."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from compliance.register import FORMATS, RegisterError, build_register, render
from provisioner.errors import InputError, ViolationsFound
from provisioner.stackdirs import StacksDirOption, stacks_dir_or_fail


def register(
    stack: Annotated[Optional[list[str]], typer.Option("--stack", help="Stack name (repeatable).")] = None,
    all_stacks: Annotated[bool, typer.Option("--all", help="Every stacks/Pulumi.*.yaml.")] = False,
    fmt: Annotated[str, typer.Option("--format", help="md, json or html.")] = "md",
    output: Annotated[Optional[Path], typer.Option("--output", help="Write here instead of stdout.")] = None,
    stacks_dir: StacksDirOption = None,
) -> None:
    """Generate the register from subprocessors.yaml, transfers.yaml and the stack configs.

    Exit 1 if an arrow (origin -> primary or DR region) has no recorded basis.
    """
    if bool(stack) == all_stacks:
        raise InputError("give --stack NAME (one or more) or --all, not both and not neither")
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    try:
        reg = build_register(None if all_stacks else list(stack or []), stacks_dir_or_fail(stacks_dir))
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
    if reg.unrecorded:
        a = reg.unrecorded[0]
        raise ViolationsFound(
            f"{len(reg.unrecorded)} transfer(s) without a recorded basis, e.g. {a.origin} -> "
            f"{a.region} ({a.country}) in {a.stack}: record bases.{a.origin}.{a.country} in "
            f"compliance/transfers.yaml"
        )
