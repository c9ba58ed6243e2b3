"""The `--stacks-dir` option: stack files are the deployment's, found from the working directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from provisioner.errors import InputError
from stackconfig.files import StacksNotFound, find_stacks_dir

StacksDirOption = Annotated[
    Optional[Path],
    typer.Option("--stacks-dir", help="Directory of stack configs (default: stacks/ of the project around here)."),
]


def stacks_dir_or_fail(explicit: Path | None) -> Path:
    try:
        return find_stacks_dir(explicit)
    except StacksNotFound as exc:
        raise InputError(str(exc)) from None
