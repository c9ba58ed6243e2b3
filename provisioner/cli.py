"""The `provision` entry point: noun-verb subcommands, one clear line on error, exit 0/1/2.

Start-up stays light: no command group imports the Pulumi SDK, the components or the policy
rules; `plan` loads the offline run only when it runs.
"""

from __future__ import annotations

import sys
from functools import cache

import typer

from compliance.transfers import TransferRefused
from contract.outputs import OutputsInvalid
from contract.status import ExitStatus
from provisioner.console import err
from provisioner.errors import ProvisionError
from stackconfig.config import ConfigError

app = typer.Typer(
    help="Askasia platform provisioner: post-deploy SQL, isolation checks, lifecycle, local stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Refusals of the dependency-free rooms (bad outputs, bad stack config, no transfer basis):
# like ProvisionError, one line and exit 2.
PLAIN_REFUSALS = (OutputsInvalid, ConfigError, TransferRefused)


@cache
def _register() -> None:
    # Each command group lives in its own module under provisioner/commands/. Once per process:
    # `main()` may run several times in one process (tests), and typer would register twice.
    from provisioner.commands import (
        cells,
        deploy,
        dr,
        dsr,
        evidence,
        keys,
        local,
        partners,
        plan,
        region,
        register,
        retention,
        sql,
        stacks,
        tenants,
        verify,
    )

    app.add_typer(local.app, name="local")
    app.add_typer(keys.app, name="keys")
    app.add_typer(partners.app, name="partners")
    tenants.app.command("verify")(verify.verify)
    app.add_typer(tenants.app, name="tenants")
    app.add_typer(sql.app, name="sql")
    app.command("plan")(plan.plan)
    app.command("register")(register.register)
    app.add_typer(stacks.app, name="stacks")
    app.command("deploy")(deploy.deploy)
    app.add_typer(region.app, name="region")
    app.add_typer(retention.app, name="retention")
    app.add_typer(dsr.app, name="dsr")
    dr.app.command("drill")(local.drill)  # a local-stack command, under `dr` with rebuild
    app.add_typer(dr.app, name="dr")
    app.command("evidence")(evidence.evidence)
    app.add_typer(cells.app, name="cells")


def fail(message: str, code: int) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    sys.exit(code)


def main() -> None:
    _register()
    try:
        app()
    except ProvisionError as exc:
        fail(str(exc), exc.exit_code)
    except PLAIN_REFUSALS as exc:
        fail(str(exc), ExitStatus.COULD_NOT_RUN)
