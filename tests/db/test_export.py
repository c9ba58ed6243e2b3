"""`provision tenants export`: every table of the tenant's schema and its rows of the shared
tables, with a manifest whose counts and SHA-256 equal a direct count and digest; two exports of
unchanged data are equal; another tenant's rows never appear; to S3 under SSE-KMS with the
stack's data key (moto); closed tenants inside their grace period export, past it are refused."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys

import pytest

from provisioner import aws
from provisioner.lifecycle import export
from tests.helpers import connect_as, converge, onboard, unique


@pytest.fixture(scope="module")
def pair(local_stack, outputs):
    converge(outputs)
    partner = unique("exp-p")
    a, b = unique("exp-a"), unique("exp-b")
    made = onboard(outputs, {partner: "EU"}, [(partner, a, "growth"), (partner, b, "starter")], cell="cell-2")
    for t, n in ((made[a], 120), (made[b], 7)):
        with connect_as(outputs, "tenant", t.id, t.cell) as conn:
            conn.execute(
                "insert into leads (name, email, data) select 'lead ' || g, 'p' || g || '@example.com', "
                "jsonb_build_object('n', g, 'quote', 'a \"b\" \\\\ c') from generate_series(1, %s) g",
                (n,),
            )
            conn.execute("insert into tickets (lead_id, subject) select id, 'subject, with comma' from leads")
            conn.execute(
                "insert into platform.worker_runs (tenant_id, partner_id, worker) values (%s, %s, 'w')",
                (t.id, t.partner_id),
            )
            conn.execute(
                "insert into platform.audit_events (tenant_id, partner_id, actor, action) "
                "values (%s, %s, 'me', 'seeded')",
                (t.id, t.partner_id),
            )
    return made[a], made[b]


def cli(local_stack, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(local_stack.root), "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "provisioner", "tenants", "export", "--stack", "local", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_export_to_a_directory_matches_a_direct_count_and_digest(local_stack, pair, tmp_path):
    a, b = pair
    result = cli(local_stack, "--tenant", a.id, "--to", str(tmp_path / "one"), "--json")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "one" / a.id
    manifest = json.loads((folder / "manifest.json").read_text())
    files = {f["name"]: f for f in manifest["files"]}
    assert set(files) >= {f"t_{a.id}.{t}" for t in ("leads", "tickets", "emails", "outputs")} | {
        "platform.worker_runs",
        "platform.cost_entries",
        "platform.audit_events",
    }
    with local_stack.superuser(cell=a.cell) as su:
        direct = {
            f"t_{a.id}.leads": su.execute(f'select count(*) from "t_{a.id}".leads').fetchone()[0],
            f"t_{a.id}.tickets": su.execute(f'select count(*) from "t_{a.id}".tickets').fetchone()[0],
            "platform.worker_runs": su.execute(
                "select count(*) from platform.worker_runs where tenant_id = %s", (a.id,)
            ).fetchone()[0],
        }
    assert direct[f"t_{a.id}.leads"] == 120
    for name, count in direct.items():
        path = folder / files[name]["file"]
        assert files[name]["rows"] == count
        assert files[name]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        with path.open(newline="") as fh:
            assert len(list(csv.DictReader(fh))) == count  # the file parses back to the rows
    for shared in ("platform.worker_runs", "platform.audit_events"):
        with (folder / files[shared]["file"]).open(newline="") as fh:
            assert {row["tenant_id"] for row in csv.DictReader(fh)} == {a.id}  # nothing of b

    again = cli(local_stack, "--tenant", a.id, "--to", str(tmp_path / "two"), "--json")
    assert again.returncode == 0, again.stderr
    second = {f["name"]: f["sha256"] for f in json.loads(again.stdout)["files"]}
    assert second == {name: f["sha256"] for name, f in files.items()}  # unchanged data, equal checksums


def test_export_to_s3_is_encrypted_with_the_data_key(local_stack, outputs, pair):
    a, _ = pair
    s3 = aws.client("s3", outputs.region)
    bucket = unique("exports")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": outputs.region})
    result = cli(local_stack, "--tenant", a.slug, "--to", f"s3://{bucket}/portability", "--json")
    assert result.returncode == 0, result.stderr
    manifest = json.loads(result.stdout)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert f"portability/{a.id}/manifest.json" in keys
    for f in manifest["files"]:
        key = f"portability/{a.id}/{f['file']}"
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head["SSEKMSKeyId"].endswith(outputs.kms["data"].rsplit("/", 1)[-1])
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert hashlib.sha256(body).hexdigest() == f["sha256"]


def test_closed_tenants_export_inside_the_grace_period_only(local_stack, pair, tmp_path):
    _, b = pair
    closed_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=29)
    with local_stack.superuser(cell=b.cell) as su:
        su.execute("update platform.tenants set status = 'closed', closed_at = %s where id = %s", (closed_at, b.id))
        su.commit()
    try:
        ok = cli(local_stack, "--tenant", b.id, "--to", str(tmp_path / "b"))
        assert ok.returncode == 0, ok.stderr
        late = cli(
            local_stack,
            "--tenant",
            b.id,
            "--to",
            str(tmp_path / "c"),
            "--as-of",
            (closed_at + dt.timedelta(days=31)).isoformat(),
        )
        assert late.returncode == 2 and "past its 30-day export window" in late.stderr
        assert not (tmp_path / "c").exists()
    finally:
        with local_stack.superuser(cell=b.cell) as su:
            su.execute("update platform.tenants set status = 'active', closed_at = null where id = %s", (b.id,))
            su.commit()


def test_a_bad_destination_is_one_line_and_exit_2(local_stack):
    result = cli(local_stack, "--tenant", "nobody", "--to", "ftp://x/y")
    assert result.returncode == 2 and "a directory or s3://bucket/prefix" in result.stderr


def test_destination_parsing():
    assert export.Destination.parse("s3://b/p/q/").prefix == "p/q"
    with pytest.raises(Exception, match="no bucket"):
        export.Destination.parse("s3:///x")
