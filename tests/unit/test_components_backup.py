"""Backup: KMS vault here, every recovery point copied to a KMS vault in the DR region."""

from __future__ import annotations

import pytest

from components.backup import BackupArgs
from tests.unit.mock_stacks import key_arn, stack_run

BACKUP = "prod-eu-west-1-backup"


def test_vault_encrypted_with_the_backup_key():
    r = stack_run()
    vault = r.named(f"{BACKUP}-vault")
    assert vault.region == "eu-west-1"
    assert vault.inputs["kmsKeyArn"] == key_arn(r, "backup")
    assert vault.inputs["forceDestroy"] is False


def test_dr_vault_in_the_dr_region_with_the_replica_key():
    r = stack_run()
    dr_vault = r.named(f"{BACKUP}-dr-vault")
    provider = r.one("pulumi:providers:aws")
    assert provider.inputs["region"] == "eu-central-1"
    assert dr_vault.provider.startswith(provider.urn + "::")
    assert dr_vault.region == "eu-central-1"
    replica = r.one("aws:kms/replicaKey:ReplicaKey")
    assert dr_vault.inputs["kmsKeyArn"] == replica.outputs["arn"]
    assert dr_vault.outputs["arn"].startswith("arn:aws:backup:eu-central-1:")


def test_plan_copies_every_recovery_point_to_the_dr_vault():
    r = stack_run()
    rules = r.named(f"{BACKUP}-plan").inputs["rules"]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["targetVaultName"] == r.named(f"{BACKUP}-vault").outputs["name"]
    assert rule["lifecycle"]["deleteAfter"] == 35
    assert [c["destinationVaultArn"] for c in rule["copyActions"]] == [r.named(f"{BACKUP}-dr-vault").outputs["arn"]]
    assert rule["copyActions"][0]["lifecycle"]["deleteAfter"] == 35


def test_selection_covers_every_cluster():
    r = stack_run()
    selection = r.named(f"{BACKUP}-clusters")
    clusters = sorted(c.outputs["arn"] for c in r.of_type("aws:rds/cluster:Cluster"))
    assert sorted(selection.inputs["resources"]) == clusters and len(clusters) == 2
    assert selection.inputs["planId"] == r.named(f"{BACKUP}-plan").id
    role = r.named(f"{BACKUP}-role")
    assert selection.inputs["iamRoleArn"] == role.outputs["arn"]
    attached = {
        a.inputs["policyArn"]
        for a in r.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if a.inputs["role"] == role.outputs["name"]
    }
    assert attached == {
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
    }


def test_backup_args_refuse_short_retention():
    with pytest.raises(ValueError, match="retention_days"):
        BackupArgs(
            stack="s",
            dr_region="eu-central-1",
            dr_provider=None,  # type: ignore[arg-type]
            backup_key_arn="k",
            dr_backup_key_arn="d",
            cluster_arns=["c"],
            account_id="1",
            retention_days=3,
        )
