"""The local embedded stack: TLS-only PostgreSQL cells, credentials via boto3 from moto,
idempotent up, down stops exactly what it started, friendly errors."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys

import psycopg
import pytest

from contract.outputs import parse_outputs
from provisioner.connect import connect, connect_master, conninfo, secret_credentials
from provisioner.local import motojournal, tls
from provisioner.local.layout import Layout
from provisioner.local.stack import LocalStack
from provisioner.stackref import load_outputs_file
from tests.helpers import app_credentials, onboard


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "provisioner", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_outputs_file_has_contract_shape(local_stack):
    parsed = load_outputs_file(local_stack.stack.layout.outputs_file)
    assert parsed.cells == ["cell-1", "cell-2"]
    assert len({c.port for c in parsed.clusters}) == 2
    assert all(c.endpoint == "127.0.0.1" for c in parsed.clusters)
    assert set(parsed.kms) >= {"data", "logs", "backup", "jwt_signing"}


def test_master_credentials_come_from_secrets_manager_and_connect_over_tls(outputs):
    cluster = outputs.clusters[0]
    creds = secret_credentials(cluster.master_secret_arn, outputs.region)
    assert creds.username == "askasia_master"
    assert creds.password not in repr(creds)
    with connect_master(cluster, outputs.region) as conn:
        ssl, version = conn.execute("select ssl, version from pg_stat_ssl where pid = pg_backend_pid()").fetchone()
        superuser = conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()[0]
    assert ssl is True and version in ("TLSv1.2", "TLSv1.3")
    assert superuser is False  # like Aurora's master: everything must work without superuser


def test_plain_text_connection_is_refused(outputs):
    cluster = outputs.clusters[0]
    info = conninfo(cluster, secret_credentials(cluster.master_secret_arn, outputs.region))
    info.update(sslmode="disable")
    info.pop("ssl_min_protocol_version")
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(**info)


def test_server_certificate_is_verified_against_the_ca(outputs, tmp_path):
    other_ca, _ = tls.ensure_ca(tmp_path / "other-ca")
    cluster = outputs.clusters[0]
    info = conninfo(cluster, secret_credentials(cluster.master_secret_arn, outputs.region))
    info.update(sslrootcert=str(other_ca))
    with pytest.raises(psycopg.OperationalError, match="SSL error"):
        psycopg.connect(**info)


def test_up_is_idempotent(local_stack):
    with local_stack.superuser() as conn:
        started = conn.execute("select pg_postmaster_start_time()").fetchone()[0]
    moto_pid = local_stack.stack.moto().pid()
    again = local_stack.stack.up(cells=2)
    assert load_outputs_file(local_stack.stack.layout.outputs_file).clusters == local_stack.outputs.clusters
    assert again["clusters"] == [c.__dict__ for c in local_stack.outputs.clusters]
    with local_stack.superuser() as conn:
        assert conn.execute("select pg_postmaster_start_time()").fetchone()[0] == started
    assert local_stack.stack.moto().pid() == moto_pid


def test_shrinking_cells_is_refused(local_stack):
    from provisioner.errors import InputError

    with pytest.raises(InputError, match="would drop cell-2"):
        local_stack.stack.up(cells=1)


def test_plain_up_reuses_the_cells_that_run(local_stack):
    # What a new user types after `make demo` (which asked for 2 cells).
    result = run_cli("local", "up", "--root", str(local_stack.root))
    assert result.returncode == 0, result.stderr
    assert "2 cell(s)" in result.stdout
    assert load_outputs_file(local_stack.stack.layout.outputs_file).clusters == local_stack.outputs.clusters


def test_cells_default_to_one_and_explicit_more_are_added(tmp_path):
    from provisioner.errors import InputError

    own = LocalStack(Layout(tmp_path / "cells"))
    try:
        assert len(own.up()["clusters"]) == 1
        assert [c["cell"] for c in own.up(cells=2)["clusters"]] == ["cell-1", "cell-2"]
        assert len(own.up()["clusters"]) == 2
        with pytest.raises(InputError, match="would drop cell-2"):
            own.up(cells=1)
    finally:
        own.down(wipe=True)


@pytest.mark.skipif(os.getuid() != 0, reason="only meaningful when the tests run as root")
def test_postgres_runs_unprivileged_when_root(local_stack):
    with local_stack.superuser() as conn:
        data_dir = conn.execute("show data_directory").fetchone()[0]
    pid = int(open(os.path.join(data_dir, "postmaster.pid")).readline())
    uid_line = next(line for line in open(f"/proc/{pid}/status") if line.startswith("Uid:"))
    assert int(uid_line.split()[1]) != 0


def test_env_sets_up_psql_and_boto3(local_stack):
    script = (
        f'eval "$({sys.executable} -m provisioner local env --root {local_stack.root})" && '
        "psql -tAc 'select ssl from pg_stat_ssl where pid = pg_backend_pid()' && "
        f'{sys.executable} -c "import boto3; '
        "print(len(boto3.client('secretsmanager').list_secrets()['SecretList']) > 0)\""
    )
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["t", "True"]


def test_down_stops_exactly_what_it_started(local_stack, tmp_path):
    own = LocalStack(Layout(tmp_path / "own"))
    raw = own.up(cells=1)
    port = raw["clusters"][0]["port"]
    moto_port = own.moto().port
    own.down()
    for p in (port, moto_port):
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", p)) != 0, f"port {p} still answers"
    with local_stack.superuser() as conn:  # the session stack is untouched
        assert conn.execute("select 1").fetchone()[0] == 1
    assert local_stack.stack.moto().running()
    server_home = own.layout.server_home(own.user)  # outside the root when the server user cannot reach it
    own.down(wipe=True)
    assert not own.layout.root.exists() and not server_home.exists()


def test_restart_keeps_every_secret_tenant_and_partner(tmp_path):
    """`local down` then `local up`, as after a reboot: moto comes back from its journal."""
    root = tmp_path / "restart"
    own = LocalStack(Layout(root))
    cli_env = {"ASKASIA_LOCAL_DIR": str(root)}
    try:
        before = own.up()
        outputs = parse_outputs(before)
        tenants = onboard(
            outputs,
            {"restart-partner": "EU"},
            [("restart-partner", "restart-one", "starter"), ("restart-partner", "restart-two", "growth")],
        )
        own.down()
        assert not own.moto().running()

        after = run_cli("local", "up", "--root", str(root), "--json")
        assert after.returncode == 0, after.stderr
        assert json.loads(after.stdout) == before  # KMS key and master secret ARNs unchanged
        verify = run_cli("tenants", "verify", "--stack", "local", "--json", env=cli_env)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        probes = json.loads(verify.stdout)["cells"][0]["probes"]
        assert probes["pairs"] >= 1 and probes["partners"] == 1 and probes["attempts"] > 0  # logged in as them

        own.activate()
        one = tenants["restart-one"]
        creds = app_credentials(outputs, "tenant", one.id)
        with connect(outputs.cluster(one.cell), creds) as conn:
            assert conn.execute("select current_user").fetchone()[0] == creds.username == f"t_{one.id}_app"

        # Without the journal the app credentials are gone, and verify says so; the KMS keys
        # and master secrets are made again, under the same ARNs.
        own.moto().stop()
        own.moto().journal.unlink()
        again = run_cli("local", "up", "--root", str(root), "--json")
        assert again.returncode == 0 and json.loads(again.stdout) == before
        lost = run_cli("tenants", "verify", "--stack", "local", "--json", env=cli_env)
        assert lost.returncode == 2
        assert "no credentials for the operator role askasia_verifier" in lost.stdout
        # apply makes the operators' secrets again and sets their roles from them (the master's
        # one job); verify then runs, and reports the tenants' lost credentials.
        repaired = run_cli("tenants", "apply", "--stack", "local", "--json", env=cli_env)
        assert repaired.returncode == 0, repaired.stdout + repaired.stderr
        lost = run_cli("tenants", "verify", "--stack", "local", "--json", env=cli_env)
        assert lost.returncode == 2
        assert "no credentials for tenant" in " ".join(json.loads(lost.stdout)["cells"][0]["errors"])
    finally:
        own.down(wipe=True)


def test_moto_journal_is_private_and_compacted(tmp_path):
    own = LocalStack(Layout(tmp_path / "journal"))
    try:
        outputs = parse_outputs(own.up())
        journal = own.moto().journal
        assert stat.S_IMODE(journal.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(journal.stat().st_mode) == 0o600
        master = outputs.clusters[0].master_secret_arn
        recorded = len(journal.read_text().splitlines())
        for _ in range(20):
            secret_credentials(master, outputs.region)  # reads: not recorded
        assert len(journal.read_text().splitlines()) == recorded
        assert "GetSecretValue" not in journal.read_text()
        with journal.open("a") as fh:
            listing = {"X-Amz-Target": "secretsmanager.ListSecrets"}
            read = {"method": "POST", "url": "http://127.0.0.1/", "headers": listing}
            fh.write(json.dumps(read) + "\n")  # as an older server recorded reads
            fh.write('{"method": "POST", "url": "http://127.0.0.1/", "hea')  # cut short by a kill
        own.moto().stop()
        kept = motojournal.compact(journal)  # what `up` does before the replay
        assert kept == len(journal.read_text().splitlines()) == recorded
        assert stat.S_IMODE(journal.stat().st_mode) == 0o600
        own.up()  # replays the compacted journal
        assert secret_credentials(master, outputs.region).username == "askasia_master"
    finally:
        own.down(wipe=True)


def test_moto_restart_is_recovered_by_up(tmp_path):
    # A private stack: restarting moto loses every secret it held, which would pull the rug
    # from under the session stack's tenants.
    own = LocalStack(Layout(tmp_path / "moto-restart"))
    try:
        own.up(cells=1)
        own.moto().stop()
        own.up(cells=1)
        outputs = load_outputs_file(own.layout.outputs_file)
        with connect_master(outputs.clusters[0], outputs.region) as conn:
            assert conn.execute("select current_user").fetchone()[0] == "askasia_master"
    finally:
        own.down(wipe=True)


def test_missing_postgres_binaries_is_one_clear_line(tmp_path):
    result = run_cli("local", "up", "--root", str(tmp_path / "x"), env={"ASKASIA_PG_BIN": str(tmp_path)})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "apt-get install -y postgresql" in result.stderr
    assert not (tmp_path / "x").exists()


def test_busy_port_is_one_clear_line(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        result = run_cli("local", "up", "--root", str(tmp_path / "y"), "--pg-port", str(busy))
    assert result.returncode == 2
    assert f"port {busy}" in result.stderr and "busy" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "y").exists()


def test_status_reports_running_cells(local_stack):
    result = run_cli("local", "status", "--root", str(local_stack.root), "--json")
    info = json.loads(result.stdout)
    assert [c["running"] for c in info["cells"]] == [True, True]
    assert info["moto"]["running"] is True


def test_pg_cron_runs_in_the_platform_database_out_of_tenants_reach(local_stack):
    """Scheduled maintenance (pg_cron, as Aurora offers it) is loaded in every cell."""
    with local_stack.superuser() as conn:
        assert conn.execute("show cron.database_name").fetchone()[0] == conn.info.dbname
        assert (
            conn.execute("select count(*) from pg_stat_activity where backend_type = 'pg_cron launcher'").fetchone()[0]
            == 1
        )
        assert conn.execute("select has_schema_privilege('public', 'cron', 'usage')").fetchone()[0] is False
        assert conn.execute(
            "select has_function_privilege('askasia_master', 'cron.schedule(text, text, text)', 'execute')"
        ).fetchone()[0]
