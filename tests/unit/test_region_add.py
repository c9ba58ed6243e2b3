"""`provision region add`: a new stack file from an existing one, refused with the gate's reason
(region or DR copy) and nothing written; the new stack passes `provision plan` and the register
shows its transfers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from compliance.register import build_register
from stackconfig.files import load_stack_config
from tests.unit.test_plan import run_cli

STACKS = Path(__file__).resolve().parents[2] / "stacks"


@pytest.fixture
def stacks(tmp_path: Path) -> Path:
    copy = tmp_path / "stacks"
    shutil.copytree(STACKS, copy)
    return copy


def add(stacks: Path, capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    return run_cli(["region", "add", *args, "--stacks-dir", str(stacks)], capsys, monkeypatch)


def test_a_new_region_is_written_planned_and_registered(stacks, capsys, monkeypatch):
    code, out, err = add(stacks, capsys, monkeypatch, "--region", "eu-west-2", "--from-stack", "prod-eu-west-1")
    assert code == 0, err
    assert "wrote" in out and "EU -> eu-west-2 (GB) primary: adequacy" in out
    assert "are prod-eu-west-1's: set eu-west-2's before pulumi up" in err
    new = load_stack_config("prod-eu-west-2", stacks)
    source = load_stack_config("prod-eu-west-1", stacks)
    assert (new.region, new.dr_region, new.origins) == ("eu-west-2", "eu-central-1", ("EU", "UK"))
    assert [c.name for c in new.cells] == [c.name for c in source.cells]
    assert new.payments.rotation_lambda_arn == (
        "arn:aws:lambda:eu-west-2:123456789012:function:askasia-prod-eu-west-2-stripe-key-rotation"
    )
    # prod-eu-west-1 already watches eu-central-1 with GuardDuty: one detector per region.
    assert new.dr_breach_detection is False and "already has GuardDuty from prod-eu-west-1" in err

    code, out, err = run_cli(["plan", "--stack", "prod-eu-west-2", "--stacks-dir", str(stacks)], capsys, monkeypatch)
    assert code == 0, out + err
    assert "OK: 0 mandatory violation(s)" in out

    register = build_register(["prod-eu-west-2"], stacks)
    arrows = {(a.origin, a.role, a.region, a.kind) for a in register.arrows}
    assert ("EU", "primary", "eu-west-2", "adequacy") in arrows
    assert ("UK", "dr", "eu-central-1", "adequacy") in arrows
    assert register.unrecorded == []


def test_the_network_can_be_given_and_restores_are_not_copied(stacks, capsys, monkeypatch):
    source = stacks / "Pulumi.prod-eu-west-1.yaml"
    doc = yaml.safe_load(source.read_text())
    doc["config"]["askasia:cells"][0]["restoreFromSnapshot"] = "askasia-prod-eu-west-1-cell-1-final"
    source.write_text(yaml.safe_dump(doc))
    code, _, err = add(
        stacks,
        capsys,
        monkeypatch,
        *("--region", "eu-north-1", "--from-stack", "prod-eu-west-1", "--stack", "prod-eu-north-1"),
        *("--dr-region", "eu-west-3", "--vpc-id", "vpc-0123456789abcdef0"),
        *("--subnet-id", "subnet-0123456789abcdef1", "--subnet-id", "subnet-0123456789abcdef2"),
        *("--source-security-group-id", "sg-0123456789abcdef3"),
    )
    assert code == 0, err
    assert "before pulumi up" not in err and "GuardDuty" not in err
    new = load_stack_config("prod-eu-north-1", stacks)
    assert new.vpc_id == "vpc-0123456789abcdef0" and len(new.private_subnet_ids) == 2
    assert all(c.restore_from_snapshot is None for c in new.cells)
    assert new.dr_breach_detection is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--region", "me-south-1"), "origin EU -> region me-south-1 (BH, Bahrain) has no recorded basis"),
        (
            ("--region", "eu-west-3", "--dr-region", "me-south-1"),
            "origin EU -> DR region me-south-1 (BH, Bahrain) has no recorded basis",
        ),
        (("--region", "mars-north-1"), "unknown AWS region 'mars-north-1'"),
        (("--region", "eu-west-1"), "prod-eu-west-1 already runs in eu-west-1"),
        (("--region", "us-east-1"), "stack prod-us-east-1 already runs in us-east-1"),
        (("--region", "eu-west-3", "--stack", "prod-us-east-1"), "Pulumi.prod-us-east-1.yaml exists"),
        (("--region", "eu-west-3", "--stack", "Prod_West"), "stack name 'Prod_West' must be lower-case"),
        (("--region", "eu-west-3", "--vpc-id", "vpc-0123456789abcdef0"), "give --vpc-id, --subnet-id"),
        (
            (
                "--region",
                "eu-west-3",
                "--vpc-id",
                "vpc-1",
                "--subnet-id",
                "subnet-1",
                "--source-security-group-id",
                "sg-1",
            ),
            "'vpc-1' is not a valid VPC id",
        ),
    ],
)
def test_refusals_are_one_line_exit_2_and_write_nothing(stacks, capsys, monkeypatch, args, message):
    before = sorted(p.name for p in stacks.iterdir())
    code, out, err = add(stacks, capsys, monkeypatch, "--from-stack", "prod-eu-west-1", *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in stacks.iterdir()) == before


def test_an_unknown_source_stack_is_refused(stacks, capsys, monkeypatch):
    code, _, err = add(stacks, capsys, monkeypatch, "--region", "eu-west-3", "--from-stack", "prod-nowhere-1")
    assert code == 2 and "stack config file not found" in err


def test_a_region_another_stack_watches_gets_no_second_guardduty_detector(stacks, capsys, monkeypatch):
    code, _, err = add(stacks, capsys, monkeypatch, "--region", "eu-central-1", "--from-stack", "prod-eu-west-1")
    assert code == 0, err
    new = load_stack_config("prod-eu-central-1", stacks)
    assert new.dr_region == "eu-west-1"  # the source's DR region is this region: the source's region
    assert (new.guard_duty_detector, new.dr_breach_detection) == (False, False)
    assert "eu-central-1's GuardDuty detector is prod-eu-west-1's" in err
