"""`provision partners export`: the partner's rows of the shared tables in every cell, with a
manifest whose counts and SHA-256 equal a direct count and digest, as CSV or JSON Lines; two exports of unchanged data
are equal; another partner's rows never appear; to S3 under SSE-KMS with the stack's data key
(moto); a terminated partner exports inside its 30-day window and is refused past it."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import subprocess

import pytest

from provisioner import aws
from provisioner.lifecycle import partner_export
from tests.helpers import converge, onboard, provision, unique


@pytest.fixture(scope="module")
def world(local_stack, outputs):
    converge(outputs)
    mine, other = unique("pexp-p"), unique("pexp-q")
    made = onboard(outputs, {mine: "EU", other: "UK"}, [(mine, unique("pexp-a"), "growth")], cell="cell-1")
    made |= onboard(
        outputs, {}, [(mine, unique("pexp-b"), "starter"), (other, unique("pexp-c"), "starter")], cell="cell-2"
    )
    for t in made.values():
        with local_stack.superuser(cell=t.cell) as su:
            su.execute(
                "insert into platform.worker_runs (tenant_id, partner_id, worker) values (%s, %s, 'w'), (%s, %s, 'v')",
                (t.id, t.partner_id, t.id, t.partner_id),
            )
            su.execute(
                "insert into platform.cost_entries (tenant_id, partner_id, amount) values (%s, %s, 2.5)",
                (t.id, t.partner_id),
            )
            su.execute(
                "insert into platform.audit_events (tenant_id, partner_id, actor, action, detail) "
                "values (%s, %s, 'me', 'seeded', '{\"note\": \"a, \\\"quoted\\\" value\"}')",
                (t.id, t.partner_id),
            )
            su.commit()
    pid = next(t.partner_id for t in made.values() if t.partner == mine)
    oid = next(t.partner_id for t in made.values() if t.partner == other)
    return pid, oid


def cli(local_stack, *args: str) -> subprocess.CompletedProcess:
    return provision(local_stack, "partners", "export", *args)


def direct_counts(local_stack, pid: str) -> dict[tuple[str, str], int]:
    counts = {}
    for cell in ("cell-1", "cell-2"):
        with local_stack.superuser(cell=cell) as su:
            for table in partner_export.TABLES:
                column = "id" if table == "partners" else "partner_id"
                extra = " and action <> 'partner.exported'" if table == "audit_events" else ""
                counts[(cell, f"platform.{table}")] = su.execute(
                    f"select count(*) from platform.{table} where {column} = %s{extra}", (pid,)
                ).fetchone()[0]
    return counts


def test_export_to_a_directory_matches_a_direct_count_and_digest(local_stack, world, tmp_path):
    pid, oid = world
    exported = "select count(*) from platform.audit_events where partner_id = %s and action = 'partner.exported'"
    with local_stack.superuser(cell="cell-1") as su:
        earlier = su.execute(exported, (pid,)).fetchone()[0]  # other tests' exports of this partner
    result = cli(local_stack, "--partner", pid, "--to", str(tmp_path / "one"), "--json")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "one" / pid
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["partner"] == pid and set(manifest["snapshots"]) == {"cell-1", "cell-2"}
    files = {(f["cell"], f["name"]): f for f in manifest["files"]}
    direct = direct_counts(local_stack, pid)
    assert set(files) == set(direct)
    # one tenant in each cell: its record, two runs, one cost entry, its bindings; the partner row in both
    assert direct[("cell-1", "platform.partners")] == direct[("cell-2", "platform.partners")] == 1
    assert direct[("cell-1", "platform.worker_runs")] == direct[("cell-2", "platform.worker_runs")] == 2
    assert direct[("cell-2", "platform.tenants")] == 1 and direct[("cell-1", "platform.role_bindings")] >= 3
    for key, count in direct.items():
        f = files[key]
        path = folder / f["file"]
        assert f["rows"] == count, key
        assert f["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        with path.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == count  # the file parses back to the rows
        column = "id" if key[1] == "platform.partners" else "partner_id"
        assert {r[column] for r in rows} <= {pid}  # nothing of another partner
        assert oid not in path.read_text()

    again = cli(local_stack, "--partner", pid, "--to", str(tmp_path / "two"), "--json")
    assert again.returncode == 0, again.stderr
    second = {(f["cell"], f["name"]): f["sha256"] for f in json.loads(again.stdout)["files"]}
    assert second == {key: f["sha256"] for key, f in files.items()}  # unchanged data, equal checksums
    with local_stack.superuser(cell="cell-1") as su:
        assert su.execute(exported, (pid,)).fetchone()[0] == earlier + 2  # each export is in the audit trail


def test_jsonl_export_matches_a_direct_count_and_digest(local_stack, world, tmp_path):
    pid, oid = world
    result = cli(local_stack, "--partner", pid, "--to", str(tmp_path / "j"), "--format", "jsonl", "--json")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "j" / pid
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"].startswith("jsonl")
    direct = direct_counts(local_stack, pid)
    assert {(f["cell"], f["name"]) for f in manifest["files"]} == set(direct)
    for f in manifest["files"]:
        path = folder / f["file"]
        assert path.suffix == ".jsonl"
        assert f["rows"] == direct[(f["cell"], f["name"])]
        assert f["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        assert len(rows) == f["rows"]  # one JSON object a line
        column = "id" if f["name"] == "platform.partners" else "partner_id"
        assert {r[column] for r in rows} <= {pid} and oid not in path.read_text()
    with local_stack.superuser(cell="cell-1") as su:
        notes = [
            r[0]
            for r in su.execute(
                "select detail from platform.audit_events where partner_id = %s and action = 'seeded'", (pid,)
            )
        ]
    audit = next(f for f in manifest["files"] if f["cell"] == "cell-1" and f["name"] == "platform.audit_events")
    exported = [json.loads(line)["detail"] for line in (folder / audit["file"]).read_text().splitlines()]
    assert notes and all(n in exported for n in notes)  # the quoted, comma'd value comes back as it went in


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_to_s3_is_encrypted_with_the_data_key(local_stack, outputs, world, fmt):
    pid, _ = world
    s3 = aws.client("s3", outputs.region)
    bucket = unique("pexports")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": outputs.region})
    result = cli(local_stack, "--partner", pid, "--to", f"s3://{bucket}/portability", "--format", fmt, "--json")
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert keys == {f"portability/{pid}/manifest.json"} | {f"portability/{pid}/{f['file']}" for f in manifest["files"]}
    for f in manifest["files"]:
        key = f"portability/{pid}/{f['file']}"
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"].endswith(outputs.kms["data"].rsplit("/", 1)[-1])
        assert hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest() == f["sha256"]


def test_a_terminated_partner_exports_inside_its_window_only(local_stack, world, tmp_path):
    pid, _ = world
    terminated_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=29)
    for cell in ("cell-1", "cell-2"):
        with local_stack.superuser(cell=cell) as su:
            su.execute(
                "update platform.partners set status = 'terminated', terminated_at = %s where id = %s",
                (terminated_at, pid),
            )
            su.commit()
    try:
        ok = cli(local_stack, "--partner", pid, "--to", str(tmp_path / "in"), "--json")
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout)["status"] == "terminated"
        late = cli(
            local_stack,
            "--partner",
            pid,
            "--to",
            str(tmp_path / "late"),
            "--as-of",
            (terminated_at + dt.timedelta(days=31)).isoformat(),
        )
        assert late.returncode == 2 and "past its 30-day export window" in late.stderr
        assert len(late.stderr.strip().splitlines()) == 1 and not (tmp_path / "late").exists()
    finally:
        for cell in ("cell-1", "cell-2"):
            with local_stack.superuser(cell=cell) as su:
                su.execute("update platform.partners set status = 'active', terminated_at = null where id = %s", (pid,))
                su.commit()


def test_bad_input_is_one_line_and_exit_2(local_stack, outputs, tmp_path):
    converge(outputs)  # the control plane exists: the partner is looked for, and not found
    unknown = cli(local_stack, "--partner", "nobody-here", "--to", str(tmp_path / "x"))
    assert unknown.returncode == 2 and "no partner 'nobody-here'" in unknown.stderr
    bad = cli(local_stack, "--partner", "nobody-here", "--to", "ftp://x/y")
    assert bad.returncode == 2 and "a directory or s3://bucket/prefix" in bad.stderr
    assert not (tmp_path / "x").exists()
