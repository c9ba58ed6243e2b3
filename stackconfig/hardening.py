"""Secure defaults shared by the components, and the one way to weaken them: explicitly.

A stack may weaken a default only by naming it in `askasia:allowInsecure`; the weakened
resource then carries the tag `askasia:allow-insecure` so the compliance rules still see it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

MIN_BACKUP_RETENTION_DAYS = 7
MAX_BACKUP_RETENTION_DAYS = 35  # the RDS maximum
DEFAULT_BACKUP_RETENTION_DAYS = 35

# Access tokens are short-lived: 15 minutes unless a stack chooses otherwise, never over 60.
DEFAULT_ACCESS_TOKEN_TTL_MINUTES = 15
MAX_ACCESS_TOKEN_TTL_MINUTES = 60

# The RDS CA the instances present; exported as ca_bundle so clients verify against it.
RDS_CA_IDENTIFIERS = ("rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1")
DEFAULT_CA_IDENTIFIER = "rds-ca-rsa2048-g1"


@dataclass(frozen=True)
class CellDefaults:
    """A cell's defaults, in one place for the component's Args and for the stack config."""

    engine_version: str = "16.6"
    instance_class: str = "db.r6g.large"
    instances: int = 2
    database_name: str = "platform"
    master_username: str = "askasia_admin"
    preferred_backup_window: str = "02:00-03:00"
    preferred_maintenance_window: str = "sun:04:00-sun:05:00"
    monitoring_interval: int = 60
    performance_insights_retention_days: int = 7
    log_retention_days: int = 90


CELL_DEFAULTS = CellDefaults()

# Sub-processor credentials rotate monthly unless a stack chooses otherwise, at least yearly.
DEFAULT_SECRET_ROTATION_DAYS = 30
MAX_SECRET_ROTATION_DAYS = 365

INSECURE_TAG = "askasia:allow-insecure"

# Every weakening a stack may opt into (by its allowInsecure name) and what it costs.
INSECURE_SETTINGS: Mapping[str, str] = {
    "deletionProtection": "clusters can be deleted (deletionProtection=false)",
    "backupRetentionDays": f"automated backups kept fewer than {MIN_BACKUP_RETENTION_DAYS} days",
    "publiclyAccessible": "cluster instances get public IP addresses",
    "singleInstance": "a cell runs a single instance (no failover to another AZ)",
    "enhancedMonitoring": "enhanced monitoring is off (monitoringInterval=0)",
}


class InsecureSettingRefused(ValueError):
    """A setting weaker than the secure default, without the explicit opt-in."""


def require_opt_in(weakened: Iterable[str], allow_insecure: Iterable[str], where: str) -> tuple[str, ...]:
    """The weakened settings, sorted; refuse any that `allow_insecure` does not name."""
    allowed = set(allow_insecure)
    names = sorted(set(weakened))
    for name in names:
        if name not in INSECURE_SETTINGS:
            raise KeyError(f"unknown insecure setting {name!r}")
        if name not in allowed:
            raise InsecureSettingRefused(
                f"{where}: {name} weakens a secure default ({INSECURE_SETTINGS[name]}); "
                f"add {name!r} to askasia:allowInsecure to accept it explicitly"
            )
    return tuple(names)


def insecure_tags(weakened: Iterable[str]) -> dict[str, str]:
    """Tag that surfaces accepted weakenings to policy (tag values allow no commas)."""
    names = sorted(set(weakened))
    return {INSECURE_TAG: " ".join(names)} if names else {}
