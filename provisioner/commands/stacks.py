"""`provision stacks list`: the stacks stacks/ declares, one per region (CI builds its matrix from it)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from provisioner.console import out
from provisioner.stackdirs import StacksDirOption, stacks_dir_or_fail
from stackconfig.files import load_stack_config, stack_names

app = typer.Typer(help="The stacks of this deployment: stacks/Pulumi.<stack>.yaml.", no_args_is_help=True)


@app.command("list")
def list_(
    stacks_dir: StacksDirOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON list of {stack, region, dr_region}.")] = False,
) -> None:
    """Every stack file, validated: a stack whose config is wrong stops the list (exit 2)."""
    directory = stacks_dir_or_fail(stacks_dir)
    rows = []
    for name in stack_names(directory):
        config = load_stack_config(name, directory)
        rows.append({"stack": name, "region": config.region, "dr_region": config.dr_region})
    if as_json:
        # One line: CI writes it to $GITHUB_OUTPUT and reads it back with fromJSON.
        typer.echo(json.dumps(rows, separators=(",", ":")))
        return
    table = Table(title=f"stacks in {directory}")
    for column in ("stack", "region", "dr_region"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["stack"], row["region"], row["dr_region"])
    out.print(table)
    if not rows:
        out.print("no stack files (Pulumi.<stack>.yaml)")
