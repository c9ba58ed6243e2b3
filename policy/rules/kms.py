"""KMS keys and IAM policies that touch them."""

from __future__ import annotations

from policy.rules.base import (
    Props,
    is_true,
    number,
    policy_document,
    principal_is_wildcard,
    rule,
    seq,
    statements,
)

KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
REPLICA_KEY = "aws:kms/replicaKey:ReplicaKey"
IAM_POLICY = "aws:iam/policy:Policy"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"

DECRYPT_ACTIONS = {"*", "kms:*", "kms:decrypt", "kms:reencryptfrom", "kms:reencrypt*"}


def _symmetric(props: Props) -> bool:
    spec = str(props.get("customerMasterKeySpec") or "SYMMETRIC_DEFAULT")
    usage = str(props.get("keyUsage") or "ENCRYPT_DECRYPT")
    return spec == "SYMMETRIC_DEFAULT" and usage == "ENCRYPT_DECRYPT"


@rule(
    "kms-key-rotation",
    "mandatory",
    KEY,
    "Symmetric customer keys rotate automatically (asymmetric keys cannot and are exempt).",
    "Set enable_key_rotation=True.",
    controls=("KMS.4",),
)
def key_rotation(props: Props) -> str | None:
    if not _symmetric(props):
        return None
    return None if is_true(props.get("enableKeyRotation")) else "enableKeyRotation is not true"


def _wildcard_grant(policy: object) -> str | None:
    doc = policy_document(policy)
    if doc is None:
        return None
    for i, st in enumerate(statements(doc)):
        if st.get("Effect") != "Allow" or st.get("Condition"):
            continue
        if principal_is_wildcard(st.get("Principal")):
            sid = st.get("Sid") or f"#{i}"
            return f"statement {sid} allows Principal * without a Condition"
        if st.get("NotPrincipal") is not None:
            return f"statement {st.get('Sid') or f'#{i}'} uses Allow with NotPrincipal"
    return None


@rule(
    "kms-key-policy-no-wildcard",
    "mandatory",
    KEY,
    "Key policies grant no wildcard principal without a condition.",
    "Name account or role principals; constrain any * principal with a Condition (e.g. aws:PrincipalOrgID).",
    controls=("KMS.1", "KMS.2"),
    also_types=(KEY_POLICY, REPLICA_KEY),
)
def key_policy_no_wildcard(props: Props) -> str | None:
    return _wildcard_grant(props.get("policy"))


@rule(
    "kms-key-deletion-window",
    "advisory",
    KEY,
    "Keys keep the longest (30-day) deletion window so an accidental deletion can be cancelled.",
    "Leave deletion_window_in_days unset or set 30.",
    controls=("KMS.3",),
    also_types=(REPLICA_KEY,),
)
def key_deletion_window(props: Props) -> str | None:
    days = number(props.get("deletionWindowInDays"))
    if days is None or days >= 30:
        return None
    return f"deletionWindowInDays {days:g} < 30"


@rule(
    "iam-no-kms-decrypt-all-keys",
    "advisory",
    IAM_POLICY,
    "IAM policies do not allow decrypting with every KMS key.",
    "Scope kms:Decrypt/ReEncryptFrom to key ARNs, or add a Condition such as kms:ViaService.",
    controls=("KMS.1", "KMS.2"),
    also_types=(ROLE_POLICY,),
)
def iam_no_decrypt_all(props: Props) -> str | None:
    doc = policy_document(props.get("policy"))
    if doc is None:
        return None
    for i, st in enumerate(statements(doc)):
        if st.get("Effect") != "Allow" or st.get("Condition"):
            continue
        actions = {str(a).lower() for a in seq(st.get("Action"))}
        if actions & DECRYPT_ACTIONS and "*" in [str(r) for r in seq(st.get("Resource"))]:
            return f"statement {st.get('Sid') or f'#{i}'} allows KMS decrypt on Resource *"
    return None
