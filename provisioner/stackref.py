"""Which stack a command acts on, and its outputs: from a file (`--outputs`), from the local
embedded stack (`--stack local`, by the files it writes), or from Pulumi (Automation API)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Annotated, Any, Optional
from urllib.parse import urlsplit

import typer

from contract.outputs import OutputsInvalid, StackOutputs, parse_outputs
from contract.project import find_project_dir
from provisioner.credentials import CredentialStore
from provisioner.errors import InputError, ProvisionError

LOCAL_STACK = "local"
LOCAL_DIR_ENV = "ASKASIA_LOCAL_DIR"
OUTPUTS_FILE = "outputs.json"
AWS_ENV_FILE = "aws-env.json"  # where the local stack's moto server answers, for boto3

StackOption = Annotated[str, typer.Option("--stack", "-s", help="Stack name, e.g. prod-eu-west-1 or local.")]
OutputsOption = Annotated[
    Optional[Path],
    typer.Option("--outputs", help="A `pulumi stack output --json` file (default: ask Pulumi, or .local/ for local)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output on stdout.")]


def project_dir() -> Path:
    """The Pulumi project around the working directory, else the working directory itself."""
    return find_project_dir() or Path.cwd().resolve()


def local_root() -> Path:
    """The local stack's state: $ASKASIA_LOCAL_DIR, else .local/ of the project (or of here)."""
    explicit = os.environ.get(LOCAL_DIR_ENV)
    return Path(explicit).resolve() if explicit else project_dir() / ".local"


def load_outputs_file(path: Path) -> StackOutputs:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"outputs file {path} not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"outputs file {path} is not JSON: {exc}") from None
    return parse(raw)


def parse(raw: Any) -> StackOutputs:
    try:
        return parse_outputs(raw)
    except OutputsInvalid as exc:
        raise InputError(str(exc)) from None


def use_local_aws(root: Path) -> None:
    """Point this process's boto3 at the local stack's moto server, which must be answering."""
    try:
        env = json.loads((root / AWS_ENV_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        raise ProvisionError(f"the local stack in {root} is not up: run `provision local up`") from None
    address = urlsplit(env["AWS_ENDPOINT_URL"])
    try:
        socket.create_connection((address.hostname, address.port), timeout=1).close()
    except OSError:
        raise ProvisionError(
            f"the local stack's AWS endpoint {env['AWS_ENDPOINT_URL']} does not answer: run `provision local up`"
        ) from None
    os.environ.update(env)


def resolve(stack: str, outputs_file: Path | None = None) -> StackOutputs:
    if outputs_file is not None:
        outputs = load_outputs_file(outputs_file)
    elif stack == LOCAL_STACK:
        root = local_root()
        use_local_aws(root)
        outputs = load_outputs_file(root / OUTPUTS_FILE)
    else:
        from provisioner.automation import stack_outputs

        outputs = parse(stack_outputs(stack, project_dir()))
    if outputs.stack != stack:
        raise InputError(f"outputs are for stack {outputs.stack}, not {stack}")
    return outputs


def credential_store(outputs: StackOutputs) -> CredentialStore:
    return CredentialStore(outputs.stack, outputs.region, outputs.kms["secrets"])
