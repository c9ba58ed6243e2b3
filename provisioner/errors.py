"""Errors the CLI turns into one clear line and an exit code (never a traceback)."""


class ProvisionError(Exception):
    """A problem the operator must fix; the message is the whole story. Exit code 2."""

    exit_code = 2


class InputError(ProvisionError):
    """Bad input rejected before anything changed."""


class ViolationsFound(ProvisionError):
    """A check ran and found violations. Exit code 1."""

    exit_code = 1
