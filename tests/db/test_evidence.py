"""`provision evidence` on a stack with cells and a stack config: every source runs (plan under
mocks, verify on the cells, the register with the directory, the published key ring), each
promise the platform keeps shows kept and the lifecycle ones not yet; data a placement gate would
refuse turns transfers to failing and the report as of the earlier run still says kept; and the
HTML, as a browser paints it, has its summary on top."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from provisioner import directory
from tests.helpers import RunningStack, onboard, started_stack
from tests.unit.mock_stacks import STACKS_DIR

KEPT = {
    "isolation",
    "retention",  # audit_partitions_ahead and audit_past_retention, judged by verify
    "encryption-and-tls",
    "credential-hashing",
    "short-lived-tokens",
    "sub-processors",
    "international-transfers",
    "security-measures",
    "deletion",  # purge_overdue, closed_tenant_login, terminated_partner_login, orphan_secrets: verify
    "export",  # export_window, judged by verify
    "data-subject-requests",  # dsr_overdue, judged by verify
}
NOT_YET = {"breach-notification"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of its own (the test records a partner the shared one must not see), with two
    tenants in its one cell so every probe has a pair."""
    with started_stack(tmp_path_factory.mktemp("evidence"), cells=1) as running:
        onboard(
            running.outputs,
            {"ev-agency": "EU"},
            [("ev-agency", "ev-one", "growth"), ("ev-agency", "ev-two", "starter")],
        )
        yield running


@pytest.fixture(scope="module")
def stacks(stack: RunningStack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stack config for `local` like prod-eu-west-1's, serving what the local outputs declare,
    so the plan judges it too."""
    folder = tmp_path_factory.mktemp("stacks")
    doc = yaml.safe_load((STACKS_DIR / "Pulumi.prod-eu-west-1.yaml").read_text())
    doc["config"]["askasia:origins"] = list(stack.outputs.origins)
    (folder / "Pulumi.local.yaml").write_text(yaml.safe_dump(doc))
    return folder


def evidence(stack: RunningStack, *args: str) -> tuple[int, dict, str]:
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(stack.root)}
    done = subprocess.run(
        [sys.executable, "-m", "provisioner", "evidence", "--stack", "local", "--format", "json", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout else {}, done.stderr


def verdicts(report: dict) -> dict[str, str]:
    return {c["id"]: c["verdict"] for c in report["clauses"]}


def test_every_source_judges_the_stack_and_only_the_lifecycle_promises_are_not_kept_yet(stack, stacks):
    code, report, err = evidence(stack, "--stacks-dir", str(stacks))
    assert code == 1, err  # breach notification still has planned work
    for source in ("plan", "verify", "register", "keys"):
        assert f"{source}: ran" in err
    found = verdicts(report)
    assert {c for c, v in found.items() if v == "kept"} == KEPT, found
    assert {c for c, v in found.items() if v == "not kept yet"} == NOT_YET
    isolation = next(c for c in report["clauses"] if c["id"] == "isolation")
    assert {x["status"] for x in isolation["controls"]} == {"pass"}
    assert {x["command"] for x in isolation["controls"]} == {
        "provision tenants verify --stack local --probes 20",
        "provision plan --stack local",  # rds-proxy-not-master
    }
    tokens = next(c for c in report["clauses"] if c["id"] == "short-lived-tokens")
    assert {x["id"]: x["status"] for x in tokens["controls"]} == {
        "jwt-token-ttl-bounded": "pass",
        "jwt-key-ring-published": "pass",
        "jwks-published": "pass",
    }
    assert report["unmapped"] == []
    kept = {p.name.split("-", 1)[1] for p in (stack.root / "evidence" / "local").glob("*.json")}
    assert kept == {"keys.json", "plan.json", "register.json", "verify.json"}


def test_data_the_gate_would_refuse_fails_transfers_and_the_past_report_still_stands(stack, stacks):
    code, before, _ = evidence(stack, "--stacks-dir", str(stacks))
    assert verdicts(before)["international-transfers"] == "kept"
    legacy = directory.add_partner_rows(stack.outputs, "us-legacy", "US")  # below the gate, as an old release would
    try:
        code, after, err = evidence(stack, "--stacks-dir", str(stacks), "--source", "register")
        assert code == 1 and err.count(": ran") == 1
        transfers = next(c for c in after["clauses"] if c["id"] == "international-transfers")
        assert transfers["verdict"] == "failing"
        assert "directory-transfers-declared" in transfers["reason"] and "origin US is not among" in transfers["reason"]
        assert [h["verdict"] for h in transfers["history"]][-2:] == ["kept", "failing"]
        # The other sources' latest runs still stand: isolation stays kept.
        assert verdicts(after)["isolation"] == "kept"
        # As it stood before the partner row: regenerated from the records alone.
        code, then, _ = evidence(stack, "--as-of", max(r["finished_at"] for r in before["runs"]))
        assert verdicts(then) == verdicts(before)
    finally:
        with stack.superuser() as su:
            su.execute("delete from platform.partners where id = %s", (legacy.id,))


# -- the page as a browser paints it ----------------------------------------------------------


def png_rows(data: bytes) -> tuple[int, int, list[list[tuple[int, ...]]]]:
    """Width, height and the RGB pixels of each row of a PNG as chromium writes it (8-bit RGB(A))."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and colour in (2, 6)
    channels = 4 if colour == 6 else 3
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        if data[at + 4 : at + 8] == b"IDAT":
            chunks.append(data[at + 8 : at + 8 + length])
        at += 12 + length
    raw, stride, rows, prev = zlib.decompress(b"".join(chunks)), width * channels, [], bytearray(width * channels)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):  # the five PNG filters (RFC 2083, 6.3)
            a = line[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            p = a + b - c
            pred = {0: 0, 1: a, 2: b, 3: (a + b) // 2}.get(kind)
            if pred is None:
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            line[i] = (line[i] + pred) & 0xFF
        rows.append([tuple(line[i : i + 3]) for i in range(0, stride, channels)])
        prev = line
    return width, height, rows


def colours(rows: list[list[tuple[int, ...]]], top: int, bottom: int) -> set[tuple[int, ...]]:
    return {pixel for row in rows[top:bottom] for pixel in row}


def test_the_html_report_paints_its_summary_on_top(stack, stacks, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs it): the page cannot be painted here")
    evidence(stack, "--stacks-dir", str(stacks))
    page = tmp_path / "evidence.html"
    code, _, err = evidence(stack, "--recorded", "--format", "html", "--output", str(page))
    assert code == 1 and f"wrote {page}" in err
    shot = tmp_path / "evidence.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,900",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    width, height, rows = png_rows(shot.read_bytes())
    assert (width, height) == (1280, 900)
    painted = colours(rows, 0, 900)
    # the tally and the summary's verdict pills, in the first screen: kept green, not-yet amber
    assert (0xDC, 0xFC, 0xE7) in painted and (0xFE, 0xF3, 0xC7) in painted
    assert (0xFE, 0xE2, 0xE2) in painted  # the empty "failing" tally box is still shown
    assert len(painted) > 50, "the page painted nearly nothing"
