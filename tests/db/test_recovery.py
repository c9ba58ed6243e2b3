"""`provision dr rebuild` against moto (server mode): the recovery point, the restore written into
stack config, the program declaring a new restored cell (under the SDK's mocks, on the written
file), and a rebuilt stack whose credentials are re-issued by apply in the DR region."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from botocore.stub import Stubber

from contract.status import ExitStatus
from offline.mockrun import run_under_mocks
from provisioner import aws, recovery
from provisioner.apply import ApplyOptions
from provisioner.deploy import Deploy
from provisioner.verify.findings import verify_status
from provisioner.verify.runner import VerifyOptions
from stackconfig.files import load_stack_config
from tests.fake_pulumi import FakeBackend, FakeStack
from tests.helpers import ROOT_DIR, onboard, started_stack, unique

STACK, PRIMARY, DR = "prod-eu-west-1", "eu-west-1", "eu-central-1"
CELLS = ("cell-1", "cell-2")


@pytest.fixture(scope="module")
def moto_dr(local_stack):
    """In moto: the backup key (multi-Region) and its replica under the stack's alias in the DR
    region, a cluster per cell, and snapshot copies in the DR region, newest under another key."""
    kms = aws.client("kms", PRIMARY)
    primary = kms.create_key(Description="backup", MultiRegion=True)["KeyMetadata"]
    replica = kms.replicate_key(KeyId=primary["KeyId"], ReplicaRegion=DR)["ReplicaKeyMetadata"]
    dr_kms = aws.client("kms", DR)
    alias = f"alias/askasia/{STACK}/backup"
    if not any(a["AliasName"] == alias for a in dr_kms.list_aliases()["Aliases"]):
        dr_kms.create_alias(AliasName=alias, TargetKeyId=replica["KeyId"])
    else:
        dr_kms.update_alias(AliasName=alias, TargetKeyId=replica["KeyId"])
    other = dr_kms.create_key(Description="not the DR key")["KeyMetadata"]["Arn"]

    rds, dr_rds = aws.client("rds", PRIMARY), aws.client("rds", DR)
    copies: dict[str, dict[str, str]] = {}
    suffix = unique("run")
    for cell in CELLS:
        ident = f"askasia-{STACK}-{cell}"
        existing = rds.describe_db_clusters(Filters=[{"Name": "db-cluster-id", "Values": [ident]}])["DBClusters"]
        if not existing:
            rds.create_db_cluster(
                DBClusterIdentifier=ident,
                Engine="aurora-postgresql",
                MasterUsername="askasia_admin",
                ManageMasterUserPassword=True,
                StorageEncrypted=True,
                KmsKeyId=primary["Arn"],
            )
        copies[cell] = {}
        for label, key in (("older", replica["Arn"]), ("newer", replica["Arn"]), ("other-key", other)):
            name = f"{ident}-{label}-{suffix}"
            source = rds.create_db_cluster_snapshot(DBClusterIdentifier=ident, DBClusterSnapshotIdentifier=name)
            copy = dr_rds.copy_db_cluster_snapshot(
                SourceDBClusterSnapshotIdentifier=source["DBClusterSnapshot"]["DBClusterSnapshotArn"],
                TargetDBClusterSnapshotIdentifier=f"{name}-dr",
                KmsKeyId=key,
                SourceRegion=PRIMARY,
            )
            copies[cell][label] = copy["DBClusterSnapshot"]["DBClusterSnapshotArn"]
    return {"replica": replica["Arn"], "other": other, "copies": copies}


@pytest.fixture
def stacks(tmp_path) -> Path:
    copy = tmp_path / "stacks"
    shutil.copytree(ROOT_DIR / "stacks", copy)
    return copy


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=timeout,
    )


def test_latest_is_the_newest_copy_in_the_dr_region_under_the_dr_key(moto_dr):
    config = load_stack_config(STACK, ROOT_DIR / "stacks")
    points = recovery.latest_points(config, list(CELLS))
    for cell in CELLS:
        chosen = [p for p in recovery.snapshot_copies(STACK, cell, DR, moto_dr["replica"])]
        assert points[cell].arn == max(chosen, key=lambda p: p.created).arn
        assert points[cell].arn != moto_dr["copies"][cell]["other-key"]  # newest of all, but not the DR key
        assert points[cell].kms_key == moto_dr["replica"] and f":{DR}:" in points[cell].arn


def test_a_regional_rebuild_writes_a_dr_stack_whose_cells_are_new_restored_clusters(moto_dr, stacks):
    result = cli("dr", "rebuild", "--stack", STACK, "--from", "latest", "--no-deploy", "--stacks-dir", str(stacks))
    assert result.returncode == 0, result.stderr
    assert "rebuilt in the DR region as a new stack" in result.stdout
    rebuilt = load_stack_config("prod-eu-central-1", stacks)
    source = load_stack_config(STACK, stacks)
    assert (rebuilt.region, rebuilt.dr_region, rebuilt.origins) == (DR, PRIMARY, source.origins)
    assert rebuilt.vpc_id == source.dr_network.vpc_id  # the landing zone the stack recorded
    assert rebuilt.private_subnet_ids == source.dr_network.private_subnet_ids
    # The lost stack's DR detection already has eu-central-1's detector; eu-west-1 has its own.
    assert (rebuilt.guard_duty_detector, rebuilt.dr_breach_detection) == (False, False)
    points = recovery.latest_points(source, list(CELLS))
    assert {c.name: c.restore_from_snapshot for c in rebuilt.cells} == {c: points[c].arn for c in CELLS}

    run = run_under_mocks(rebuilt)  # the program on the file the command wrote
    for cell in rebuilt.cells:
        tag = cell.restore_tag
        cluster = run.named(f"prod-eu-central-1-{cell.name}-cluster-{tag}")
        assert cluster.inputs["snapshotIdentifier"] == points[cell.name].arn
        assert cluster.inputs["clusterIdentifier"] == f"askasia-prod-eu-central-1-{cell.name}-{tag}"
        assert cluster.region == DR and cluster.retain_on_delete
    assert not run.of_type("aws:guardduty/detector:Detector")  # one per region: neither is this stack's


def test_a_point_in_time_rebuild_is_in_place_and_checked_against_the_restorable_window(moto_dr, stacks):
    (cluster,) = aws.client("rds", PRIMARY).describe_db_clusters(DBClusterIdentifier=f"askasia-{STACK}-cell-1")[
        "DBClusters"
    ]
    earliest = cluster["EarliestRestorableTime"].replace(microsecond=0) + dt.timedelta(seconds=1)
    while dt.datetime.now(dt.UTC) <= earliest + dt.timedelta(seconds=1):  # the window must reach past it
        time.sleep(0.2)
    inside = earliest.strftime("%Y-%m-%dT%H:%M:%SZ")
    before = (earliest - dt.timedelta(days=400)).strftime("%Y-%m-%dT%H:%M:%SZ")
    path = stacks / f"Pulumi.{STACK}.yaml"
    original = path.read_text()

    refused = cli(
        "dr",
        "rebuild",
        "--stack",
        STACK,
        "--pitr",
        before,
        "--cell",
        "cell-1",
        "--no-deploy",
        "--stacks-dir",
        str(stacks),
    )
    assert refused.returncode == 2 and "can be restored from" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and path.read_text() == original

    done = cli(
        "dr",
        "rebuild",
        "--stack",
        STACK,
        "--pitr",
        inside,
        "--cell",
        "cell-1",
        "--no-deploy",
        "--stacks-dir",
        str(stacks),
    )
    assert done.returncode == 0, done.stderr
    assert path.read_text().startswith("# Production, Ireland.")  # the file's head comment stays
    config = load_stack_config(STACK, stacks)
    cell1, cell2 = config.cells
    assert cell1.restore_to_point_in_time.source_cluster_identifier == f"askasia-{STACK}-cell-1"
    assert cell1.restore_to_point_in_time.restore_to_time == inside
    assert cell2.restore_to_point_in_time is None and cell2.restore_from_snapshot is None
    run = run_under_mocks(config)
    restored = run.named(f"{STACK}-cell-1-cluster-{cell1.restore_tag}")
    assert restored.inputs["restoreToPointInTime"]["restoreToTime"] == inside
    assert run.named(f"{STACK}-cell-2-cluster").inputs["clusterIdentifier"] == f"askasia-{STACK}-cell-2"


def test_refusals_are_one_line_and_write_nothing(moto_dr, stacks):
    before = {p.name: p.read_text() for p in stacks.iterdir()}
    other_key = moto_dr["copies"]["cell-1"]["other-key"]
    cases = [
        (("--from", other_key, "--cell", "cell-1"), "not the DR key"),
        (("--from", moto_dr["copies"]["cell-1"]["newer"]), "restores one cell: add --cell"),
        (
            ("--from", moto_dr["copies"]["cell-2"]["newer"], "--cell", "cell-1"),
            "not a snapshot of prod-eu-west-1 cell-1",
        ),
        (("--from", "snap-1"), "give `latest` or a cluster snapshot ARN"),
        (("--from", "latest", "--pitr", "2026-05-01T10:00:00Z"), "one of them"),
        (("--pitr", "yesterday"), "give a UTC time"),
        (("--from", "latest", "--cell", "cell-9"), "has no cell 'cell-9'"),
    ]
    for args, message in cases:
        result = cli("dr", "rebuild", "--stack", STACK, *args, "--no-deploy", "--stacks-dir", str(stacks))
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
    assert {p.name: p.read_text() for p in stacks.iterdir()} == before


def test_no_copy_in_the_dr_region_is_a_clear_refusal(moto_dr, stacks):
    result = cli(
        "dr", "rebuild", "--stack", "prod-us-east-1", "--from", "latest", "--no-deploy", "--stacks-dir", str(stacks)
    )
    assert result.returncode == 2
    assert "alias/askasia/prod-us-east-1/backup in us-west-2 cannot be read" in result.stderr


def test_without_the_pulumi_cli_a_rebuild_stops_before_writing(moto_dr, stacks, tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "provisioner",
            "dr",
            "rebuild",
            "--stack",
            STACK,
            "--from",
            "latest",
            "--stacks-dir",
            str(stacks),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2 and "the pulumi CLI is not on PATH" in result.stderr
    assert not (stacks / "Pulumi.prod-eu-central-1.yaml").exists()


def test_aws_backup_recovery_points_in_the_dr_vault_count_too(moto_dr):
    """moto 5.2.5 keeps no AWS Backup recovery points: the response is botocore's stub, checked
    against the service model; against AWS the same call lists the DR vault's copies."""
    backup = aws.client("backup", DR)
    newest = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    point = {
        "RecoveryPointArn": f"arn:aws:rds:{DR}:123456789012:cluster-snapshot:awsbackup:copyjob-0f1e2d3c",
        "BackupVaultName": f"askasia-{STACK}-dr",
        "ResourceArn": f"arn:aws:rds:{PRIMARY}:123456789012:cluster:askasia-{STACK}-cell-1",
        "ResourceType": "Aurora",
        "Status": "COMPLETED",
        "EncryptionKeyArn": moto_dr["replica"],
        "CreationDate": newest,
    }
    stale = {**point, "RecoveryPointArn": point["RecoveryPointArn"] + "x", "Status": "PARTIAL"}
    vault = {"BackupVaultName": f"askasia-{STACK}-dr"}
    with Stubber(backup) as stub:
        stub.add_response("describe_backup_vault", vault, vault)
        stub.add_response(
            "list_recovery_points_by_backup_vault",
            {"RecoveryPoints": [point, stale]},
            {**vault, "ByResourceType": "Aurora"},
        )
        stub.add_client_error("describe_backup_vault", "ResourceNotFoundException")
        found = recovery.backup_points(STACK, "cell-1", DR, moto_dr["replica"])
        assert [p.arn for p in found] == [point["RecoveryPointArn"]] and found[0].source == "aws backup"
        assert recovery.backup_points(STACK, "cell-1", DR, moto_dr["replica"]) == []  # no DR vault


