"""Audit: CloudTrail, the audit bucket, per-tier log groups, GuardDuty -> EventBridge -> SNS."""

from __future__ import annotations

import json

import pytest

from components.audit import AuditArgs
from contract.logs import CLOUDWATCH_RETENTION_DAYS
from tests.unit.mock_stacks import as_list, key_arn, policy, stack_run, statements

AUDIT = "prod-eu-west-1-audit"


def primary(r, type_token: str):
    """The one resource of a type in the stack's own region (the DR region has its own alerts)."""
    (found,) = [x for x in r.of_type(type_token) if x.region == "eu-west-1"]
    return found


def test_cloudtrail_multi_region_validated_encrypted_and_to_cloudwatch():
    r = stack_run()
    trail = r.one("aws:cloudtrail/trail:Trail")
    i = trail.inputs
    assert i["isMultiRegionTrail"] is True
    assert i["enableLogFileValidation"] is True
    assert i["includeGlobalServiceEvents"] is True
    assert i["enableLogging"] is True
    assert i["kmsKeyId"] == key_arn(r, "logs")
    assert i["s3BucketName"] == r.named(f"{AUDIT}-bucket").id
    group = r.named(f"{AUDIT}-trail-logs")
    assert i["cloudWatchLogsGroupArn"] == group.outputs["arn"] + ":*"
    assert i["cloudWatchLogsRoleArn"] == r.named(f"{AUDIT}-trail-to-logs").outputs["arn"]
    assert group.inputs["kmsKeyId"] == key_arn(r, "logs")
    assert group.inputs["retentionInDays"] == 400
    assert r.named(f"{AUDIT}-bucket-policy").urn in trail.dependencies


def test_audit_bucket_blocks_public_access():
    r = stack_run()
    bucket = r.named(f"{AUDIT}-bucket")
    block = r.named(f"{AUDIT}-bucket-public-access").inputs
    assert block["bucket"] == bucket.id
    assert (
        block["blockPublicAcls"],
        block["blockPublicPolicy"],
        block["ignorePublicAcls"],
        block["restrictPublicBuckets"],
    ) == (True, True, True, True)
    ownership = r.named(f"{AUDIT}-bucket-ownership").inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    assert bucket.inputs["objectLockEnabled"] is False
    assert bucket.inputs["forceDestroy"] is False


def test_audit_bucket_is_versioned_and_kms_encrypted():
    r = stack_run()
    assert r.named(f"{AUDIT}-bucket-versioning").inputs["versioningConfiguration"]["status"] == "Enabled"
    rule = r.named(f"{AUDIT}-bucket-encryption").inputs["rules"][0]
    assert rule["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "aws:kms",
        "kmsMasterKeyId": key_arn(r, "logs"),
    }
    assert rule["bucketKeyEnabled"] is True


