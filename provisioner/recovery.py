"""Disaster recovery: find the recovery point with boto3, write the restore into stack config so
that the program declares new restored cells, then deploy (apply re-checks every credential).

Two kinds of rebuild:
- in place (the region is up): `--pitr TIME` (Aurora's point-in-time restore is same-region
  only) or `--from SNAPSHOT_ARN` of the stack's own region. The stack file's cells get
  restoreToPointInTime / restoreFromSnapshot; each restored cell is a new cluster.
- regional (the region is lost): `--from latest` or `--from ARN` in the DR region. A new stack
  for the DR region is derived from the lost one (as `region add` does, on the network the
  stack recorded in askasia:drNetwork), each cell restored from its newest copy there,
  encrypted with the DR key (the backup key's replica): an RDS cluster snapshot copy or an AWS
  Backup recovery point in the DR vault.

Credentials: re-issued by apply, not replicated (see README, "Disaster recovery").
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import BotoCoreError, ClientError

from provisioner import aws, regions
from provisioner.errors import InputError, ProvisionError
from stackconfig.config import NS, CellConfig, PlatformConfig, parse_config
from stackconfig.files import load_stack_config, stack_file

LATEST = "latest"
_ARN_REGION = re.compile(r"^arn:aws[a-z-]*:rds:([a-z0-9-]+):\d{12}:cluster-snapshot:")


@dataclass(frozen=True)
class RecoveryPoint:
    cell: str
    arn: str
    created: dt.datetime
    source: str  # "rds snapshot" | "aws backup"
    kms_key: str


def _utc(value: Any) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _of_cell(cluster: str, base: str) -> bool:
    """The cell's cluster, or one of its restored generations (base + restore tag)."""
    return cluster == base or bool(re.fullmatch(re.escape(base) + r"-r[0-9a-f]{6}", cluster))


def dr_key(stack: str, dr_region: str) -> str:
    """The ARN of the backup key's replica in the DR region (alias/askasia/<stack>/backup there)."""
    try:
        meta = aws.client("kms", dr_region).describe_key(KeyId=f"alias/askasia/{stack}/backup")["KeyMetadata"]
    except (ClientError, BotoCoreError) as exc:
        raise ProvisionError(f"the DR key alias/askasia/{stack}/backup in {dr_region} cannot be read: {exc}") from None
    return str(meta["Arn"])


def snapshot_copies(stack: str, cell: str, region: str, key: str) -> list[RecoveryPoint]:
    """Cluster snapshots of the cell in `region`, available and encrypted with `key`."""
    rds = aws.client("rds", region)
    base = f"askasia-{stack}-{cell}"
    found = []
    for page in rds.get_paginator("describe_db_cluster_snapshots").paginate():
        for snap in page["DBClusterSnapshots"]:
            if (
                _of_cell(snap.get("DBClusterIdentifier", ""), base)
                and snap.get("Status") == "available"
                and snap.get("StorageEncrypted")
                and snap.get("KmsKeyId") == key
            ):
                created = _utc(snap["SnapshotCreateTime"])
                found.append(RecoveryPoint(cell, snap["DBClusterSnapshotArn"], created, "rds snapshot", key))
    return found


def backup_points(stack: str, cell: str, region: str, key: str) -> list[RecoveryPoint]:
    """AWS Backup recovery points of the cell's cluster in the stack's DR vault, completed and
    encrypted with `key`. (moto has no recovery points: this path runs against AWS only.)"""
    backup = aws.client("backup", region)
    vault = f"askasia-{stack}-dr"
    try:
        backup.describe_backup_vault(BackupVaultName=vault)
    except ClientError as exc:
        if exc.response["Error"]["Code"] in ("ResourceNotFoundException", "AccessDeniedException"):
            return []  # no DR vault here (or none this role may read): no Backup copies
        raise
    base = f"askasia-{stack}-{cell}"
    found = []
    pages = backup.get_paginator("list_recovery_points_by_backup_vault").paginate(
        BackupVaultName=vault, ByResourceType="Aurora"
    )
    for page in pages:
        for point in page["RecoveryPoints"]:
            cluster = point.get("ResourceArn", "").rsplit(":", 1)[-1]
            if _of_cell(cluster, base) and point.get("Status") == "COMPLETED" and point.get("EncryptionKeyArn") == key:
                created = _utc(point["CreationDate"])
                found.append(RecoveryPoint(cell, point["RecoveryPointArn"], created, "aws backup", key))
    return found


