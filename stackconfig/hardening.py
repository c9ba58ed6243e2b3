"""Secure defaults shared by the stack config and the components, and the one way to weaken
them: explicitly.

A stack may weaken a default only by naming it in `askasia:allowInsecure` (each setting that can
weaken one declares its `Weakening` in stackconfig/config.py); the weakened resource then carries
the tag `askasia:allow-insecure` so the compliance rules still see it.
"""

from __future__ import annotations

from collections.abc import Iterable

from stackconfig.settings import SettingInvalid, Weakening

MIN_BACKUP_RETENTION_DAYS = 7
MAX_BACKUP_RETENTION_DAYS = 35  # the RDS maximum
DEFAULT_BACKUP_RETENTION_DAYS = 35

# Access tokens are short-lived: 15 minutes unless a stack chooses otherwise, never over 60.
DEFAULT_ACCESS_TOKEN_TTL_MINUTES = 15
MAX_ACCESS_TOKEN_TTL_MINUTES = 60

# The RDS CA the instances present; exported as ca_bundle so clients verify against it.
RDS_CA_IDENTIFIERS = ("rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1")
DEFAULT_CA_IDENTIFIER = "rds-ca-rsa2048-g1"


# Sub-processor credentials rotate monthly unless a stack chooses otherwise, at least yearly.
DEFAULT_SECRET_ROTATION_DAYS = 30
MAX_SECRET_ROTATION_DAYS = 365

INSECURE_TAG = "askasia:allow-insecure"


class InsecureSettingRefused(SettingInvalid):
    """A setting weaker than the secure default, without the explicit opt-in."""


def require_opt_in(weakened: Iterable[Weakening], allow_insecure: Iterable[str], where: str) -> None:
    """Refuse the first weakening (by name) that `allow_insecure` does not name."""
    allowed = set(allow_insecure)
    for w in sorted(weakened, key=lambda w: w.name):
        if w.name not in allowed:
            raise InsecureSettingRefused(
                where,
                f"{w.name} weakens a secure default ({w.cost}); "
                f"add {w.name!r} to askasia:allowInsecure to accept it explicitly",
            )


def insecure_tags(weakened: Iterable[str]) -> dict[str, str]:
    """Tag that surfaces accepted weakenings to policy (tag values allow no commas)."""
    names = sorted(set(weakened))
    return {INSECURE_TAG: " ".join(names)} if names else {}