@pytest.fixture(scope="module")
def lost_region(tmp_path_factory):
    """A stack of its own whose cells stand for the restored clusters in the DR region: their
    catalogs (roles, verifiers, ledger) came with the restore; no app secret exists there."""
    with started_stack(tmp_path_factory.mktemp("lost"), cells=1) as running:
        partner = unique("dr-partner")
        onboard(running.outputs, {partner: "EU"}, [(partner, "one", "starter"), (partner, "two", "growth")])
        sm, kms = aws.client("secretsmanager", DR), aws.client("kms", DR)
        master = json.loads(
            aws.client("secretsmanager", running.outputs.region).get_secret_value(
                SecretId=running.outputs.clusters[0].master_secret_arn
            )["SecretString"]
        )
        restored_master = sm.create_secret(Name=unique("rds!cluster-restored"), SecretString=json.dumps(master))
        cluster = dataclasses.replace(running.outputs.clusters[0], master_secret_arn=restored_master["ARN"])
        secrets_key = kms.create_key(Description="secrets in the DR region")["KeyMetadata"]["Arn"]
        rebuilt = dataclasses.replace(
            running.outputs,
            stack=unique("rebuilt")[:20],
            region=DR,
            clusters=(cluster,),
            kms={**running.outputs.kms, "secrets": secrets_key},
        )
        yield running, rebuilt


