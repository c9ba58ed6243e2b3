"""RegionalPlatform: one hardened region (keys, audit, cells, endpoints, sub-processors,
backups with DR copies) composed from a PlatformConfig, exposing the stack-outputs contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.audit import Audit, AuditArgs
from components.backup import Backup, BackupArgs
from components.breach import DrBreachDetection, DrBreachDetectionArgs
from components.database import Database, DatabaseArgs
from components.endpoint import Endpoint, EndpointArgs
from components.keys import Keys, KeysArgs
from components.subprocessors import Subprocessors, SubprocessorsArgs
from contract.kms import KMS_PURPOSES
from stackconfig.config import INSECURE_SETTINGS, PlatformConfig
from stackconfig.hardening import MIN_BACKUP_RETENTION_DAYS


@dataclass(frozen=True)
class RegionalPlatformArgs:
    config: PlatformConfig


class RegionalPlatform(pulumi.ComponentResource):
    """Everything one region runs; `outputs` is the stack-outputs contract."""

    outputs: dict[str, Any]
    databases: dict[str, Database]
    endpoints: dict[str, Endpoint]

    def __init__(self, name: str, args: RegionalPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("askasia:platform:RegionalPlatform", name, None, opts)
        cfg = args.config
        child = pulumi.ResourceOptions(parent=self)
        caller = aws.get_caller_identity_output()
        account_id = caller.account_id
        # The role the deployment runs as (an assumed role's session resolved to the role ARN).
        deployer = aws.iam.get_session_context_output(arn=caller.arn).issuer_arn
        partition = aws.get_partition_output().partition
        tags = {
            "askasia:stack": cfg.stack,
            "askasia:environment": cfg.environment,
            "askasia:origins": " ".join(cfg.origins),
        }
        for setting in cfg.weakened_settings:
            pulumi.log.warn(f"{cfg.stack}: {setting} weakened by askasia:allowInsecure: {INSECURE_SETTINGS[setting]}")

        dr_provider = aws.Provider(
            f"{name}-dr",
            region=cfg.dr_region,
            opts=child,
        )

        keys = Keys(
            f"{name}-keys",
            KeysArgs(
                stack=cfg.stack,
                region=cfg.region,
                account_id=account_id,
                partition=partition,
                jwt_issuer=f"https://auth.{cfg.region}.{cfg.domain}",
                dr_region=cfg.dr_region,
                dr_provider=dr_provider,
                jwt_key_spec=cfg.jwt_key_spec,
                jwt_key_generation=cfg.jwt_key_generation,
                access_token_ttl_minutes=cfg.access_token_ttl_minutes,
                tags=tags,
            ),
            opts=child,
        )

        audit = Audit(
            f"{name}-audit",
            AuditArgs(
                stack=cfg.stack,
                region=cfg.region,
                account_id=account_id,
                partition=partition,
                logs_key_arn=keys.arns["logs"],
                security_notification_emails=cfg.security_notification_emails,
                guard_duty_detector=cfg.guard_duty_detector,
                tags=tags,
            ),
            opts=child,
        )

        if cfg.dr_breach_detection:  # the DR region is where a rebuild puts the cells
            DrBreachDetection(
                f"{name}-dr-breach",
                DrBreachDetectionArgs(
                    stack=cfg.stack,
                    dr_region=cfg.dr_region,
                    dr_provider=dr_provider,
                    account_id=account_id,
                    partition=partition,
                    emails=cfg.security_notification_emails,
                    tags=tags,
                ),
                opts=child,
            )

        # Spread each cell's instances over the AZs of the private subnets.
        zones = [aws.ec2.get_subnet_output(id=subnet).availability_zone for subnet in cfg.private_subnet_ids]

        self.databases, self.endpoints = {}, {}
        for cell in cfg.cells:
            db = Database(
                f"{name}-{cell.name}",
                DatabaseArgs(
                    stack=cfg.stack,
                    cell=cell,
                    settings=cfg.database,
                    vpc_id=cfg.vpc_id,
                    subnet_ids=cfg.private_subnet_ids,
                    allowed_source_security_group_ids=cfg.allowed_source_security_group_ids,
                    data_key_arn=keys.arns["data"],
                    secrets_key_arn=keys.arns["secrets"],
                    logs_key_arn=keys.arns["logs"],
                    account_id=account_id,
                    master_secret_reader_arn=deployer,
                    partition=partition,
                    availability_zones=zones,
                    allow_insecure=cfg.allow_insecure,
                    tags=tags,
                ),
                opts=child,
            )
            self.databases[cell.name] = db
            self.endpoints[cell.name] = Endpoint(
                f"{name}-{cell.name}-endpoint",
                EndpointArgs(
                    stack=cfg.stack,
                    region=cfg.region,
                    cell=cell.name,
                    domain=cfg.domain,
                    hosted_zone_id=cfg.hosted_zone_id,
                    vpc_id=cfg.vpc_id,
                    subnet_ids=cfg.private_subnet_ids,
                    allowed_source_security_group_ids=cfg.allowed_source_security_group_ids,
                    database_security_group_id=db.security_group.id,
                    cluster_identifier=db.cluster.cluster_identifier,
                    writer_endpoint=db.endpoint,
                    reader_endpoint=db.reader_endpoint,
                    cluster_resource_id=db.cluster.cluster_resource_id,
                    account_id=account_id,
                    partition=partition,
                    depends_on=db.instances,
                    tags=tags,
                ),
                opts=child,
            )

        Subprocessors(
            f"{name}-subprocessors",
            SubprocessorsArgs(
                stack=cfg.stack,
                secrets_key_arn=keys.arns["secrets"],
                email=cfg.email,
                payments=cfg.payments,
                hosted_zone_id=cfg.hosted_zone_id,
                tags=tags,
            ),
            opts=child,
        )

        if keys.backup_dr_key_arn is None:
            raise ValueError(f"{cfg.stack}: backups need the backup key's replica in {cfg.dr_region}")
        Backup(
            f"{name}-backup",
            BackupArgs(
                stack=cfg.stack,
                dr_region=cfg.dr_region,
                dr_provider=dr_provider,
                backup_key_arn=keys.arns["backup"],
                dr_backup_key_arn=keys.backup_dr_key_arn,
                cluster_arns=[db.cluster.arn for db in self.databases.values()],
                account_id=account_id,
                partition=partition,
                retention_days=max(cfg.database.backup_retention_days, MIN_BACKUP_RETENTION_DAYS),
                dr_retention_days=max(cfg.database.backup_retention_days, MIN_BACKUP_RETENTION_DAYS),
                tags=tags,
            ),
            opts=child,
        )

        self.outputs = {
            "stack": cfg.stack,
            "region": cfg.region,
            "origins": list(cfg.origins),
            "clusters": [
                {
                    "cell": cell,
                    "endpoint": db.endpoint,
                    # Tenants' and partners' applications connect to the cluster directly;
                    # the proxy serves the platform's service role only (components/endpoint.py).
                    "app_endpoint": db.endpoint,
                    "proxy_endpoint": self.endpoints[cell].proxy.endpoint,
                    "port": db.port,
                    "database": cfg.database.database_name,
                    "master_secret_arn": db.master_secret_arn,
                    # The CA the writer presents; clients verify against this bundle.
                    "ca_bundle": db.instances[0].ca_cert_identifier,
                    "iam_auth": db.iam_auth,
                }
                for cell, db in self.databases.items()
            ],
            "kms": {purpose: keys.arns[purpose] for purpose in KMS_PURPOSES},
            "dr": {"region": cfg.dr_region, "mode": cfg.dr_mode},
            "audit_log_groups": dict(audit.log_group_names),
            "jwt": {"jwks_parameter": keys.jwks_parameter.name, "config_parameter": keys.jwt_config_parameter.name},
        }
        self.register_outputs(self.outputs)
