"""`provision tenants export`: every table of the tenant's schema and its rows of the shared
tables, as CSV or JSON Lines, with a manifest whose counts and SHA-256 equal a direct count and
digest; two exports of unchanged data are equal; another tenant's rows never appear; to S3 under
SSE-KMS with the stack's data key (moto); closed tenants inside their grace period export, past
it are refused."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import subprocess

import psycopg
import pytest
from psycopg import sql

from provisioner import aws
from provisioner.lifecycle import export
from tests.helpers import connect_as, converge, onboard, provision, unique


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
    return provision(local_stack, "tenants", "export", *args)


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


def test_jsonl_export_is_one_json_object_a_row_equal_to_the_database(local_stack, pair, tmp_path):
    a, b = pair
    result = cli(local_stack, "--tenant", a.id, "--to", str(tmp_path / "one"), "--format", "jsonl", "--json")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "one" / a.id
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"].startswith("jsonl")
    files = {f["name"]: f for f in manifest["files"]}
    leads = folder / files[f"t_{a.id}.leads"]["file"]
    assert leads.name.endswith(".jsonl")
    with local_stack.superuser(cell=a.cell) as su:
        # the database's own rows as JSON, in key order: the file is exactly these lines
        direct = [
            r[0] for r in su.execute(f'select row_to_json(x)::text from "t_{a.id}".leads x order by x.id').fetchall()
        ]
        runs = su.execute("select count(*) from platform.worker_runs where tenant_id = %s", (a.id,)).fetchone()[0]
    assert len(direct) == files[f"t_{a.id}.leads"]["rows"] == 120
    expected = "".join(line + "\n" for line in direct).encode()
    assert leads.read_bytes() == expected
    assert files[f"t_{a.id}.leads"]["sha256"] == hashlib.sha256(expected).hexdigest()
    parsed = [json.loads(line) for line in leads.read_text().splitlines()]
    assert parsed[0]["data"]["quote"] == 'a "b" ' + "\\" * 2 + " c"  # quotes and backslashes, not doubled by COPY
    shared = [json.loads(line) for line in (folder / files["platform.worker_runs"]["file"]).read_text().splitlines()]
    assert len(shared) == files["platform.worker_runs"]["rows"] == runs
    assert {row["tenant_id"] for row in shared} == {a.id}  # nothing of b
    assert b.id not in "".join(p.read_text() for p in folder.iterdir())

    again = cli(local_stack, "--tenant", a.id, "--to", str(tmp_path / "two"), "--format", "jsonl", "--json")
    assert again.returncode == 0, again.stderr
    assert {f["name"]: f["sha256"] for f in json.loads(again.stdout)["files"]} == {
        name: f["sha256"] for name, f in files.items()
    }


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_to_s3_is_encrypted_with_the_data_key(local_stack, outputs, pair, fmt):
    a, _ = pair
    s3 = aws.client("s3", outputs.region)
    bucket = unique("exports")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": outputs.region})
    result = cli(local_stack, "--tenant", a.slug, "--to", f"s3://{bucket}/portability", "--format", fmt, "--json")
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


def test_an_unknown_format_is_one_line_and_exit_2_before_anything_is_written(local_stack, pair, tmp_path):
    a, _ = pair
    result = cli(local_stack, "--tenant", a.id, "--to", str(tmp_path / "x"), "--format", "xml")
    assert result.returncode == 2 and "--format 'xml': one of csv, jsonl" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_a_copy_the_server_refuses_raises_its_error_and_the_connection_goes_on(outputs):
    from provisioner.connect import connect_master

    with connect_master(outputs.clusters[0], outputs.region, autocommit=True) as conn:
        bad = export.FORMATS["jsonl"].copy(sql.Identifier("platform", "no_such_table"), sql.SQL(""), sql.SQL("1"))
        with pytest.raises(psycopg.errors.UndefinedTable), conn.transaction():
            export.stream(conn, bad, io.BytesIO())
        sink = io.BytesIO()
        good = export.FORMATS["csv"].copy(sql.SQL("(values (1, 'a'), (2, 'b'))"), sql.SQL(""), sql.SQL("1"))
        rows, sha, size = export.stream(conn, good, sink)
        assert (rows, size) == (2, len(sink.getvalue())) and sink.getvalue() == b"column1,column2\n1,a\n2,b\n"
        assert sha == hashlib.sha256(sink.getvalue()).hexdigest()


def test_destination_parsing():
    assert export.Destination.parse("s3://b/p/q/").prefix == "p/q"
    with pytest.raises(Exception, match="no bucket"):
        export.Destination.parse("s3:///x")
