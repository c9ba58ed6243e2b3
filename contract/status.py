"""The one set of exit statuses every command and report uses (CI reads them)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0  # clean: nothing found, everything done
    VIOLATIONS = 1  # it ran and found violations, or some targets failed
    COULD_NOT_RUN = 2  # bad input, a cell down, a lock held: nothing (or not all) could be judged

    @classmethod
    def worst(cls, statuses: list[ExitStatus]) -> ExitStatus:
        return max(statuses, default=cls.OK)
