"""Errors the CLI turns into one clear line and an exit status (never a traceback)."""

from contract.status import ExitStatus


class ProvisionError(Exception):
    """A problem the operator must fix; the message is the whole story."""

    exit_code = ExitStatus.COULD_NOT_RUN


class InputError(ProvisionError):
    """Bad input rejected before anything changed."""


class ViolationsFound(ProvisionError):
    """A check ran and found violations."""

    exit_code = ExitStatus.VIOLATIONS


def first_line(exc: BaseException) -> str:
    """An exception's message as one line (libpq's and AWS's run on: details, hints, HTML)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
