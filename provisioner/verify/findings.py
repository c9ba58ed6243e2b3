"""What the verifier reports: one row shape for every check, catalog or probe, and per-cell results."""

from __future__ import annotations

from dataclasses import dataclass, field

from contract.status import ExitStatus


@dataclass(frozen=True)
class Finding:
    check: str
    level: str  # error | warn
    object: str
    detail: str
    remediation: str


@dataclass
class CellReport:
    cell: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # why (part of) the cell could not be verified
    checks_run: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # checks run that had nothing to probe here, and why
    timings: dict[str, float] = field(default_factory=dict)
    probe_pairs: int = 0
    probe_partners: int = 0
    probe_attempts: int = 0

    @property
    def status(self) -> str:
        if self.errors:
            return "could not run"
        return "violations" if self.findings else "clean"

    def check_status(self, check: str) -> tuple[str, str]:
        """pass | fail | skip, and for a skip the reason."""
        if check in self.skipped:
            return "skip", self.skipped[check]
        if check not in self.checks_run:
            return "skip", "not run"
        return ("fail", "") if any(f.check == check for f in self.findings) else ("pass", "")


def verify_status(reports: list[CellReport]) -> ExitStatus:
    """COULD_NOT_RUN when any cell could not be (fully) verified, VIOLATIONS on any finding."""
    if any(r.errors for r in reports):
        return ExitStatus.COULD_NOT_RUN
    return ExitStatus.VIOLATIONS if any(r.findings for r in reports) else ExitStatus.OK
