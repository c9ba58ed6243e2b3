"""`provision tenants verify`: prove on the live cells that no tenant can reach another."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from provisioner.console import err
from provisioner.errors import InputError
from provisioner.names import check_id
from provisioner.stackref import JsonOption, OutputsOption, StackOption, resolve


def verify(
    stack: StackOption,
    probes: Annotated[
        int,
        typer.Option(
            "--probes", min=0, help="Tenant pairs probed per cell (every pair when there are fewer; 0: no probes)."
        ),
    ] = 20,
    cell: Annotated[Optional[list[str]], typer.Option("--cell", help="Only this cell (repeatable).")] = None,
    tenant: Annotated[
        Optional[list[str]], typer.Option("--tenant", help="Probe only pairs among these tenant ids (repeatable).")
    ] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of the pair sample, to repeat a run.")] = None,
    outputs_file: OutputsOption = None,
    as_json: JsonOption = False,
    tap: Annotated[bool, typer.Option("--tap", help="TAP 14 on stdout, for CI.")] = False,
    stress: Annotated[
        bool,
        typer.Option("--stress", help="Also run the availability attacks as one sampled tenant (bounded; opt-in)."),
    ] = False,
) -> None:
    """Catalog checks (sql/verify/), ledger drift and behaviour probes on every cell in parallel.
    Exit 0 clean, 1 violations, 2 could not run (a cell down, credentials missing)."""
    # Here, not above: every `tenants` command loads this module, only verify needs the verifier.
    from provisioner.verify.findings import verify_status
    from provisioner.verify.report import show_json, show_table, show_tap
    from provisioner.verify.runner import VerifyOptions, check_names, verify_stack

    if as_json and tap:
        raise InputError("--json and --tap are alternatives: choose one")
    outputs = resolve(stack, outputs_file)
    only = frozenset(check_id(t, "tenant id") for t in tenant) if tenant else None
    options = VerifyOptions(probes=probes, seed=seed, tenants=only, stress=stress)
    checks = check_names(options)  # before any cell is reached: a package missing its checks stops here
    if as_json or tap:
        reports = verify_stack(outputs, options, cells=cell)
    else:
        with err.status(f"verifying {len(cell or outputs.cells)} cell(s) of {stack}"):
            reports = verify_stack(outputs, options, cells=cell)
    if as_json:
        show_json(stack, reports, checks)
    elif tap:
        show_tap(reports, checks)
    else:
        show_table(stack, reports, checks)
    raise typer.Exit(verify_status(reports))