def test_audit_bucket_expires_objects_per_policy():
    rules = stack_run().named(f"{AUDIT}-bucket-lifecycle").inputs["rules"]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["status"] == "Enabled"
    assert rule["filter"] == {"prefix": ""}
    assert rule["expiration"]["days"] == 400  # 13 months, the longest audit promise
    assert rule["noncurrentVersionExpiration"]["noncurrentDays"] == 30
    assert rule["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7


def test_bucket_policy_is_tls_only_and_lets_only_this_trail_write():
    r = stack_run()
    bucket_arn = r.named(f"{AUDIT}-bucket").outputs["arn"]
    trail_arn = r.one("aws:cloudtrail/trail:Trail").outputs["arn"]
    doc = policy(r.named(f"{AUDIT}-bucket-policy"))
    deny = next(s for s in statements(doc) if s["Effect"] == "Deny")
    assert deny["Action"] == "s3:*"
    assert set(deny["Resource"]) == {bucket_arn, bucket_arn + "/*"}
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    write = next(s for s in statements(doc) if s["Sid"] == "CloudTrailWrites")
    assert write["Principal"] == {"Service": "cloudtrail.amazonaws.com"}
    assert write["Resource"] == f"{bucket_arn}/AWSLogs/123456789012/*"
    assert write["Condition"]["StringEquals"]["aws:SourceArn"] == trail_arn
    for st in statements(doc):
        if st["Effect"] == "Allow":
            assert st["Principal"] != "*" and st.get("Condition"), st["Sid"]


@pytest.mark.parametrize(("tier", "days"), [("starter", 90), ("growth", 90), ("enterprise", 400)])
def test_audit_log_group_per_plan_tier(tier, days):
    r = stack_run()
    group = r.named(f"{AUDIT}-{tier}")
    assert group.inputs["name"] == f"/askasia/prod-eu-west-1/audit/{tier}"
    assert group.inputs["retentionInDays"] == days
    assert group.inputs["retentionInDays"] in CLOUDWATCH_RETENTION_DAYS
    assert group.inputs["kmsKeyId"] == key_arn(r, "logs")
    assert r.outputs["audit_log_groups"][tier] == group.inputs["name"]


def test_every_log_group_has_a_valid_retention_and_the_logs_key():
    r = stack_run()
    for group in r.of_type("aws:cloudwatch/logGroup:LogGroup"):
        assert group.inputs["retentionInDays"] in CLOUDWATCH_RETENTION_DAYS, group.name
        assert group.inputs["kmsKeyId"] == key_arn(r, "logs"), group.name


def test_guardduty_findings_reach_the_encrypted_security_topic():
    r = stack_run()
    detector = primary(r, "aws:guardduty/detector:Detector")
    assert detector.inputs["enable"] is True
    feature = primary(r, "aws:guardduty/detectorFeature:DetectorFeature")
    assert (feature.inputs["detectorId"], feature.inputs["name"], feature.inputs["status"]) == (
        detector.id,
        "RDS_LOGIN_EVENTS",
        "ENABLED",
    )
    rule = primary(r, "aws:cloudwatch/eventRule:EventRule")
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["aws.guardduty"],
        "detail-type": ["GuardDuty Finding"],
    }
    topic = primary(r, "aws:sns/topic:Topic")
    assert topic.inputs["kmsMasterKeyId"] == key_arn(r, "logs")
    target = primary(r, "aws:cloudwatch/eventTarget:EventTarget")
    assert target.inputs["rule"] == rule.outputs["name"]
    assert target.inputs["arn"] == topic.outputs["arn"]


def test_topic_policy_lets_eventbridge_publish_for_this_rule_only():
    r = stack_run()
    topic = primary(r, "aws:sns/topic:Topic")
    rule = primary(r, "aws:cloudwatch/eventRule:EventRule")
    topic_policy = primary(r, "aws:sns/topicPolicy:TopicPolicy")
    assert topic_policy.inputs["arn"] == topic.outputs["arn"]
    publish = next(s for s in statements(policy(topic_policy)) if s["Principal"] == {"Service": "events.amazonaws.com"})
    assert as_list(publish["Action"]) == ["sns:Publish"]
    assert publish["Resource"] == topic.outputs["arn"]
    assert publish["Condition"] == {"ArnEquals": {"aws:SourceArn": rule.outputs["arn"]}}
    # EventBridge must also be able to use the topic's key, or deliveries fail silently.
    logs_key = next(k for k in r.of_type("aws:kms/key:Key") if k.outputs["arn"] == topic.inputs["kmsMasterKeyId"])
    assert any(
        s["Principal"] == {"Service": "events.amazonaws.com"} and "kms:GenerateDataKey*" in s["Action"]
        for s in statements(policy(logs_key))
    )


def test_security_team_subscribes_by_email():
    sub = primary(stack_run(), "aws:sns/topicSubscription:TopicSubscription")
    assert (sub.inputs["protocol"], sub.inputs["endpoint"]) == ("email", "security@askasia.in")


def test_audit_args_refuse_trail_retention_shorter_than_the_promise():
    with pytest.raises(ValueError, match="shorter than the longest audit-log promise"):
        AuditArgs(stack="s", region="eu-west-1", account_id="1", logs_key_arn="k", trail_retention_days=365)
