"""`provision plan`: the real program under mocks, judged by the rules, exit 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from offline.plan import PlanCouldNotRun, plan_stack
from tests.helpers import run_in_process as run_cli

STACKS = Path(__file__).resolve().parents[2] / "stacks"


def _stack_copy(tmp_path: Path, name: str, changes: dict[str, Any], base: str = "prod-eu-west-1") -> Path:
    """stacks/Pulumi.<base>.yaml copied to tmp as Pulumi.<name>.yaml with config changes."""
    doc = yaml.safe_load((STACKS / f"Pulumi.{base}.yaml").read_text(encoding="utf-8"))
    doc["config"].update(changes)
    (tmp_path / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return tmp_path


def test_clean_stack_exits_0_and_lists_the_inventory(capsys, monkeypatch) -> None:
    code, out, err = run_cli(["plan", "--stack", "prod-eu-west-1"], capsys, monkeypatch)
    assert code == 0, err
    assert "plan prod-eu-west-1: region eu-west-1, DR eu-central-1, origins EU, UK" in out
    assert "UK -> eu-central-1 (DE, dr): adequacy" in out
    cluster_line = next(line for line in out.splitlines() if "aws:rds/cluster:Cluster " in line)
    assert "  2  prod-eu-west-1-cell-1-cluster, prod-eu-west-1-cell-2-cluster" in cluster_line
    assert "violations: 0 mandatory" in out and out.rstrip().endswith("OK: 0 mandatory violation(s)")


def test_json_report_has_inventory_counts_and_no_violations(capsys, monkeypatch) -> None:
    code, out, _ = run_cli(["plan", "--stack", "prod-ap-south-1", "--json"], capsys, monkeypatch)
    report = json.loads(out)
    assert code == 0 and report["exit_code"] == 0 and report["mandatory"] == 0
    assert report["inventory"]["aws:rds/clusterInstance:ClusterInstance"]["count"] == 2
    assert report["inventory"]["aws:kms/key:Key"]["count"] == report["inventory"]["aws:kms/alias:Alias"]["count"] - 1
    assert report["resource_count"] == sum(v["count"] for v in report["inventory"].values())
    assert [t["basis"] for t in report["transfers"]] == ["domestic", "domestic"]


def test_insecure_on_purpose_with_the_opt_in_is_still_a_mandatory_violation(tmp_path, capsys, monkeypatch) -> None:
    stacks = _stack_copy(
        tmp_path,
        "test-insecure",
        {
            "askasia:deletionProtection": False,
            "askasia:allowInsecure": ["deletionProtection"],
        },
    )
    code, out, err = run_cli(["plan", "--stack", "test-insecure", "--stacks-dir", str(stacks)], capsys, monkeypatch)
    assert code == 1
    assert "[mandatory] rds-cluster-deletion-protection test-insecure-cell-1-cluster" in out
    assert "accepted weakenings (askasia:allowInsecure; still reported): deletionProtection" in out
    assert "rds-cluster-deletion-protection: deletionProtection is not true (+1 more)" in err


def test_weakening_without_the_opt_in_cannot_run(tmp_path, capsys, monkeypatch) -> None:
    stacks = _stack_copy(tmp_path, "test-sneaky", {"askasia:deletionProtection": False})
    code, _, err = run_cli(["plan", "--stack", "test-sneaky", "--stacks-dir", str(stacks)], capsys, monkeypatch)
    assert code == 2 and "allowInsecure" in err


def test_me_south_1_serving_eu_is_refused_with_one_line(tmp_path, capsys, monkeypatch) -> None:
    stacks = _stack_copy(
        tmp_path,
        "test-bahrain",
        {"aws:region": "me-south-1", "askasia:drRegion": "me-central-1", "askasia:origins": ["EU"]},
    )
    code, out, err = run_cli(["plan", "--stack", "test-bahrain", "--stacks-dir", str(stacks)], capsys, monkeypatch)
    assert code == 1
    error_lines = [line for line in err.splitlines() if line.strip()]
    assert len(error_lines) == 1
    for text in ("transfer-basis-recorded", "EU", "me-south-1", "BH", "compliance/transfers.yaml"):
        assert text in error_lines[0]
    assert "resources: 0" in out  # nothing is declared for a refused stack


def test_dr_copy_into_an_unrecorded_country_is_refused(tmp_path) -> None:
    stacks = _stack_copy(tmp_path, "test-dr-sg", {"askasia:drRegion": "ap-southeast-1"})
    report = plan_stack("test-dr-sg", stacks)
    assert report.exit_code == 1 and report.resources == []
    # every refused arrow is listed, one per origin the stack serves
    assert [v.rule_id for v in report.violations] == ["transfer-basis-recorded"] * 2
    assert [v.message.split(" has ")[0] for v in report.violations] == [
        "transfer refused: origin EU -> DR region ap-southeast-1 (SG, Singapore)",
        "transfer refused: origin UK -> DR region ap-southeast-1 (SG, Singapore)",
    ]


def test_missing_stack_file_exits_2(capsys, monkeypatch, tmp_path) -> None:
    code, out, err = run_cli(["plan", "--stack", "nope", "--stacks-dir", str(tmp_path)], capsys, monkeypatch)
    assert code == 2 and out == ""
    assert "Pulumi.nope.yaml: stack config file not found" in err


def test_program_failure_is_could_not_run(tmp_path) -> None:
    stacks = _stack_copy(tmp_path, "test-boom", {})

    def broken(_config):
        raise RuntimeError("provider exploded\nsecond line")

    with pytest.raises(PlanCouldNotRun, match="^program failed under mocks: RuntimeError: provider exploded$"):
        plan_stack("test-boom", stacks, runner=broken)
