"""Which stack a command acts on: its outputs, from a file, the local stack or Pulumi."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from provisioner.credentials import CredentialStore
from provisioner.errors import InputError
from provisioner.local.layout import LOCAL_STACK, REPO_ROOT, Layout, default_root
from provisioner.outputs import StackOutputs, load_from_pulumi, load_outputs_file

StackOption = Annotated[str, typer.Option("--stack", "-s", help="Stack name, e.g. prod-eu-west-1 or local.")]
OutputsOption = Annotated[
    Optional[Path],
    typer.Option("--outputs", help="A `pulumi stack output --json` file (default: ask Pulumi, or .local/ for local)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def resolve(stack: str, outputs_file: Path | None = None) -> StackOutputs:
    if outputs_file is not None:
        outputs = load_outputs_file(outputs_file)
    elif stack == LOCAL_STACK:
        from provisioner.local.stack import LocalStack

        local = LocalStack(Layout(default_root()))
        local.activate()  # boto3 talks to the local moto server
        outputs = load_outputs_file(local.layout.outputs_file)
    else:
        outputs = load_from_pulumi(stack, REPO_ROOT)
    if outputs.stack != stack:
        raise InputError(f"outputs are for stack {outputs.stack}, not {stack}")
    return outputs


def credential_store(outputs: StackOutputs) -> CredentialStore:
    return CredentialStore(outputs.stack, outputs.region, outputs.kms["secrets"])