def latest_points(config: PlatformConfig, cells: list[str]) -> dict[str, RecoveryPoint]:
    """The newest copy of each cell in the DR region, under the DR key, from either source."""
    key = dr_key(config.stack, config.dr_region)
    chosen = {}
    for cell in cells:
        try:
            points = snapshot_copies(config.stack, cell, config.dr_region, key)
            points += backup_points(config.stack, cell, config.dr_region, key)
        except (ClientError, BotoCoreError) as exc:
            raise ProvisionError(f"recovery points of {cell} in {config.dr_region} cannot be listed: {exc}") from None
        if not points:
            raise ProvisionError(
                f"no recovery point of {config.stack} {cell} in {config.dr_region} encrypted with the DR key {key}"
            )
        chosen[cell] = max(points, key=lambda p: p.created)
    return chosen


def _snapshot_region(arn: str) -> str | None:
    match = _ARN_REGION.match(arn)
    return match.group(1) if match else None


def given_point(config: PlatformConfig, cell: str, arn: str) -> RecoveryPoint:
    """A snapshot named by ARN: it must exist in its region, be the cell's, available and encrypted
    (in the DR region: with the DR key)."""
    region = _snapshot_region(arn) or ""
    if region not in (config.region, config.dr_region):
        raise InputError(f"--from {arn}: a snapshot in {region}, neither {config.region} nor its DR region")
    try:
        # The account's own snapshot, by its identifier in that region (the ARN's last part).
        snapshot_id = arn.split(":cluster-snapshot:", 1)[1]
        snaps = aws.client("rds", region).describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=snapshot_id)
    except ClientError as exc:
        raise InputError(f"--from {arn}: {exc.response['Error'].get('Message') or exc}") from None
    (snap,) = snaps["DBClusterSnapshots"] or [None]
    if snap is None or not _of_cell(snap.get("DBClusterIdentifier", ""), f"askasia-{config.stack}-{cell}"):
        raise InputError(f"--from {arn}: not a snapshot of {config.stack} {cell}")
    if snap.get("Status") != "available" or not snap.get("StorageEncrypted"):
        raise InputError(f"--from {arn}: not an available, encrypted snapshot")
    if region == config.dr_region and snap.get("KmsKeyId") != (key := dr_key(config.stack, config.dr_region)):
        raise InputError(f"--from {arn}: encrypted with {snap.get('KmsKeyId')}, not the DR key {key}")
    return RecoveryPoint(cell, arn, _utc(snap["SnapshotCreateTime"]), "rds snapshot", snap.get("KmsKeyId", ""))


