"""The CrossGuard adapter, and the rules against inputs the real pulumi_aws SDK produces.

The pack itself runs only under `pulumi preview --policy-pack policy`, which needs the CLI;
here we check that it imports, maps every rule with the right enforcement, and reports or
skips exactly as the SDK's validation protocol expects.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from contract.tiers import SERVER_LIMITS
from offline.mockrun import run_function_under_mocks
from policy.engine import evaluate
from policy.rules import RULES, STACK_RULES, Resource

POLICY_DIR = Path(__file__).resolve().parents[2] / "policy"


def _pack_policies() -> list[Any]:
    module = importlib.import_module("policy.__main__")  # __name__ != "__main__": builds, does not serve
    return module.POLICIES


def test_pack_project_file_runs_the_python_pack_from_the_repo_venv() -> None:
    doc = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert doc["runtime"]["name"] == "python"
    assert (POLICY_DIR / doc["runtime"]["options"]["virtualenv"]).resolve() == POLICY_DIR.parent / ".venv"


def test_pack_maps_every_rule_once_with_its_enforcement_level() -> None:
    policies = {p.name: p for p in _pack_policies()}
    assert set(policies) == {r.id for r in (*RULES, *STACK_RULES)}
    for rule in RULES:
        policy = policies[rule.id]
        assert isinstance(policy, ResourceValidationPolicy)
        assert policy.enforcement_level == EnforcementLevel(rule.severity)
        assert policy.description == rule.description
    for srule in STACK_RULES:
        assert isinstance(policies[srule.id], StackValidationPolicy)
        assert policies[srule.id].enforcement_level == EnforcementLevel(srule.severity)


def _validate(policy_name: str, type_token: str, props: dict[str, Any]) -> list[str]:
    policy = next(p for p in _pack_policies() if p.name == policy_name)
    reported: list[str] = []
    args = ResourceValidationArgs(type_token, unknown_checking_proxy(props), "urn:pulumi:s::p::t::r", "r", None, None)  # type: ignore[arg-type]
    policy.validate(args, lambda message, urn=None: reported.append(message))
    return reported


def test_pack_reports_a_violation_with_its_remediation() -> None:
    reported = _validate("rds-cluster-deletion-protection", "aws:rds/cluster:Cluster", {"deletionProtection": False})
    assert reported == [
        "deletionProtection is not true. Fix: Set deletion_protection=True "
        "(turn it off explicitly only to retire a cell)."
    ]


def test_pack_ignores_other_resource_types_and_passes_compliant_ones() -> None:
    assert _validate("rds-cluster-deletion-protection", "aws:s3/bucket:Bucket", {}) == []
    assert _validate("rds-cluster-deletion-protection", "aws:rds/cluster:Cluster", {"deletionProtection": True}) == []


def test_value_unknown_during_preview_raises_so_the_sdk_skips_the_rule() -> None:
    with pytest.raises(UnknownValueError):
        _validate(
            "rds-cluster-encrypted-cmk",
            "aws:rds/cluster:Cluster",
            {"storageEncrypted": True, "kmsKeyId": UNKNOWN_STRING_VALUE},
        )


def _policy_resource(
    type_token: str, name: str, props: dict[str, Any], deps: dict[str, list[PolicyResource]] | None = None
) -> PolicyResource:
    return PolicyResource(
        type_token,
        unknown_checking_proxy(props),
        f"urn:pulumi:s::p::{type_token}::{name}",
        name,
        None,
        None,
        None,
        [],
        deps or {},
    )  # type: ignore[arg-type]


def test_stack_policy_matches_attachments_through_property_dependencies() -> None:
    policy = next(p for p in _pack_policies() if p.name == "s3-bucket-controls-attached")
    bucket = _policy_resource("aws:s3/bucket:Bucket", "audit", {"bucket": UNKNOWN_STRING_VALUE})
    pab = _policy_resource(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "audit-pab",
        {"bucket": UNKNOWN_STRING_VALUE},
        {"bucket": [bucket]},
    )
    reported: list[tuple[str, str | None]] = []
    policy.validate(StackValidationArgs([bucket, pab]), lambda message, urn=None: reported.append((message, urn)))
    assert len(reported) == 1
    message, urn = reported[0]
    assert message.startswith("audit: no bucket policy, encryption configuration, lifecycle configuration")
    assert "public access block" not in message and urn == bucket.urn


def test_pack_entry_point_imports_from_its_own_directory(tmp_path: Path) -> None:
    # The CLI runs the pack directory as a program, from wherever; only the guard stops it serving.
    probe = "import runpy, sys; g = runpy.run_path(sys.argv[1], run_name='pack_probe'); print(len(g['POLICIES']))"
    done = subprocess.run(
        [sys.executable, "-c", probe, str(POLICY_DIR)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.strip()) == len(RULES) + len(STACK_RULES)


# --- the property names rules read are the ones the SDK sends ---------------------------------


def _declare(secure: bool) -> None:
    key = aws.kms.Key(
        "key",
        enable_key_rotation=secure,
        deletion_window_in_days=30,
        policy=json.dumps(
            {
                "Statement": [
                    {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"}, "Action": "kms:*", "Resource": "*"}
                ]
            }
        ),
    )
    params = aws.rds.ClusterParameterGroup(
        "params",
        name="cell-params",
        family="aurora-postgresql16",
        parameters=[
            aws.rds.ClusterParameterGroupParameterArgs(
                name="rds.force_ssl", value="1" if secure else "0", apply_method="pending-reboot"
            ),
            aws.rds.ClusterParameterGroupParameterArgs(name="password_encryption", value="scram-sha-256"),
            *(
                aws.rds.ClusterParameterGroupParameterArgs(name=n, value=v if secure else "-1")
                for n, v in SERVER_LIMITS.items()
            ),
        ],
    )
    cluster = aws.rds.Cluster(
        "cluster",
        engine="aurora-postgresql",
        storage_encrypted=True,
        kms_key_id=key.arn,
        deletion_protection=secure,
        iam_database_authentication_enabled=True,
        backup_retention_period=14 if secure else 1,
        enabled_cloudwatch_logs_exports=["postgresql"],
        copy_tags_to_snapshot=True,
        db_cluster_parameter_group_name=params.name,
        performance_insights_enabled=True,
        performance_insights_kms_key_id=key.arn,
        manage_master_user_password=True,
        master_user_secret_kms_key_id=key.arn,
        skip_final_snapshot=False,
        final_snapshot_identifier="cluster-final",
    )
    if secure:
        aws.secretsmanager.SecretPolicy(
            "master-secret-policy",
            secret_arn=cluster.master_user_secrets.apply(lambda secrets: secrets[0].secret_arn),
            policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "secretsmanager:GetSecretValue",
                            "Resource": "*",
                            "Condition": {"StringNotEquals": {"aws:PrincipalArn": "arn:aws:iam::1:role/deployer"}},
                        }
                    ],
                }
            ),
        )
    for i in (1, 2):
        aws.rds.ClusterInstance(
            f"instance-{i}",
            cluster_identifier=cluster.id,
            instance_class="db.r6g.large",
            engine="aurora-postgresql",
            publicly_accessible=not secure,
            auto_minor_version_upgrade=True,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=key.arn,
            monitoring_interval=60,
            monitoring_role_arn="arn:aws:iam::1:role/monitoring",
        )
    aws.rds.Proxy(
        "proxy",
        engine_family="POSTGRESQL",
        require_tls=secure,
        role_arn="arn:aws:iam::1:role/p",
        vpc_subnet_ids=["subnet-1"],
        auths=[aws.rds.ProxyAuthArgs(auth_scheme="SECRETS", secret_arn="x")],
    )
    aws.cloudtrail.Trail(
        "trail",
        s3_bucket_name="b",
        is_multi_region_trail=secure,
        enable_log_file_validation=True,
        kms_key_id=key.arn,
        cloud_watch_logs_group_arn="arn:aws:logs:::lg",
        cloud_watch_logs_role_arn="arn:aws:iam::1:role/t",
    )
    aws.cloudwatch.LogGroup(
        "audit-enterprise",
        retention_in_days=400 if secure else 90,
        kms_key_id=key.arn,
        tags={"askasia:plan-tier": "enterprise"},
    )
    aws.secretsmanager.Secret("secret", kms_key_id=key.arn if secure else None)
    aws.s3.BucketPublicAccessBlock(
        "pab",
        bucket="b",
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=secure,
    )
    aws.rds.ClusterSnapshotCopy(
        "copy",
        source_db_cluster_snapshot_identifier="s",
        target_db_cluster_snapshot_identifier="t",
        destination_region="eu-central-1",
        kms_key_id=key.arn if secure else None,
    )


def _run(secure: bool) -> list[Resource]:
    run = run_function_under_mocks(lambda: _declare(secure), stack="policy-probe", region="eu-west-1")
    return [Resource(r.type, r.name, r.inputs, {**r.outputs, "id": r.id}) for r in run.resources if r.custom]


def test_a_secure_program_declared_through_the_sdk_passes_every_mandatory_rule() -> None:
    mandatory = [v.one_line() for v in evaluate(_run(secure=True)) if v.mandatory]
    assert mandatory == []


def test_the_same_program_made_insecure_is_caught_rule_by_rule() -> None:
    found = {(v.rule_id, v.resource_name) for v in evaluate(_run(secure=False))}
    assert found >= {
        ("kms-key-rotation", "key"),
        ("rds-pg-force-ssl", "params"),
        ("rds-pg-session-limits", "params"),
        ("rds-cluster-force-ssl-linked", "cluster"),
        ("rds-cluster-deletion-protection", "cluster"),
        ("rds-cluster-backup-retention", "cluster"),
        ("rds-master-secret-readers", "cluster"),
        ("rds-instance-not-public", "instance-1"),
        ("rds-proxy-require-tls", "proxy"),
        ("cloudtrail-multi-region", "trail"),
        ("logs-retention-plan-tier", "audit-enterprise"),
        ("secret-cmk", "secret"),
        ("s3-public-access-block", "pab"),
        ("rds-snapshot-copy-cmk", "copy"),
    }


def test_pulumi_mocks_leave_no_runtime_state_behind() -> None:
    # The runs above reset the SDK per run; a later one still records only its own resources.
    first = _run(secure=True)
    second = _run(secure=True)
    assert sorted(r.name for r in first) == sorted(r.name for r in second)
    assert pulumi.get_stack() == "policy-probe"
