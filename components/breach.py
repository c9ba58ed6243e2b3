"""Breach detection for one region: GuardDuty (with RDS login monitoring), an EventBridge rule
for its findings and a KMS-encrypted SNS security topic the security team subscribes to.

GuardDuty, EventBridge rules and their SNS targets are all regional: the primary region gets
them from Audit, and the DR region, where a rebuild puts the cells, from DrBreachDetection,
with a key of its own there. The 72-hour breach clock starts at the topic either way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.iam import account_root, document
from components.keys import ADMIN_ACTIONS

GUARDDUTY_PATTERN = {"source": ["aws.guardduty"], "detail-type": ["GuardDuty Finding"]}


@dataclass(frozen=True)
class BreachAlertsArgs:
    stack: str
    topic_name: str
    account_id: pulumi.Input[str]
    key_arn: pulumi.Input[str]  # encrypts the topic; EventBridge must be allowed to use it
    partition: pulumi.Input[str] = "aws"
    emails: Sequence[str] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    detector: bool = True  # GuardDuty has one detector per account and region: declare it only once


@dataclass(frozen=True)
class BreachAlerts:
    detector: aws.guardduty.Detector | None
    topic: aws.sns.Topic
    rule: aws.cloudwatch.EventRule


def breach_alerts(name: str, args: BreachAlertsArgs, opts: pulumi.ResourceOptions) -> BreachAlerts:
    """Declare the detector, the findings rule and the topic under `opts` (parent, provider)."""
    tags = dict(args.tags)
    detector = None
    if args.detector:
        detector = aws.guardduty.Detector(
            f"{name}-guardduty", enable=True, finding_publishing_frequency="FIFTEEN_MINUTES", tags=tags, opts=opts
        )
        # Watch logins to the Aurora clusters, where tenant data lives.
        aws.guardduty.DetectorFeature(
            f"{name}-guardduty-rds-logins",
            detector_id=detector.id,
            name="RDS_LOGIN_EVENTS",
            status="ENABLED",
            opts=opts,
        )
    topic = aws.sns.Topic(
        f"{name}-security-topic",
        name=args.topic_name,
        display_name=f"Askasia {args.stack} security findings",
        kms_master_key_id=args.key_arn,
        tags=tags,
        opts=opts,
    )
    rule = aws.cloudwatch.EventRule(
        f"{name}-guardduty-findings",
        name=f"askasia-{args.stack}-guardduty-findings",
        description="GuardDuty findings to the security topic",
        event_pattern=json.dumps(GUARDDUTY_PATTERN),
        tags=tags,
        opts=opts,
    )
    aws.sns.TopicPolicy(
        f"{name}-security-topic-policy",
        arn=topic.arn,
        policy=document(
            [
                {
                    "Sid": "AccountManagesTopic",
                    "Effect": "Allow",
                    "Principal": {"AWS": account_root(args.partition, args.account_id)},
                    "Action": [
                        "sns:GetTopicAttributes",
                        "sns:SetTopicAttributes",
                        "sns:Subscribe",
                        "sns:ListSubscriptionsByTopic",
                        "sns:Publish",
                    ],
                    "Resource": topic.arn,
                },
                {
                    "Sid": "EventBridgePublishesFindings",
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic.arn,
                    "Condition": {"ArnEquals": {"aws:SourceArn": rule.arn}},
                },
            ]
        ),
        opts=opts,
    )
    aws.cloudwatch.EventTarget(
        f"{name}-guardduty-to-topic", rule=rule.name, arn=topic.arn, target_id="security-topic", opts=opts
    )
    for i, email in enumerate(args.emails):
        aws.sns.TopicSubscription(
            f"{name}-security-email-{i}", topic=topic.arn, protocol="email", endpoint=email, opts=opts
        )
    return BreachAlerts(detector, topic, rule)


def alerts_key_policy(account_id: pulumi.Input[str], partition: pulumi.Input[str]) -> pulumi.Output[str]:
    """The DR topic's key: the account administers it; only EventBridge (publishing findings to
    the topic) and SNS (storing them) use it, for this account."""
    return document(
        [
            {
                "Sid": "AccountAdministersKey",
                "Effect": "Allow",
                "Principal": {"AWS": account_root(partition, account_id)},
                "Action": ADMIN_ACTIONS,
                "Resource": "*",
            },
            {
                "Sid": "EventBridgePublishesToEncryptedTopic",
                "Effect": "Allow",
                "Principal": {"Service": ["events.amazonaws.com", "sns.amazonaws.com"]},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            },
        ]
    )


@dataclass(frozen=True)
class DrBreachDetectionArgs:
    stack: str
    dr_region: str
    dr_provider: aws.Provider
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str] = "aws"
    emails: Sequence[str] = ()
    deletion_window_in_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)


class DrBreachDetection(pulumi.ComponentResource):
    """The primary's breach detection, in the DR region, under a key that lives there."""

    key: aws.kms.Key
    alerts: BreachAlerts

    def __init__(self, name: str, args: DrBreachDetectionArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("askasia:platform:DrBreachDetection", name, None, opts)
        in_dr = pulumi.ResourceOptions(parent=self, provider=args.dr_provider)
        tags = {**args.tags, "askasia:dr-region": args.dr_region}
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"askasia {args.stack}: security findings in {args.dr_region}",
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            enable_key_rotation=True,
            rotation_period_in_days=365,
            deletion_window_in_days=args.deletion_window_in_days,
            policy=alerts_key_policy(args.account_id, args.partition),
            tags={**tags, "askasia:key-purpose": "dr-alerts"},
            opts=in_dr,
        )
        aws.kms.Alias(
            f"{name}-key-alias", name=f"alias/askasia/{args.stack}/dr-alerts", target_key_id=self.key.key_id, opts=in_dr
        )
        self.alerts = breach_alerts(
            name,
            BreachAlertsArgs(
                stack=args.stack,
                topic_name=f"askasia-{args.stack}-dr-security",
                account_id=args.account_id,
                key_arn=self.key.arn,
                partition=args.partition,
                emails=args.emails,
                tags=tags,
            ),
            in_dr,
        )
        self.register_outputs({"security_topic_arn": self.alerts.topic.arn})