def check_pitr(config: PlatformConfig, cell: CellConfig, when: str) -> dict[str, Any]:
    """restoreToPointInTime for the cell's current cluster, if `when` is in its restorable window."""
    try:
        at = dt.datetime.strptime(when, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        raise InputError(f"--pitr {when!r}: give a UTC time like 2026-05-01T10:00:00Z") from None
    source = cell.cluster_identifier(config.stack)
    try:
        (cluster,) = aws.client("rds", config.region).describe_db_clusters(DBClusterIdentifier=source)["DBClusters"]
    except ClientError as exc:
        why = exc.response["Error"].get("Message")
        raise ProvisionError(f"--pitr: cluster {source} in {config.region}: {why}") from None
    earliest, latest = _utc(cluster["EarliestRestorableTime"]), _utc(cluster["LatestRestorableTime"])
    if not earliest <= at <= latest:
        window = f"{earliest:%Y-%m-%dT%H:%M:%SZ} to {latest:%Y-%m-%dT%H:%M:%SZ}"
        raise InputError(f"--pitr {when}: {source} can be restored from {window}")
    return {"sourceClusterIdentifier": source, "restoreToTime": when}


@dataclass(frozen=True)
class Rebuild:
    stack: str  # the stack to deploy: the same one in place, or the new one in the DR region
    path: Path
    text: str
    regional: bool
    points: dict[str, RecoveryPoint | dict[str, Any]]  # cell -> snapshot point, or the PITR spec


def _keep_header(path: Path) -> str:
    """The file's leading comment lines (PyYAML keeps no comments: at least its head stays)."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    head = []
    for line in lines:
        if not line.startswith("#"):
            break
        head.append(line)
    return "".join(head)


def _in_place(config: PlatformConfig, stacks_dir: Path, restores: dict[str, dict[str, Any]]) -> tuple[Path, str]:
    path = stack_file(config.stack, stacks_dir)
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for cell in doc["config"][f"{NS}:cells"]:
        if cell["name"] in restores:
            for key in regions.RESTORE_KEYS:
                cell.pop(key, None)
            cell.update(restores[cell["name"]])
    parse_config(config.stack, doc["config"], f"{stacks_dir.name}/{path.name}")
    return path, _keep_header(path) + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def plan_rebuild(
    stacks_dir: Path,
    stack: str,
    source: str | None,
    pitr: str | None,
    cells: list[str] | None = None,
    name: str | None = None,
) -> Rebuild:
    """Everything checked and the new stack text made; nothing written."""
    if (source is None) == (pitr is None):
        raise InputError("give --from latest|SNAPSHOT_ARN or --pitr TIME (one of them)")
    config = load_stack_config(stack, stacks_dir)
    known = [c.name for c in config.cells]
    chosen = cells or known
    unknown = sorted(set(chosen) - set(known))
    if unknown:
        raise InputError(f"stack {stack} has no cell {unknown[0]!r} (cells: {', '.join(known)})")

    if pitr is not None:
        by_name = {c.name: c for c in config.cells}
        specs = {cell: check_pitr(config, by_name[cell], pitr) for cell in chosen}
        path, text = _in_place(config, stacks_dir, {c: {"restoreToPointInTime": s} for c, s in specs.items()})
        return Rebuild(stack, path, text, False, dict(specs))

    if source == LATEST:
        points = latest_points(config, chosen)
    else:
        if _snapshot_region(source or "") is None:
            raise InputError(
                f"--from {source!r}: give `latest` or a cluster snapshot ARN (arn:aws:rds:...:cluster-snapshot:)"
            )
        if len(chosen) != 1:
            raise InputError(f"--from SNAPSHOT_ARN restores one cell: add --cell (cells: {', '.join(known)})")
        points = {chosen[0]: given_point(config, chosen[0], source or "")}
    regional = source == LATEST or _snapshot_region(source or "") == config.dr_region
    if not regional:
        path, text = _in_place(config, stacks_dir, {c: {"restoreFromSnapshot": p.arn} for c, p in points.items()})
        return Rebuild(stack, path, text, False, dict(points))

    if config.dr_network is None:
        raise InputError(
            f"stack {stack} records no askasia:drNetwork: add {config.dr_region}'s vpcId, privateSubnetIds and "
            "allowedSourceSecurityGroupIds to its stack file (they must exist before the region is lost)"
        )
    if set(chosen) != set(known):
        raise InputError("a rebuild in the DR region restores every cell: leave out --cell")
    new = regions.derive(
        stacks_dir, config.dr_region, stack, dr_region=config.region, name=name, network=config.dr_network
    )
    for cell in new.doc["config"][f"{NS}:cells"]:
        cell["restoreFromSnapshot"] = points[cell["name"]].arn
    parse_config(new.name, new.doc["config"], f"{stacks_dir.name}/{new.path.name}")
    text = new.text().replace("by `provision region add`", f"by `provision dr rebuild` (the lost {config.region})")
    return Rebuild(new.name, new.path, text, True, dict(points))


def write(rebuild: Rebuild) -> None:
    rebuild.path.write_text(rebuild.text, encoding="utf-8")
