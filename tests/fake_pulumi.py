"""A stand-in for the Automation API's Stack (pulumi.automation.Stack): it returns the SDK's own
result types and raises the SDK's own errors, so everything above the seam runs as in production."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation
from pulumi.automation._cmd import CommandResult

from provisioner.automation import PulumiStack


def command_error(code: int, stderr: str) -> automation.errors.CommandError:
    """What the SDK raises when the CLI exits non-zero (its own classification included)."""
    return automation.errors.create_command_error(CommandResult(stdout="", stderr=stderr, code=code))


@dataclass
class FakeStack:
    outputs_doc: dict[str, Any]
    change_summary: dict[str, int] = field(default_factory=lambda: {"create": 3, "update": 1, "same": 40})
    fail: dict[str, automation.errors.CommandError] = field(default_factory=dict)  # verb -> error
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def _call(self, verb: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((verb, {k: v for k, v in kwargs.items() if k != "on_output"}))
        if "on_output" in kwargs:
            kwargs["on_output"](f"{verb} of the fake stack\n")
        if verb in self.fail:
            raise self.fail[verb]

    def preview(self, **kwargs: Any) -> automation.PreviewResult:
        self._call("preview", kwargs)
        return automation.PreviewResult(stdout="", stderr="", change_summary=self.change_summary)

    def up(self, **kwargs: Any) -> automation.UpResult:
        self._call("up", kwargs)
        outputs = {key: automation.OutputValue(value, False) for key, value in self.outputs_doc.items()}
        return automation.UpResult(stdout="", stderr="", summary=None, outputs=outputs)  # type: ignore[arg-type]

    def outputs(self) -> dict[str, automation.OutputValue]:
        self._call("outputs", {})
        return {key: automation.OutputValue(value, False) for key, value in self.outputs_doc.items()}


@dataclass
class FakeBackend:
    """The opener deploy calls instead of `automation.open_stack`: it records what was opened."""

    stack: FakeStack
    opened: list[tuple[str, Path, bool]] = field(default_factory=list)

    def __call__(self, name: str, work_dir: Path, create: bool) -> PulumiStack:
        self.opened.append((name, work_dir, create))
        return PulumiStack(name, self.stack)

    @property
    def verbs(self) -> list[str]:
        return [verb for verb, _ in self.stack.calls]
