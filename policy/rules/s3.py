"""S3 buckets: never public, TLS only, encrypted with a customer key, data that expires."""

from __future__ import annotations

from collections.abc import Mapping

from policy.rules.base import (
    Props,
    is_false,
    is_true,
    number,
    policy_document,
    principal_is_wildcard,
    rule,
    seq,
    statements,
)

PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
LIFECYCLE_V2 = "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
SSE_V2 = "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"
OBJECT_LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"
OBJECT_LOCK_V2 = "aws:s3/bucketObjectLockConfigurationV2:BucketObjectLockConfigurationV2"

PAB_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


@rule(
    "s3-public-access-block",
    "mandatory",
    PUBLIC_ACCESS_BLOCK,
    "All four S3 public-access-block settings are on.",
    "Set block_public_acls, block_public_policy, ignore_public_acls, restrict_public_buckets=True.",
    controls=("S3.1", "S3.8"),
)
def public_access_block(props: Props) -> str | None:
    off = [flag for flag in PAB_FLAGS if not is_true(props.get(flag))]
    return f"not true: {', '.join(off)}" if off else None


def _denies_insecure_transport(st: Mapping[str, object]) -> bool:
    if st.get("Effect") != "Deny" or not principal_is_wildcard(st.get("Principal")):
        return False
    actions = {str(a) for a in seq(st.get("Action"))}
    if not actions & {"s3:*", "*"}:
        return False
    condition = st.get("Condition")
    if not isinstance(condition, Mapping):
        return False
    secure = condition.get("Bool")
    if not isinstance(secure, Mapping):
        return False
    values = seq(secure.get("aws:SecureTransport"))
    return any(is_false(v) for v in values)


@rule(
    "s3-ssl-only",
    "mandatory",
    BUCKET_POLICY,
    "Bucket policy denies every request not made over TLS.",
    'Add a statement: Deny, Principal "*", Action "s3:*", Condition Bool aws:SecureTransport "false".',
    controls=("S3.5",),
)
def ssl_only(props: Props) -> str | None:
    doc = policy_document(props.get("policy"))
    if doc is None:
        return "no parsable bucket policy"
    if any(_denies_insecure_transport(st) for st in statements(doc)):
        return None
    return "no Deny statement on aws:SecureTransport=false"


@rule(
    "s3-lifecycle-expiry",
    "mandatory",
    LIFECYCLE,
    "Bucket lifecycle expires objects (and old versions), so deleted data does not live forever.",
    "Add an Enabled rule with expiration (and noncurrent_version_expiration on versioned buckets).",
    controls=("S3.10", "S3.13"),
    also_types=(LIFECYCLE_V2,),
)
def lifecycle_expiry(props: Props) -> str | None:
    for r in seq(props.get("rules")):
        if str(r.get("status")) != "Enabled":
            continue
        exp = r.get("expiration")
        nce = r.get("noncurrentVersionExpiration")
        if isinstance(exp, Mapping) and (number(exp.get("days")) or exp.get("date")):
            return None
        if isinstance(nce, Mapping) and number(nce.get("noncurrentDays")):
            return None
    return "no Enabled rule with expiration or noncurrentVersionExpiration"


@rule(
    "s3-sse-cmk",
    "mandatory",
    SSE,
    "Default bucket encryption uses a customer-managed KMS key.",
    'Set sse_algorithm "aws:kms" and kms_master_key_id to the region\'s key.',
    also_types=(SSE_V2,),
)
def sse_cmk(props: Props) -> str | None:
    for r in seq(props.get("rules")):
        default = r.get("applyServerSideEncryptionByDefault")
        if not isinstance(default, Mapping):
            continue
        if str(default.get("sseAlgorithm")).startswith("aws:kms") and default.get("kmsMasterKeyId"):
            return None
    return "default encryption is not aws:kms with kmsMasterKeyId"


@rule(
    "s3-no-compliance-lock",
    "advisory",
    OBJECT_LOCK,
    "No COMPLIANCE-mode Object Lock on data that must be deletable (it cannot be shortened).",
    "Use GOVERNANCE mode, or lock only audit evidence whose retention never shrinks.",
    also_types=(OBJECT_LOCK_V2,),
)
def no_compliance_lock(props: Props) -> str | None:
    rule_ = props.get("rule")
    for r in seq(rule_):
        default = r.get("defaultRetention") if isinstance(r, Mapping) else None
        if isinstance(default, Mapping) and str(default.get("mode")) == "COMPLIANCE":
            return "defaultRetention.mode is COMPLIANCE"
    return None
