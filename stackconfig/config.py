"""Typed, validated stack configuration: one frozen PlatformConfig per stack.

Two readers, one validator: `stackconfig.files.load_stack_config` reads stacks/Pulumi.<stack>.yaml
directly (tests, `provision plan`, the register; no engine), `components.config.config_from_pulumi`
reads what the engine hands the program. Both build the same mapping and go through
`parse_config`, so a missing or wrong key is the same one-line ConfigError either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from contract.logs import CLOUDWATCH_RETENTION_DAYS
from stackconfig.hardening import (
    CELL_DEFAULTS,
    DEFAULT_ACCESS_TOKEN_TTL_MINUTES,
    DEFAULT_BACKUP_RETENTION_DAYS,
    DEFAULT_CA_IDENTIFIER,
    DEFAULT_SECRET_ROTATION_DAYS,
    INSECURE_SETTINGS,
    MAX_ACCESS_TOKEN_TTL_MINUTES,
    MAX_BACKUP_RETENTION_DAYS,
    MAX_SECRET_ROTATION_DAYS,
    MIN_BACKUP_RETENTION_DAYS,
    RDS_CA_IDENTIFIERS,
    InsecureSettingRefused,
    require_opt_in,
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


class ConfigError(ValueError):
    """A missing or wrong stack-config key; the message is one line naming the key."""


@dataclass(frozen=True)
class PointInTimeRestore:
    source_cluster_identifier: str
    restore_to_time: str | None = None  # RFC 3339 UTC, e.g. 2026-05-01T10:00:00Z
    use_latest_restorable_time: bool = False


@dataclass(frozen=True)
class CellConfig:
    name: str
    instance_class: str = CELL_DEFAULTS.instance_class
    instances: int = CELL_DEFAULTS.instances
    restore_from_snapshot: str | None = None
    restore_to_point_in_time: PointInTimeRestore | None = None


@dataclass(frozen=True)
class EmailConfig:
    name: str  # the sub-processor, as named in the sub-processor list
    domain: str


@dataclass(frozen=True)
class PaymentsConfig:
    name: str
    rotation_lambda_arn: str | None = None
    rotation_days: int = DEFAULT_SECRET_ROTATION_DAYS


@dataclass(frozen=True)
class PlatformConfig:
    stack: str
    region: str
    environment: str
    dr_region: str
    origins: tuple[str, ...]
    cells: tuple[CellConfig, ...]
    vpc_id: str
    private_subnet_ids: tuple[str, ...]
    allowed_source_security_group_ids: tuple[str, ...]
    domain: str
    hosted_zone_id: str
    email: EmailConfig
    payments: PaymentsConfig
    dr_mode: str = "snapshot-copy"
    engine_version: str = CELL_DEFAULTS.engine_version
    database_name: str = CELL_DEFAULTS.database_name
    master_username: str = CELL_DEFAULTS.master_username
    backup_retention_days: int = DEFAULT_BACKUP_RETENTION_DAYS
    preferred_backup_window: str = CELL_DEFAULTS.preferred_backup_window
    preferred_maintenance_window: str = CELL_DEFAULTS.preferred_maintenance_window
    deletion_protection: bool = True
    publicly_accessible: bool = False
    monitoring_interval: int = CELL_DEFAULTS.monitoring_interval
    performance_insights_retention_days: int = CELL_DEFAULTS.performance_insights_retention_days
    ca_cert_identifier: str = DEFAULT_CA_IDENTIFIER
    database_log_retention_days: int = CELL_DEFAULTS.log_retention_days
    access_token_ttl_minutes: int = DEFAULT_ACCESS_TOKEN_TTL_MINUTES
    jwt_key_spec: str = "ECC_NIST_P256"
    security_notification_emails: tuple[str, ...] = ()
    allow_insecure: frozenset[str] = field(default_factory=frozenset)

    @property
    def weakened_settings(self) -> tuple[str, ...]:
        """Secure defaults this stack weakens (each must be listed in allow_insecure)."""
        return weakened_settings(self)


def weakened_settings(cfg: PlatformConfig) -> tuple[str, ...]:
    found = []
    if not cfg.deletion_protection:
        found.append("deletionProtection")
    if cfg.backup_retention_days < MIN_BACKUP_RETENTION_DAYS:
        found.append("backupRetentionDays")
    if cfg.publicly_accessible:
        found.append("publiclyAccessible")
    if any(c.instances < 2 for c in cfg.cells):
        found.append("singleInstance")
    if cfg.monitoring_interval == 0:
        found.append("enhancedMonitoring")
    return tuple(sorted(found))


# Kind of every key, so the engine's string values can be decoded before validation.
KINDS: dict[str, str] = {
    "aws:region": "str",
    f"{NS}:environment": "str",
    f"{NS}:drRegion": "str",
    f"{NS}:drMode": "str",
    f"{NS}:origins": "list",
    f"{NS}:cells": "list",
    f"{NS}:vpcId": "str",
    f"{NS}:privateSubnetIds": "list",
    f"{NS}:allowedSourceSecurityGroupIds": "list",
    f"{NS}:domain": "str",
    f"{NS}:hostedZoneId": "str",
    f"{NS}:subprocessors": "object",
    f"{NS}:engineVersion": "str",
    f"{NS}:databaseName": "str",
    f"{NS}:masterUsername": "str",
    f"{NS}:backupRetentionDays": "int",
    f"{NS}:preferredBackupWindow": "str",
    f"{NS}:preferredMaintenanceWindow": "str",
    f"{NS}:deletionProtection": "bool",
    f"{NS}:publiclyAccessible": "bool",
    f"{NS}:monitoringInterval": "int",
    f"{NS}:performanceInsightsRetentionDays": "int",
    f"{NS}:caCertIdentifier": "str",
    f"{NS}:databaseLogRetentionDays": "int",
    f"{NS}:accessTokenTtlMinutes": "int",
    f"{NS}:jwtKeySpec": "str",
    f"{NS}:securityNotificationEmails": "list",
    f"{NS}:allowInsecure": "list",
}
CONFIG_KEYS = tuple(KINDS)

_MISSING = object()


class _Reader:
    """Typed access to one config mapping; every failure names the source and the key."""

    def __init__(self, values: Mapping[str, Any], source: str) -> None:
        self.values = values
        self.source = source

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {problem}")

    def get(
        self,
        key: str,
        kind: type | tuple[type, ...],
        default: Any = _MISSING,
        *,
        what: str = "",
        raw: Mapping[str, Any] | None = None,
    ) -> Any:
        # Nested values are looked up by their last segment: "askasia:cells[0].name" -> "name".
        source, field_name = (self.values, key) if raw is None else (raw, key.rsplit(".", 1)[-1])
        if field_name not in source:
            if default is _MISSING:
                hint = f" ({what})" if what else ""
                raise ConfigError(f"{self.source}: missing required key {key}{hint}")
            return default
        value = source[field_name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # bool is an int in Python; a YAML `true` must not pass for a number.
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            names = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
            raise self.fail(key, f"expected {names}, got {value!r}")
        return value

    def text(
        self,
        key: str,
        pattern: re.Pattern[str] | None = None,
        default: Any = _MISSING,
        *,
        what: str = "",
        raw: Mapping[str, Any] | None = None,
    ) -> Any:
        value = self.get(key, str, default, what=what, raw=raw)
        if value is default and default is not _MISSING:
            return value
        if pattern is not None and not pattern.match(value):
            raise self.fail(key, f"{value!r} is not a valid {what or 'value'}")
        return value

    def choice(self, key: str, choices: tuple[Any, ...], default: Any = _MISSING, *, kind: type = str) -> Any:
        value = self.get(key, kind, default)
        if value not in choices:
            raise self.fail(key, f"{value!r} is not one of {', '.join(map(str, choices))}")
        return value

    def integer(self, key: str, default: Any, low: int, high: int) -> int:
        value = self.get(key, int, default)
        if not low <= value <= high:
            raise self.fail(key, f"{value} is outside {low}..{high}")
        return value

    def text_list(
        self, key: str, pattern: re.Pattern[str], what: str, *, min_items: int, default: Any = _MISSING
    ) -> tuple[str, ...]:
        items = self.get(key, list, default, what=what)
        if len(items) < min_items:
            raise self.fail(key, f"needs at least {min_items} item(s), got {len(items)}")
        for i, item in enumerate(items):
            if not isinstance(item, str) or not pattern.match(item):
                raise self.fail(f"{key}[{i}]", f"{item!r} is not a valid {what}")
        if len(set(items)) != len(items):
            raise self.fail(key, "lists an item twice")
        return tuple(items)


_KIND_NAMES = {str: "a string (quote it)", int: "an integer", bool: "true or false", list: "a list", dict: "a mapping"}


def _cells(r: _Reader) -> tuple[CellConfig, ...]:
    key = f"{NS}:cells"
    raw = r.get(key, list, what="list of {name, instanceClass, instances}")
    if not raw:
        raise r.fail(key, "needs at least one cell")
    cells = []
    for i, item in enumerate(raw):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise r.fail(where, f"expected a mapping with name, instanceClass, instances, got {item!r}")
        sub = _Reader(item, r.source)
        unknown = set(item) - {"name", "instanceClass", "instances", "restoreFromSnapshot", "restoreToPointInTime"}
        if unknown:
            raise r.fail(where, f"unknown key(s) {', '.join(sorted(unknown))}")
        name = sub.text(f"{where}.name", _NAME, what="cell name (lower-case, digits, hyphens)", raw=item)
        if len(name) > 16:
            raise r.fail(f"{where}.name", f"{name!r} is longer than 16 characters")
        instance_class = sub.text(
            f"{where}.instanceClass",
            _INSTANCE_CLASS,
            CELL_DEFAULTS.instance_class,
            what="instance class (db.<family>.<size>)",
            raw=item,
        )
        instances = sub.get(f"{where}.instances", int, CELL_DEFAULTS.instances, raw=item)
        if not 1 <= instances <= 15:
            raise r.fail(f"{where}.instances", f"{instances} is outside 1..15")
        snapshot = sub.text(
            f"{where}.restoreFromSnapshot", _SNAPSHOT, None, what="snapshot identifier or ARN", raw=item
        )
        pitr = _point_in_time(sub, f"{where}.restoreToPointInTime", item)
        if snapshot and pitr:
            raise r.fail(where, "restoreFromSnapshot and restoreToPointInTime are exclusive")
        cells.append(CellConfig(name, instance_class, instances, snapshot, pitr))
    names = [c.name for c in cells]
    if len(set(names)) != len(names):
        raise r.fail(key, f"duplicate cell names in {names}")
    return tuple(cells)


def _point_in_time(r: _Reader, key: str, parent: Mapping[str, Any]) -> PointInTimeRestore | None:
    raw = r.get(key, dict, None, raw=parent)
    if raw is None:
        return None
    unknown = set(raw) - {"sourceClusterIdentifier", "restoreToTime", "useLatestRestorableTime"}
    if unknown:
        raise r.fail(key, f"unknown key(s) {', '.join(sorted(unknown))}")
    source = r.text(f"{key}.sourceClusterIdentifier", None, what="source cluster", raw=raw)
    when = r.text(f"{key}.restoreToTime", _TIMESTAMP, None, what="UTC timestamp like 2026-05-01T10:00:00Z", raw=raw)
    latest = r.get(f"{key}.useLatestRestorableTime", bool, False, raw=raw)
    if bool(when) == latest:
        raise r.fail(key, "set exactly one of restoreToTime or useLatestRestorableTime: true")
    return PointInTimeRestore(source, when, latest)


def _subprocessors(r: _Reader) -> tuple[EmailConfig, PaymentsConfig]:
    key = f"{NS}:subprocessors"
    raw = r.get(key, dict, what="{email: {name, domain}, payments: {name, rotationLambdaArn}}")
    unknown = set(raw) - {"email", "payments"}
    if unknown:
        raise r.fail(key, f"unknown key(s) {', '.join(sorted(unknown))}")
    email_raw = r.get(f"{key}.email", dict, what="{name, domain}", raw=raw)
    pay_raw = r.get(f"{key}.payments", dict, what="{name, rotationLambdaArn}", raw=raw)
    for sub_key, sub_raw, allowed in (
        ("email", email_raw, {"name", "domain"}),
        ("payments", pay_raw, {"name", "rotationLambdaArn", "rotationDays"}),
    ):
        extra = set(sub_raw) - allowed
        if extra:
            raise r.fail(f"{key}.{sub_key}", f"unknown key(s) {', '.join(sorted(extra))}")
    email = EmailConfig(
        name=r.text(f"{key}.email.name", _NAME, what="sub-processor name", raw=email_raw),
        domain=r.text(f"{key}.email.domain", _DOMAIN, what="domain name", raw=email_raw),
    )
    days = r.get(f"{key}.payments.rotationDays", int, DEFAULT_SECRET_ROTATION_DAYS, raw=pay_raw)
    if not 1 <= days <= MAX_SECRET_ROTATION_DAYS:
        raise r.fail(f"{key}.payments.rotationDays", f"{days} is outside 1..{MAX_SECRET_ROTATION_DAYS}")
    payments = PaymentsConfig(
        name=r.text(f"{key}.payments.name", _NAME, what="sub-processor name", raw=pay_raw),
        rotation_lambda_arn=r.text(
            f"{key}.payments.rotationLambdaArn", _LAMBDA_ARN, None, what="Lambda function ARN", raw=pay_raw
        ),
        rotation_days=days,
    )
    return email, payments


def parse_config(stack: str, values: Mapping[str, Any], source: str) -> PlatformConfig:
    """Validate a stack's config mapping ("ns:key" -> value) into a PlatformConfig."""
    r = _Reader(values, source)
    if not _STACK.match(stack) or "--" in stack or stack.endswith("-"):
        raise ConfigError(
            f"{source}: stack name {stack!r} must be lower-case letters, digits and "
            f"single hyphens, at most 28 characters"
        )
    unknown = sorted(k for k in values if k.startswith(f"{NS}:") and k not in KINDS)
    if unknown:
        raise ConfigError(f"{source}: unknown key {unknown[0]} (known: {', '.join(CONFIG_KEYS)})")

    region = r.text("aws:region", _REGION, what="AWS region")
    dr_region = r.text(f"{NS}:drRegion", _REGION, what="AWS region for disaster-recovery copies")
    if dr_region == region:
        raise r.fail(f"{NS}:drRegion", f"must differ from aws:region ({region})")
    dr_mode = r.get(f"{NS}:drMode", str, "snapshot-copy")
    if dr_mode == "aurora-global":
        # Global clusters cannot use the RDS-managed master secret the contract exports.
        raise r.fail(
            f"{NS}:drMode",
            "aurora-global is not supported (global clusters do not "
            "support the managed master password); use snapshot-copy",
        )
    if dr_mode not in DR_MODES:
        raise r.fail(f"{NS}:drMode", f"{dr_mode!r} is not one of {', '.join(DR_MODES)}")

    origins = r.get(f"{NS}:origins", list, what=f"jurisdictions served, from {', '.join(ORIGINS)}")
    if not origins:
        raise r.fail(f"{NS}:origins", "needs at least one jurisdiction")
    for i, origin in enumerate(origins):
        if origin not in ORIGINS:
            raise r.fail(f"{NS}:origins[{i}]", f"{origin!r} is not one of {', '.join(ORIGINS)}")
    if len(set(origins)) != len(origins):
        raise r.fail(f"{NS}:origins", "lists a jurisdiction twice")

    email, payments = _subprocessors(r)
    master = r.text(f"{NS}:masterUsername", _PG_IDENT, CELL_DEFAULTS.master_username, what="PostgreSQL role name")
    if master in RESERVED_MASTER_USERNAMES:
        raise r.fail(f"{NS}:masterUsername", f"{master!r} is a default admin name; choose another")

    allow = r.get(f"{NS}:allowInsecure", list, [])
    for i, name in enumerate(allow):
        if name not in INSECURE_SETTINGS:
            raise r.fail(f"{NS}:allowInsecure[{i}]", f"{name!r} is not one of {', '.join(INSECURE_SETTINGS)}")

    cfg = PlatformConfig(
        stack=stack,
        region=region,
        environment=r.text(f"{NS}:environment", _ENVIRONMENT, what="environment name, e.g. prod"),
        dr_region=dr_region,
        dr_mode=dr_mode,
        origins=tuple(origins),
        cells=_cells(r),
        vpc_id=r.text(f"{NS}:vpcId", _VPC, what="VPC id (vpc-...)"),
        private_subnet_ids=r.text_list(f"{NS}:privateSubnetIds", _SUBNET, "subnet id (subnet-...)", min_items=2),
        allowed_source_security_group_ids=r.text_list(
            f"{NS}:allowedSourceSecurityGroupIds", _SG, "security group id (sg-...)", min_items=1
        ),
        domain=r.text(f"{NS}:domain", _DOMAIN, what="domain name"),
        hosted_zone_id=r.text(f"{NS}:hostedZoneId", _ZONE, what="Route 53 hosted zone id"),
        email=email,
        payments=payments,
        engine_version=r.text(
            f"{NS}:engineVersion",
            _ENGINE_VERSION,
            CELL_DEFAULTS.engine_version,
            what="Aurora PostgreSQL 15.x or 16.x version",
        ),
        database_name=r.text(f"{NS}:databaseName", _PG_IDENT, CELL_DEFAULTS.database_name, what="database name"),
        master_username=master,
        backup_retention_days=r.integer(
            f"{NS}:backupRetentionDays", DEFAULT_BACKUP_RETENTION_DAYS, 1, MAX_BACKUP_RETENTION_DAYS
        ),
        preferred_backup_window=r.text(
            f"{NS}:preferredBackupWindow", _WINDOW, CELL_DEFAULTS.preferred_backup_window, what="UTC window hh:mm-hh:mm"
        ),
        preferred_maintenance_window=r.text(
            f"{NS}:preferredMaintenanceWindow",
            _MAINT_WINDOW,
            CELL_DEFAULTS.preferred_maintenance_window,
            what="window ddd:hh:mm-ddd:hh:mm",
        ),
        deletion_protection=r.get(f"{NS}:deletionProtection", bool, True),
        publicly_accessible=r.get(f"{NS}:publiclyAccessible", bool, False),
        monitoring_interval=r.choice(
            f"{NS}:monitoringInterval", MONITORING_INTERVALS, CELL_DEFAULTS.monitoring_interval, kind=int
        ),
        performance_insights_retention_days=r.choice(
            f"{NS}:performanceInsightsRetentionDays",
            PI_RETENTION_DAYS,
            CELL_DEFAULTS.performance_insights_retention_days,
            kind=int,
        ),
        ca_cert_identifier=r.choice(f"{NS}:caCertIdentifier", RDS_CA_IDENTIFIERS, DEFAULT_CA_IDENTIFIER),
        database_log_retention_days=r.choice(
            f"{NS}:databaseLogRetentionDays",
            tuple(sorted(CLOUDWATCH_RETENTION_DAYS)),
            CELL_DEFAULTS.log_retention_days,
            kind=int,
        ),
        access_token_ttl_minutes=r.integer(
            f"{NS}:accessTokenTtlMinutes", DEFAULT_ACCESS_TOKEN_TTL_MINUTES, 1, MAX_ACCESS_TOKEN_TTL_MINUTES
        ),
        jwt_key_spec=r.choice(f"{NS}:jwtKeySpec", JWT_KEY_SPECS, "ECC_NIST_P256"),
        security_notification_emails=r.text_list(
            f"{NS}:securityNotificationEmails", _EMAIL, "email address", min_items=0, default=[]
        ),
        allow_insecure=frozenset(allow),
    )
    _check_windows(r, cfg)
    try:
        require_opt_in(cfg.weakened_settings, cfg.allow_insecure, source)
    except InsecureSettingRefused as exc:
        raise ConfigError(str(exc)) from None
    stale = sorted(cfg.allow_insecure - set(cfg.weakened_settings))
    if stale:
        # An opt-in that weakens nothing would hide the next, unintended weakening.
        raise r.fail(
            f"{NS}:allowInsecure", f"lists {', '.join(stale)} but the stack keeps that secure default; remove it"
        )
    return cfg


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def _check_windows(r: _Reader, cfg: PlatformConfig) -> None:
    start, end = (_minutes(t) for t in cfg.preferred_backup_window.split("-"))
    length = (end - start) % (24 * 60)
    if length < 30:
        raise r.fail(f"{NS}:preferredBackupWindow", "must be at least 30 minutes long")
    # RDS refuses a maintenance window that overlaps the backup window.
    day_start, day_end = cfg.preferred_maintenance_window.split("-")
    m_start, m_end = _minutes(day_start[4:]), _minutes(day_end[4:])
    if day_start[:3] == day_end[:3] and m_start < m_end:
        b_end = start + length
        if m_start < b_end and start < m_end:
            raise r.fail(
                f"{NS}:preferredMaintenanceWindow", f"overlaps the backup window {cfg.preferred_backup_window}"
            )
