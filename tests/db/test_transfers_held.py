"""Transfers are checked where they happen: a US partner in a stack that serves EU, UK and IN is
refused at placement, a US row already in the cells is shown refused by the register, and with US
declared in the stack's outputs the same partner is placed and the register lists its transfers
with their bases. The gate and the register judge with one function, so they agree."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner import directory
from tests.helpers import RunningStack, converge, started_stack


def run_cli(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(root)}
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of its own: the test records partners the shared one must not see."""
    with started_stack(tmp_path_factory.mktemp("held"), cells=1) as running:
        converge(running.outputs)
        yield running


def held(root: Path, *extra: str) -> tuple[int, dict, str]:
    result = run_cli(root, "register", "--stack", "local", "--cells", "--format", "json", *extra)
    return result.returncode, json.loads(result.stdout), result.stderr


def test_a_us_partner_in_an_eu_stack_is_refused_and_a_us_row_already_there_is_flagged(stack):
    assert stack.outputs.origins == ("EU", "UK", "IN")
    refused = run_cli(stack.root, "partners", "add", "--stack", "local", "--partner", "us-co", "--jurisdiction", "US")
    assert refused.returncode == 2
    assert "origin US is not among the origins stack local declares (EU, UK, IN)" in refused.stderr
    assert "us-co" not in {p.slug for p in directory.partners(stack.outputs)}

    # A row recorded before the gate existed (written below the gate, as an old release would have).
    legacy = directory.add_partner_rows(stack.outputs, "us-legacy", "US")
    try:
        tenant = ("--partner", "us-legacy", "--tenant", "t1", "--plan", "growth")
        placed = run_cli(stack.root, "tenants", "add", "--stack", "local", *tenant)
        assert placed.returncode == 2 and "origin US is not among the origins" in placed.stderr
        code, reg, err = held(stack.root)
        # (the other test may have placed a US partner and tenant here already)
        assert code == 1 and "directory-transfers-declared: " in err and "tenant(s) of US in stack local" in err
        us = next(h for h in reg["held"] if h["origin"] == "US")
        assert us["declared"] is False and "not among the origins stack local declares" in us["refusal"]
        # the arrows themselves have a basis: the refusal is that nobody declared them
        assert [(a["role"], a["country"], a["kind"]) for a in us["arrows"]] == [
            ("primary", "IE", "permitted"),
            ("dr", "DE", "permitted"),
        ]
    finally:
        with stack.superuser() as su:
            su.execute("delete from platform.role_bindings where partner_id = %s", (legacy.id,))
            su.execute("delete from platform.partners where id = %s", (legacy.id,))


def test_with_us_declared_the_partner_is_placed_and_the_register_lists_its_transfers(stack, tmp_path):
    outputs = {**stack.outputs.to_json(), "origins": ["EU", "UK", "IN", "US"]}
    declared = tmp_path / "outputs.json"
    declared.write_text(json.dumps(outputs))
    with_us = ("--stack", "local", "--outputs", str(declared))
    added = run_cli(stack.root, "partners", "add", *with_us, "--partner", "us-agency", "--jurisdiction", "US")
    assert added.returncode == 0, added.stderr
    placed = run_cli(
        stack.root, "tenants", "add", *with_us, "--partner", "us-agency", "--tenant", "acme", "--plan", "growth"
    )
    assert placed.returncode == 0, placed.stderr

    code, reg, err = held(stack.root, "--outputs", str(declared))
    assert code == 0, err
    us = next(h for h in reg["held"] if h["origin"] == "US")
    assert (us["tenants"], us["declared"], us["refusal"]) == (1, True, None)
    assert reg["cells_read"] == ["local"] and reg["stacks"][0]["described_by"] == "stack outputs"
    md = run_cli(stack.root, "register", "--stack", "local", "--cells", "--outputs", str(declared)).stdout
    arrows = "primary eu-west-1 (IE): permitted; dr eu-central-1 (DE): permitted"
    assert f"| US | local | {us['partners']} | 1 | yes | {arrows} | admitted |" in md

    # The same cells judged against the outputs that do not declare US: the register and the gate agree.
    code, reg, err = held(stack.root)
    assert code == 1 and "1 tenant(s) of US in stack local: transfer refused" in err
