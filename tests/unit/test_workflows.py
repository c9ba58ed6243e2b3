"""The CI workflows: valid against GitHub's schema, credentials only from the OIDC role, a matrix
that stacks/ decides, and every `provision ...` line a job runs is a command (with options) the
CLI has."""

from __future__ import annotations

import functools
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from provisioner import cli
from stackconfig.files import stack_names

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
ACTIONS = sorted((ROOT / ".github" / "actions").glob("*/action.yml"))
CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
PROVISION = re.compile(r"(?:^|[\s;&|(`])(?:\S*/)?provision\s+([^|;&)`\n]*)")


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the `on:` key as True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def steps(doc: dict):
    for name, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield name, job, step


@functools.cache
def command_tree() -> typer.core.TyperGroup:
    """The CLI as click sees it: the same tree its `--help` pages are made from."""
    cli._register()
    return typer.main.get_command(cli.app)


def provision_lines(script: str) -> list[list[str]]:
    """Each `provision ...` invocation in a shell script, as words (expressions become X)."""
    return [shlex.split(m.group(1)) for m in PROVISION.finditer(EXPRESSION.sub("X", script))]


def unknown_words(words: list[str]) -> list[str]:
    """What in one invocation the CLI would refuse: a missing command, or an option the command
    does not declare. Option values are never run: only the command path is looked up."""
    path = []
    for word in words:
        if word.startswith("-"):
            break
        path.append(word)
    command = command_tree()
    for word in path:
        subcommands = getattr(command, "commands", None)  # a group (typer carries its own click)
        if subcommands is None or word not in subcommands:
            return [" ".join(path)]
        command = subcommands[word]
    if hasattr(command, "commands"):  # a group, not a command
        return [" ".join(path) or "<no command>"]
    options = {
        name for param in command.params for name in (*param.opts, *param.secondary_opts) if name.startswith("--")
    }
    options.add("--help")
    return [w.split("=")[0] for w in words if w.startswith("--") and w.split("=")[0] not in options]


def schema_check(schema: str, files: list[Path]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", schema, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_there_are_the_three_workflows():
    assert {p.stem for p in WORKFLOWS} == {"preview", "deploy", "drift"}


def test_workflows_and_the_action_match_githubs_schemas():
    result = schema_check("vendor.github-workflows", WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr
    result = schema_check("vendor.github-actions", ACTIONS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((ROOT / ".github/workflows/deploy.yml").read_text().replace("runs-on:", "run-on:", 1))
    result = schema_check("vendor.github-workflows", [broken])
    assert result.returncode != 0


def test_every_provision_command_a_job_runs_exists():
    seen = []
    for path in [*WORKFLOWS, *ACTIONS]:
        doc = load(path)
        step_list = doc["runs"]["steps"] if "runs" in doc else [s for _, _, s in steps(doc)]
        for step in step_list:
            for words in provision_lines(step.get("run", "")):
                assert unknown_words(words) == [], f"{path.name}: provision {' '.join(words)}"
                seen.append(" ".join(w for w in words if not w.startswith("-") and w != "X"))
    # What the issue asks CI to run, each at least once.
    for expected in ("stacks list", "plan", "tenants apply", "tenants verify"):
        assert any(s.startswith(expected) for s in seen), (expected, seen)


def test_the_command_check_refuses_what_the_cli_does_not_have():
    assert unknown_words(["tenants", "aply", "--stack", "X"]) == ["tenants aply"]
    assert unknown_words(["tenants", "verify", "--stack", "X", "--tapp"]) == ["--tapp"]
    assert unknown_words(["tenants", "--stack", "X"]) == ["tenants"]
    assert unknown_words(["tenants", "apply", "--stack", "X", "--dry-run"]) == []
    assert provision_lines('set -o pipefail\n.venv/bin/provision tenants verify --stack "$S" --tap | tee v.tap') == [
        ["tenants", "verify", "--stack", "$S", "--tap"]
    ]


def test_aws_credentials_come_from_the_oidc_role_only():
    for path in [*WORKFLOWS, *ACTIONS]:
        text = path.read_text()
        assert "AWS_ACCESS_KEY_ID" not in text and "AWS_SECRET_ACCESS_KEY" not in text, path.name
        # The only secret a workflow reads is the token GitHub issues to the run itself.
        assert set(re.findall(r"secrets\.(\w+)", text)) <= {"GITHUB_TOKEN"}, path.name
    for path in WORKFLOWS:
        doc = load(path)
        assert doc["permissions"] == {"contents": "read"}, path.name  # least by default
        for name, job, step in steps(doc):
            if step.get("uses", "").startswith(("./.github/actions/provisioner", "aws-actions/")):
                assert job["permissions"].get("id-token") == "write", (path.name, name)
                assert step["with"]["role-to-assume"].startswith("${{ vars."), (path.name, name)


def test_the_matrix_is_what_stacks_holds():
    cli._register()
    result = CliRunner().invoke(cli.app, ["stacks", "list", "--json", "--stacks-dir", str(ROOT / "stacks")])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["stack"] for r in rows] == stack_names(ROOT / "stacks")
    assert all(r["region"] != r["dr_region"] for r in rows)
    for path in WORKFLOWS:
        doc = load(path)
        matrix_jobs = [job for job in doc["jobs"].values() if "strategy" in job]
        assert matrix_jobs, path.name
        for job in matrix_jobs:
            assert job["strategy"]["matrix"] == {"include": "${{ fromJSON(needs.stacks.outputs.matrix) }}"}
            assert "stacks" in job["needs"]


def pulumi_steps(name: str) -> list[dict]:
    workflow = load(ROOT / ".github/workflows" / f"{name}.yml")
    return [s for _, _, s in steps(workflow) if "pulumi/actions" in s.get("uses", "")]


def test_pulumi_runs_with_the_policy_pack_and_the_drift_job_expects_no_changes():
    (preview,) = pulumi_steps("preview")
    assert preview["with"]["command"] == "preview" and preview["with"]["comment-on-pr"] is True
    (up,) = pulumi_steps("deploy")
    assert up["with"]["command"] == "up"
    (drift,) = pulumi_steps("drift")
    assert drift["with"]["expect-no-changes"] is True
    for step in (preview, up, drift):
        assert step["with"]["policyPacks"] == "policy"
    drift_runs = " ".join(s.get("run", "") for _, _, s in steps(load(ROOT / ".github/workflows/drift.yml")))
    assert "tenants apply" in drift_runs and "--dry-run --expect-no-changes" in drift_runs
