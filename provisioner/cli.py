"""The `provision` entry point: noun-verb subcommands, one clear line on error, exit 0/1/2."""

from __future__ import annotations

import sys

import typer

from provisioner.console import err
from provisioner.errors import ProvisionError

app = typer.Typer(
    help="Askasia platform provisioner: post-deploy SQL, isolation checks, lifecycle, local stack.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Each command group lives in its own module under provisioner/commands/.
    from provisioner.commands import local, partners, plan, register, sql, tenants

    app.add_typer(local.app, name="local")
    app.add_typer(partners.app, name="partners")
    app.add_typer(tenants.app, name="tenants")
    app.add_typer(sql.app, name="sql")
    app.command("plan")(plan.plan)
    app.command("register")(register.register)


def main() -> None:
    _register()
    try:
        app()
    except ProvisionError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
