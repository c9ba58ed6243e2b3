"""Every rule: a resource that breaks it is reported, a compliant one passes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from contract.tiers import SERVER_LIMITS
from policy.engine import check_resource, check_stack, evaluate
from policy.rules import RULES, STACK_RULES, Resource

KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-4333-a444-555555555555"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


GOOD_CLUSTER: dict[str, Any] = {
    "engine": "aurora-postgresql",
    "storageEncrypted": True,
    "kmsKeyId": KEY_ARN,
    "deletionProtection": True,
    "iamDatabaseAuthenticationEnabled": True,
    "backupRetentionPeriod": 35.0,
    "enabledCloudwatchLogsExports": ["postgresql"],
    "copyTagsToSnapshot": True,
    "dbClusterParameterGroupName": "askasia-prod-cell-1",
    "performanceInsightsEnabled": True,
    "performanceInsightsKmsKeyId": KEY_ARN,
    "manageMasterUserPassword": True,
    "masterUserSecretKmsKeyId": KEY_ARN,
    "skipFinalSnapshot": False,
    "finalSnapshotIdentifier": "askasia-prod-cell-1-final",
}
GOOD_INSTANCE: dict[str, Any] = {
    "publiclyAccessible": False,
    "performanceInsightsEnabled": True,
    "performanceInsightsKmsKeyId": KEY_ARN,
    "autoMinorVersionUpgrade": True,
    "monitoringInterval": 60.0,
    "monitoringRoleArn": "arn:aws:iam::123456789012:role/monitoring",
}
GOOD_PARAMS: dict[str, Any] = {
    "family": "aurora-postgresql16",
    "parameters": [
        {"name": "rds.force_ssl", "value": "1", "applyMethod": "pending-reboot"},
        {"name": "password_encryption", "value": "scram-sha-256", "applyMethod": "immediate"},
        {"name": "ssl_min_protocol_version", "value": "TLSv1.2", "applyMethod": "pending-reboot"},
        *({"name": n, "value": v, "applyMethod": "immediate"} for n, v in SERVER_LIMITS.items()),
    ],
}
GOOD_KEY: dict[str, Any] = {
    "enableKeyRotation": True,
    "deletionWindowInDays": 30.0,
    "policy": _policy(
        {
            "Sid": "Account",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "Logs",
            "Effect": "Allow",
            "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*"],
            "Resource": "*",
        },
    ),
}
GOOD_TRAIL: dict[str, Any] = {
    "isMultiRegionTrail": True,
    "enableLogFileValidation": True,
    "kmsKeyId": KEY_ARN,
    "cloudWatchLogsGroupArn": "arn:aws:logs:eu-west-1:123456789012:log-group:/trail:*",
    "cloudWatchLogsRoleArn": "arn:aws:iam::123456789012:role/trail",
}
SSL_DENY = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
GOOD_LIFECYCLE = {"rules": [{"id": "expire", "status": "Enabled", "expiration": {"days": 400.0}}]}
GOOD_SSE = {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY_ARN}}]}
GOOD_PLAN = {
    "rules": [
        {
            "ruleName": "daily",
            "lifecycle": {"deleteAfter": 35.0},
            "copyActions": [
                {
                    "destinationVaultArn": "arn:aws:backup:eu-central-1:1:backup-vault:dr",
                    "lifecycle": {"deleteAfter": 35.0},
                }
            ],
        }
    ]
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = dict(base)
    for key, value in changes.items():
        if value is ...:
            out.pop(key, None)
        else:
            out[key] = value
    return out


# rule id -> (compliant inputs, violating inputs, text the message must contain)
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "rds-cluster-encrypted-cmk": (GOOD_CLUSTER, _with(GOOD_CLUSTER, kmsKeyId=...), "kmsKeyId"),
    "rds-cluster-deletion-protection": (
        GOOD_CLUSTER,
        _with(GOOD_CLUSTER, deletionProtection=False),
        "deletionProtection",
    ),
    "rds-cluster-iam-auth": (
        GOOD_CLUSTER,
        _with(GOOD_CLUSTER, iamDatabaseAuthenticationEnabled=...),
        "iamDatabaseAuthenticationEnabled",
    ),
    "rds-cluster-backup-retention": (GOOD_CLUSTER, _with(GOOD_CLUSTER, backupRetentionPeriod=3.0), "3 < 7"),
    "rds-cluster-postgresql-logs": (GOOD_CLUSTER, _with(GOOD_CLUSTER, enabledCloudwatchLogsExports=[]), "postgresql"),
    "rds-cluster-copy-tags-to-snapshot": (
        GOOD_CLUSTER,
        _with(GOOD_CLUSTER, copyTagsToSnapshot=...),
        "copyTagsToSnapshot",
    ),
    "rds-cluster-custom-parameter-group": (
        GOOD_CLUSTER,
        _with(GOOD_CLUSTER, dbClusterParameterGroupName="default.aurora-postgresql16"),
        "default",
    ),
    "rds-cluster-performance-insights-cmk": (
        GOOD_CLUSTER,
        _with(GOOD_CLUSTER, performanceInsightsKmsKeyId=...),
        "performanceInsightsKmsKeyId",
    ),
    "rds-cluster-managed-master-secret": (
        GOOD_CLUSTER,
        _with(GOOD_CLUSTER, masterPassword="hunter2hunter2"),
        "masterPassword",
    ),
    "rds-cluster-final-snapshot": (GOOD_CLUSTER, _with(GOOD_CLUSTER, skipFinalSnapshot=True), "skipFinalSnapshot"),
    "rds-instance-not-public": (GOOD_INSTANCE, _with(GOOD_INSTANCE, publiclyAccessible=True), "true"),
    "rds-instance-performance-insights-cmk": (
        GOOD_INSTANCE,
        _with(GOOD_INSTANCE, performanceInsightsKmsKeyId=...),
        "performanceInsightsKmsKeyId",
    ),
    "rds-instance-minor-upgrades": (
        GOOD_INSTANCE,
        _with(GOOD_INSTANCE, autoMinorVersionUpgrade=False),
        "autoMinorVersionUpgrade",
    ),
    "rds-instance-enhanced-monitoring": (
        GOOD_INSTANCE,
        _with(GOOD_INSTANCE, monitoringInterval=0.0),
        "monitoringInterval",
    ),
    "rds-pg-force-ssl": (
        GOOD_PARAMS,
        {"family": "aurora-postgresql16", "parameters": [{"name": "rds.force_ssl", "value": "0"}]},
        "rds.force_ssl=0",
    ),
    "rds-pg-scram-passwords": (
        GOOD_PARAMS,
        {"family": "aurora-postgresql16", "parameters": [{"name": "password_encryption", "value": "md5"}]},
        "md5",
    ),
    "rds-pg-tls-min-version": (
        GOOD_PARAMS,
        {"family": "aurora-postgresql16", "parameters": [{"name": "ssl_min_protocol_version", "value": "TLSv1.1"}]},
        "TLSv1.1",
    ),
    "rds-pg-session-limits": (
        GOOD_PARAMS,
        {
            "family": "aurora-postgresql16",
            "parameters": [
                {"name": "temp_file_limit", "value": "-1"},
                {"name": "idle_in_transaction_session_timeout", "value": "600000"},
            ],
        },
        "temp_file_limit=-1",
    ),
    "rds-proxy-require-tls": (
        {"engineFamily": "POSTGRESQL", "requireTls": True},
        {"engineFamily": "POSTGRESQL", "requireTls": False},
        "requireTls",
    ),
    "rds-snapshot-not-public": ({"sharedAccounts": ["210987654321"]}, {"sharedAccounts": ["all"]}, "all"),
    "rds-snapshot-copy-cmk": (
        {"kmsKeyId": KEY_ARN, "destinationRegion": "eu-central-1"},
        {"destinationRegion": "eu-central-1"},
        "kmsKeyId",
    ),
    "kms-key-rotation": (GOOD_KEY, _with(GOOD_KEY, enableKeyRotation=False), "enableKeyRotation"),
    "kms-key-policy-no-wildcard": (
        GOOD_KEY,
        _with(
            GOOD_KEY,
            policy=_policy(
                {"Sid": "Open", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"}
            ),
        ),
        "Open",
    ),
    "kms-key-deletion-window": (GOOD_KEY, _with(GOOD_KEY, deletionWindowInDays=7.0), "7 < 30"),
    "iam-no-kms-decrypt-all-keys": (
        {"policy": _policy({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": KEY_ARN})},
        {"policy": _policy({"Sid": "All", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": "*"})},
        "All",
    ),
    "cloudtrail-multi-region": (GOOD_TRAIL, _with(GOOD_TRAIL, isMultiRegionTrail=False), "isMultiRegionTrail"),
    "cloudtrail-log-file-validation": (
        GOOD_TRAIL,
        _with(GOOD_TRAIL, enableLogFileValidation=...),
        "enableLogFileValidation",
    ),
    "cloudtrail-kms": (GOOD_TRAIL, _with(GOOD_TRAIL, kmsKeyId=...), "kmsKeyId"),
    "cloudtrail-logging-on": (GOOD_TRAIL, _with(GOOD_TRAIL, enableLogging=False), "enableLogging"),
    "cloudtrail-cloudwatch": (GOOD_TRAIL, _with(GOOD_TRAIL, cloudWatchLogsGroupArn=...), "cloudWatchLogsGroupArn"),
    "s3-public-access-block": (
        {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True, "restrictPublicBuckets": True},
        {"blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True},
        "restrictPublicBuckets",
    ),
    "s3-ssl-only": (
        {"policy": _policy(SSL_DENY)},
        {"policy": _policy({**SSL_DENY, "Condition": {"Bool": {"aws:SecureTransport": "true"}}})},
        "SecureTransport",
    ),
    "s3-lifecycle-expiry": (
        GOOD_LIFECYCLE,
        {"rules": [{"id": "expire", "status": "Disabled", "expiration": {"days": 30.0}}]},
        "expiration",
    ),
    "s3-sse-cmk": (
        GOOD_SSE,
        {"rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]},
        "aws:kms",
    ),
    "s3-no-compliance-lock": (
        {"rule": {"defaultRetention": {"mode": "GOVERNANCE", "days": 30.0}}},
        {"rule": {"defaultRetention": {"mode": "COMPLIANCE", "days": 30.0}}},
        "COMPLIANCE",
    ),
    "secret-cmk": ({"kmsKeyId": KEY_ARN}, {"description": "payments"}, "kmsKeyId"),
    "backup-vault-cmk": ({"kmsKeyArn": KEY_ARN}, {"name": "vault"}, "kmsKeyArn"),
    "backup-plan-expiry": (
        GOOD_PLAN,
        {
            "rules": [
                {
                    **GOOD_PLAN["rules"][0],
                    "copyActions": [{"destinationVaultArn": "arn:aws:backup:eu-central-1:1:backup-vault:dr"}],
                }
            ]
        },
        "copy action #0",
    ),
    "logs-retention-plan-tier": (
        {"retentionInDays": 400.0, "kmsKeyId": KEY_ARN, "tags": {"askasia:plan-tier": "enterprise"}},
        {"retentionInDays": 90.0, "kmsKeyId": KEY_ARN, "tags": {"askasia:plan-tier": "enterprise"}},
        "requires retentionInDays 400, got 90",
    ),
    "logs-retention-set": ({"retentionInDays": 90.0}, {"retentionInDays": 100.0}, "not a value"),
    "logs-cmk": ({"retentionInDays": 90.0, "kmsKeyId": KEY_ARN}, {"retentionInDays": 90.0}, "kmsKeyId"),
    "jwt-token-ttl-bounded": (
        {"value": json.dumps({"accessTokenTtlSeconds": 900, "maxAccessTokenTtlSeconds": 3600})},
        {"value": json.dumps({"accessTokenTtlSeconds": 86400, "maxAccessTokenTtlSeconds": 3600})},
        "exceeds maxAccessTokenTtlSeconds 3600",
    ),
}


def _rule(rule_id: str):
    return next(r for r in RULES if r.id == rule_id)


def test_every_rule_has_a_case_and_the_metadata_it_needs() -> None:
    assert sorted(CASES) == sorted(r.id for r in RULES)
    ids = [r.id for r in (*RULES, *STACK_RULES)]
    assert len(ids) == len(set(ids))
    for rule in (*RULES, *STACK_RULES):
        assert rule.severity in ("mandatory", "advisory")
        assert rule.resource_type.startswith("aws:") and rule.resource_type.count(":") == 2
        assert rule.description.endswith(".") and rule.remediation


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_compliant_inputs_pass(rule_id: str) -> None:
    good, _, _ = CASES[rule_id]
    assert _rule(rule_id).check(good) is None


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_violating_inputs_are_reported(rule_id: str) -> None:
    _, bad, expected = CASES[rule_id]
    rule = _rule(rule_id)
    message = rule.check(bad)
    assert message and expected in message
    # and through the engine, on the rule's own resource type, with its severity
    found = [v for v in check_resource(Resource(rule.resource_type, "r1", bad)) if v.rule_id == rule_id]
    assert len(found) == 1 and found[0].severity == rule.severity and found[0].resource_name == "r1"


def test_unset_values_that_default_insecurely_are_violations() -> None:
    # AWS defaults: 1-day backups; instance public when no subnet group; no force_ssl in a new group
    assert "default 1 day" in _rule("rds-cluster-backup-retention").check({})
    assert _rule("rds-instance-not-public").check({}) == "publiclyAccessible not set to false"
    assert _rule("rds-pg-force-ssl").check({"family": "aurora-postgresql16"}) == "rds.force_ssl not set"
    assert _rule("rds-cluster-encrypted-cmk").check({}) == "storageEncrypted is not true"


def test_asymmetric_keys_are_exempt_from_rotation() -> None:
    signing = {"customerMasterKeySpec": "ECC_NIST_P256", "keyUsage": "SIGN_VERIFY", "enableKeyRotation": False}
    assert _rule("kms-key-rotation").check(signing) is None


def test_wildcard_principal_with_a_condition_is_allowed() -> None:
    conditioned = _policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}},
        }
    )
    assert _rule("kms-key-policy-no-wildcard").check({"policy": conditioned}) is None
    bare = _policy({"Effect": "Allow", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*"})
    assert _rule("kms-key-policy-no-wildcard").check({"policy": bare})


def test_plan_tier_retention_covers_every_tier_and_ignores_untagged_groups() -> None:
    check = _rule("logs-retention-plan-tier").check
    for tier, days in (("starter", 90.0), ("growth", 90.0), ("enterprise", 400.0)):
        assert check({"retentionInDays": days, "tags": {"askasia:plan-tier": tier}}) is None
    assert "never-expire" in check({"tags": {"askasia:plan-tier": "starter"}})
    assert "unknown plan tier" in check({"retentionInDays": 90.0, "tags": {"askasia:plan-tier": "gold"}})
    assert check({"retentionInDays": 7.0}) is None


def test_non_postgres_groups_and_clusters_are_not_judged_as_postgres() -> None:
    assert _rule("rds-pg-force-ssl").check({"family": "aurora-mysql8.0"}) is None
    assert _rule("rds-cluster-postgresql-logs").check({"engine": "aurora-mysql"}) is None


def test_a_rule_that_cannot_read_its_inputs_fails_closed() -> None:
    bad_shape = Resource("aws:backup/plan:Plan", "p", {"rules": [42]})
    found = check_resource(bad_shape)
    assert [v.rule_id for v in found] == ["backup-plan-expiry"]
    assert "could not evaluate" in found[0].message


# --- rules over several resources -----------------------------------------------------------

BUCKET = Resource("aws:s3/bucket:Bucket", "audit", {}, {"id": "audit-bkt", "bucket": "audit-bkt"})


def _attachments(*skip: str) -> list[Resource]:
    parts = {
        "pab": Resource("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "pab", {"bucket": "audit-bkt"}),
        "policy": Resource("aws:s3/bucketPolicy:BucketPolicy", "pol", {"bucket": "audit-bkt"}),
        "sse": Resource(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "sse",
            {"bucket": "audit-bkt"},
        ),
        "lifecycle": Resource(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lc", {"bucket": "audit-bkt"}
        ),
    }
    return [r for k, r in parts.items() if k not in skip]


def _stack_rule(rule_id: str):
    return next(r for r in STACK_RULES if r.id == rule_id)


def test_bucket_with_every_control_attached_passes() -> None:
    assert _stack_rule("s3-bucket-controls-attached").check([BUCKET, *_attachments()]) == []


def test_bucket_missing_its_policy_and_lifecycle_is_reported() -> None:
    found = _stack_rule("s3-bucket-controls-attached").check([BUCKET, *_attachments("policy", "lifecycle")])
    assert found == [("audit", "no bucket policy, lifecycle configuration for this bucket")]


def test_attachment_matched_through_crossguard_property_dependencies() -> None:
    # In a preview the bucket id is unknown; CrossGuard still says which resource it came from.
    pab = Resource("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "pab", {}, refs={"bucket": ["audit"]})
    found = _stack_rule("s3-bucket-controls-attached").check([BUCKET, pab])
    assert found and "public access block" not in found[0][1]


CLUSTER = Resource("aws:rds/cluster:Cluster", "cell-1", {**GOOD_CLUSTER}, {"id": "askasia-cell-1"})
PARAMS = Resource(
    "aws:rds/clusterParameterGroup:ClusterParameterGroup",
    "cell-1-params",
    {**GOOD_PARAMS, "name": "askasia-prod-cell-1"},
    {"id": "askasia-prod-cell-1"},
)


def test_cluster_linked_to_a_force_ssl_group_passes() -> None:
    assert _stack_rule("rds-cluster-force-ssl-linked").check([CLUSTER, PARAMS]) == []


def test_cluster_linked_to_a_group_without_force_ssl_is_reported() -> None:
    weak = Resource(
        PARAMS.type,
        PARAMS.name,
        {
            "family": "aurora-postgresql16",
            "name": "askasia-prod-cell-1",
            "parameters": [{"name": "rds.force_ssl", "value": "0"}],
        },
    )
    assert _stack_rule("rds-cluster-force-ssl-linked").check([CLUSTER, weak]) == [
        ("cell-1", "its parameter group does not set rds.force_ssl=1")
    ]
    assert _stack_rule("rds-cluster-force-ssl-linked").check([CLUSTER]) == [
        ("cell-1", "parameter group is not declared in this stack")
    ]


def _instance(name: str) -> Resource:
    return Resource("aws:rds/clusterInstance:ClusterInstance", name, {"clusterIdentifier": "askasia-cell-1"})


def test_multi_az_needs_two_instances() -> None:
    rule = _stack_rule("rds-cluster-multi-az")
    assert rule.check([CLUSTER, _instance("i1"), _instance("i2")]) == []
    assert rule.check([CLUSTER, _instance("i1")]) == [("cell-1", "1 instance(s): no failover target")]


def test_secret_rotation_must_point_at_the_secret() -> None:
    rule = _stack_rule("secret-rotation-configured")
    secret = Resource(
        "aws:secretsmanager/secret:Secret",
        "payments",
        {"kmsKeyId": KEY_ARN},
        {"arn": "arn:aws:secretsmanager:eu-west-1:1:secret:payments-AbCdEf"},
    )
    rotation = Resource(
        "aws:secretsmanager/secretRotation:SecretRotation",
        "rot",
        {"secretId": "arn:aws:secretsmanager:eu-west-1:1:secret:payments-AbCdEf"},
    )
    assert rule.check([secret, rotation]) == []
    assert rule.check([secret]) == [("payments", "no SecretRotation for this secret")]


def test_evaluate_orders_mandatory_first_and_includes_stack_rules() -> None:
    found = evaluate(
        [
            Resource(
                "aws:rds/clusterInstance:ClusterInstance",
                "i1",
                {**GOOD_INSTANCE, "autoMinorVersionUpgrade": False, "clusterIdentifier": "askasia-cell-1"},
            ),
            Resource("aws:secretsmanager/secret:Secret", "s", {}),
            CLUSTER,
            PARAMS,
        ]
    )
    severities = [v.severity for v in found]
    assert severities == sorted(severities, key=lambda s: s != "mandatory")
    assert {v.rule_id for v in found} >= {
        "secret-cmk",
        "rds-instance-minor-upgrades",
        "rds-cluster-multi-az",
        "secret-rotation-configured",
    }
    assert check_stack([]) == []


MASTER_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-0a1b2c3d-AbCdEf"
CLUSTER_WITH_SECRET = Resource(
    "aws:rds/cluster:Cluster",
    "cell-1",
    {**GOOD_CLUSTER},
    {"id": "askasia-cell-1", "masterUserSecrets": [{"secretArn": MASTER_SECRET, "secretStatus": "active"}]},
)


def _proxy(**inputs: Any) -> Resource:
    return Resource("aws:rds/proxy:Proxy", "cell-1-proxy", {"engineFamily": "POSTGRESQL", "requireTls": True, **inputs})


def test_proxy_with_end_to_end_iam_and_no_secret_passes() -> None:
    rule = _stack_rule("rds-proxy-not-master")
    assert rule.check([CLUSTER_WITH_SECRET, _proxy(defaultAuthScheme="IAM_AUTH")]) == []
    dedicated = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:askasia/prod/cell-1/platform-service-AbCdEf"
    assert rule.check([CLUSTER_WITH_SECRET, _proxy(auths=[{"authScheme": "SECRETS", "secretArn": dedicated}])]) == []


def test_proxy_logging_in_with_the_master_secret_is_reported() -> None:
    rule = _stack_rule("rds-proxy-not-master")
    bad = _proxy(auths=[{"authScheme": "SECRETS", "iamAuth": "REQUIRED", "secretArn": MASTER_SECRET}])
    assert rule.check([CLUSTER_WITH_SECRET, bad]) == [
        ("cell-1-proxy", f"auths[0] is the master secret {MASTER_SECRET}")
    ]
    # RDS names every master secret it manages rds!...: caught without the cluster in view
    assert rule.check([bad]) == [("cell-1-proxy", f"auths[0] is the master secret {MASTER_SECRET}")]
    # and through the engine, as a mandatory violation on the proxy
    found = check_stack([CLUSTER_WITH_SECRET, bad])
    assert [(v.rule_id, v.severity) for v in found if v.rule_id == "rds-proxy-not-master"] == [
        ("rds-proxy-not-master", "mandatory")
    ]


def test_proxy_master_secret_seen_through_crossguard_property_dependencies() -> None:
    # In a preview the secret ARN is unknown; CrossGuard says the auths were built from the cluster.
    preview = Resource(
        "aws:rds/proxy:Proxy", "cell-1-proxy", {"auths": [{"authScheme": "SECRETS"}]}, refs={"auths": ["cell-1"]}
    )
    assert _stack_rule("rds-proxy-not-master").check([CLUSTER_WITH_SECRET, preview]) == [
        ("cell-1-proxy", "auths are built from cluster cell-1's master secret")
    ]


def test_session_limits_missing_from_a_parameter_group_are_each_named() -> None:
    found = _rule("rds-pg-session-limits").check({"family": "aurora-postgresql16", "parameters": []})
    assert found is not None
    assert all(f"{name} not set" in found for name in ("temp_file_limit", "idle_in_transaction_session_timeout"))
    assert _rule("rds-pg-session-limits").check({"family": "aurora-mysql8.0", "parameters": []}) is None


def test_the_components_parameter_group_keeps_the_session_limits() -> None:
    from components.database import cluster_parameters

    params = {
        "family": "aurora-postgresql16",
        "parameters": [{"name": n, "value": v} for n, v, _ in cluster_parameters()],
    }
    assert _rule("rds-pg-session-limits").check(params) is None


MANAGED_CLUSTER = Resource(
    "aws:rds/cluster:Cluster",
    "cell-1",
    {"manageMasterUserPassword": True},
    {"masterUserSecrets": [{"secretArn": MASTER_SECRET, "secretStatus": "active"}]},
)
DEPLOYER = "arn:aws:iam::123456789012:role/deployer"


def _secret_policy(policy: dict[str, Any], **inputs: Any) -> Resource:
    return Resource(
        "aws:secretsmanager/secretPolicy:SecretPolicy",
        "cell-1-master-secret-policy",
        {"secretArn": MASTER_SECRET, "policy": json.dumps(policy), **inputs},
    )


def _deny_all_but(condition: dict[str, Any], effect: str = "Deny", principal: Any = "*") -> dict[str, Any]:
    statement = {"Effect": effect, "Principal": principal, "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
    return {"Version": "2012-10-17", "Statement": [{**statement, "Condition": condition}]}


def test_master_secret_readable_by_the_deploy_role_only_passes() -> None:
    rule = _stack_rule("rds-master-secret-readers")
    good = _secret_policy(_deny_all_but({"StringNotEquals": {"aws:PrincipalArn": DEPLOYER}}))
    assert rule.check([MANAGED_CLUSTER, good]) == []
    # In a preview the secret ARN is unknown; CrossGuard says the policy was built from the cluster.
    preview = Resource(good.type, good.name, {"policy": good.inputs["policy"]}, refs={"secretArn": ["cell-1"]})
    assert rule.check([MANAGED_CLUSTER, preview]) == []
    # A cluster whose password RDS does not manage has no such secret to protect.
    assert rule.check([Resource("aws:rds/cluster:Cluster", "other", {"manageMasterUserPassword": False})]) == []


def test_master_secret_without_a_denying_policy_is_reported() -> None:
    rule = _stack_rule("rds-master-secret-readers")
    assert rule.check([MANAGED_CLUSTER]) == [("cell-1", "its master secret has no resource policy")]
    spared = {"StringNotEquals": {"aws:PrincipalArn": DEPLOYER}}
    weak = [
        _deny_all_but(spared, effect="Allow"),  # an allow, not a deny
        _deny_all_but(spared, principal={"AWS": DEPLOYER}),  # denies one principal, not all others
        _deny_all_but({}),  # denies everyone, the deploy role too: nothing names who may read
        {"Version": "2012-10-17", "Statement": [{**_deny_all_but(spared)["Statement"][0], "Action": "kms:Decrypt"}]},
    ]
    for policy in weak:
        found = rule.check([MANAGED_CLUSTER, _secret_policy(policy)])
        assert found == [
            ("cell-1", "cell-1-master-secret-policy does not deny GetSecretValue to all but named principals")
        ], policy
    # a policy on another secret does not count
    elsewhere = _secret_policy(_deny_all_but(spared), secretArn="arn:aws:secretsmanager:eu-west-1:1:secret:other")
    assert rule.check([MANAGED_CLUSTER, elsewhere]) == [("cell-1", "its master secret has no resource policy")]
    found = check_stack([MANAGED_CLUSTER])
    assert [(v.rule_id, v.severity) for v in found if v.rule_id == "rds-master-secret-readers"] == [
        ("rds-master-secret-readers", "mandatory")
    ]