def deploy_rebuilt(rebuilt, check_credentials: bool):
    backend = FakeBackend(FakeStack(rebuilt.to_json()))
    runner = Deploy(
        rebuilt.stack,
        ROOT_DIR,
        apply_options=ApplyOptions(check_credentials=check_credentials),
        verify_options=VerifyOptions(probes=2),
        open=backend,
        create=True,
    )
    return backend, runner.run()


def test_after_a_rebuild_in_another_region_apply_reissues_credentials_and_verify_passes(lost_region):
    running, rebuilt = lost_region
    running.stack.activate()  # boto3 to this stack's moto server (other tests point it elsewhere)
    # What the issue described: the ledger says the credentials are set, the DR region has no
    # secret, so no tenant can log in and verify cannot run.
    _, stale = deploy_rebuilt(rebuilt, check_credentials=False)
    assert stale.failed.name == "verify" and stale.exit_code is ExitStatus.COULD_NOT_RUN
    assert "no credentials for" in stale.failed.detail

    backend, done = deploy_rebuilt(rebuilt, check_credentials=True)
    assert backend.opened[-1][2] is True  # the DR stack is created in the backend
    assert done.exit_code is ExitStatus.OK, done.failed
    (cell,) = done.applied
    assert cell.reissued == 3  # two tenants and their partner: secrets made in the DR region
    assert verify_status(done.verified) is ExitStatus.OK

    _, again = deploy_rebuilt(rebuilt, check_credentials=True)
    assert again.exit_code is ExitStatus.OK and again.applied[0].reissued == 0  # now they agree
