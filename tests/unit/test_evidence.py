"""The evidence report from recorded runs: a verdict per promise (a planned control keeps a
clause from passing, a source that never judged the stack is no evidence, a vanished control
fails), the report as of a past moment and a clause's history, the formats, and the command on
the plan of a production stack (no cells needed)."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from compliance.evidence import EvidenceError, Result, SourceRun, build_report, render
from compliance.promises import KINDS, load_promises
from tests.helpers import run_in_process
from tests.unit.mock_stacks import STACKS_DIR

T0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
PROMISES = load_promises()


def passing(source: str, at: dt.datetime, overrides: dict[str, Result] | None = None) -> SourceRun:
    """A run in which every control of `source` that some clause names passes, but `overrides`
    ("kind:id" -> result, for the kinds this source judges)."""
    results = {c.key: Result("pass", "ok") for cl in PROMISES.clauses for c in cl.controls if KINDS[c.kind] == source}
    results.update({key: r for key, r in (overrides or {}).items() if KINDS[key.split(":")[0]] == source})
    return SourceRun(source, "s1", f"provision {source}", at, at, "ran", "", results, at.isoformat())


def everything(at: dt.datetime, overrides: dict[str, Result] | None = None) -> list[SourceRun]:
    return [passing(s, at, overrides) for s in ("plan", "verify", "register", "keys")]


def verdicts(report) -> dict[str, str]:
    return {c.clause.id: c.verdict for c in report.clauses}


def test_with_every_control_passing_only_the_planned_clauses_are_not_kept():
    report = build_report(PROMISES, "s1", everything(T0), T0, T0)
    found = verdicts(report)
    planned = {c.id for c in PROMISES.clauses if c.planned}
    assert planned >= {"breach-notification"}
    assert {cid for cid, v in found.items() if v == "not kept yet"} == planned
    assert {cid for cid, v in found.items() if v == "kept"} == {c.id for c in PROMISES.clauses} - planned
    # breach-notification's controls all pass, and still the clause does not show as kept
    breach = next(c for c in report.clauses if c.clause.id == "breach-notification")
    assert breach.controls and breach.passed == len(breach.controls) and not breach.kept
    # retention, deletion, export and data-subject requests have their verify checks and nothing
    # planned: kept when they pass
    assert found["retention"] == found["deletion"] == found["export"] == found["data-subject-requests"] == "kept"


def test_a_failing_control_fails_its_clause_and_names_the_command():
    runs = everything(T0, {"verify:tls_required": Result("fail", "1 finding(s), e.g. cell-1: setting ssl")})
    report = build_report(PROMISES, "s1", runs, T0, T0)
    tls = next(c for c in report.clauses if c.clause.id == "encryption-and-tls")
    assert tls.verdict == "failing"
    bad = next(x for x in tls.controls if x.id == "tls_required")
    assert (bad.status, bad.command, bad.at) == ("fail", "provision verify", "2026-06-01T09:00:00Z")


def test_a_source_that_does_not_judge_the_stack_is_no_evidence_and_an_error_is_failing():
    runs = everything(T0)
    runs[0] = SourceRun("plan", "s1", "provision plan --stack s1", T0, T0, "not applicable", "no stack config")
    found = verdicts(build_report(PROMISES, "s1", runs, T0, T0))
    assert found["isolation"] == "no evidence"  # verify and probes passed; its proxy rule is the plan's
    assert found["encryption-and-tls"] == "no evidence" and found["security-measures"] == "no evidence"
    runs[1] = SourceRun("verify", "s1", "provision tenants verify", T0, T0, "could not run", "cell-1 down")
    found = verdicts(build_report(PROMISES, "s1", runs, T0, T0))
    assert found["isolation"] == "failing"


def test_a_control_the_run_no_longer_has_fails_and_one_never_run_is_no_evidence():
    runs = everything(T0)
    del runs[1].results["probe:probe_create"]
    iso = next(c for c in build_report(PROMISES, "s1", runs, T0, T0).clauses if c.clause.id == "isolation")
    assert iso.verdict == "failing"
    assert next(x for x in iso.controls if x.id == "probe_create").status == "missing"
    only_plan = [passing("plan", T0)]
    found = verdicts(build_report(PROMISES, "s1", only_plan, T0, T0))
    assert found["isolation"] == "no evidence" and found["short-lived-tokens"] == "no evidence"


def test_a_result_no_clause_names_is_reported_as_unmapped():
    runs = everything(T0, {"rule:brand_new_rule": Result("pass", "3 aws:x/y:Z checked")})
    report = build_report(PROMISES, "s1", runs, T0, T0)
    assert [key for key, _ in report.unmapped] == ["rule:brand_new_rule"]
    assert "rule:brand_new_rule" in render(report, "html")


def test_the_report_as_of_a_past_moment_and_the_history_of_a_clause():
    t1, t2 = T0 + dt.timedelta(days=1), T0 + dt.timedelta(days=2)
    broken = Result("fail", "EU -> me-south-1 has no basis")
    runs = everything(T0) + everything(t1, {"register:stack-transfers-recorded": broken}) + everything(t2)
    then = build_report(PROMISES, "s1", runs, t1 + dt.timedelta(hours=1), t2)
    assert verdicts(then)["international-transfers"] == "failing" and then.as_of == "2026-06-02T10:00:00Z"
    now = build_report(PROMISES, "s1", runs, t2, t2)
    transfers = next(c for c in now.clauses if c.clause.id == "international-transfers")
    assert transfers.verdict == "kept"
    assert [v for _, v in transfers.history] == ["kept", "failing", "kept"]
    before_any = build_report(PROMISES, "s1", runs, T0 - dt.timedelta(days=1), t2)
    assert before_any.runs == [] and set(verdicts(before_any).values()) <= {"no evidence", "not kept yet"}


def test_every_format_shows_a_clauses_history_with_its_times():
    t1 = T0 + dt.timedelta(days=1)
    broken = Result("fail", "EU -> me-south-1 has no basis")
    runs = everything(T0, {"register:stack-transfers-recorded": broken}) + everything(t1)
    report = build_report(PROMISES, "s1", runs, t1, t1)
    points = "2026-06-01T09:00:00Z failing; 2026-06-02T09:00:00Z kept"
    assert f"History (oldest first): {points}." in render(report, "md")
    html = render(report, "html")
    card = html[html.index('id="international-transfers"') :]
    line = card[: card.index("</p>", card.index('class="history-line"'))]
    assert re.findall(r"([0-9T:-]+Z) (failing|kept)</span>", line) == [
        ("2026-06-01T09:00:00Z", "failing"),
        ("2026-06-02T09:00:00Z", "kept"),
    ]
    assert "oldest on the left" in html  # the summary's squares are explained where they are shown
    transfers = next(c for c in json.loads(render(report, "json"))["clauses"] if c["id"] == "international-transfers")
    assert transfers["history"] == [
        {"at": "2026-06-01T09:00:00Z", "verdict": "failing"},
        {"at": "2026-06-02T09:00:00Z", "verdict": "kept"},
    ]


def test_html_is_one_self_contained_page_with_the_summary_on_top():
    html = render(build_report(PROMISES, "s1", everything(T0), T0, T0), "html")
    assert "<style>" in html and not re.search(r"<(link|script|img|iframe)\b", html)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)  # no external asset or link
    assert html.index('class="summary"') < html.index('id="isolation"')
    assert '<span class="pill v-not-kept-yet">not kept yet</span>' in html
    hostile = SourceRun(
        "keys",
        "s1",
        "provision keys status",
        T0,
        T0,
        "ran",
        "",
        {"keys:jwks-published": Result("fail", "<script>x</script>")},
    )
    html = render(build_report(PROMISES, "s1", [hostile], T0, T0), "html")
    assert "<script>x" not in html and "&lt;script&gt;x&lt;/script&gt;" in html


def test_markdown_and_json_carry_the_same_verdicts():
    report = build_report(PROMISES, "s1", everything(T0), T0, T0)
    md = render(report, "md")
    assert "| Tenant data isolation (`isolation`) | 3 | **kept** |" in md
    doc = json.loads(render(report, "json"))
    assert {c["id"]: c["verdict"] for c in doc["clauses"]} == verdicts(report)
    assert doc["kept"] == sum(v == "kept" for v in verdicts(report).values())
    assert SourceRun.from_dict(doc["runs"][0], "x") == report.runs[0]
    with pytest.raises(EvidenceError, match="unknown format"):
        render(report, "pdf")


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("command"), "not a run record"),
        (lambda d: d.update(outcome="maybe"), "outcome 'maybe' is unknown"),
        (lambda d: d["results"].update({"rule:x": {"status": "great", "detail": ""}}), "result status"),
        (lambda d: d.update(finished_at="yesterday"), "not a run record"),
    ],
)
def test_a_broken_record_is_refused(mutate, message):
    raw = passing("keys", T0).as_dict()
    mutate(raw)
    with pytest.raises(EvidenceError, match=message):
        SourceRun.from_dict(raw, "evidence/s1/x.json")


# -- the command, on the plan of a production stack ---------------------------------------------


def stacks_copy(tmp_path: Path, **changes) -> Path:
    stacks = tmp_path / "stacks"
    stacks.mkdir(exist_ok=True)
    doc = yaml.safe_load((STACKS_DIR / "Pulumi.prod-eu-west-1.yaml").read_text())
    doc["config"].update(changes)
    (stacks / "Pulumi.prod-eu-west-1.yaml").write_text(yaml.safe_dump(doc))
    return stacks


def test_plan_evidence_is_recorded_and_a_past_report_is_regenerated(tmp_path, capsys, monkeypatch):
    evidence = tmp_path / "evidence"
    base = ["evidence", "--stack", "prod-eu-west-1", "--evidence-dir", str(evidence), "--format", "json"]
    weak = stacks_copy(
        tmp_path, **{"askasia:deletionProtection": False, "askasia:allowInsecure": ["deletionProtection"]}
    )
    code, out, err = run_in_process([*base, "--source", "plan", "--stacks-dir", str(weak)], capsys, monkeypatch)
    first = json.loads(out)
    assert code == 1 and "plan: ran" in err
    security = next(c for c in first["clauses"] if c["id"] == "security-measures")
    assert security["verdict"] == "failing"
    assert next(x for x in security["controls"] if x["id"] == "rds-cluster-deletion-protection")["status"] == "fail"
    isolation = next(c for c in first["clauses"] if c["id"] == "isolation")
    assert isolation["verdict"] == "no evidence" and isolation["controls"][0]["status"] == "no result"

    shutil.copy(STACKS_DIR / "Pulumi.prod-eu-west-1.yaml", weak / "Pulumi.prod-eu-west-1.yaml")
    code, out, _ = run_in_process([*base, "--source", "plan", "--stacks-dir", str(weak)], capsys, monkeypatch)
    security = next(c for c in json.loads(out)["clauses"] if c["id"] == "security-measures")
    assert security["verdict"] == "kept" and [h["verdict"] for h in security["history"]] == ["failing", "kept"]
    assert len(list((evidence / "prod-eu-west-1").glob("*-plan.json"))) == 2

    # The report as it stood after the first run, from the records alone.
    as_of = first["runs"][0]["finished_at"]
    code, out, _ = run_in_process([*base, "--as-of", as_of], capsys, monkeypatch)
    assert {c["id"]: c["verdict"] for c in json.loads(out)["clauses"]} == {
        c["id"]: c["verdict"] for c in first["clauses"]
    }
    html = tmp_path / "report.html"
    code, _, err = run_in_process(
        [*base[:-2], "--recorded", "--format", "html", "--output", str(html)], capsys, monkeypatch
    )
    assert code == 1 and f"wrote {html}" in err and "promises kept" in err
    assert "rds-cluster-deletion-protection" in html.read_text()


def test_bad_input_is_refused_before_anything_runs(tmp_path, capsys, monkeypatch):
    base = ["evidence", "--stack", "prod-eu-west-1", "--evidence-dir", str(tmp_path)]
    for extra, message in (
        (["--format", "pdf"], "--format 'pdf'"),
        (["--source", "everything"], "--source 'everything'"),
        (["--as-of", "last tuesday"], "--as-of 'last tuesday'"),
        (["--recorded"], "no evidence recorded for stack prod-eu-west-1"),
        (["--as-of", "2020-01-01"], "at or before 2020-01-01T23:59:59Z"),
        (["--stacks-dir", str(tmp_path / "none")], "no such directory"),
    ):
        code, out, err = run_in_process([*base, *extra], capsys, monkeypatch)
        assert code == 2 and message in err, (extra, err)
    assert list(tmp_path.iterdir()) == []
