"""What the tests share: local stacks, onboarding partners and tenants through the real code paths,
converging the stack, and connecting as them."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from contract.outputs import StackOutputs, parse_outputs
from provisioner import directory, onboarding
from provisioner.apply import ApplyOptions, CellResult, apply_stack
from provisioner.connect import Credentials, connect, read_secret_json
from provisioner.credentials import secret_name
from provisioner.local.layout import Layout
from provisioner.local.stack import CellState, LocalStack
from provisioner.stackref import credential_store

ROOT_DIR = Path(__file__).resolve().parents[1]  # the project: Pulumi.yaml, stacks/, policy/


@dataclass
class RunningStack:
    stack: LocalStack
    outputs: StackOutputs

    @property
    def root(self) -> Path:
        return self.stack.layout.root

    def superuser(self, cell: str = "cell-1", dbname: str = "platform", **kw) -> psycopg.Connection:
        """A superuser connection, for tests that break the database on purpose."""
        return psycopg.connect(**self.stack.bootstrap_conninfo(self.cell_state(cell), dbname), **kw)

    def cell_state(self, cell: str = "cell-1") -> CellState:
        return next(c for c in self.stack.cells() if c.name == cell)


@contextmanager
def started_stack(root: Path, cells: int) -> Iterator[RunningStack]:
    """A local stack of its own in `root` (PostgreSQL cells over TLS and moto), stopped and wiped
    at the end. Starting it points this process's boto3 at its moto server."""
    stack = LocalStack(Layout(root))
    try:
        yield RunningStack(stack, parse_outputs(stack.up(cells=cells)))
    finally:
        stack.down(wipe=True)


def tenant_ledger_rows() -> int:
    """Ledger rows of a completely applied tenant: each of its steps, its credentials and its
    roles' state (provisioner.ledger.ROLE_STATE_STEP)."""
    return tenant_planned_steps() + 1


def tenant_planned_steps() -> int:
    """What a dry run plans for a tenant never applied: each of its steps and its credentials."""
    from provisioner.render import steps

    return len(steps("tenant")) + 1


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def apply(outputs: StackOutputs, **options) -> list[CellResult]:
    return apply_stack(outputs, ApplyOptions(**options), credential_store(outputs))


def converge(outputs: StackOutputs) -> None:
    """Apply everything recorded: the stack as a module that verifies all of it needs it, and as
    a test that recorded rows leaves it."""
    results = apply(outputs)
    assert all(r.status == "ok" for r in results), [r.errors + r.drift for r in results]


def onboard(
    outputs: StackOutputs, partners: dict[str, str], tenants: list[tuple[str, str, str]], cell: str | None = None
) -> dict[str, directory.Tenant]:
    """partners: slug -> jurisdiction; tenants: (partner slug, tenant slug, plan). Returns by slug."""
    apply(outputs, tenant_ids=frozenset(), partner_ids=frozenset())
    ids = [directory.add_partner_rows(outputs, slug, j).id for slug, j in partners.items()]
    new = onboarding.validate_new_tenants(
        outputs, [{"partner": p, "tenant": t, "plan": plan} for p, t, plan in tenants]
    )
    placed = directory.place_tenants(outputs, new, cell=cell)
    results = apply(outputs, partner_ids=frozenset(ids), tenant_ids=frozenset(p.id for p in placed))
    assert all(r.status == "ok" for r in results), [r.errors + r.drift for r in results]
    by_id = {t.id: t for t in directory.tenants(outputs)}
    return {by_id[p.id].slug: by_id[p.id] for p in placed}


def app_credentials(outputs: StackOutputs, kind: str, owner_id: str) -> Credentials:
    doc = read_secret_json(secret_name(outputs.stack, kind, owner_id), outputs.region)
    return Credentials(doc["username"], doc["password"])


def connect_as(outputs: StackOutputs, kind: str, owner_id: str, cell: str) -> psycopg.Connection:
    """Log in with the app credentials stored in Secrets Manager, over verified TLS."""
    return connect(outputs.cluster(cell), app_credentials(outputs, kind, owner_id))


def run_in_process(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """`provision ARGS` in this process (so a test can monkeypatch the tool): exit code, stdout, stderr."""
    from provisioner import cli

    monkeypatch.setattr(sys, "argv", ["provision", *args])
    with pytest.raises(SystemExit) as exc:
        cli.main()
    captured = capsys.readouterr()
    code = exc.value.code
    return (code if isinstance(code, int) else 0), captured.out, captured.err


def provision(running: RunningStack, *args: str) -> subprocess.CompletedProcess:
    """`provision ARGS --stack local` against this stack, as a process of its own (a wide console:
    rich folds long names on a narrow one)."""
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(running.root), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args, "--stack", "local"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def seed_tenant_rows(running: RunningStack, tenants: list[directory.Tenant]) -> None:
    """What a purge must take: a lead in each tenant's schema (as the tenant) and a worker run
    and a cost entry of it in the shared tables of its cell (as the superuser)."""
    for t in tenants:
        with connect_as(running.outputs, "tenant", t.id, t.cell) as conn:
            conn.execute("insert into leads (name, email) values ('Ada', 'ada@example.com')")
        with running.superuser(cell=t.cell) as su:
            su.execute(
                "insert into platform.worker_runs (tenant_id, partner_id, worker) values (%s, %s, 'w')",
                (t.id, t.partner_id),
            )
            su.execute(
                "insert into platform.cost_entries (tenant_id, partner_id, amount) values (%s, %s, 1)",
                (t.id, t.partner_id),
            )
            su.commit()


def refused(conn: psycopg.Connection, statement: sql.Composable | str) -> str | None:
    """None when the statement is refused for want of privilege; else what happened."""
    try:
        conn.execute(statement)
        return "allowed"
    except psycopg.errors.InsufficientPrivilege:
        return None
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    finally:
        conn.rollback()
