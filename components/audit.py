"""Audit and breach plumbing for one region.

CloudTrail (multi-region, log-file validation, KMS, also to CloudWatch Logs) into a private,
TLS-only, versioned, KMS-encrypted bucket that expires objects on schedule; one CloudWatch log
group per plan tier with the retention the privacy policy promises; GuardDuty findings routed
by EventBridge to a KMS-encrypted SNS security topic (the 72-hour breach clock starts there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.breach import BreachAlertsArgs, breach_alerts
from components.iam import document, service_trust
from contract.logs import CLOUDWATCH_RETENTION_DAYS
from contract.tiers import AUDIT_RETENTION_DAYS


@dataclass(frozen=True)
class AuditArgs:
    stack: str
    region: str
    account_id: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    partition: pulumi.Input[str] = "aws"
    # Trail objects live as long as the longest audit promise (13 months -> 400 days).
    trail_retention_days: int = max(AUDIT_RETENTION_DAYS.values())
    # Overwritten or deleted objects stay recoverable this long, then go for good.
    noncurrent_version_days: int = 30
    cloudwatch_delivery: bool = True
    security_notification_emails: Sequence[str] = ()
    guard_duty_detector: bool = True  # false where another stack has the region's detector
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.trail_retention_days not in CLOUDWATCH_RETENTION_DAYS:
            raise ValueError(f"trail_retention_days {self.trail_retention_days} is not a CloudWatch value")
        if self.trail_retention_days < max(AUDIT_RETENTION_DAYS.values()):
            raise ValueError("trail_retention_days is shorter than the longest audit-log promise")

    @property
    def trail_name(self) -> str:
        return f"askasia-{self.stack}"


class Audit(pulumi.ComponentResource):
    """CloudTrail + audit bucket, per-tier audit log groups, GuardDuty -> EventBridge -> SNS."""

    bucket: aws.s3.Bucket
    trail: aws.cloudtrail.Trail
    log_groups: dict[str, aws.cloudwatch.LogGroup]
    topic: aws.sns.Topic
    log_group_names: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: AuditArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("askasia:platform:Audit", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)
        trail_arn = pulumi.Output.concat(
            "arn:", args.partition, ":cloudtrail:", args.region, ":", args.account_id, ":trail/", args.trail_name
        )

        self._audit_bucket(name, args, tags, trail_arn, child)
        self._trail(name, args, tags, child)

        self.log_groups = {
            tier: aws.cloudwatch.LogGroup(
                f"{name}-{tier}",
                name=f"/askasia/{args.stack}/audit/{tier}",
                retention_in_days=days,
                kms_key_id=args.logs_key_arn,
                tags={**tags, "askasia:plan-tier": tier},
                opts=child,
            )
            for tier, days in AUDIT_RETENTION_DAYS.items()
        }
        self.log_group_names = {tier: group.name for tier, group in self.log_groups.items()}

        alerts = breach_alerts(
            name,
            BreachAlertsArgs(
                stack=args.stack,
                topic_name=f"askasia-{args.stack}-security",
                account_id=args.account_id,
                partition=args.partition,
                key_arn=args.logs_key_arn,
                emails=tuple(args.security_notification_emails),
                tags=tags,
                detector=args.guard_duty_detector,
            ),
            child,
        )
        self.detector, self.topic, self.rule = alerts.detector, alerts.topic, alerts.rule

        self.register_outputs(
            {
                "bucket": self.bucket.bucket,
                "trail_arn": self.trail.arn,
                "audit_log_groups": self.log_group_names,
                "security_topic_arn": self.topic.arn,
            }
        )

    def _audit_bucket(
        self,
        name: str,
        args: AuditArgs,
        tags: dict[str, str],
        trail_arn: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> None:
        self.bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=pulumi.Output.concat("askasia-", args.stack, "-audit-", args.account_id),
            force_destroy=False,
            # No Object Lock: trail data must expire on schedule, and COMPLIANCE locks cannot shorten.
            object_lock_enabled=False,
            tags=tags,
            opts=child,
        )
        bucket_id = self.bucket.id
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-bucket-public-access",
            bucket=bucket_id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        aws.s3.BucketOwnershipControls(
            f"{name}-bucket-ownership",
            bucket=bucket_id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        aws.s3.BucketVersioning(
            f"{name}-bucket-versioning",
            bucket=bucket_id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
            opts=child,
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-bucket-encryption",
            bucket=bucket_id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(  # noqa: E501
                        sse_algorithm="aws:kms",
                        kms_master_key_id=args.logs_key_arn,
                    ),
                    bucket_key_enabled=True,
                )
            ],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-bucket-lifecycle",
            bucket=bucket_id,
            rules=[
                aws.s3.BucketLifecycleConfigurationRuleArgs(
                    id="expire-audit-objects",
                    status="Enabled",
                    filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
                    expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=args.trail_retention_days),
                    noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(  # noqa: E501
                        noncurrent_days=args.noncurrent_version_days
                    ),
                    abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(  # noqa: E501
                        days_after_initiation=7
                    ),
                )
            ],
            opts=child,
        )
        bucket_arn = self.bucket.arn
        objects = pulumi.Output.concat(bucket_arn, "/*")
        self.bucket_policy = aws.s3.BucketPolicy(
            f"{name}-bucket-policy",
            bucket=bucket_id,
            policy=document(
                [
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [bucket_arn, objects],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                    {
                        "Sid": "CloudTrailChecksAcl",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudtrail.amazonaws.com"},
                        "Action": "s3:GetBucketAcl",
                        "Resource": bucket_arn,
                        "Condition": {"StringEquals": {"aws:SourceArn": trail_arn}},
                    },
                    {
                        "Sid": "CloudTrailWrites",
                        "Effect": "Allow",
                        "Principal": {"Service": "cloudtrail.amazonaws.com"},
                        "Action": "s3:PutObject",
                        "Resource": pulumi.Output.concat(bucket_arn, "/AWSLogs/", args.account_id, "/*"),
                        "Condition": {
                            "StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail_arn}
                        },
                    },
                ]
            ),
            # A public-access block applied after the policy would race it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]),
        )

    def _trail(self, name: str, args: AuditArgs, tags: dict[str, str], child: pulumi.ResourceOptions) -> None:
        # Without CloudWatch delivery both stay None, and an input that is None is not sent.
        logs_group_arn: pulumi.Output[str] | None = None
        logs_role_arn: pulumi.Output[str] | None = None
        if args.cloudwatch_delivery:
            group = aws.cloudwatch.LogGroup(
                f"{name}-trail-logs",
                name=f"/askasia/{args.stack}/cloudtrail",
                retention_in_days=args.trail_retention_days,
                kms_key_id=args.logs_key_arn,
                tags=tags,
                opts=child,
            )
            role = aws.iam.Role(
                f"{name}-trail-to-logs",
                description="CloudTrail delivers events to its CloudWatch log group",
                assume_role_policy=service_trust("cloudtrail.amazonaws.com", args.account_id),
                tags=tags,
                opts=child,
            )
            aws.iam.RolePolicy(
                f"{name}-trail-to-logs-policy",
                role=role.id,
                policy=document(
                    [
                        {
                            "Sid": "WriteTrailLogStreams",
                            "Effect": "Allow",
                            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                            "Resource": pulumi.Output.concat(group.arn, ":log-stream:*"),
                        }
                    ]
                ),
                opts=child,
            )
            logs_group_arn = pulumi.Output.concat(group.arn, ":*")
            logs_role_arn = role.arn

        self.trail = aws.cloudtrail.Trail(
            f"{name}-trail",
            name=args.trail_name,
            s3_bucket_name=self.bucket.id,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            enable_logging=True,
            kms_key_id=args.logs_key_arn,
            tags=tags,
            cloud_watch_logs_group_arn=logs_group_arn,
            cloud_watch_logs_role_arn=logs_role_arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.bucket_policy]),
        )
