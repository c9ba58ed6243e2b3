"""Aurora PostgreSQL: the cluster-level controls Pulumi's AWSGuard pack does not check."""

from __future__ import annotations

from contract.tiers import SERVER_LIMITS
from policy.rules.base import Props, is_false, is_true, number, present, rule, seq

CLUSTER = "aws:rds/cluster:Cluster"
INSTANCE = "aws:rds/clusterInstance:ClusterInstance"
PARAMS = "aws:rds/clusterParameterGroup:ClusterParameterGroup"
PROXY = "aws:rds/proxy:Proxy"
SNAPSHOT = "aws:rds/clusterSnapshot:ClusterSnapshot"
SNAPSHOT_COPY = "aws:rds/clusterSnapshotCopy:ClusterSnapshotCopy"
INSTANCE_SNAPSHOT_COPY = "aws:rds/snapshotCopy:SnapshotCopy"
BACKUP_REPLICATION = "aws:rds/instanceAutomatedBackupsReplication:InstanceAutomatedBackupsReplication"

MIN_BACKUP_DAYS = 7


def _is_postgres(props: Props) -> bool:
    return "postgres" in str(props.get("engine") or "")


def _parameters(props: Props) -> dict[str, str]:
    out: dict[str, str] = {}
    for p in seq(props.get("parameters")):
        name = p.get("name")
        if name is not None:
            out[str(name)] = str(p.get("value"))
    return out


@rule(
    "rds-cluster-encrypted-cmk",
    "mandatory",
    CLUSTER,
    "Aurora cluster storage is encrypted with a customer-managed KMS key.",
    "Set storage_encrypted=True and kms_key_id to the region's data key.",
    controls=("RDS.27", "CKV_AWS_327"),
)
def cluster_encrypted_cmk(props: Props) -> str | None:
    if not is_true(props.get("storageEncrypted")):
        return "storageEncrypted is not true"
    if not present(props.get("kmsKeyId")):
        return "storageEncrypted without kmsKeyId uses the AWS-managed key, not a customer key"
    return None


@rule(
    "rds-cluster-deletion-protection",
    "mandatory",
    CLUSTER,
    "Aurora cluster has deletion protection.",
    "Set deletion_protection=True (turn it off explicitly only to retire a cell).",
    controls=("RDS.7",),
)
def cluster_deletion_protection(props: Props) -> str | None:
    return None if is_true(props.get("deletionProtection")) else "deletionProtection is not true"


@rule(
    "rds-cluster-iam-auth",
    "mandatory",
    CLUSTER,
    "Aurora cluster accepts IAM database authentication.",
    "Set iam_database_authentication_enabled=True.",
    controls=("RDS.12",),
)
def cluster_iam_auth(props: Props) -> str | None:
    if is_true(props.get("iamDatabaseAuthenticationEnabled")):
        return None
    return "iamDatabaseAuthenticationEnabled is not true"


@rule(
    "rds-cluster-backup-retention",
    "mandatory",
    CLUSTER,
    f"Aurora cluster keeps automated backups for at least {MIN_BACKUP_DAYS} days.",
    f"Set backup_retention_period >= {MIN_BACKUP_DAYS} (the default is 1 day).",
    controls=("RDS.11",),
)
def cluster_backup_retention(props: Props) -> str | None:
    days = number(props.get("backupRetentionPeriod"))
    if days is None:
        return f"backupRetentionPeriod unset (AWS default 1 day < {MIN_BACKUP_DAYS})"
    if days < MIN_BACKUP_DAYS:
        return f"backupRetentionPeriod {days:g} < {MIN_BACKUP_DAYS} days"
    return None


@rule(
    "rds-cluster-postgresql-logs",
    "mandatory",
    CLUSTER,
    "Aurora PostgreSQL cluster exports its postgresql log to CloudWatch Logs.",
    'Set enabled_cloudwatch_logs_exports=["postgresql"].',
    controls=("RDS.37",),
)
def cluster_postgresql_logs(props: Props) -> str | None:
    if not _is_postgres(props):
        return None
    exports = [str(x) for x in seq(props.get("enabledCloudwatchLogsExports"))]
    return None if "postgresql" in exports else "enabledCloudwatchLogsExports lacks 'postgresql'"


