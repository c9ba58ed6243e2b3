"""The Pulumi Automation API seam: the one module of the tool that imports the Pulumi SDK.

It needs the `pulumi` CLI and a logged-in backend; where either is missing it says so in one
line (exit 2) instead of pretending. `open_stack` selects (or creates) a stack of the project
and wraps the SDK's Stack in `PulumiStack`, which speaks the deploy's words: preview and up with
the policy pack, outputs as plain values, and a failed command as one line with an exit status.
Tests hand `PulumiStack` a stand-in for the SDK's Stack; everything above it runs for real.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from contract.status import ExitStatus
from provisioner.errors import ProvisionError

# The Pulumi CLI's exit codes (stable since v3.226.1): a policy pack blocked the operation, or
# --expect-no-changes found changes. Both mean "it ran and found something"; others could not run.
PULUMI_POLICY_FAILURE = 5
PULUMI_CHANGES_FOUND = 7
_FOUND = {PULUMI_POLICY_FAILURE: "a policy pack blocked it", PULUMI_CHANGES_FOUND: "changes were found"}
_CODE = re.compile(r"code: (-?\d+)")
_STREAM = re.compile(r"^\s*(stdout|stderr):")

INSTALL_HINT = "install it (https://www.pulumi.com/docs/iac/download-install/) and log in to the backend"

Output = Callable[[str], None]


class PulumiFailed(ProvisionError):
    """A Pulumi command failed; `pulumi_code` is the CLI's own exit code."""

    def __init__(self, message: str, pulumi_code: int) -> None:
        super().__init__(message)
        self.pulumi_code = pulumi_code
        self.exit_code = ExitStatus.VIOLATIONS if pulumi_code in _FOUND else ExitStatus.COULD_NOT_RUN


class SdkStack(Protocol):
    """What this module uses of `pulumi.automation.Stack`."""

    def preview(self, **kwargs: Any) -> Any: ...

    def up(self, **kwargs: Any) -> Any: ...

    def outputs(self) -> Any: ...


def require_cli(stack: str, hint: str) -> None:
    if shutil.which("pulumi") is None:
        raise ProvisionError(f"stack {stack}: the pulumi CLI is not on PATH; {hint}")


def _sdk():
    try:
        from pulumi import automation
    except ImportError:
        raise ProvisionError("the Pulumi SDK is not installed: pip install 'askasia-provisioner[pulumi]'") from None
    return automation


def _plain(outputs: Any) -> dict[str, Any]:
    return {key: value.value for key, value in outputs.items()}


def _failure(name: str, verb: str, exc: Exception) -> PulumiFailed:
    """One line from a CommandError: the CLI's exit code and its last error line."""
    text = str(exc)
    match = _CODE.search(text)
    code = int(match.group(1)) if match else 1
    # CommandResult's text: " code: N", " stdout: ...", " stderr: ..." (each stream may span lines).
    lines = [_STREAM.sub("", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line and not _CODE.fullmatch(line)]
    errors = [line for line in lines if line.lower().startswith("error:")]
    reason = (errors or lines or [""])[-1]
    why = f" ({_FOUND[code]})" if code in _FOUND else ""
    return PulumiFailed(f"pulumi {verb} of {name} exited {code}{why}: {reason}".rstrip(": "), code)


class PulumiStack:
    """One stack of the project through the Automation API."""

    def __init__(self, name: str, sdk_stack: SdkStack) -> None:
        self.name, self._stack = name, sdk_stack

    def _run(self, verb: str, call: Callable[[], Any]) -> Any:
        errors = _sdk().errors
        try:
            return call()
        except errors.CommandError as exc:
            raise _failure(self.name, verb, exc) from None

    def preview(self, policy_packs: list[str], on_output: Output, expect_no_changes: bool = False) -> dict[str, int]:
        """The changes the update would make ({"create": 3, "same": 40, ...})."""
        result = self._run(
            "preview",
            lambda: self._stack.preview(
                policy_packs=policy_packs, on_output=on_output, expect_no_changes=expect_no_changes or None
            ),
        )
        return dict(result.change_summary or {})

    def up(self, policy_packs: list[str], on_output: Output) -> dict[str, Any]:
        """Update the stack; its outputs as plain values."""
        result = self._run("up", lambda: self._stack.up(policy_packs=policy_packs, on_output=on_output))
        return _plain(result.outputs)

    def outputs(self) -> dict[str, Any]:
        return _plain(self._run("stack output", self._stack.outputs))


Opener = Callable[[str, Path, bool], PulumiStack]


def open_stack(stack: str, work_dir: Path, create: bool = False) -> PulumiStack:
    """Select the project's stack (or, with `create`, create it when new) in the logged-in backend."""
    require_cli(stack, INSTALL_HINT)
    automation = _sdk()
    select = automation.create_or_select_stack if create else automation.select_stack
    try:
        sdk_stack = select(stack_name=stack, work_dir=str(work_dir))
    except automation.errors.StackNotFoundError:
        raise ProvisionError(f"stack {stack} is not in the Pulumi backend: `pulumi stack init {stack}` first") from None
    except automation.errors.CommandError as exc:
        raise _failure(stack, "stack select", exc) from None
    return PulumiStack(stack, sdk_stack)


def stack_outputs(stack: str, work_dir: Path) -> dict[str, Any]:
    """The stack's outputs as plain values, read through the Automation API."""
    require_cli(stack, f"pass --outputs FILE written by `pulumi stack output --json --stack {stack}`")
    return open_stack(stack, work_dir).outputs()
