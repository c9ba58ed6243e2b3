"""Typed, validated stack configuration: one frozen PlatformConfig per stack.

Every key is declared once, in the settings classes below: its config name, kind, checks,
default and, where it can weaken a secure default, the allowInsecure name and what counts as
weaker (stackconfig/settings.py derives reading, checking, the engine's kinds and the
weakenings from those declarations).

Two readers, one validator: `stackconfig.files.load_stack_config` reads stacks/Pulumi.<stack>.yaml
directly (tests, `provision plan`, the register; no engine), `components.config.config_from_pulumi`
reads what the engine hands the program. Both build the same mapping and go through
`parse_config`, so a missing or wrong key is the same one-line ConfigError either way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from contract.logs import CLOUDWATCH_RETENTION_DAYS
from stackconfig.hardening import (
    DEFAULT_ACCESS_TOKEN_TTL_MINUTES,
    DEFAULT_BACKUP_RETENTION_DAYS,
    DEFAULT_CA_IDENTIFIER,
    DEFAULT_SECRET_ROTATION_DAYS,
    MAX_ACCESS_TOKEN_TTL_MINUTES,
    MAX_BACKUP_RETENTION_DAYS,
    MAX_SECRET_ROTATION_DAYS,
    MIN_BACKUP_RETENTION_DAYS,
    RDS_CA_IDENTIFIERS,
    require_opt_in,
)
from stackconfig.settings import (
    ConfigError,
    SettingInvalid,
    Settings,
    Weakening,
    declared_weakenings,
    group,
    invalid,
    kinds,
    read,
    setting,
    weakenings,
)

NS = "askasia"
ORIGINS = ("EU", "UK", "IN", "US")
DR_MODES = ("snapshot-copy",)
JWT_KEY_SPECS = ("ECC_NIST_P256", "RSA_2048")
MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)
# Performance Insights keeps 7 days free, or whole months (31-day multiples) up to 2 years.
PI_RETENTION_DAYS = (7, *range(31, 731, 31), 731)
RESERVED_MASTER_USERNAMES = ("postgres", "admin", "root", "rdsadmin", "administrator", "master")

_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_NAME = re.compile(r"^[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]$")  # no "--", no trailing "-"
_STACK = re.compile(r"^[a-z][a-z0-9-]{1,27}$")
_ENVIRONMENT = re.compile(r"^[a-z][a-z0-9]{1,15}$")
_VPC = re.compile(r"^vpc-[0-9a-f]{8,17}$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SG = re.compile(r"^sg-[0-9a-f]{8,17}$")
_ZONE = re.compile(r"^Z[A-Z0-9]{4,31}$")
_DOMAIN = re.compile(r"^(?=.{4,200}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_ENGINE_VERSION = re.compile(r"^1[56]\.\d{1,2}$")
_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_PG_IDENT = re.compile(r"^[a-z][a-z0-9_]{2,62}$")
_WINDOW = re.compile(r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
_MAINT_WINDOW = re.compile(
    r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d-"
    r"(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d$"
)
_LAMBDA_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$")
_SNAPSHOT = re.compile(r"^(arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:cluster-snapshot:)?[a-zA-Z][a-zA-Z0-9:-]{0,254}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


class PointInTimeRestore(Settings):
    """Restore a cell from a cluster's continuous backup, to a time or to the latest possible."""

    source_cluster_identifier: str = setting("sourceClusterIdentifier", str, what="source cluster")
    restore_to_time: str | None = setting(
        "restoreToTime", str, default=None, pattern=_TIMESTAMP, what="UTC timestamp like 2026-05-01T10:00:00Z"
    )
    use_latest_restorable_time: bool = setting("useLatestRestorableTime", bool, default=False)

    def check(self) -> None:
        if bool(self.restore_to_time) == self.use_latest_restorable_time:
            raise SettingInvalid("", "set exactly one of restoreToTime or useLatestRestorableTime: true")


