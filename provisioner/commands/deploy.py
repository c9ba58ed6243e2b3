"""`provision deploy`: preview with the policy pack, up, apply on the fresh outputs, verify."""

from __future__ import annotations

from typing import Annotated

import typer

from provisioner.apply import ApplyOptions
from provisioner.automation import INSTALL_HINT, require_cli
from provisioner.console import err
from provisioner.deploy import Deploy
from provisioner.reporting import show_deploy
from provisioner.stackref import StackOption, project_dir
from provisioner.verify.runner import VerifyOptions, check_names


def deploy(
    stack: StackOption,
    preview_only: Annotated[bool, typer.Option("--preview-only", help="Stop after the preview.")] = False,
    probes: Annotated[int, typer.Option("--probes", min=0, help="Tenant pairs probed per cell by verify.")] = 20,
    lock_wait: Annotated[float, typer.Option(help="Seconds apply waits for another apply's lock.")] = 0.0,
    tap: Annotated[bool, typer.Option("--tap", help="Verify's report as TAP 14 on stdout, for CI.")] = False,
) -> None:
    """Deploy one stack through the Pulumi Automation API and prove the result.

    Steps: preview (with the CrossGuard pack), up, the post-deploy apply on the outputs up
    returned, verify. The first failing step stops it, with its exit status (a Pulumi policy
    failure is 1, any other Pulumi failure 2). Needs the pulumi CLI and a logged-in backend.
    """
    require_cli(stack, INSTALL_HINT)
    verify_options = VerifyOptions(probes=probes)
    check_names(verify_options)  # a package missing its checks stops before anything is deployed
    runner = Deploy(
        stack,
        project_dir(),
        apply_options=ApplyOptions(lock_wait=lock_wait),
        verify_options=verify_options,
        report=lambda line: err.print(line, highlight=False, soft_wrap=True),
        on_output=lambda line: err.print(line.rstrip("\n"), highlight=False, markup=False, soft_wrap=True),
    )
    show_deploy(runner.run(preview_only=preview_only), tap)
