"""The moment a lifecycle command acts for: now, or `--as-of` for a dry run."""

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


def acting_moment(value: str | None, dry_run: bool) -> dt.datetime | None:
    """`--as-of` moves the clock of a dry run only. A run that changes data acts at the
    database's own clock, so no date typed on the command line can cut a grace period or a
    retention period short (or, closing, start one in the past)."""
    moment = parse_as_of(value)
    if moment is not None and not dry_run:
        raise InputError(
            "--as-of is for --dry-run only: a run that changes data acts at the database's clock "
            "(no grace or retention period can be moved)"
        )
    return moment