class CellConfig(Settings):
    name: str = setting("name", str, pattern=_NAME, max_length=16, what="cell name (lower-case, digits, hyphens)")
    instance_class: str = setting(
        "instanceClass",
        str,
        default="db.r6g.large",
        pattern=_INSTANCE_CLASS,
        what="instance class (db.<family>.<size>)",
    )
    instances: int = setting(
        "instances",
        int,
        default=2,
        low=1,
        high=15,
        weakening=Weakening(
            "singleInstance", "a cell runs a single instance (no failover to another AZ)", when=lambda n: n < 2
        ),
    )
    restore_from_snapshot: str | None = setting(
        "restoreFromSnapshot", str, default=None, pattern=_SNAPSHOT, what="snapshot identifier or ARN"
    )
    restore_to_point_in_time: PointInTimeRestore | None = setting(
        "restoreToPointInTime", dict, default=None, of=PointInTimeRestore
    )

    def check(self) -> None:
        if self.restore_from_snapshot and self.restore_to_point_in_time:
            raise SettingInvalid("", "restoreFromSnapshot and restoreToPointInTime are exclusive")

    def cluster_identifier(self, stack: str) -> str:
        """The cell's cluster in AWS; a restored cell's carries its restore tag."""
        base = f"askasia-{stack}-{self.name}"
        return f"{base}-{self.restore_tag}" if self.restore_tag else base

    @property
    def restore_tag(self) -> str | None:
        """A restored cell is a new cluster: this tag, from what it is restored from, is part of its
        names, so setting (or changing) a restore declares a new cluster instead of a change the
        provider would ignore on the old one. None for a cell that was never restored."""
        pitr = self.restore_to_point_in_time
        source = self.restore_from_snapshot or (
            pitr and f"{pitr.source_cluster_identifier}@{pitr.restore_to_time or 'latest'}"
        )
        return "r" + hashlib.sha256(source.encode()).hexdigest()[:6] if source else None


class EmailConfig(Settings):
    name: str = setting("name", str, pattern=_NAME, what="sub-processor name")  # as in the sub-processor list
    domain: str = setting("domain", str, pattern=_DOMAIN, what="domain name")


class PaymentsConfig(Settings):
    name: str = setting("name", str, pattern=_NAME, what="sub-processor name")
    rotation_lambda_arn: str | None = setting(
        "rotationLambdaArn", str, default=None, pattern=_LAMBDA_ARN, what="Lambda function ARN"
    )
    rotation_days: int = setting(
        "rotationDays", int, default=DEFAULT_SECRET_ROTATION_DAYS, low=1, high=MAX_SECRET_ROTATION_DAYS
    )


class SubprocessorsConfig(Settings):
    email: EmailConfig = setting("email", dict, of=EmailConfig, what="name, domain")
    payments: PaymentsConfig = setting("payments", dict, of=PaymentsConfig, what="name, rotationLambdaArn")


class NetworkConfig(Settings):
    """Where a region's cells live: the VPC, its private subnets and who may connect."""

    vpc_id: str = setting("vpcId", str, pattern=_VPC, what="VPC id (vpc-...)")
    private_subnet_ids: tuple[str, ...] = setting(
        "privateSubnetIds", list, pattern=_SUBNET, min_items=2, what="subnet id (subnet-...)"
    )
    allowed_source_security_group_ids: tuple[str, ...] = setting(
        "allowedSourceSecurityGroupIds", list, pattern=_SG, min_items=1, what="security group id (sg-...)"
    )


