"""The tls_required check, broken on purpose where a transaction cannot break it: a server that
accepts TLS 1.0, and a plain-text session let in by a pg_hba.conf line. Each break is committed
on the shared local stack and repaired in `finally`."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg
import pytest

from provisioner.connect import secret_credentials
from provisioner.verify.catalog import catalog_checks, run_checks
from provisioner.verify.findings import Finding
from tests.helpers import RunningStack

PLAIN = "hostnossl  all  askasia_master  127.0.0.1/32  scram-sha-256\n"


def tls_rows(running: RunningStack) -> list[Finding]:
    (check,) = [c for c in catalog_checks() if c.name == "tls_required"]
    with running.superuser() as su:
        return run_checks(su, "askasia_master", (check,))


def until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    """Reloads are asynchronous: wait for the postmaster to have read the new files."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the server did not pick up the change")
        time.sleep(0.1)


def reload(running: RunningStack) -> None:
    with running.superuser(autocommit=True) as su:
        su.execute("select pg_reload_conf()")


@contextmanager
def setting(running: RunningStack, name: str, value: str) -> Iterator[None]:
    with running.superuser(autocommit=True) as su:
        su.execute(f"alter system set {name} = '{value}'")  # test-only constants
    reload(running)
    try:
        yield
    finally:
        with running.superuser(autocommit=True) as su:
            su.execute(f"alter system reset {name}")
        reload(running)


def shown(running: RunningStack, name: str) -> str:
    with running.superuser() as su:
        return su.execute("select current_setting(%s)", (name,)).fetchone()[0]


def test_a_clean_cell_has_no_tls_finding(local_stack):
    assert tls_rows(local_stack) == []


def test_a_server_that_accepts_tls_1_0_is_reported(local_stack):
    with setting(local_stack, "ssl_min_protocol_version", "TLSv1"):
        until(lambda: shown(local_stack, "ssl_min_protocol_version") == "TLSv1")
        found = [f for f in tls_rows(local_stack) if f.object == "setting ssl_min_protocol_version"]
        assert [f.detail for f in found] == ["TLSv1 accepts protocols older than TLS 1.2"]
    until(lambda: shown(local_stack, "ssl_min_protocol_version") == "TLSv1.2")
    assert tls_rows(local_stack) == []


def test_a_plain_text_session_is_reported(local_stack, outputs):
    cluster = outputs.cluster("cell-1")
    hba = local_stack.stack.server(local_stack.cell_state("cell-1")).data / "pg_hba.conf"
    original = hba.read_text()
    creds = secret_credentials(cluster.master_secret_arn, outputs.region)
    plain = dict(host=cluster.endpoint, port=cluster.port, dbname=cluster.database, user=creds.username)

    def connect_plain() -> psycopg.Connection:
        return psycopg.connect(**plain, password=creds.password, sslmode="disable", connect_timeout=3)

    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        connect_plain().close()  # refused as the stack is built
    hba.write_text(PLAIN + original)
    reload(local_stack)
    try:
        sessions: list[psycopg.Connection] = []

        def opened() -> bool:
            try:
                sessions.append(connect_plain())
            except psycopg.OperationalError:
                return False
            return True

        until(opened)
        with sessions[0] as session:
            pid = session.info.backend_pid
            found = [f for f in tls_rows(local_stack) if f.object.startswith(f"session {pid} ")]
            assert [(f.level, f.object) for f in found] == [
                ("error", f"session {pid} of role askasia_master from 127.0.0.1")
            ]
            assert "plain text" in found[0].detail and found[0].remediation
    finally:
        hba.write_text(original)
        reload(local_stack)
    until(lambda: _refused(connect_plain))
    assert tls_rows(local_stack) == []


def _refused(connect: Callable[[], psycopg.Connection]) -> bool:
    try:
        connect().close()
    except psycopg.OperationalError:
        return True
    return False
