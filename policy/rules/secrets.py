"""Secrets and backups: customer keys on everything that holds tenant data or credentials."""

from __future__ import annotations

from collections.abc import Mapping

from policy.rules.base import Props, number, present, rule, seq

SECRET = "aws:secretsmanager/secret:Secret"
ROTATION = "aws:secretsmanager/secretRotation:SecretRotation"
VAULT = "aws:backup/vault:Vault"
PLAN = "aws:backup/plan:Plan"


@rule(
    "secret-cmk",
    "mandatory",
    SECRET,
    "Secrets are encrypted with a customer-managed KMS key.",
    "Set kms_key_id on the secret.",
)
def secret_cmk(props: Props) -> str | None:
    return None if present(props.get("kmsKeyId")) else "no kmsKeyId (uses aws/secretsmanager)"


@rule(
    "backup-vault-cmk",
    "mandatory",
    VAULT,
    "Backup vaults (also the DR copy targets) encrypt recovery points with a customer key.",
    "Set kms_key_arn on the vault.",
    controls=("Backup.1",),
)
def vault_cmk(props: Props) -> str | None:
    return None if present(props.get("kmsKeyArn")) else "no kmsKeyArn"


@rule(
    "backup-plan-expiry",
    "mandatory",
    PLAN,
    "Every backup rule and cross-region copy action expires its recovery points.",
    "Set lifecycle.delete_after on each rule and each copy_action.",
)
def plan_expiry(props: Props) -> str | None:
    for r in seq(props.get("rules")):
        name = r.get("ruleName") or "?"
        if not _expires(r.get("lifecycle")):
            return f"rule {name} has no lifecycle.deleteAfter"
        for i, action in enumerate(seq(r.get("copyActions"))):
            if not present(action.get("destinationVaultArn")):
                return f"rule {name} copy action #{i} has no destinationVaultArn"
            if not _expires(action.get("lifecycle")):
                return f"rule {name} copy action #{i} has no lifecycle.deleteAfter"
    return None


def _expires(lifecycle: object) -> bool:
    return isinstance(lifecycle, Mapping) and (number(lifecycle.get("deleteAfter")) or 0) > 0