@rule(
    "rds-cluster-copy-tags-to-snapshot",
    "advisory",
    CLUSTER,
    "Aurora cluster copies its tags (data classification, stack) to snapshots.",
    "Set copy_tags_to_snapshot=True.",
    controls=("RDS.16",),
)
def cluster_copy_tags(props: Props) -> str | None:
    return None if is_true(props.get("copyTagsToSnapshot")) else "copyTagsToSnapshot is not true"


@rule(
    "rds-cluster-custom-parameter-group",
    "mandatory",
    CLUSTER,
    "Aurora cluster uses the stack's cluster parameter group (where rds.force_ssl=1 is set).",
    "Set db_cluster_parameter_group_name to the component's parameter group, not a default.* group.",
)
def cluster_custom_parameter_group(props: Props) -> str | None:
    group = props.get("dbClusterParameterGroupName")
    if not present(group):
        return "no dbClusterParameterGroupName: the default group does not force TLS"
    if str(group).startswith("default."):
        return f"uses the AWS default parameter group {group}"
    return None


@rule(
    "rds-cluster-performance-insights-cmk",
    "mandatory",
    CLUSTER,
    "Performance Insights data (which holds query text) is encrypted with a customer key.",
    "Set performance_insights_kms_key_id when performance_insights_enabled=True.",
    controls=("CKV_AWS_354",),
)
def cluster_pi_cmk(props: Props) -> str | None:
    if is_true(props.get("performanceInsightsEnabled")) and not present(props.get("performanceInsightsKmsKeyId")):
        return "performanceInsightsEnabled without performanceInsightsKmsKeyId"
    return None


@rule(
    "rds-cluster-managed-master-secret",
    "mandatory",
    CLUSTER,
    "Master credentials live in Secrets Manager under a customer key, never in program or state.",
    "Set manage_master_user_password=True and master_user_secret_kms_key_id; drop master_password.",
)
def cluster_managed_master_secret(props: Props) -> str | None:
    if present(props.get("masterPassword")):
        return "masterPassword is set in the program (it ends up in state)"
    if not is_true(props.get("manageMasterUserPassword")):
        # A restore or a global-cluster secondary takes credentials from elsewhere.
        if present(props.get("snapshotIdentifier")) or present(props.get("globalClusterIdentifier")):
            return None
        return "manageMasterUserPassword is not true"
    if not present(props.get("masterUserSecretKmsKeyId")):
        return "managed master secret without masterUserSecretKmsKeyId uses the AWS-managed key"
    return None


@rule(
    "rds-cluster-final-snapshot",
    "advisory",
    CLUSTER,
    "Deleting the cluster leaves a final snapshot.",
    "Set skip_final_snapshot=False and final_snapshot_identifier.",
)
def cluster_final_snapshot(props: Props) -> str | None:
    if is_true(props.get("skipFinalSnapshot")):
        return "skipFinalSnapshot is true"
    if not present(props.get("finalSnapshotIdentifier")):
        return "no finalSnapshotIdentifier (deletion fails or loses the last state)"
    return None


@rule(
    "rds-instance-not-public",
    "mandatory",
    INSTANCE,
    "Aurora instances are not publicly accessible.",
    "Set publicly_accessible=False explicitly (without a subnet group AWS may default to public).",
    controls=("RDS.2",),
)
def instance_not_public(props: Props) -> str | None:
    value = props.get("publiclyAccessible")
    if is_false(value):
        return None
    return "publiclyAccessible is true" if is_true(value) else "publiclyAccessible not set to false"


@rule(
    "rds-instance-performance-insights-cmk",
    "mandatory",
    INSTANCE,
    "Instance-level Performance Insights is encrypted with a customer key.",
    "Set performance_insights_kms_key_id when performance_insights_enabled=True.",
    controls=("CKV_AWS_354",),
)
def instance_pi_cmk(props: Props) -> str | None:
    return cluster_pi_cmk(props)


@rule(
    "rds-instance-minor-upgrades",
    "advisory",
    INSTANCE,
    "Minor engine upgrades (security fixes) apply automatically.",
    "Leave auto_minor_version_upgrade=True.",
    controls=("RDS.35",),
)
def instance_minor_upgrades(props: Props) -> str | None:
    if is_false(props.get("autoMinorVersionUpgrade")):
        return "autoMinorVersionUpgrade is false"
    return None


