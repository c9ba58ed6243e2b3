"""One Aurora PostgreSQL cluster per cell, hardened by default.

Encrypted with the data key, IAM auth on, master password managed by RDS in Secrets Manager
(secrets key), TLS forced at the server (rds.force_ssl=1, TLS >= 1.2), SCRAM password hashing,
connection and slow-statement logs exported to a KMS-encrypted log group created first,
deletion protection and a final snapshot, 35 days of backups, Performance Insights on the data
key, instances private and spread over AZs. Weakening any of these needs `allow_insecure`.
The master's secret carries a resource policy: no principal but the deploy role reads it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from components.iam import document, service_trust
from components.network import PORT, postgres_security_group
from contract.tiers import SERVER_LIMITS
from stackconfig.config import CellConfig, DatabaseSettings
from stackconfig.hardening import insecure_tags, require_opt_in
from stackconfig.settings import weakenings

# The typed token: ClusterInstance takes only EngineType; it serialises as "aurora-postgresql".
ENGINE = aws.rds.EngineType.AURORA_POSTGRESQL

# AWS sets these on a cluster outside the program (a global cluster, a replica's source); the
# next update must not try to undo them. The restore keys are not here: what a cell is restored
# from is part of its cluster's names (CellConfig.restore_tag), so a restore is a new cluster.
RESTORE_IGNORE_CHANGES = ["global_cluster_identifier", "replication_source_identifier"]


def cluster_parameters(log_min_duration_ms: int = 1000) -> list[tuple[str, str, str]]:
    """(name, value, apply_method) for the cluster parameter group."""
    return [
        ("rds.force_ssl", "1", "pending-reboot"),
        ("ssl_min_protocol_version", "TLSv1.2", "pending-reboot"),
        ("password_encryption", "scram-sha-256", "immediate"),
        ("log_connections", "1", "immediate"),
        ("log_disconnections", "1", "immediate"),
        ("log_min_duration_statement", str(log_min_duration_ms), "immediate"),
        ("shared_preload_libraries", "pg_stat_statements,pgaudit", "pending-reboot"),
        ("pgaudit.log", "ddl,role", "immediate"),
        ("pgaudit.log_parameter", "0", "immediate"),  # parameters may carry tenant data
        # Limits a tenant's session cannot raise (superuser-only or server-wide): contract/tiers.py.
        *((name, value, "immediate") for name, value in SERVER_LIMITS.items()),
    ]


@dataclass(frozen=True)
class DatabaseArgs:
    """One cell's cluster: its settings as the stack config validated them, plus what only the
    program knows (keys, account, zones, tags)."""

    stack: str
    cell: CellConfig  # name, size, and the restore it starts from (if any)
    settings: DatabaseSettings
    vpc_id: str
    subnet_ids: Sequence[str]
    allowed_source_security_group_ids: Sequence[str]
    data_key_arn: pulumi.Input[str]
    secrets_key_arn: pulumi.Input[str]
    logs_key_arn: pulumi.Input[str]
    account_id: pulumi.Input[str]
    # The deploy role (the IAM role ARN the program and `provision tenants apply` run as): the one
    # principal that may read the master's password, which apply needs to create the operators.
    master_secret_reader_arn: pulumi.Input[str]
    partition: pulumi.Input[str] = "aws"
    availability_zones: Sequence[pulumi.Input[str]] = ()
    allow_insecure: Collection[str] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.allowed_source_security_group_ids:
            raise ValueError("allowed_source_security_group_ids: name at least one source group")
        if len(self.subnet_ids) < 2:
            raise ValueError("subnet_ids: an Aurora subnet group needs subnets in two AZs")
        # The settings are valid values; giving up a secure default still needs the opt-in,
        # whoever builds these args.
        require_opt_in(weakenings(self.cell, self.settings), self.allow_insecure, f"cell {self.cell.name}")

    @property
    def weakened(self) -> tuple[str, ...]:
        return tuple(w.name for w in weakenings(self.cell, self.settings))

    @property
    def base_identifier(self) -> str:
        """The cell's name in AWS: its subnet and parameter groups keep it across restores."""
        return f"askasia-{self.stack}-{self.cell.name}"

    @property
    def cluster_identifier(self) -> str:
        """The cluster's: a restored cell's carries its restore tag (a new cluster, a new name)."""
        return self.cell.cluster_identifier(self.stack)

    def generation(self, name: str) -> str:
        """A resource name of this cluster generation (unchanged for a cell never restored)."""
        tag = self.cell.restore_tag
        return f"{name}-{tag}" if tag else name

    @property
    def parameter_family(self) -> str:
        return f"aurora-postgresql{self.settings.engine_version.split('.')[0]}"


