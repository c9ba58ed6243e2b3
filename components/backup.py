"""AWS Backup for the cells: a KMS-encrypted vault here, a copy of every recovery point in a
vault in the DR region (encrypted with the backup key's multi-Region replica there).

The DR vault is declared through a second provider for the DR region. Changing that provider's
region later replaces the DR vault: pick the DR region once per stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.iam import service_trust
from stackconfig.hardening import MAX_BACKUP_RETENTION_DAYS, MIN_BACKUP_RETENTION_DAYS

BACKUP_MANAGED_POLICIES = {
    "backups": "service-role/AWSBackupServiceRolePolicyForBackup",
    "restores": "service-role/AWSBackupServiceRolePolicyForRestores",
}


@dataclass(frozen=True)
class BackupArgs:
    stack: str
    dr_region: str
    dr_provider: aws.Provider
    backup_key_arn: pulumi.Input[str]
    dr_backup_key_arn: pulumi.Input[str]
    cluster_arns: Sequence[pulumi.Input[str]]
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str] = "aws"
    schedule: str = "cron(0 3 * * ? *)"  # daily 03:00 UTC, after the RDS backup window
    retention_days: int = 35
    dr_retention_days: int = 35
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for label, days in (("retention_days", self.retention_days), ("dr_retention_days", self.dr_retention_days)):
            if not MIN_BACKUP_RETENTION_DAYS <= days <= MAX_BACKUP_RETENTION_DAYS:
                raise ValueError(f"{label} must be within {MIN_BACKUP_RETENTION_DAYS}..{MAX_BACKUP_RETENTION_DAYS}")
        if not self.cluster_arns:
            raise ValueError("cluster_arns: a backup plan needs at least one cluster")


class Backup(pulumi.ComponentResource):
    """Backup vault + plan (daily, copied to the DR vault) + selection of the clusters."""

    vault: aws.backup.Vault
    dr_vault: aws.backup.Vault
    plan: aws.backup.Plan

    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("askasia:platform:Backup", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(args.tags)

        self.vault = aws.backup.Vault(
            f"{name}-vault",
            name=f"askasia-{args.stack}",
            kms_key_arn=args.backup_key_arn,
            force_destroy=False,
            tags=tags,
            opts=child,
        )
        self.dr_vault = aws.backup.Vault(
            f"{name}-dr-vault",
            name=f"askasia-{args.stack}-dr",
            kms_key_arn=args.dr_backup_key_arn,
            force_destroy=False,
            tags={**tags, "askasia:dr-copy-of": args.stack},
            opts=pulumi.ResourceOptions(parent=self, provider=args.dr_provider),
        )

        role = aws.iam.Role(
            f"{name}-role",
            description=f"AWS Backup for askasia {args.stack}",
            assume_role_policy=service_trust("backup.amazonaws.com", args.account_id),
            tags=tags,
            opts=child,
        )
        attachments = [
            aws.iam.RolePolicyAttachment(
                f"{name}-role-{label}",
                role=role.name,
                policy_arn=pulumi.Output.concat("arn:", args.partition, ":iam::aws:policy/", policy),
                opts=child,
            )
            for label, policy in BACKUP_MANAGED_POLICIES.items()
        ]

        self.plan = aws.backup.Plan(
            f"{name}-plan",
            name=f"askasia-{args.stack}",
            rules=[
                aws.backup.PlanRuleArgs(
                    rule_name="daily-with-dr-copy",
                    target_vault_name=self.vault.name,
                    schedule=args.schedule,
                    start_window=60,
                    completion_window=360,
                    lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=args.retention_days),
                    copy_actions=[
                        aws.backup.PlanRuleCopyActionArgs(
                            destination_vault_arn=self.dr_vault.arn,
                            lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(delete_after=args.dr_retention_days),
                        )
                    ],
                    recovery_point_tags={**tags, "askasia:backup-plan": f"askasia-{args.stack}"},
                )
            ],
            tags=tags,
            opts=child,
        )
        self.selection = aws.backup.Selection(
            f"{name}-clusters",
            name=f"askasia-{args.stack}-clusters",
            plan_id=self.plan.id,
            iam_role_arn=role.arn,
            resources=list(args.cluster_arns),
            opts=pulumi.ResourceOptions(parent=self, depends_on=attachments),
        )

        self.register_outputs(
            {
                "vault_arn": self.vault.arn,
                "dr_vault_arn": self.dr_vault.arn,
                "plan_id": self.plan.id,
            }
        )
