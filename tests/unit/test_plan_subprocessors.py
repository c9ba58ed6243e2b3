"""`provision plan` checks the sub-processor list as deployed (tags and providers against
compliance/subprocessors.yaml) and every sub-processor's countries against transfers.yaml."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from compliance import register
from offline.plan import SUBPROCESSOR_TAG, _mock_runner, plan_stack
from policy.rules import Resource
from stackconfig.config import PlatformConfig

STACKS = Path(__file__).resolve().parents[2] / "stacks"


@functools.cache
def declared(stack: str = "prod-eu-west-1") -> tuple[Resource, ...]:
    from stackconfig.files import load_stack_config

    return tuple(_mock_runner(load_stack_config(stack, STACKS)))


def retagged(old: str, new: str) -> Sequence[Resource]:
    out = []
    for res in declared():
        tags = dict(res.inputs.get("tags") or {})
        if tags.get(SUBPROCESSOR_TAG) == old:
            res = dataclasses.replace(res, inputs={**res.inputs, "tags": {**tags, SUBPROCESSOR_TAG: new}})
        out.append(res)
    return out


def violations(report, rule_id: str) -> list[str]:
    return [v.message for v in report.violations if v.rule_id == rule_id]


def test_every_stack_deploys_exactly_the_listed_subprocessors() -> None:
    for stack in ("prod-eu-west-1", "prod-ap-south-1", "prod-us-east-1"):
        report = plan_stack(stack, STACKS)
        assert report.subprocessors["declared"] == report.subprocessors["listed"], stack
        assert violations(report, "subprocessors-as-deployed") == []
    assert plan_stack("prod-ap-south-1", STACKS).subprocessors["declared"] == ["amazon-ses", "aws", "razorpay"]


def test_a_subprocessor_the_program_declares_but_the_list_lacks_fails_plan() -> None:
    def runner(_config: PlatformConfig) -> Sequence[Resource]:
        return retagged("stripe", "adyen")

    report = plan_stack("prod-eu-west-1", STACKS, runner=runner)
    found = violations(report, "subprocessors-as-deployed")
    assert report.exit_code == 1
    assert any("declares sub-processor 'adyen'" in m for m in found), found
    assert any("names 'stripe' for this stack but the program declares nothing" in m for m in found), found


def test_a_provider_no_subprocessor_hosts_fails_plan() -> None:
    def runner(_config: PlatformConfig) -> Sequence[Resource]:
        return [*declared(), Resource("cloudflare:index/record:Record", "dns", {})]

    found = violations(plan_stack("prod-eu-west-1", STACKS, runner=runner), "subprocessors-as-deployed")
    assert found == ["1 resource(s) of Pulumi package 'cloudflare' (dns) belong to no listed sub-processor"]


def test_a_subprocessor_country_without_a_basis_fails_plan(tmp_path, monkeypatch) -> None:
    doc = yaml.safe_load(register.SUBPROCESSORS_FILE.read_text(encoding="utf-8"))
    stripe = next(e for e in doc["subprocessors"] if e["id"] == "stripe")
    stripe["countries"] = ["IE", "US", "BH"]  # a processing site in Bahrain: nothing recorded for EU or UK
    moved = tmp_path / "subprocessors.yaml"
    moved.write_text(yaml.safe_dump(doc), encoding="utf-8")
    monkeypatch.setattr(register, "SUBPROCESSORS_FILE", moved)

    report = plan_stack("prod-eu-west-1", STACKS, runner=lambda _c: declared())
    found = violations(report, "subprocessor-transfers-recorded")
    assert report.exit_code == 1
    assert found == [
        "origin EU -> BH (Bahrain) through sub-processor stripe has no recorded basis",
        "origin UK -> BH (Bahrain) through sub-processor stripe has no recorded basis",
    ]
    results = report.control_results()
    assert results["subprocessor-transfers-recorded"][0] == "fail"
    assert results["transfer-basis-recorded"][0] == "pass"


@pytest.mark.parametrize("stack", ["prod-eu-west-1"])
def test_control_results_name_every_rule_with_pass_fail_or_not_applicable(stack: str) -> None:
    results = plan_stack(stack, STACKS).control_results()
    from policy.rules import RULES, STACK_RULES

    assert set(results) >= {r.id for r in RULES} | {r.id for r in STACK_RULES}
    assert results["kms-key-rotation"][0] == "pass" and "aws:kms/key:Key checked" in results["kms-key-rotation"][1]
    assert {status for status, _ in results.values()} <= {"pass", "n/a"}
