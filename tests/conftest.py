"""Session fixtures: one local stack (2 PostgreSQL cells over TLS + moto) started through the
same code as `provision local up`, in a private directory, and stopped at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from contract.outputs import StackOutputs
from tests.helpers import RunningStack, started_stack

# Tests never use the developer's .local/ stack or real AWS credentials.
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/db/ needs the local stack: `pytest -m "not db"` runs the rest."""
    for item in items:
        if "tests/db/" in item.nodeid:
            item.add_marker(pytest.mark.db)


SESSION_STACK = pytest.StashKey[RunningStack]()


@pytest.fixture(scope="session")
def local_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with started_stack(tmp_path_factory.mktemp("local"), cells=2) as running:
        request.config.stash[SESSION_STACK] = running
        yield running
        del request.config.stash[SESSION_STACK]


@pytest.fixture(scope="session")
def outputs(local_stack: RunningStack) -> StackOutputs:
    return local_stack.outputs


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test may start a stack of its own, which repoints boto3 at its moto server: every test
    that uses the session stack starts pointed back at it, before its fixtures (a module's
    included) are set up."""
    running = item.config.stash.get(SESSION_STACK, None)
    if running is not None and "local_stack" in getattr(item, "fixturenames", ()):
        running.stack.activate()