class DatabaseSettings(Settings):
    """What every cell's Aurora cluster is built with (cells differ only in size and restore)."""

    engine_version: str = setting(
        f"{NS}:engineVersion",
        str,
        default="16.6",
        pattern=_ENGINE_VERSION,
        what="Aurora PostgreSQL 15.x or 16.x version",
    )
    database_name: str = setting(f"{NS}:databaseName", str, default="platform", pattern=_PG_IDENT, what="database name")
    master_username: str = setting(
        f"{NS}:masterUsername",
        str,
        default="askasia_admin",
        pattern=_PG_IDENT,
        what="PostgreSQL role name",
        refused={name: f"{name!r} is a default admin name; choose another" for name in RESERVED_MASTER_USERNAMES},
    )
    backup_retention_days: int = setting(
        f"{NS}:backupRetentionDays",
        int,
        default=DEFAULT_BACKUP_RETENTION_DAYS,
        low=1,
        high=MAX_BACKUP_RETENTION_DAYS,
        weakening=Weakening(
            "backupRetentionDays",
            f"automated backups kept fewer than {MIN_BACKUP_RETENTION_DAYS} days",
            when=lambda days: days < MIN_BACKUP_RETENTION_DAYS,
        ),
    )
    preferred_backup_window: str = setting(
        f"{NS}:preferredBackupWindow", str, default="02:00-03:00", pattern=_WINDOW, what="UTC window hh:mm-hh:mm"
    )
    preferred_maintenance_window: str = setting(
        f"{NS}:preferredMaintenanceWindow",
        str,
        default="sun:04:00-sun:05:00",
        pattern=_MAINT_WINDOW,
        what="window ddd:hh:mm-ddd:hh:mm",
    )
    deletion_protection: bool = setting(
        f"{NS}:deletionProtection",
        bool,
        default=True,
        weakening=Weakening(
            "deletionProtection", "clusters can be deleted (deletionProtection=false)", when=lambda on: not on
        ),
    )
    publicly_accessible: bool = setting(
        f"{NS}:publiclyAccessible",
        bool,
        default=False,
        weakening=Weakening("publiclyAccessible", "cluster instances get public IP addresses", when=lambda on: on),
    )
    monitoring_interval: int = setting(
        f"{NS}:monitoringInterval",
        int,
        default=60,
        choices=MONITORING_INTERVALS,
        weakening=Weakening(
            "enhancedMonitoring", "enhanced monitoring is off (monitoringInterval=0)", when=lambda s: s == 0
        ),
    )
    performance_insights_retention_days: int = setting(
        f"{NS}:performanceInsightsRetentionDays", int, default=7, choices=PI_RETENTION_DAYS
    )
    ca_cert_identifier: str = setting(
        f"{NS}:caCertIdentifier", str, default=DEFAULT_CA_IDENTIFIER, choices=RDS_CA_IDENTIFIERS
    )
    log_retention_days: int = setting(
        f"{NS}:databaseLogRetentionDays", int, default=90, choices=tuple(sorted(CLOUDWATCH_RETENTION_DAYS))
    )

    def check(self) -> None:
        start, end = (_minutes(t) for t in self.preferred_backup_window.split("-"))
        length = (end - start) % (24 * 60)
        if length < 30:
            raise invalid(self, "preferred_backup_window", "must be at least 30 minutes long")
        # RDS refuses a maintenance window that overlaps the backup window.
        day_start, day_end = self.preferred_maintenance_window.split("-")
        m_start, m_end = _minutes(day_start[4:]), _minutes(day_end[4:])
        if day_start[:3] == day_end[:3] and m_start < m_end and m_start < start + length and start < m_end:
            raise invalid(
                self,
                "preferred_maintenance_window",
                f"overlaps the backup window {self.preferred_backup_window}",
            )


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


