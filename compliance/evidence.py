"""The evidence report: for one stack, each promise of compliance/promises.yaml with its
controls' latest recorded results, and a verdict per clause.

A source run (plan, verify, register, keys) is one record: when it ran, the command that
reproduces it, and a result per control it judged. The report takes, per source, the latest run
at or before `as_of`, so a past date gives the report as it stood then, and every earlier run
time gives a point of a clause's history. Pure: the tool runs the sources and stores the runs.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from compliance.promises import KINDS, Clause, Promises
from compliance.rendering import environment

FORMATS = ("html", "json", "md")
RESULTS = ("pass", "fail", "skip", "n/a", "error")
HISTORY_POINTS = 12

# Verdicts, worst first: only "kept" passes.
VERDICTS = {
    "failing": "a control fails, could not run, or no longer exists",
    "not kept yet": "a control the clause needs is planned, not built",
    "no evidence": "a control was never run on this stack, or none has passed",
    "kept": "every control passed in its latest run (or found nothing to judge)",
}


class EvidenceError(ValueError):
    """A run record that is not one (the message names the file or field)."""


def utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def stamp(moment: dt.datetime) -> str:
    """For people: to the second."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def exact(moment: dt.datetime) -> str:
    """For records: to the microsecond, so runs a second apart keep their order."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Result:
    status: str  # a RESULTS value
    detail: str


@dataclass(frozen=True)
class SourceRun:
    source: str  # plan | verify | register | keys
    stack: str
    command: str  # what reproduces it on its own
    started_at: dt.datetime
    finished_at: dt.datetime
    outcome: str  # ran | not applicable | could not run
    reason: str = ""
    results: dict[str, Result] = field(default_factory=dict)  # "kind:id" -> result
    batch: str = ""  # the `provision evidence` run it was part of: one point of history per batch

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "source": self.source,
            "stack": self.stack,
            "command": self.command,
            "started_at": exact(self.started_at),
            "finished_at": exact(self.finished_at),
            "outcome": self.outcome,
            "reason": self.reason,
            "results": {key: {"status": r.status, "detail": r.detail} for key, r in self.results.items()},
            "batch": self.batch,
        }

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> SourceRun:
        try:
            results = {
                str(key): Result(str(value["status"]), str(value["detail"])) for key, value in raw["results"].items()
            }
            run = cls(
                source=str(raw["source"]),
                stack=str(raw["stack"]),
                command=str(raw["command"]),
                started_at=dt.datetime.fromisoformat(raw["started_at"]),
                finished_at=dt.datetime.fromisoformat(raw["finished_at"]),
                outcome=str(raw["outcome"]),
                reason=str(raw.get("reason") or ""),
                results=results,
                batch=str(raw.get("batch") or ""),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise EvidenceError(f"{where}: not a run record ({exc.__class__.__name__}: {exc})") from None
        if run.outcome not in ("ran", "not applicable", "could not run"):
            raise EvidenceError(f"{where}: outcome {run.outcome!r} is unknown")
        if any(r.status not in RESULTS for r in results.values()):
            raise EvidenceError(f"{where}: a result status is not one of {', '.join(RESULTS)}")
        return run


@dataclass(frozen=True)
class ControlEvidence:
    kind: str
    id: str
    status: str  # a RESULTS value, or "missing", "not run" (source not applicable), "no result" (never run)
    detail: str
    at: str  # when the run that judged it finished ("" without a run)
    command: str
    source: str

    @property
    def passing(self) -> bool:
        return self.status == "pass"


# Problems first when a person reads a clause's controls.
_ORDER = {"fail": 0, "error": 0, "missing": 0, "no result": 1, "not run": 1, "skip": 2, "pass": 3, "n/a": 4}


@dataclass(frozen=True)
class SourceGroup:
    """A clause's controls judged by one source run: one command, one time."""

    source: str
    command: str
    at: str
    controls: tuple[ControlEvidence, ...]

    @property
    def shared(self) -> ControlEvidence | None:
        """The one result every control here has when the source did not judge them one by one
        (not run, could not run, never recorded): shown once, not per control."""
        first = self.controls[0]
        if first.status in ("not run", "error", "no result") and all(
            (c.status, c.detail) == (first.status, first.detail) for c in self.controls
        ):
            return first
        return None


@dataclass(frozen=True)
class ClauseEvidence:
    clause: Clause
    verdict: str  # a VERDICTS key
    controls: tuple[ControlEvidence, ...]
    history: tuple[tuple[str, str], ...]  # (end of a batch of runs, verdict then), oldest first

    @property
    def kept(self) -> bool:
        return self.verdict == "kept"

    @property
    def passed(self) -> int:
        return sum(c.passing for c in self.controls)

    @property
    def latest(self) -> str:
        return max((c.at for c in self.controls if c.at), default="")

    @property
    def groups(self) -> list[SourceGroup]:
        by_source: dict[str, list[ControlEvidence]] = {}
        for c in self.controls:
            by_source.setdefault(c.source, []).append(c)
        return [
            SourceGroup(source, items[0].command, items[0].at, tuple(sorted(items, key=lambda c: _ORDER[c.status])))
            for source, items in by_source.items()
        ]

    @property
    def reason(self) -> str:
        """Why the clause is not kept, in a phrase; "" when it is."""
        if self.kept:
            return ""
        worst = sorted(self.controls, key=lambda c: _ORDER[c.status])
        if self.verdict == "failing":
            bad = [c for c in worst if _ORDER[c.status] == 0]
            more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
            return f"{bad[0].kind} {bad[0].id}: {bad[0].status}: {bad[0].detail}{more}"
        if self.verdict == "not kept yet":
            return "planned: " + "; ".join(p.control for p in self.clause.planned)
        missing = [c for c in worst if _ORDER[c.status] == 1]
        if missing:
            return f"{len(missing)} control(s) {missing[0].status}: {missing[0].detail}"
        return "no control found anything to judge on this stack"


