"""The offline mock runner: re-entrant, deterministic, loud about what it cannot mock."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pytest

from offline.mockrun import run_function_under_mocks, run_under_mocks
from tests.unit.mock_stacks import config, stack_run


def test_runs_are_reentrant_and_do_not_leak_between_stacks():
    first = stack_run("prod-eu-west-1")
    other = run_under_mocks(config("prod-ap-south-1"))
    again = run_under_mocks(config("prod-eu-west-1"))
    assert again.outputs == first.outputs
    assert [r.urn for r in again.resources] != [] and len(again.resources) == len(first.resources)
    assert all("::prod-ap-south-1::" not in r.urn for r in again.resources)
    assert all(r.urn.startswith("urn:pulumi:prod-ap-south-1::askasia-platform::") for r in other.resources)
    assert other.outputs["region"] == "ap-south-1"


def test_calls_are_recorded():
    r = stack_run("prod-us-east-1")
    tokens = [c.token for c in r.calls]
    assert "aws:index/getCallerIdentity:getCallerIdentity" in tokens
    subnets = [c.args["id"] for c in r.calls if c.token == "aws:ec2/getSubnet:getSubnet"]
    assert sorted(subnets) == sorted(config("prod-us-east-1").private_subnet_ids)


def test_unmocked_function_fails_loudly():
    def body() -> None:
        zones = aws.get_availability_zones_output()
        pulumi.export("zones", zones.names)

    with pytest.raises(NotImplementedError, match="no mock for function aws:index/getAvailabilityZones"):
        run_function_under_mocks(body, stack="probe", region="eu-west-1")


def test_outputs_are_json_ready_and_realistic():
    r = stack_run("prod-ap-south-1")
    cluster = r.outputs["clusters"][0]
    assert cluster["endpoint"].endswith(".ap-south-1.rds.amazonaws.com")
    assert cluster["master_secret_arn"].startswith("arn:aws:secretsmanager:ap-south-1:123456789012:secret:rds!cluster-")
    assert r.outputs["kms"]["backup"].startswith("arn:aws:kms:ap-south-1:123456789012:key/mrk-")


def test_program_errors_propagate():
    with pytest.raises(ValueError, match="boom"):
        run_function_under_mocks(lambda: (_ for _ in ()).throw(ValueError("boom")), stack="probe", region="eu-west-1")
