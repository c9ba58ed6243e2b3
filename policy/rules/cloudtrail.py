"""CloudTrail: the breach-notification evidence trail."""

from __future__ import annotations

from policy.rules.base import Props, is_false, is_true, present, rule

TRAIL = "aws:cloudtrail/trail:Trail"


@rule(
    "cloudtrail-multi-region",
    "mandatory",
    TRAIL,
    "The trail records every region.",
    "Set is_multi_region_trail=True.",
    controls=("CloudTrail.1",),
)
def trail_multi_region(props: Props) -> str | None:
    return None if is_true(props.get("isMultiRegionTrail")) else "isMultiRegionTrail is not true"


@rule(
    "cloudtrail-log-file-validation",
    "mandatory",
    TRAIL,
    "Log files carry digests so tampering is detectable.",
    "Set enable_log_file_validation=True.",
    controls=("CloudTrail.4",),
)
def trail_log_validation(props: Props) -> str | None:
    if is_true(props.get("enableLogFileValidation")):
        return None
    return "enableLogFileValidation is not true"


@rule(
    "cloudtrail-kms",
    "mandatory",
    TRAIL,
    "Trail logs are encrypted with a customer key.",
    "Set kms_key_id to the region's logs key.",
    controls=("CloudTrail.2",),
)
def trail_kms(props: Props) -> str | None:
    return None if present(props.get("kmsKeyId")) else "no kmsKeyId"


@rule(
    "cloudtrail-logging-on",
    "mandatory",
    TRAIL,
    "The trail is logging.",
    "Leave enable_logging unset or True.",
)
def trail_logging_on(props: Props) -> str | None:
    return "enableLogging is false" if is_false(props.get("enableLogging")) else None


@rule(
    "cloudtrail-cloudwatch",
    "advisory",
    TRAIL,
    "The trail also delivers to CloudWatch Logs for alarms.",
    "Set cloud_watch_logs_group_arn and cloud_watch_logs_role_arn.",
    controls=("CloudTrail.5",),
)
def trail_cloudwatch(props: Props) -> str | None:
    if present(props.get("cloudWatchLogsGroupArn")) and present(props.get("cloudWatchLogsRoleArn")):
        return None
    return "no cloudWatchLogsGroupArn/cloudWatchLogsRoleArn"
