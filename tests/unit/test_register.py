"""`provision register`: sub-processor list and data-location/transfer register from the records."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from compliance import register
from compliance.register import RegisterError, build_register, render
from tests.helpers import run_in_process as run_cli

STACKS = Path(__file__).resolve().parents[2] / "stacks"
TODAY = dt.date(2026, 6, 1)


def _stacks_dir(tmp_path: Path, extra: dict[str, dict] | None = None) -> Path:
    for path in STACKS.glob("Pulumi.*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    for name, changes in (extra or {}).items():
        doc = yaml.safe_load((STACKS / "Pulumi.prod-eu-west-1.yaml").read_text(encoding="utf-8"))
        doc["config"].update(changes)
        (tmp_path / f"Pulumi.{name}.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    return tmp_path


def test_register_joins_stacks_subprocessors_and_transfers() -> None:
    reg = build_register(None, STACKS, today=TODAY)
    assert [s.stack for s in reg.stacks] == ["prod-ap-south-1", "prod-eu-west-1", "prod-us-east-1"]
    assert set(reg.origins) == {"EU", "UK", "IN", "US"}
    arrows = {(a.origin, a.role, a.region): a.kind for a in reg.arrows}
    assert arrows[("EU", "primary", "eu-west-1")] == "domestic"
    assert arrows[("UK", "dr", "eu-central-1")] == "adequacy"
    assert arrows[("IN", "dr", "ap-south-2")] == "domestic"
    assert reg.unrecorded == []
    subs = {s.id: s for s in reg.subprocessors}
    assert {"aws", "amazon-ses", "stripe", "razorpay"} <= set(subs)
    # AWS holds data wherever a stack or its DR copy runs; SES only in the primary regions
    assert any(loc.startswith("ap-south-2 (IN") for loc in subs["aws"].locations)
    assert not any(loc.startswith("ap-south-2") for loc in subs["amazon-ses"].locations)
    assert subs["razorpay"].used_by == ("prod-ap-south-1",)
    assert subs["stripe"].dpa_reference and subs["stripe"].dpa_date


def test_readiness_shows_what_a_new_region_would_rest_on() -> None:
    reg = build_register(["prod-eu-west-1"], STACKS, today=TODAY)
    assert reg.readiness["me-south-1"]["EU"] == "none"
    assert reg.readiness["us-east-1"]["EU"] == "sccs"
    assert reg.readiness["ap-east-1"]["US"] == "prohibited"
    assert reg.regions_in_use == ["eu-central-1", "eu-west-1"]


def test_markdown_lists_subprocessors_and_arrows(capsys, monkeypatch) -> None:
    code, out, _ = run_cli(["register", "--stack", "prod-eu-west-1"], capsys, monkeypatch)
    assert code == 0
    assert "| Stripe (payment processing) |" in out
    assert "| prod-eu-west-1 | dr | eu-central-1 | DE (Germany) | adequacy |" in out
    # a pipe inside a field must not split a Markdown cell
    for line in out.splitlines():
        if line.startswith("| Amazon Web Services"):
            assert line.count(" | ") == 6


def test_json_form_is_complete(capsys, monkeypatch) -> None:
    code, out, _ = run_cli(["register", "--all", "--format", "json"], capsys, monkeypatch)
    data = json.loads(out)
    assert code == 0
    assert {s["name"] for s in data["subprocessors"]} >= {"Amazon Web Services", "Amazon SES", "Stripe"}
    arrow = next(a for a in data["arrows"] if a["origin"] == "UK" and a["role"] == "primary")
    assert arrow["basis"]["mechanism"] == "adequacy" and arrow["summary"].startswith("DPA 2018")


def test_html_is_self_contained_colour_coded_and_escaped(tmp_path, capsys, monkeypatch) -> None:
    stacks = _stacks_dir(tmp_path)
    subs = yaml.safe_load(register.SUBPROCESSORS_FILE.read_text(encoding="utf-8"))
    subs["subprocessors"][2]["purpose"] = "<script>alert(1)</script> billing"
    hostile = tmp_path / "subprocessors.yaml"
    hostile.write_text(yaml.safe_dump(subs), encoding="utf-8")
    monkeypatch.setattr(register, "SUBPROCESSORS_FILE", hostile)
    out_file = tmp_path / "register.html"
    code, _, err = run_cli(
        ["register", "--all", "--format", "html", "--output", str(out_file), "--stacks-dir", str(stacks)],
        capsys,
        monkeypatch,
    )
    html = out_file.read_text(encoding="utf-8")
    assert code == 0 and "wrote" in err
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; billing" in html
    assert "<style>" in html and not re.search(r"<(link|script|img)\b", html)  # no external assets
    for kind in ("domestic", "adequacy", "sccs", "none"):
        assert f".k-{kind} {{" in html
    assert 'class="arrow k-adequacy"' in html and 'class="arrow k-domestic"' in html


def test_stack_with_an_unrecorded_transfer_is_flagged_exit_1(tmp_path, capsys, monkeypatch) -> None:
    stacks = _stacks_dir(
        tmp_path,
        {"test-bahrain": {"aws:region": "me-south-1", "askasia:drRegion": "eu-west-1", "askasia:origins": ["EU"]}},
    )
    code, out, err = run_cli(["register", "--stack", "test-bahrain", "--stacks-dir", str(stacks)], capsys, monkeypatch)
    assert code == 1
    assert "EU -> me-south-1 (BH, Bahrain) in stack test-bahrain (primary): record bases.EU.BH" in out
    assert "error: stack-transfers-recorded: EU -> me-south-1 (BH, Bahrain)" in err


def test_unknown_subprocessor_named_by_a_stack_exits_2(tmp_path, capsys, monkeypatch) -> None:
    stacks = _stacks_dir(
        tmp_path,
        {
            "test-mailer": {
                "askasia:subprocessors": {
                    "email": {"name": "mailgun", "domain": "mail.eu.askasia.in"},
                    "payments": {"name": "stripe"},
                }
            }
        },
    )
    code, _, err = run_cli(["register", "--stack", "test-mailer", "--stacks-dir", str(stacks)], capsys, monkeypatch)
    assert code == 2 and "names sub-processor 'mailgun'" in err


def test_arguments_are_checked(capsys, monkeypatch) -> None:
    assert run_cli(["register"], capsys, monkeypatch)[0] == 2
    assert run_cli(["register", "--all", "--stack", "prod-eu-west-1"], capsys, monkeypatch)[0] == 2
    code, _, err = run_cli(["register", "--all", "--format", "pdf"], capsys, monkeypatch)
    assert code == 2 and "md, json, html" in err


def test_missing_stack_config_is_a_register_error(tmp_path) -> None:
    with pytest.raises(RegisterError, match="no stack configs"):
        build_register(None, tmp_path)
    reg = build_register(["prod-us-east-1"], STACKS, today=TODAY)
    assert "Generated 2026-06-01" in render(reg, "md")


def test_outputs_file_goes_with_cells_and_one_stack(capsys, monkeypatch, tmp_path) -> None:
    code, _, err = run_cli(["register", "--stack", "prod-eu-west-1", "--outputs", str(tmp_path)], capsys, monkeypatch)
    assert code == 2 and "--outputs goes with --cells and one --stack" in err


def test_a_subprocessor_country_without_a_basis_is_listed_and_exits_1(tmp_path, capsys, monkeypatch) -> None:
    subs = yaml.safe_load(register.SUBPROCESSORS_FILE.read_text(encoding="utf-8"))
    razorpay = next(e for e in subs["subprocessors"] if e["id"] == "razorpay")
    razorpay["countries"] = ["IN", "AE"]
    moved = tmp_path / "subprocessors.yaml"
    moved.write_text(yaml.safe_dump(subs), encoding="utf-8")
    monkeypatch.setattr(register, "SUBPROCESSORS_FILE", moved)
    reg = build_register(["prod-ap-south-1"], STACKS, today=TODAY)
    assert [(x.origin, x.country, x.kind) for x in reg.subprocessor_transfers] == [
        ("IN", "IN", "domestic"),
        ("IN", "AE", "none"),
    ]
    assert reg.problems()["subprocessor-transfers-recorded"] == [
        "IN -> AE (United Arab Emirates) through sub-processor razorpay of stack prod-ap-south-1: record "
        "bases.IN.AE in compliance/transfers.yaml, or choose another"
    ]
    assert 'class="pill k-none">none</span>' in render(reg, "html")
    code, _, err = run_cli(["register", "--stack", "prod-ap-south-1"], capsys, monkeypatch)
    assert code == 1 and "subprocessor-transfers-recorded: IN -> AE" in err
