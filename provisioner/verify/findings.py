"""What the verifier reports: one row shape for every check, catalog or probe, and per-cell results."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from provisioner.status import ExitStatus

LEVELS = ("error", "warn")


@dataclass(frozen=True)
class Finding:
    check: str
    level: str  # error | warn
    object: str
    detail: str
    remediation: str

    def as_json(self) -> dict:
        return asdict(self)


@dataclass
class CellReport:
    cell: str
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # why (part of) the cell could not be verified
    checks_run: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    probe_pairs: int = 0
    probe_partners: int = 0
    probe_attempts: int = 0

    @property
    def status(self) -> str:
        if self.errors:
            return "could not run"
        return "violations" if self.findings else "clean"

    def as_json(self) -> dict:
        return {
            "cell": self.cell,
            "status": self.status,
            "errors": self.errors,
            "checks_run": self.checks_run,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "probes": {"pairs": self.probe_pairs, "partners": self.probe_partners, "attempts": self.probe_attempts},
            "findings": [f.as_json() for f in self.findings],
        }


def verify_status(reports: list[CellReport]) -> ExitStatus:
    """COULD_NOT_RUN when any cell could not be (fully) verified, VIOLATIONS on any finding."""
    if any(r.errors for r in reports):
        return ExitStatus.COULD_NOT_RUN
    return ExitStatus.VIOLATIONS if any(r.findings for r in reports) else ExitStatus.OK