@dataclass
class EvidenceReport:
    stack: str
    policy: str
    generated_at: str
    as_of: str
    clauses: list[ClauseEvidence]
    runs: list[SourceRun]  # the latest of each source, the ones judged
    unmapped: list[tuple[str, Result]]  # results no clause names: a control the promises miss
    verdicts: dict[str, str] = field(default_factory=lambda: dict(VERDICTS))

    @property
    def failing(self) -> list[ClauseEvidence]:
        return [c for c in self.clauses if not c.kept]

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for c in self.clauses)

    @property
    def history_points(self) -> int:
        """How many past runs a clause's history shows at most."""
        return HISTORY_POINTS

    def as_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "policy": self.policy,
            "generated_at": self.generated_at,
            "as_of": self.as_of,
            "kept": len(self.clauses) - len(self.failing),
            "clauses": [
                {
                    "id": c.clause.id,
                    "section": c.clause.section,
                    "title": c.clause.title,
                    "quote": c.clause.quote,
                    "note": c.clause.note,
                    "verdict": c.verdict,
                    "reason": c.reason,
                    "controls": [
                        {
                            "kind": x.kind,
                            "id": x.id,
                            "status": x.status,
                            "detail": x.detail,
                            "at": x.at,
                            "command": x.command,
                        }
                        for x in c.controls
                    ],
                    "planned": [{"control": p.control, "what": p.what} for p in c.clause.planned],
                    "history": [{"at": at, "verdict": v} for at, v in c.history],
                }
                for c in self.clauses
            ],
            "runs": [r.as_dict() for r in self.runs],
            "unmapped": [{"control": key, "status": r.status, "detail": r.detail} for key, r in self.unmapped],
        }


def latest_runs(runs: list[SourceRun], as_of: dt.datetime) -> dict[str, SourceRun]:
    """The latest run of each source that finished at or before `as_of`."""
    found: dict[str, SourceRun] = {}
    for run in sorted(runs, key=lambda r: utc(r.finished_at)):
        if utc(run.finished_at) <= utc(as_of):
            found[run.source] = run
    return found


def _control(kind: str, cid: str, run: SourceRun | None) -> ControlEvidence:
    source = KINDS[kind]
    if run is None:
        return ControlEvidence(kind, cid, "no result", f"no {source} run recorded", "", "", source)
    at = stamp(run.finished_at)
    if run.outcome == "not applicable":  # the source does not judge this stack: no evidence either way
        return ControlEvidence(kind, cid, "not run", run.reason, at, run.command, source)
    if run.outcome == "could not run":
        return ControlEvidence(kind, cid, "error", f"could not run: {run.reason}", at, run.command, source)
    result = run.results.get(f"{kind}:{cid}")
    if result is None:
        why = "the program declares none" if kind == "resource" else f"the {source} run has no such control"
        return ControlEvidence(kind, cid, "missing", why, at, run.command, source)
    return ControlEvidence(kind, cid, result.status, result.detail, at, run.command, source)


def _verdict(clause: Clause, controls: list[ControlEvidence]) -> str:
    statuses = {c.status for c in controls}
    if statuses & {"fail", "error", "missing"}:
        return "failing"
    if clause.planned:
        return "not kept yet"
    if statuses & {"no result", "not run"} or "pass" not in statuses:
        return "no evidence"
    return "kept"


def judge(clause: Clause, runs: dict[str, SourceRun]) -> tuple[str, list[ControlEvidence]]:
    controls = [_control(c.kind, c.id, runs.get(KINDS[c.kind])) for c in clause.controls]
    return _verdict(clause, controls), controls


def build_report(
    promises: Promises, stack: str, runs: list[SourceRun], as_of: dt.datetime, generated_at: dt.datetime
) -> EvidenceReport:
    runs = [r for r in runs if r.stack == stack and utc(r.finished_at) <= utc(as_of)]
    current = latest_runs(runs, as_of)
    ends: dict[str, dt.datetime] = {}  # batch -> when its last run finished
    for r in runs:
        key = r.batch or stamp(r.finished_at)
        ends[key] = max(ends.get(key, utc(r.finished_at)), utc(r.finished_at))
    moments = sorted(set(ends.values()))[-HISTORY_POINTS:]
    past = {moment: latest_runs(runs, moment) for moment in moments}
    clauses = []
    for clause in promises.clauses:
        verdict, controls = judge(clause, current)
        history = tuple((stamp(m), judge(clause, past[m])[0]) for m in moments)
        clauses.append(ClauseEvidence(clause, verdict, tuple(controls), history))
    named = {c.key for clause in promises.clauses for c in clause.controls}
    unmapped = sorted(
        (key, result)
        for run in current.values()
        for key, result in run.results.items()
        # a resource type may exist for its own sake; rules and checks must serve a promise
        if key not in named and result.status != "n/a" and not key.startswith("resource:")
    )
    return EvidenceReport(
        stack=stack,
        policy=promises.policy,
        generated_at=stamp(generated_at),
        as_of=stamp(as_of),
        clauses=clauses,
        runs=[current[s] for s in sorted(current)],
        unmapped=unmapped,
    )


def render(report: EvidenceReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(report.as_dict(), indent=2) + "\n"
    if fmt not in FORMATS:
        raise EvidenceError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    return environment(autoescape=fmt == "html").get_template(f"evidence.{fmt}.j2").render(r=report)
