"""CloudWatch log groups: retention by plan tier, encrypted with the logs key."""

from __future__ import annotations

from contract.logs import CLOUDWATCH_RETENTION_DAYS as VALID_RETENTION_DAYS
from contract.tiers import AUDIT_RETENTION_DAYS as TIER_RETENTION_DAYS
from policy.rules.base import Props, number, present, rule, tags_of

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
TIER_TAG_KEYS = ("askasia:plan-tier", "plan-tier", "PlanTier")


def plan_tier(props: Props) -> str | None:
    tags = tags_of(props)
    for key in TIER_TAG_KEYS:
        if key in tags:
            return str(tags[key]).lower()
    return None


@rule(
    "logs-retention-plan-tier",
    "mandatory",
    LOG_GROUP,
    "A log group tagged with a plan tier keeps logs exactly as long as the plan promises ("
    + "/".join(str(d) for d in TIER_RETENTION_DAYS.values())
    + ").",
    "Set retention_in_days to the tier's days: " + ", ".join(f"{t} {d}" for t, d in TIER_RETENTION_DAYS.items()) + ".",
)
def retention_plan_tier(props: Props) -> str | None:
    tier = plan_tier(props)
    if tier is None:
        return None
    want = TIER_RETENTION_DAYS.get(tier)
    if want is None:
        return f"unknown plan tier {tier!r} (expected one of {', '.join(TIER_RETENTION_DAYS)})"
    days = number(props.get("retentionInDays"))
    if days is None or days == 0:
        return f"{tier} tier requires retentionInDays {want}, got never-expire"
    return None if days == want else f"{tier} tier requires retentionInDays {want}, got {days:g}"


@rule(
    "logs-retention-set",
    "advisory",
    LOG_GROUP,
    "Every log group expires its logs, with a value CloudWatch accepts.",
    "Set retention_in_days to one of " + ", ".join(map(str, sorted(VALID_RETENTION_DAYS))) + ".",
)
def retention_set(props: Props) -> str | None:
    days = number(props.get("retentionInDays"))
    if days is None or days == 0:
        return "retentionInDays unset: logs never expire"
    if days not in VALID_RETENTION_DAYS:
        return f"retentionInDays {days:g} is not a value CloudWatch Logs accepts"
    return None


@rule(
    "logs-cmk",
    "mandatory",
    LOG_GROUP,
    "Log groups are encrypted with the region's logs key.",
    "Set kms_key_id on the log group (the key policy must allow logs.<region>.amazonaws.com).",
)
def log_group_cmk(props: Props) -> str | None:
    return None if present(props.get("kmsKeyId")) else "no kmsKeyId"