class PlatformConfig(Settings):
    stack: str  # the stack's name, not a config key
    region: str = setting("aws:region", str, pattern=_REGION, what="AWS region")
    environment: str = setting(f"{NS}:environment", str, pattern=_ENVIRONMENT, what="environment name, e.g. prod")
    dr_region: str = setting(f"{NS}:drRegion", str, pattern=_REGION, what="AWS region for disaster-recovery copies")
    dr_mode: str = setting(
        f"{NS}:drMode",
        str,
        default="snapshot-copy",
        choices=DR_MODES,
        # Global clusters cannot use the RDS-managed master secret the contract exports.
        refused={
            "aurora-global": "aurora-global is not supported (global clusters do not "
            "support the managed master password); use snapshot-copy"
        },
    )
    origins: tuple[str, ...] = setting(
        f"{NS}:origins",
        list,
        choices=ORIGINS,
        min_items=1,
        noun="jurisdiction",
        what=f"jurisdictions served, from {', '.join(ORIGINS)}",
    )
    cells: tuple[CellConfig, ...] = setting(
        f"{NS}:cells", list, of=CellConfig, min_items=1, noun="cell", what="name, instanceClass, instances"
    )
    vpc_id: str = setting(f"{NS}:vpcId", str, pattern=_VPC, what="VPC id (vpc-...)")
    private_subnet_ids: tuple[str, ...] = setting(
        f"{NS}:privateSubnetIds", list, pattern=_SUBNET, min_items=2, what="subnet id (subnet-...)"
    )
    allowed_source_security_group_ids: tuple[str, ...] = setting(
        f"{NS}:allowedSourceSecurityGroupIds", list, pattern=_SG, min_items=1, what="security group id (sg-...)"
    )
    domain: str = setting(f"{NS}:domain", str, pattern=_DOMAIN, what="domain name")
    hosted_zone_id: str = setting(f"{NS}:hostedZoneId", str, pattern=_ZONE, what="Route 53 hosted zone id")
    subprocessors: SubprocessorsConfig = setting(
        f"{NS}:subprocessors",
        dict,
        of=SubprocessorsConfig,
        what="email: {name, domain}, payments: {name, rotationLambdaArn}",
    )
    database: DatabaseSettings = group(DatabaseSettings)
    access_token_ttl_minutes: int = setting(
        f"{NS}:accessTokenTtlMinutes",
        int,
        default=DEFAULT_ACCESS_TOKEN_TTL_MINUTES,
        low=1,
        high=MAX_ACCESS_TOKEN_TTL_MINUTES,
    )
    jwt_key_spec: str = setting(f"{NS}:jwtKeySpec", str, default="ECC_NIST_P256", choices=JWT_KEY_SPECS)
    # The JWT key ring's current generation (contract/jwks.py): `provision keys rotate-jwt`
    # raises it by one, which promotes the published next key to signing.
    jwt_key_generation: int = setting(f"{NS}:jwtKeyGeneration", int, default=1, low=1, high=100_000)
    # The DR region's own network, recorded before it is needed: `provision dr rebuild` lands the
    # restored cells there when the region is lost. The program itself does not read it.
    dr_network: NetworkConfig | None = setting(
        f"{NS}:drNetwork",
        dict,
        default=None,
        of=NetworkConfig,
        what="vpcId, privateSubnetIds, allowedSourceSecurityGroupIds",
    )
    # GuardDuty, its EventBridge rule and a security topic in the DR region too. GuardDuty has
    # one detector per account and region: off where another stack already watches that region.
    dr_breach_detection: bool = setting(f"{NS}:drBreachDetection", bool, default=True)
    # The region's own detector: false where another stack's DR detection already has it (a
    # region expansion into, or a rebuild in, that stack's DR region); findings still reach this
    # stack's rule and topic, which need no detector of their own.
    guard_duty_detector: bool = setting(f"{NS}:guardDutyDetector", bool, default=True)
    security_notification_emails: tuple[str, ...] = setting(
        f"{NS}:securityNotificationEmails", list, default=(), pattern=_EMAIL, what="email address"
    )
    # As listed; a name twice is harmless. Its names are checked against the table in check().
    allow_insecure: tuple[str, ...] = setting(f"{NS}:allowInsecure", list, default=(), unique=False)

    @property
    def email(self) -> EmailConfig:
        return self.subprocessors.email

    @property
    def payments(self) -> PaymentsConfig:
        return self.subprocessors.payments

    @property
    def weakened_settings(self) -> tuple[str, ...]:
        """Secure defaults this stack weakens (each must be listed in allow_insecure)."""
        return tuple(w.name for w in weakenings(self))

    def check(self) -> None:
        if self.dr_region == self.region:
            raise invalid(self, "dr_region", f"must differ from aws:region ({self.region})")
        names = [c.name for c in self.cells]
        if len(set(names)) != len(names):
            raise invalid(self, "cells", f"duplicate cell names in {names}")
        for i, name in enumerate(self.allow_insecure):
            if not isinstance(name, str) or name not in INSECURE_SETTINGS:
                raise SettingInvalid(
                    f"{NS}:allowInsecure[{i}]", f"{name!r} is not one of {', '.join(INSECURE_SETTINGS)}"
                )
        require_opt_in(weakenings(self), self.allow_insecure, "")
        stale = sorted(set(self.allow_insecure) - set(self.weakened_settings))
        if stale:
            # An opt-in that weakens nothing would hide the next, unintended weakening.
            raise invalid(
                self,
                "allow_insecure",
                f"lists {', '.join(stale)} but the stack keeps that secure default; remove it",
            )


# Derived from the table: the kind of every key (so the engine's strings can be decoded before
# validation), the keys a stack may set, and every weakening a stack may opt into.
KINDS: Mapping[str, type] = kinds(PlatformConfig)
CONFIG_KEYS = tuple(KINDS)
INSECURE_SETTINGS: Mapping[str, str] = {w.name: w.cost for w in declared_weakenings(PlatformConfig)}


def parse_config(stack: str, values: Mapping[str, Any], source: str) -> PlatformConfig:
    """Validate a stack's config mapping ("ns:key" -> value) into a PlatformConfig."""
    if not _STACK.match(stack) or "--" in stack or stack.endswith("-"):
        raise ConfigError(
            f"{source}: stack name {stack!r} must be lower-case letters, digits and "
            f"single hyphens, at most 28 characters"
        )
    unknown = sorted(k for k in values if k.startswith(f"{NS}:") and k not in KINDS)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]} (known: {', '.join(CONFIG_KEYS)})")
    return read(PlatformConfig, values, source, stack=stack)
