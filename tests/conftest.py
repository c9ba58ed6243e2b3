"""Session fixtures: one local stack (2 PostgreSQL cells over TLS + moto) started through the
same code as `provision local up`, in a private directory, and stopped at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from contract.outputs import StackOutputs, parse_outputs
from provisioner.local.layout import Layout
from provisioner.local.stack import CellState, LocalStack

# Tests never use the developer's .local/ stack or real AWS credentials.
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)


@dataclass
class RunningStack:
    stack: LocalStack
    outputs: StackOutputs

    @property
    def root(self) -> Path:
        return self.stack.layout.root

    def superuser(self, cell: str = "cell-1", dbname: str = "platform", **kw) -> psycopg.Connection:
        """A superuser connection, for tests that break the database on purpose."""
        state = next(c for c in self.stack.cells() if c.name == cell)
        return psycopg.connect(**self.stack.bootstrap_conninfo(state, dbname), **kw)

    def cell_state(self, cell: str = "cell-1") -> CellState:
        return next(c for c in self.stack.cells() if c.name == cell)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/db/ needs the local stack: `pytest -m "not db"` runs the rest."""
    for item in items:
        if "tests/db/" in item.nodeid:
            item.add_marker(pytest.mark.db)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    stack = LocalStack(Layout(tmp_path_factory.mktemp("local")))
    try:
        raw = stack.up(cells=2)
        yield RunningStack(stack, parse_outputs(raw))
    finally:
        stack.down(wipe=True)


@pytest.fixture(scope="session")
def outputs(local_stack: RunningStack) -> StackOutputs:
    local_stack.stack.activate()
    return local_stack.outputs


@pytest.fixture(autouse=True)
def _aws_points_at_session_stack(request: pytest.FixtureRequest) -> None:
    """A test may start a second local stack (which repoints boto3 at its moto server);
    every test that uses the session stack starts pointed back at it."""
    if "local_stack" in request.fixturenames:
        request.getfixturevalue("local_stack").stack.activate()
