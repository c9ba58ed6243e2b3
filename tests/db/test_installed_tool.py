"""The installed package is the tool: built as a wheel, installed into a fresh virtualenv, run
from a folder outside the repository against a local stack's outputs file. It finds its own SQL
and checks inside the package, and a package missing them stops with exit 2, never clean."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.helpers import apply

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def control_plane(outputs) -> None:
    assert all(r.status == "ok" for r in apply(outputs, tenant_ids=frozenset(), partner_ids=frozenset()))


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the wheel; its dependencies are borrowed from the test
    environment through a .pth line (so nothing is downloaded), not its source checkout."""
    work = tmp_path_factory.mktemp("installed")
    source = work / "source"  # built from a copy: the build leaves build/ and *.egg-info behind
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "bench"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source), "-w", work],
        check=True,
        capture_output=True,
    )
    (wheel,) = work.glob("askasia_provisioner-*.whl")
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


def run(venv: Path, *args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / "provision"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def elsewhere(tmp_path: Path, local_stack) -> tuple[Path, dict[str, str], Path]:
    """A folder outside the repo, an environment pointing boto3 at the stack's moto, and its outputs."""
    outputs = tmp_path / "outputs.json"
    shutil.copy(local_stack.stack.layout.outputs_file, outputs)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "ASKASIA_"))}
    env.update(local_stack.stack.env())
    return tmp_path, env, outputs


def test_the_wheel_runs_from_its_own_install(installed: Path, elsewhere) -> None:
    cwd, env, _ = elsewhere
    where = subprocess.check_output(
        [str(installed / "bin" / "python"), "-c", "import provisioner; print(provisioner.__file__)"], cwd=cwd, text=True
    )
    assert where.startswith(str(installed)), where
    requires = subprocess.check_output(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import importlib.metadata as m; print(m.requires('askasia-provisioner'))",
        ],
        cwd=cwd,
        text=True,
    )
    for dependency in ("psycopg", "boto3", "jinja2", "typer", "rich", "pyyaml"):
        assert dependency in requires
    for extra in ("pulumi", "local", "dev"):
        assert f'extra == "{extra}"' in requires


def test_sql_render_and_verify_run_every_check_from_another_folder(installed: Path, elsewhere, outputs) -> None:
    cwd, env, outputs_file = elsewhere
    rendered = run(installed, "sql", "render", "--stack", "local", "--outputs", str(outputs_file), cwd=cwd, env=env)
    assert rendered.returncode == 0, rendered.stderr
    assert "-- platform V001__control_plane" in rendered.stdout and "create schema platform" in rendered.stdout

    verified = run(
        installed,
        "tenants",
        "verify",
        "--stack",
        "local",
        "--outputs",
        str(outputs_file),
        "--probes",
        "0",
        "--json",
        cwd=cwd,
        env=env,
    )
    report = json.loads(verified.stdout)
    assert verified.returncode in (0, 1), verified.stderr
    for cell in report["cells"]:
        catalog = [c for c in cell["checks_run"] if c != "ledger_drift"]
        assert len(catalog) >= 25, cell["checks_run"]


@pytest.mark.parametrize(
    ("removed", "args"),
    [
        ("verify", ("tenants", "verify", "--probes", "0")),
        ("platform", ("sql", "render")),
    ],
)
def test_a_package_without_its_sql_fails_closed(
    installed: Path, elsewhere, removed: str, args: tuple[str, ...]
) -> None:
    cwd, env, outputs_file = elsewhere
    site = next((installed / "lib").glob("python*/site-packages"))
    target = site / "provisioner" / "sql" / removed
    stash = cwd / f"stash-{removed}"
    shutil.move(target, stash)
    try:
        result = run(installed, *args, "--stack", "local", "--outputs", str(outputs_file), cwd=cwd, env=env)
    finally:
        shutil.move(stash, target)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "package is incomplete" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