class Database(pulumi.ComponentResource):
    """An Aurora PostgreSQL cluster (one cell) with its network, parameters and log group."""

    cluster: aws.rds.Cluster
    instances: list[aws.rds.ClusterInstance]
    security_group: aws.ec2.SecurityGroup
    log_group: aws.cloudwatch.LogGroup
    endpoint: pulumi.Output[str]
    reader_endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    master_secret_arn: pulumi.Output[str]
    iam_auth: pulumi.Output[bool]

    def __init__(self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("askasia:platform:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cell, settings = args.cell, args.settings
        ident, base = args.cluster_identifier, args.base_identifier
        tags = {**args.tags, "askasia:cell": cell.name, **insecure_tags(args.weakened)}

        # No egress rule: the database initiates no connections.
        self.security_group = postgres_security_group(
            name,
            vpc_id=args.vpc_id,
            description=f"Aurora {base}: PostgreSQL from named security groups only",
            sources=args.allowed_source_security_group_ids,
            tags={**tags, "Name": f"{base}-db"},
            opts=child,
        )

        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            name=base,
            description=f"Private subnets for {base}",
            subnet_ids=list(args.subnet_ids),
            tags=tags,
            opts=child,
        )

        parameter_group = aws.rds.ClusterParameterGroup(
            f"{name}-params",
            name=base,
            family=args.parameter_family,
            description=f"Hardened parameters for {base}",
            parameters=[
                aws.rds.ClusterParameterGroupParameterArgs(name=n, value=v, apply_method=m)
                for n, v, m in cluster_parameters()
            ],
            tags=tags,
            opts=child,
        )

        # RDS creates this group on first export if missing, unencrypted and kept forever; create
        # it first, with the logs key and a retention.
        # A superseded generation (after a restore) is left in AWS, not deleted: its cluster keeps
        # deletion protection and its logs, and is removed by hand once the restore is proven.
        kept = pulumi.ResourceOptions(parent=self, retain_on_delete=True)
        self.log_group = aws.cloudwatch.LogGroup(
            args.generation(f"{name}-postgresql-logs"),
            name=f"/aws/rds/cluster/{ident}/postgresql",
            retention_in_days=settings.log_retention_days,
            kms_key_id=args.logs_key_arn,
            tags=tags,
            opts=kept,
        )

        monitoring_role_arn: pulumi.Output[str] | None = None
        if settings.monitoring_interval > 0:
            role = aws.iam.Role(
                f"{name}-monitoring",
                description=f"Enhanced monitoring for {base}",
                assume_role_policy=service_trust("monitoring.rds.amazonaws.com", args.account_id),
                tags=tags,
                opts=child,
            )
            aws.iam.RolePolicyAttachment(
                f"{name}-monitoring-policy",
                role=role.name,
                policy_arn=pulumi.Output.concat(
                    "arn:", args.partition, ":iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
                ),
                opts=child,
            )
            monitoring_role_arn = role.arn

        # At most one of the two (the cell's settings refuse both); an absent input is not sent.
        point_in_time = None
        if (pitr := cell.restore_to_point_in_time) is not None:
            point_in_time = aws.rds.ClusterRestoreToPointInTimeArgs(
                source_cluster_identifier=pitr.source_cluster_identifier,
                restore_to_time=pitr.restore_to_time,
                use_latest_restorable_time=pitr.use_latest_restorable_time or None,
                restore_type="full-copy",
            )

        self.cluster = aws.rds.Cluster(
            args.generation(f"{name}-cluster"),
            cluster_identifier=ident,
            engine=ENGINE,
            engine_mode="provisioned",
            engine_version=settings.engine_version,
            database_name=settings.database_name,
            master_username=settings.master_username,
            manage_master_user_password=True,
            master_user_secret_kms_key_id=args.secrets_key_arn,
            iam_database_authentication_enabled=True,
            storage_encrypted=True,
            kms_key_id=args.data_key_arn,
            port=PORT,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[self.security_group.id],
            db_cluster_parameter_group_name=parameter_group.name,
            backup_retention_period=settings.backup_retention_days,
            preferred_backup_window=settings.preferred_backup_window,
            preferred_maintenance_window=settings.preferred_maintenance_window,
            copy_tags_to_snapshot=True,
            deletion_protection=settings.deletion_protection,
            skip_final_snapshot=False,
            final_snapshot_identifier=f"{ident}-final",
            delete_automated_backups=False,
            enabled_cloudwatch_logs_exports=["postgresql"],
            allow_major_version_upgrade=False,
            apply_immediately=False,
            tags=tags,
            snapshot_identifier=cell.restore_from_snapshot,
            restore_to_point_in_time=point_in_time,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.log_group],
                ignore_changes=RESTORE_IGNORE_CHANGES,
                retain_on_delete=True,
            ),
        )

        self.instances = []
        for i in range(cell.instances):
            az = args.availability_zones[i % len(args.availability_zones)] if args.availability_zones else None
            self.instances.append(
                aws.rds.ClusterInstance(
                    f"{args.generation(name)}-instance-{i + 1}",
                    identifier=f"{ident}-{i + 1}",
                    cluster_identifier=self.cluster.id,
                    engine=ENGINE,
                    engine_version=self.cluster.engine_version,
                    instance_class=cell.instance_class,
                    availability_zone=az,
                    db_subnet_group_name=subnet_group.name,
                    publicly_accessible=settings.publicly_accessible,
                    auto_minor_version_upgrade=True,
                    ca_cert_identifier=settings.ca_cert_identifier,
                    copy_tags_to_snapshot=True,
                    performance_insights_enabled=True,
                    performance_insights_kms_key_id=args.data_key_arn,
                    performance_insights_retention_period=settings.performance_insights_retention_days,
                    monitoring_interval=settings.monitoring_interval,
                    monitoring_role_arn=monitoring_role_arn,
                    promotion_tier=i,
                    apply_immediately=False,
                    tags=tags,
                    opts=kept,
                )
            )

        self.endpoint = self.cluster.endpoint
        self.reader_endpoint = self.cluster.reader_endpoint
        self.port = self.cluster.port
        self.iam_auth = self.cluster.iam_database_authentication_enabled.apply(bool)
        self.master_secret_arn = self.cluster.master_user_secrets.apply(_first_secret_arn)
        # An explicit deny in the secret's own policy overrides any identity policy's allow, so
        # no role of the account reads the master's password by being granted it later.
        self.master_secret_policy = aws.secretsmanager.SecretPolicy(
            args.generation(f"{name}-master-secret-policy"),
            secret_arn=self.master_secret_arn,
            policy=master_secret_policy(args.master_secret_reader_arn),
            block_public_policy=True,
            opts=child,
        )
        self.register_outputs(
            {
                "cluster_identifier": self.cluster.cluster_identifier,
                "endpoint": self.endpoint,
                "reader_endpoint": self.reader_endpoint,
                "port": self.port,
                "master_secret_arn": self.master_secret_arn,
                "security_group_id": self.security_group.id,
            }
        )


def master_secret_policy(reader_arn: pulumi.Input[str]) -> pulumi.Output[str]:
    """Deny reading the secret's value to every principal but `reader_arn` (an IAM role ARN, as
    aws:PrincipalArn gives it for any session of that role). AWS services acting as themselves
    (RDS managing and rotating it) are not IAM principals of the account and are left out."""
    return document(
        [
            {
                "Sid": "OnlyTheDeployRoleReadsTheMasterPassword",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
                "Condition": {
                    "StringNotEquals": {"aws:PrincipalArn": reader_arn},
                    "BoolIfExists": {"aws:PrincipalIsAWSService": "false"},
                },
            }
        ]
    )


def _first_secret_arn(secrets: Sequence[aws.rds.outputs.ClusterMasterUserSecret] | None) -> str:
    if not secrets or not secrets[0].secret_arn:
        raise ValueError("cluster has no RDS-managed master secret (manage_master_user_password)")
    return secrets[0].secret_arn