@rule(
    "rds-instance-enhanced-monitoring",
    "advisory",
    INSTANCE,
    "Enhanced monitoring is on.",
    "Set monitoring_interval (e.g. 60) and monitoring_role_arn.",
    controls=("RDS.6",),
)
def instance_enhanced_monitoring(props: Props) -> str | None:
    interval = number(props.get("monitoringInterval")) or 0
    if interval <= 0:
        return "monitoringInterval is 0 or unset"
    if not present(props.get("monitoringRoleArn")):
        return "monitoringInterval set without monitoringRoleArn"
    return None


@rule(
    "rds-pg-force-ssl",
    "mandatory",
    PARAMS,
    "PostgreSQL cluster parameter groups force TLS (rds.force_ssl=1).",
    'Add parameter {name: "rds.force_ssl", value: "1", apply_method: "pending-reboot"}.',
)
def params_force_ssl(props: Props) -> str | None:
    if "postgres" not in str(props.get("family") or ""):
        return None
    value = _parameters(props).get("rds.force_ssl")
    if value is None:
        return "rds.force_ssl not set"
    return None if value == "1" else f"rds.force_ssl={value}"


@rule(
    "rds-pg-scram-passwords",
    "mandatory",
    PARAMS,
    "PostgreSQL stores passwords as SCRAM-SHA-256, never MD5.",
    'Add parameter {name: "password_encryption", value: "scram-sha-256"}.',
)
def params_scram(props: Props) -> str | None:
    if "postgres" not in str(props.get("family") or ""):
        return None
    value = _parameters(props).get("password_encryption")
    if value is None:
        return "password_encryption not set to scram-sha-256"
    return None if value.lower() == "scram-sha-256" else f"password_encryption={value}"


@rule(
    "rds-pg-tls-min-version",
    "advisory",
    PARAMS,
    "PostgreSQL refuses TLS below 1.2.",
    'Leave ssl_min_protocol_version unset (TLSv1.2) or set "TLSv1.2"/"TLSv1.3".',
)
def params_tls_min(props: Props) -> str | None:
    value = _parameters(props).get("ssl_min_protocol_version")
    if value is None or value in ("TLSv1.2", "TLSv1.3"):
        return None
    return f"ssl_min_protocol_version={value}"


@rule(
    "rds-pg-session-limits",
    "mandatory",
    PARAMS,
    "PostgreSQL bounds what one session can take of the cell: temporary files (temp_file_limit, which "
    "a tenant cannot raise) and transactions left idle.",
    "Add the parameters of contract/tiers.py SERVER_LIMITS (components/database.py cluster_parameters does).",
)
def params_session_limits(props: Props) -> str | None:
    if "postgres" not in str(props.get("family") or ""):
        return None
    params = _parameters(props)
    problems = []
    for name in ("temp_file_limit", "idle_in_transaction_session_timeout"):
        value = params.get(name)
        ceiling = int(SERVER_LIMITS[name])
        if value is None or not value.lstrip("-").isdigit():
            problems.append(f"{name} not set")
        elif not 0 < int(value) <= ceiling:
            problems.append(f"{name}={value} (unbounded or above {ceiling})")
    return "; ".join(problems) or None


@rule(
    "rds-proxy-require-tls",
    "mandatory",
    PROXY,
    "RDS Proxy requires TLS from clients.",
    "Set require_tls=True.",
    controls=("RDS.43",),
)
def proxy_require_tls(props: Props) -> str | None:
    return None if is_true(props.get("requireTls")) else "requireTls is not true"


@rule(
    "rds-snapshot-not-public",
    "mandatory",
    SNAPSHOT,
    "Manual cluster snapshots are not shared publicly.",
    'Remove "all" from shared_accounts.',
    controls=("RDS.1",),
    also_types=(INSTANCE_SNAPSHOT_COPY, SNAPSHOT_COPY),
)
def snapshot_not_public(props: Props) -> str | None:
    if "all" in [str(a) for a in seq(props.get("sharedAccounts"))]:
        return 'sharedAccounts includes "all" (public snapshot)'
    return None


@rule(
    "rds-snapshot-copy-cmk",
    "mandatory",
    SNAPSHOT_COPY,
    "Snapshot copies (e.g. into the DR region) are encrypted with a customer key there.",
    "Set kms_key_id to the destination region's backup key.",
    controls=("RDS.4", "CKV_AWS_266"),
    also_types=(INSTANCE_SNAPSHOT_COPY, BACKUP_REPLICATION),
)
def snapshot_copy_cmk(props: Props) -> str | None:
    return None if present(props.get("kmsKeyId")) else "no kmsKeyId on the copy"
