"""The one-way flow is enforced: the import contracts hold, a back-edge breaks them, and the
database tool starts without the Pulumi SDK, the components or the policy rules."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("contract", "stackconfig", "compliance", "policy", "components", "offline", "provisioner")
LINT = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT), "--no-cache", "--no-logo"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the rooms and the contracts, to break on purpose."""
    for room in ROOMS:
        shutil.copytree(ROOT / room, tmp_path / room, ignore=shutil.ignore_patterns("__pycache__", "sql"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("provisioner/apply_probe.py", "import components.platform\n", "imports no Pulumi program"),
        ("provisioner/verify/probe.py", "from provisioner import apply\n", "entry point, commands"),
        ("provisioner/render_probe.py", "import provisioner.local.stack\n", "only through `provision local`"),
        ("contract/probe.py", "import yaml\n", "dependency-free"),
        ("components/probe.py", "import provisioner.apply\n", "downwards only"),
        ("provisioner/commands/sql.py", "from provisioner.commands import tenants\n", "No command imports"),
    ],
)
def test_a_back_edge_fails(tree: Path, module: str, line: str, contract: str) -> None:
    path = tree / module
    path.write_text((path.read_text() if path.exists() else "") + line)
    result = lint(tree)
    assert result.returncode != 0
    broken = [row for row in result.stdout.splitlines() if "BROKEN" in row]
    assert any(contract in row for row in broken), result.stdout


def test_provision_help_starts_without_pulumi_components_or_policy() -> None:
    probe = (
        "import sys\n"
        "from provisioner import cli\n"
        "sys.argv = ['provision', '--help']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "rooms = {'pulumi', 'pulumi_aws', 'components', 'policy', 'offline'}\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules} & rooms)\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "LOADED []" in result.stderr, result.stderr
    assert "tenants" in result.stdout and "plan" in result.stdout


def _after(argv: list[str], expression: str, entry: str = "main") -> Any:
    """The value of `expression` in a process of its own once `provision <argv>` has run through
    `cli.<entry>` (main: what tests call in process; run: the process's entry point)."""
    probe = (
        "import gc, sys\n"
        "from provisioner import cli\n"
        f"sys.argv = ['provision', *{argv!r}]\n"
        f"try:\n    cli.{entry}()\nexcept SystemExit:\n    pass\n"
        f"print('AFTER', repr({expression}), file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "AFTER" in result.stderr, result.stderr
    return ast.literal_eval(result.stderr.split("AFTER", 1)[1].strip())


def _loaded_after(argv: list[str], prefixes: set[str]) -> list[str]:
    """The modules under `prefixes` that `provision <argv>` has imported when it exits."""
    return _after(
        argv, f"sorted(m for m in sys.modules if any(m == p or m.startswith(p + '.') for p in {sorted(prefixes)!r}))"
    )


def test_the_entry_point_imports_no_cloud_sdk_database_driver_or_templates() -> None:
    # What every command pays before it runs: only typer, rich and the tool's own small modules.
    heavy = {"boto3", "botocore", "psycopg", "jinja2", "yaml", "pulumi", "moto"}
    probe = f"import sys, provisioner.cli; print(sorted({{m.split('.')[0] for m in sys.modules}} & {heavy!r}))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_the_process_entry_point_freezes_what_its_imports_made() -> None:
    # `provision` and `python -m provisioner` run run(): the command group's modules are out
    # of every full collection. main(), which tests call in their own process, freezes nothing
    # (a frozen object is never collected, and a test process outlives many runs).
    frozen = "gc.get_freeze_count()"
    assert _after(["tenants", "--help"], frozen, entry="run") > 20_000  # the tenants group: ~55,000
    assert _after(["tenants", "--help"], frozen, entry="main") == 0
    main_module = (ROOT / "provisioner" / "__main__.py").read_text()
    assert "run()" in main_module
    assert 'provision = "provisioner.cli:run"' in (ROOT / "pyproject.toml").read_text()


def test_a_command_loads_only_its_own_group() -> None:
    # `tenants apply` and `tenants list` run without the local stack's servers, the offline
    # plan, the Pulumi SDK or the other groups' modules.
    others = {
        "pulumi",
        "moto",
        "components",
        "policy",
        "offline",
        "provisioner.local",
        "provisioner.commands.local",
        "provisioner.commands.plan",
        "provisioner.commands.dr",
        "provisioner.commands.evidence",
        "provisioner.commands.keys",
    }
    assert _loaded_after(["tenants", "apply", "--help"], others) == []
    # Help lists every group, so it loads every command module.
    assert "provisioner.commands.local" in _loaded_after(["--help"], others)


def test_tenants_list_loads_no_apply_lifecycle_verify_or_templates() -> None:
    # `tenants list` reads the cells' directory: the services of the group's other commands
    # (apply, onboarding, rotation, the lifecycle, verify), the register and the template
    # engine are imported by the commands that run them, not by the group.
    services = {
        "provisioner.apply",
        "provisioner.onboarding",
        "provisioner.ledger",
        "provisioner.render",
        "provisioner.targets",
        "provisioner.rotation",
        "provisioner.deploy",
        "provisioner.verify",
        "provisioner.lifecycle.partner_export",
        "provisioner.progress",
        "compliance",
        "stackconfig",
        "jinja2",
        "yaml",
    }
    assert _loaded_after(["tenants", "list", "--help"], services) == []
    # The probe sees the group's imports: the list's own service is among them.
    assert "provisioner.directory" in _loaded_after(["tenants", "list", "--help"], {"provisioner.directory"})
