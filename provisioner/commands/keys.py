"""`provision keys`: the JWT signing key ring as the application reads it, and its rotation."""

from __future__ import annotations

import typer

from contract.jwks import KeyRing
from provisioner import jwtkeys
from provisioner.console import out, print_json
from provisioner.errors import InputError, ProvisionError, ViolationsFound
from provisioner.stackdirs import StacksDirOption, stacks_dir_or_fail
from provisioner.stackref import LOCAL_STACK, JsonOption, OutputsOption, StackOption, resolve
from stackconfig.files import load_stack_config, set_config_value, stack_file

app = typer.Typer(help="JWT signing keys: the published ring and its rotation.", no_args_is_help=True)

GENERATION_KEY = "askasia:jwtKeyGeneration"


@app.command()
def status(stack: StackOption, outputs_file: OutputsOption = None, as_json: JsonOption = False) -> None:
    """Check the published ring: every key's JWK is the public key KMS holds, the signing kid is
    one of them, the token lifetime is within its bound. Exit 1 on a problem."""
    ring = jwtkeys.ring_status(resolve(stack, outputs_file))
    if as_json:
        print_json(ring.as_dict())
    else:
        out.print(
            f"{stack}: generation {ring.generation}, signing with {ring.signing_kid}; ring {', '.join(ring.kids)}; "
            f"published {', '.join(ring.published)}; tokens live {ring.ttl_seconds}s",
            highlight=False,
        )
        for problem in ring.problems:
            out.print(f"[red]problem:[/] {problem}", highlight=False)
    if not ring.ok:
        raise ViolationsFound(f"{len(ring.problems)} problem(s) in the published JWT key ring: {ring.problems[0]}")


@app.command("rotate-jwt")
def rotate_jwt(stack: StackOption, outputs_file: OutputsOption = None, stacks_dir: StacksDirOption = None) -> None:
    """Promote the published next key to signing: raise askasia:jwtKeyGeneration by one in the
    stack file, after checking on the deployed stack that no valid token can lose its key.
    `pulumi up` then applies it (the JWKS first, then the token policy)."""
    if stack == LOCAL_STACK:
        raise InputError("the local stack's key ring is the local stack's own; rotate a deployed stack")
    directory = stacks_dir_or_fail(stacks_dir)
    if not stack_file(stack, directory).is_file():
        raise InputError(f"no stack config {stack_file(stack, directory)}")
    configured = load_stack_config(stack, directory).jwt_key_generation
    status = jwtkeys.ring_status(resolve(stack, outputs_file))
    refusal = jwtkeys.rotation_refusal(status, configured, jwtkeys.utcnow())
    if refusal:
        raise ProvisionError(f"rotation refused: {refusal}")
    set_config_value(stack, directory, GENERATION_KEY, configured + 1)
    before, after = KeyRing(stack, configured), KeyRing(stack, configured + 1)
    dropped = sorted(set(before.kids.values()) - set(after.kids.values()))
    out.print(
        f"{stack}: {GENERATION_KEY} {configured} -> {configured + 1}. On deploy: {after.kids['current']} signs "
        f"(published since the last deploy), {after.kids['previous']} keeps verifying, {after.kids['next']} is "
        f"published next{', ' + ', '.join(dropped) + ' is dropped' if dropped else ''}. Commit the stack file "
        "and deploy it.",
        highlight=False,
    )
