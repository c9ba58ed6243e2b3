"""The moment a lifecycle command acts for: now, or `--as-of` (tests, dry runs)."""

from __future__ import annotations

import datetime as dt

from provisioner.errors import InputError


def parse_as_of(value: str | None) -> dt.datetime | None:
    """An ISO 8601 moment; one without a zone is UTC. None means now (the database's clock)."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--as-of {value!r} is not an ISO 8601 timestamp (e.g. 2027-03-01T00:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
