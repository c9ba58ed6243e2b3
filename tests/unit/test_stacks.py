"""Every stack file: valid config, passes the transfer gate, and outputs exactly the contract."""

from __future__ import annotations

import json
import re
import runpy
from typing import Any

import pulumi
import pytest
import yaml

from contract.outputs import parse_outputs
from offline.mockrun import run_function_under_mocks
from stackconfig.hardening import RDS_CA_IDENTIFIERS
from tests.unit.mock_stacks import ROOT, STACKS, STACKS_DIR, config, stack_names, stack_run

CONTRACT = {"stack", "region", "origins", "clusters", "kms", "dr", "audit_log_groups", "jwt"}
CLUSTER_FIELDS = {
    "cell": str,
    "endpoint": str,
    "app_endpoint": str,
    "proxy_endpoint": str,
    "port": int,
    "database": str,
    "master_secret_arn": str,
    "ca_bundle": str,
    "iam_auth": bool,
}
KMS = {"data", "logs", "backup", "secrets", "jwt_signing"}
TIERS = {"starter", "growth", "enterprise"}


def assert_contract_shape(out: dict[str, Any]) -> None:
    """Strict: exactly these keys, exactly these types (bool is not an int here)."""
    assert set(out) == CONTRACT
    assert isinstance(out["stack"], str) and isinstance(out["region"], str)
    assert isinstance(out["origins"], list) and all(isinstance(o, str) for o in out["origins"])
    assert isinstance(out["clusters"], list) and out["clusters"]
    for cluster in out["clusters"]:
        assert set(cluster) == set(CLUSTER_FIELDS)
        for name, kind in CLUSTER_FIELDS.items():
            assert type(cluster[name]) is kind, f"{name}: {cluster[name]!r}"
    assert set(out["kms"]) == KMS and all(isinstance(v, str) for v in out["kms"].values())
    assert set(out["dr"]) == {"region", "mode"} and all(isinstance(v, str) for v in out["dr"].values())
    assert set(out["audit_log_groups"]) == TIERS
    assert all(isinstance(v, str) for v in out["audit_log_groups"].values())


def test_the_production_stacks_exist():
    assert set(STACKS) <= set(stack_names())


@pytest.mark.parametrize("stack", stack_names())
def test_stack_outputs_match_the_contract(stack):
    cfg = config(stack)
    out = stack_run(stack).outputs
    assert_contract_shape(out)
    assert json.loads(json.dumps(out)) == out
    assert (out["stack"], out["region"]) == (stack, cfg.region)
    assert out["origins"] == list(cfg.origins)
    assert out["dr"] == {"region": cfg.dr_region, "mode": "snapshot-copy"}
    assert out["dr"]["region"] != out["region"]
    assert [c["cell"] for c in out["clusters"]] == [c.name for c in cfg.cells]
    for cluster in out["clusters"]:
        assert re.fullmatch(
            rf"askasia-{stack}-{cluster['cell']}\.cluster-[0-9a-f]+\.{cfg.region}\.rds\.amazonaws\.com",
            cluster["endpoint"],
        )
        assert cluster["port"] == 5432
        assert cluster["database"] == "platform"
        assert cluster["master_secret_arn"].startswith(f"arn:aws:secretsmanager:{cfg.region}:")
        assert cluster["ca_bundle"] in RDS_CA_IDENTIFIERS
        assert cluster["iam_auth"] is True
    for arn in out["kms"].values():
        assert re.fullmatch(rf"arn:aws:kms:{cfg.region}:\d{{12}}:key/(mrk-)?[0-9a-f-]+", arn)
    assert len(set(out["kms"].values())) == len(KMS)
    assert out["audit_log_groups"] == {t: f"/askasia/{stack}/audit/{t}" for t in TIERS}
    assert out["jwt"] == {
        "jwks_parameter": f"/askasia/{stack}/auth/jwks",
        "config_parameter": f"/askasia/{stack}/auth/jwt",
    }


@pytest.mark.parametrize("stack", stack_names())
def test_provision_reads_the_outputs(stack):
    parsed = parse_outputs(stack_run(stack).outputs)
    assert parsed.cells == [c.name for c in config(stack).cells]


@pytest.mark.parametrize("stack", stack_names())
def test_stack_keeps_every_secure_default(stack):
    cfg = config(stack)
    assert cfg.weakened_settings == () and cfg.allow_insecure == ()
    assert cfg.payments.rotation_lambda_arn, "production payment credentials rotate"
    r = stack_run(stack)
    assert all(c.inputs["deletionProtection"] is True for c in r.of_type("aws:rds/cluster:Cluster"))
    assert all(i.inputs["publiclyAccessible"] is False for i in r.of_type("aws:rds/clusterInstance:ClusterInstance"))


def test_entry_point_reads_engine_config_and_exports_the_contract():
    doc = yaml.safe_load((STACKS_DIR / "Pulumi.prod-ap-south-1.yaml").read_text())["config"]
    # The engine hands the program strings, structured values as JSON.
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in doc.items()})
    try:
        r = run_function_under_mocks(
            lambda: runpy.run_path(str(ROOT / "__main__.py")), stack="prod-ap-south-1", region="ap-south-1"
        )
    finally:
        pulumi.runtime.set_all_config({})
    assert r.outputs == stack_run("prod-ap-south-1").outputs
    assert_contract_shape(r.outputs)


def test_stack_files_hold_no_secrets():
    for path in STACKS_DIR.glob("Pulumi.*.yaml"):
        text = path.read_text()
        assert "secure:" not in text and "password" not in text.lower(), path.name
