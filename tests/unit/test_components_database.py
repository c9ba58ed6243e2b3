"""Aurora cells: every hardening default asserted on the resource inputs the engine receives."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest

from components.database import RESTORE_IGNORE_CHANGES, DatabaseArgs
from contract.logs import CLOUDWATCH_RETENTION_DAYS
from offline.mockrun import MockRun
from stackconfig.config import CellConfig, DatabaseSettings, PointInTimeRestore
from stackconfig.hardening import INSECURE_TAG, InsecureSettingRefused
from tests.unit.mock_stacks import config, key_arn, run, stack_run, variant

CELL = "prod-eu-west-1-cell-1"
IDENT = "askasia-prod-eu-west-1-cell-1"


def cluster(r: MockRun, cell: str = CELL):
    return r.named(f"{cell}-cluster")


def instances(r: MockRun, cell: str = CELL):
    return sorted(
        (i for i in r.of_type("aws:rds/clusterInstance:ClusterInstance") if i.name.startswith(f"{cell}-instance-")),
        key=lambda i: i.name,
    )


def test_one_cluster_per_cell():
    r = stack_run()
    idents = sorted(c.inputs["clusterIdentifier"] for c in r.of_type("aws:rds/cluster:Cluster"))
    assert idents == [f"askasia-prod-eu-west-1-{c.name}" for c in config().cells]


def test_engine_and_version():
    inputs = cluster(stack_run()).inputs
    assert inputs["engine"] == "aurora-postgresql"
    assert re.fullmatch(r"1[56]\.\d+", inputs["engineVersion"])
    assert inputs["engineMode"] == "provisioned"
    assert inputs["allowMajorVersionUpgrade"] is False


def test_storage_encrypted_with_the_data_key():
    r = stack_run()
    inputs = cluster(r).inputs
    assert inputs["storageEncrypted"] is True
    assert inputs["kmsKeyId"] == key_arn(r, "data")


def test_credentials_managed_by_rds_with_the_secrets_key_and_iam_auth():
    r = stack_run()
    inputs = cluster(r).inputs
    assert inputs["iamDatabaseAuthenticationEnabled"] is True
    assert inputs["manageMasterUserPassword"] is True
    assert inputs["masterUserSecretKmsKeyId"] == key_arn(r, "secrets")
    assert "masterPassword" not in inputs and "masterPasswordWo" not in inputs
    assert inputs["masterUsername"] == "askasia_admin"


def test_deletion_protection_and_final_snapshot():
    inputs = cluster(stack_run()).inputs
    assert inputs["deletionProtection"] is True
    assert inputs["skipFinalSnapshot"] is False
    assert inputs["finalSnapshotIdentifier"] == f"{IDENT}-final"
    assert inputs["deleteAutomatedBackups"] is False


def test_backups_and_snapshot_tags():
    inputs = cluster(stack_run()).inputs
    assert inputs["backupRetentionPeriod"] == 35
    assert inputs["preferredBackupWindow"] == "02:00-03:00"
    assert inputs["copyTagsToSnapshot"] is True


def test_network_is_private_subnets_and_the_cell_security_group():
    r = stack_run()
    inputs = cluster(r).inputs
    subnets = r.named(f"{CELL}-subnets")
    assert inputs["dbSubnetGroupName"] == subnets.outputs["name"]
    assert subnets.inputs["subnetIds"] == list(config().private_subnet_ids)
    assert inputs["vpcSecurityGroupIds"] == [r.named(f"{CELL}-sg").id]
    assert "publiclyAccessible" not in inputs  # instance-level for Aurora; asserted there


def test_security_group_admits_5432_only_from_named_groups():
    r = stack_run()
    sg = r.named(f"{CELL}-sg")
    assert sg.inputs["vpcId"] == config().vpc_id
    assert not sg.inputs.get("ingress") and not sg.inputs.get("egress")
    proxy_sg = r.named(f"{CELL}-endpoint-proxy-sg")
    allowed = {*config().allowed_source_security_group_ids, proxy_sg.id}
    rules = [
        x
        for x in r.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if x.inputs["securityGroupId"] == sg.id
    ]
    assert {x.inputs["referencedSecurityGroupId"] for x in rules} == allowed
    for rule in rules:
        assert (rule.inputs["fromPort"], rule.inputs["toPort"], rule.inputs["ipProtocol"]) == (5432, 5432, "tcp")
        assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs
    egress = [
        x
        for x in r.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if x.inputs["securityGroupId"] == sg.id
    ]
    assert egress == []


def test_no_security_group_rule_anywhere_opens_to_the_internet():
    r = stack_run()
    for rule in [
        *r.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"),
        *r.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"),
    ]:
        assert rule.inputs.get("cidrIpv4") not in ("0.0.0.0/0",) and rule.inputs.get("cidrIpv6") != "::/0"
        assert rule.inputs.get("referencedSecurityGroupId", "").startswith("sg-")


def test_parameter_group_forces_tls_scram_and_logging():
    r = stack_run()
    group = r.named(f"{CELL}-params")
    assert cluster(r).inputs["dbClusterParameterGroupName"] == group.outputs["name"]
    assert group.inputs["family"] == "aurora-postgresql16"
    params = {p["name"]: p for p in group.inputs["parameters"]}
    assert params["rds.force_ssl"]["value"] == "1"
    assert params["rds.force_ssl"]["applyMethod"] == "pending-reboot"
    assert params["ssl_min_protocol_version"]["value"] == "TLSv1.2"
    assert params["password_encryption"]["value"] == "scram-sha-256"
    assert params["log_connections"]["value"] == "1"
    assert params["log_disconnections"]["value"] == "1"
    assert int(params["log_min_duration_statement"]["value"]) > 0
    assert "pgaudit" in params["shared_preload_libraries"]["value"]
    assert params["shared_preload_libraries"]["applyMethod"] == "pending-reboot"


def test_logs_exported_to_an_encrypted_log_group_created_first():
    r = stack_run()
    c = cluster(r)
    assert c.inputs["enabledCloudwatchLogsExports"] == ["postgresql"]
    group = r.named(f"{CELL}-postgresql-logs")
    assert group.inputs["name"] == f"/aws/rds/cluster/{IDENT}/postgresql"
    assert group.inputs["retentionInDays"] in CLOUDWATCH_RETENTION_DAYS
    assert group.inputs["retentionInDays"] == 90
    assert group.inputs["kmsKeyId"] == key_arn(r, "logs")
    assert group.urn in c.dependencies


def test_instances_private_patched_monitored_across_azs():
    r = stack_run()
    found = instances(r)
    assert len(found) == 2
    role = r.named(f"{CELL}-monitoring")
    for inst in found:
        i = inst.inputs
        assert i["publiclyAccessible"] is False
        assert i["autoMinorVersionUpgrade"] is True
        assert i["caCertIdentifier"] == "rds-ca-rsa2048-g1"
        assert i["clusterIdentifier"] == IDENT
        assert i["engine"] == "aurora-postgresql"
        assert i["performanceInsightsEnabled"] is True
        assert i["performanceInsightsKmsKeyId"] == key_arn(r, "data")
        assert i["performanceInsightsRetentionPeriod"] == 7
        assert i["monitoringInterval"] == 60
        assert i["monitoringRoleArn"] == role.outputs["arn"]
    assert len({i.inputs["availabilityZone"] for i in found}) == 2


def test_monitoring_role_trusts_only_rds_monitoring_for_this_account():
    import json

    role = stack_run().named(f"{CELL}-monitoring")
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert trust["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_only_what_aws_sets_outside_the_program_is_ignored():
    c = cluster(stack_run())
    assert set(c.ignore_changes) == {"globalClusterIdentifier", "replicationSourceIdentifier"}
    assert RESTORE_IGNORE_CHANGES == ["global_cluster_identifier", "replication_source_identifier"]


def test_a_cluster_generation_is_kept_in_aws_when_no_longer_declared():
    r = stack_run()
    kept = [cluster(r), *instances(r), r.named(f"{CELL}-postgresql-logs")]
    assert all(k.retain_on_delete for k in kept)
    assert not r.named(f"{CELL}-subnets").retain_on_delete  # shared by every generation, never removed


def restored(cell: CellConfig) -> tuple[MockRun, str]:
    """The real prod-eu-west-1 config with cell-1 restored; the run and the restore tag."""
    cells = (cell, *config().cells[1:])
    assert cell.restore_tag is not None
    return run(variant(cells=cells)), cell.restore_tag


def test_a_restore_from_snapshot_declares_a_new_cluster_not_a_change_to_the_old_one():
    snapshot = "arn:aws:rds:eu-central-1:123456789012:cluster-snapshot:awsbackup:copyjob-0f1e2d3c"
    r, tag = restored(CellConfig(name="cell-1", restore_from_snapshot=snapshot))
    assert re.fullmatch(r"r[0-9a-f]{6}", tag)
    with pytest.raises(LookupError):
        cluster(r)  # the old generation is no longer declared (and is retained, not deleted)
    new = r.named(f"{CELL}-cluster-{tag}")
    assert new.inputs["clusterIdentifier"] == f"{IDENT}-{tag}"
    assert new.inputs["snapshotIdentifier"] == snapshot
    assert "restoreToPointInTime" not in new.inputs
    assert new.inputs["storageEncrypted"] is True and new.inputs["kmsKeyId"] == key_arn(r, "data")
    assert new.inputs["finalSnapshotIdentifier"] == f"{IDENT}-{tag}-final"
    fresh = [i for i in r.of_type("aws:rds/clusterInstance:ClusterInstance") if i.name.startswith(f"{CELL}-{tag}-")]
    assert sorted(i.inputs["identifier"] for i in fresh) == [f"{IDENT}-{tag}-1", f"{IDENT}-{tag}-2"]
    assert all(i.inputs["clusterIdentifier"] == new.id for i in fresh)
    assert r.named(f"{CELL}-postgresql-logs-{tag}").inputs["name"] == f"/aws/rds/cluster/{IDENT}-{tag}/postgresql"
    # The cell's network and parameters are the same resources as before: nothing else is replaced.
    assert r.named(f"{CELL}-subnets").inputs["name"] == IDENT
    assert r.named(f"{CELL}-params").inputs["name"] == IDENT
    assert new.inputs["dbSubnetGroupName"] == IDENT
    # The other cell is untouched.
    assert cluster(r, "prod-eu-west-1-cell-2").inputs["clusterIdentifier"] == "askasia-prod-eu-west-1-cell-2"


def test_a_restore_to_a_point_in_time_is_a_new_cluster_per_target_time():
    def pitr(when: str) -> CellConfig:
        return CellConfig(
            name="cell-1",
            restore_to_point_in_time=PointInTimeRestore(source_cluster_identifier=IDENT, restore_to_time=when),
        )

    r, tag = restored(pitr("2026-05-01T10:00:00Z"))
    c = r.named(f"{CELL}-cluster-{tag}")
    assert c.inputs["restoreToPointInTime"] == {
        "sourceClusterIdentifier": IDENT,
        "restoreToTime": "2026-05-01T10:00:00Z",
        "restoreType": "full-copy",
    }
    assert "snapshotIdentifier" not in c.inputs
    assert pitr("2026-05-01T10:05:00Z").restore_tag != tag  # another point in time, another cluster


def args(**changes) -> DatabaseArgs:
    """DatabaseArgs for cell-1; a change names a DatabaseSettings field, `instances`, or an arg."""
    names = {f.name for f in dataclasses.fields(DatabaseSettings)}
    settings = DatabaseSettings(**{k: changes.pop(k) for k in list(changes) if k in names})
    base = dict(
        stack="prod-eu-west-1",
        cell=CellConfig(name="cell-1", instances=changes.pop("instances", 2)),
        settings=settings,
        vpc_id="vpc-0a1b2c3d4e5f60718",
        subnet_ids=["subnet-0a11b22c33d44e551", "subnet-0b22c33d44e55f662"],
        allowed_source_security_group_ids=["sg-0e1f2a3b4c5d6e7f8"],
        data_key_arn="arn:d",
        secrets_key_arn="arn:s",
        logs_key_arn="arn:l",
        account_id="123456789012",
        master_secret_reader_arn="arn:aws:iam::123456789012:role/deployer",
    )
    return DatabaseArgs(**{**base, **changes})


@pytest.mark.parametrize(
    ("change", "setting"),
    [
        ({"deletion_protection": False}, "deletionProtection"),
        ({"backup_retention_days": 1}, "backupRetentionDays"),
        ({"publicly_accessible": True}, "publiclyAccessible"),
        ({"instances": 1}, "singleInstance"),
        ({"monitoring_interval": 0}, "enhancedMonitoring"),
    ],
)
def test_component_refuses_a_weaker_setting_without_opt_in(change, setting):
    with pytest.raises(InsecureSettingRefused, match=setting):
        args(**change)
    assert args(**change, allow_insecure=(setting,)).weakened == (setting,)


def test_component_requires_source_groups_and_two_subnets():
    with pytest.raises(ValueError, match="source group"):
        args(allowed_source_security_group_ids=[])
    with pytest.raises(ValueError, match="two AZs"):
        args(subnet_ids=["subnet-0a11b22c33d44e551"])
    with pytest.raises(ValueError, match="15.x or 16.x"):
        args(engine_version="14.9")


def test_opted_in_weakening_is_applied_tagged_and_warned():
    weaker = dataclasses.replace(config().database, deletion_protection=False, publicly_accessible=True)
    r = run(variant(database=weaker, allow_insecure=("deletionProtection", "publiclyAccessible")))
    c = cluster(r)
    assert c.inputs["deletionProtection"] is False
    assert c.tags[INSECURE_TAG] == "deletionProtection publiclyAccessible"
    assert all(i.inputs["publiclyAccessible"] is True for i in instances(r))
    assert all(i.tags[INSECURE_TAG] for i in instances(r))
    assert any("deletionProtection weakened" in w for w in r.warnings)
    # What was not opted into keeps its default.
    assert c.inputs["skipFinalSnapshot"] is False and c.inputs["storageEncrypted"] is True


def test_secure_stack_carries_no_insecure_tag():
    assert all(INSECURE_TAG not in res.tags for res in stack_run().resources)


def test_only_the_deploy_role_reads_the_master_secret():
    """Each cell's RDS-managed master secret carries a resource policy denying GetSecretValue to
    every principal but the role the deployment runs as (an explicit deny beats any allow)."""
    r = stack_run()
    policies = {p.name: p.inputs for p in r.of_type("aws:secretsmanager/secretPolicy:SecretPolicy")}
    for cell in config().cells:
        inputs = policies[f"prod-eu-west-1-{cell.name}-master-secret-policy"]
        assert ":secret:rds!" in inputs["secretArn"]  # the secret RDS manages for this cluster
        assert inputs["blockPublicPolicy"] is True
        (statement,) = json.loads(inputs["policy"])["Statement"]
        assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
        assert statement["Action"] == "secretsmanager:GetSecretValue"
        # the mock's caller is the role ci-deployer: it alone is spared
        assert statement["Condition"]["StringNotEquals"] == {
            "aws:PrincipalArn": "arn:aws:iam::123456789012:role/ci-deployer"
        }
        assert statement["Condition"]["BoolIfExists"] == {"aws:PrincipalIsAWSService": "false"}
