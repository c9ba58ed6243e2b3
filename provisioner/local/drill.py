"""`provision dr drill --stack local`: the disaster-recovery path on a running local cell, timed.

1. pg_basebackup with WAL (streamed, behind a physical slot so nothing it needs is recycled).
2. The failure instant: a logical slot's consistent point and the snapshot it exports. The
   snapshot sees exactly the transactions committed before that WAL position, so the source's
   contents "at the failure" can be read later, while it keeps taking writes.
3. A fresh PostgreSQL from the backup, streaming WAL from the source up to that point, then
   promoted (point-in-time recovery to the failure instant; `--to backup-end` stops at the end
   of the backup instead, as if no WAL after it survived).
4. A copy of the outputs pointed at it; apply (every credential checked) and verify.
5. Per-tenant row counts and checksums, copy against the source's snapshot; RTO (from the
   start of the backup to a verified copy) and RPO (how much older the copy's newest commit is
   than the source's at the failure instant).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from contract.outputs import StackOutputs
from contract.status import ExitStatus
from provisioner import restorecheck
from provisioner.apply import ApplyOptions, apply_stack, apply_status
from provisioner.credentials import CredentialStore
from provisioner.errors import ProvisionError
from provisioner.local.motoserver import free_port
from provisioner.local.pgserver import PgServer
from provisioner.local.stack import DATABASE, CellState, LocalStack
from provisioner.stackref import credential_store
from provisioner.verify.findings import verify_status
from provisioner.verify.runner import VerifyOptions, verify_stack

TARGETS = ("failure", "backup-end")
Inspect = Callable[[dict[str, Any]], None]


@dataclass
class DrillResult:
    cell: str
    target: str
    seconds: dict[str, float] = field(default_factory=dict)  # backup, restore, apply, verify
    rto: float = 0.0
    rpo: float = 0.0
    recovery_lsn: str = ""
    tenants: int = 0
    tables: int = 0
    rows: int = 0
    differences: list[str] = field(default_factory=list)
    apply: ExitStatus = ExitStatus.OK
    verify: ExitStatus = ExitStatus.OK
    problems: list[str] = field(default_factory=list)

    @property
    def lost(self) -> bool:
        return bool(self.differences)

    @property
    def exit_code(self) -> ExitStatus:
        return ExitStatus.worst([self.apply, self.verify, ExitStatus.VIOLATIONS if self.lost else ExitStatus.OK])

    def as_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "lost": self.lost, "exit_code": int(self.exit_code)}


class _ListedAhead(CredentialStore):
    """The stack's credentials, their secrets listed while the copy is made: Secrets Manager is
    not what the drill restores, so the apply of the copy need not wait for that listing."""

    def __init__(self, store: CredentialStore, listing: Future[dict[str, str]]) -> None:
        super().__init__(store.stack, store.region, store.kms_key_id)
        self._listing = listing

    def current_versions(self) -> dict[str, str]:
        return self._listing.result()


def _slot(cell: str, what: str) -> str:
    return f"askasia_drill_{what}_{cell.replace('-', '_')}"


class Drill:
    def __init__(self, stack: LocalStack, outputs: StackOutputs, cell: str) -> None:
        self.stack, self.outputs, self.cell = stack, outputs, cell
        source = next((c for c in stack.cells() if c.name == cell), None)
        if source is None:
            raise ProvisionError(f"the local stack has no cell {cell!r}")
        self.source: CellState = source
        self.server = stack.server(self.source)
        home = stack.layout.server_home(stack.user) / f"drill-{cell}"
        self.copy = PgServer(home, free_port(), stack.user, stack.pg_bin())

    # -- connections ---------------------------------------------------------------------
    def _conninfo(self, port: int, **extra: Any) -> dict[str, Any]:
        info = self.stack.bootstrap_conninfo(
            CellState(self.cell, port), dbname=self.outputs.cluster(self.cell).database
        )
        return {**info, "sslrootcert": str(self.server.tls_dir / "ca.pem"), **extra}

    def _libpq(self, port: int) -> str:
        """A conninfo string for PostgreSQL's own tools (no password: PGPASSWORD or the caller).
        No client certificate: libpq would look for one in the home of whoever runs it."""
        none = self.copy.home / "no-client-certificate"
        info = {**self._conninfo(port), "sslcert": none, "sslkey": none}
        return " ".join(f"{k}={v}" for k, v in info.items() if k != "password")

    def _as_server_user(self, args: list[str], password: str) -> subprocess.CompletedProcess[str]:
        other = not self.stack.user.is_self
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            env={**os.environ, "PGPASSWORD": password},
            user=self.stack.user.uid if other else None,
            group=self.stack.user.gid if other else None,
        )

    # -- steps ---------------------------------------------------------------------------
    def _check_source(self) -> None:
        with psycopg.connect(**self._conninfo(self.source.port), autocommit=True) as conn:
            level = conn.execute("show wal_level").fetchone()
            if not level or level[0] != "logical":
                raise ProvisionError(
                    f"{self.cell} runs with wal_level={level[0] if level else '?'}: restart the local stack "
                    "(provision local down; provision local up) so the drill can mark the failure point"
                )
            conn.execute(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots where slot_name = %s",
                (_slot(self.cell, "wal"),),
            )

    def _backup(self, slot: bool = True) -> None:
        """pg_basebackup with streamed WAL into the copy's home (behind a physical slot, so the
        WAL after it is kept for the copy to stream; `slot=False`: the bare backup)."""
        shutil.rmtree(self.copy.home, ignore_errors=True)
        self.copy.home.mkdir(parents=True)
        os.chmod(self.copy.home, 0o700)
        self.copy.tls_dir.mkdir()
        self.copy.socket_dir.mkdir()
        for name in ("server.crt", "server.key", "ca.pem"):
            shutil.copy2(self.server.tls_dir / name, self.copy.tls_dir / name)
        if not self.stack.user.is_self:
            for path in [self.copy.home, *self.copy.home.rglob("*")]:
                os.chown(path, self.stack.user.uid, self.stack.user.gid)
        password = self._conninfo(self.source.port)["password"]
        result = self._as_server_user(
            [
                str(self.stack.pg_bin() / "pg_basebackup"),
                "-d",
                self._libpq(self.source.port),
                "-D",
                str(self.copy.data),
                "-X",
                "stream",
                "-c",
                "fast",
                *(["-C", "-S", _slot(self.cell, "wal")] if slot else []),
                "--no-sync",  # disposable local data (the cells run with fsync off too)
            ],
            password,
        )
        if result.returncode != 0:
            raise ProvisionError(f"pg_basebackup of {self.cell} failed: {result.stderr.strip()[-300:]}")

    def _mark_failure(self) -> tuple[psycopg.Connection, str, float | None]:
        """The failure instant: the snapshot it exports held open in a transaction, its WAL
        position, and the source's newest commit time before it (epoch seconds)."""
        held = psycopg.connect(**self._conninfo(self.source.port))
        last = held.execute("select extract(epoch from (pg_last_committed_xact()).timestamp)").fetchone()
        held.rollback()
        with psycopg.connect(**self._conninfo(self.source.port, replication="database"), autocommit=True) as repl:
            name = _slot(self.cell, "failure").encode()
            res = repl.pgconn.exec_(
                b"CREATE_REPLICATION_SLOT " + name + b" TEMPORARY LOGICAL pgoutput (SNAPSHOT 'export')"
            )
            if res.status != psycopg.pq.ExecStatus.TUPLES_OK:
                raise ProvisionError(
                    f"{self.cell}: cannot mark the failure point: {res.error_message.decode().strip()}"
                )
            lsn, snapshot = res.get_value(0, 1), res.get_value(0, 2)
            assert lsn is not None and snapshot is not None
            held.execute("begin isolation level repeatable read")
            held.execute(sql.SQL("set transaction snapshot {}").format(sql.Literal(snapshot.decode())))
        # Recovery stops at the target once it has read past it: a WAL record after the failure
        # point, so an idle source does not leave the copy waiting for the next one (up to 15 s).
        with psycopg.connect(**self._conninfo(self.source.port), autocommit=True) as conn:
            conn.execute("select pg_logical_emit_message(false, 'askasia-drill', 'past the failure point')")
        return held, lsn.decode(), (float(last[0]) if last and last[0] is not None else None)

    def _restore(self, target: str, lsn: str) -> None:
        self.copy.configure(DATABASE)  # its own port and socket; TLS and SCRAM like every cell
        if target == "failure":
            primary = self._libpq(self.source.port) + f" password={self._conninfo(self.source.port)['password']}"
            settings = {
                "primary_conninfo": primary,
                "primary_slot_name": _slot(self.cell, "wal"),
                "recovery_target_lsn": lsn,
            }
            signal = "standby.signal"
        else:
            # No WAL archive survived: only what the backup carries is replayed.
            settings = {"recovery_target": "immediate", "restore_command": "false"}
            signal = "recovery.signal"
        settings["recovery_target_action"] = "promote"
        with (self.copy.data / "postgresql.auto.conf").open("a") as fh:
            for key, value in settings.items():
                fh.write(f"{key} = '{value.replace(chr(39), chr(39) * 2)}'\n")
        (self.copy.data / signal).write_text("")
        if not self.stack.user.is_self:
            for path in (self.copy.data / "postgresql.auto.conf", self.copy.data / signal):
                os.chown(path, self.stack.user.uid, self.stack.user.gid)
        self.copy.start()
        deadline = time.monotonic() + 120
        with psycopg.connect(**self._conninfo(self.copy.port), autocommit=True) as conn:
            while conn.execute("select pg_is_in_recovery()").fetchone() == (True,):
                if time.monotonic() > deadline:
                    raise ProvisionError(f"the copy of {self.cell} did not reach {lsn} within 120 s")
                time.sleep(0.05)

    def _copy_outputs(self) -> StackOutputs:
        cluster = dataclasses.replace(self.outputs.cluster(self.cell), port=self.copy.port)
        copy = dataclasses.replace(self.outputs, clusters=(cluster,))
        (self.copy.home / "outputs.json").write_text(json.dumps(copy.to_json(), indent=2) + "\n")
        return copy

    def _drop_wal_slot(self) -> None:
        with psycopg.connect(**self._conninfo(self.source.port), autocommit=True) as conn:
            conn.execute(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots "
                "where slot_name = %s and not active",
                (_slot(self.cell, "wal"),),
            )

    # -- the drill -----------------------------------------------------------------------
    def run(self, probes: int = 5, target: str = "failure", inspect: Inspect | None = None) -> DrillResult:
        if target not in TARGETS:
            raise ProvisionError(f"--to {target!r}: use one of {', '.join(TARGETS)}")
        result = DrillResult(self.cell, target)
        self._check_source()
        held: psycopg.Connection | None = None
        started = time.monotonic()
        lister = ThreadPoolExecutor(max_workers=1)
        try:
            listing = lister.submit(credential_store(self.outputs).current_versions)
            mark = time.monotonic()
            backup_started = time.time()
            self._backup()
            result.seconds["backup"] = time.monotonic() - mark
            held, result.recovery_lsn, source_last = self._mark_failure()

            mark = time.monotonic()
            self._restore(target, result.recovery_lsn)
            result.seconds["restore"] = time.monotonic() - mark
            with psycopg.connect(**self._conninfo(self.copy.port), autocommit=True) as conn:
                replayed = conn.execute("select extract(epoch from pg_last_xact_replay_timestamp())").fetchone()
            copy_last = float(replayed[0]) if replayed and replayed[0] is not None else backup_started
            result.rpo = max(0.0, (source_last or 0.0) - copy_last)
            self._drop_wal_slot()

            copy = self._copy_outputs()
            mark = time.monotonic()
            store = _ListedAhead(credential_store(copy), listing)
            applied = apply_stack(copy, ApplyOptions(check_credentials=True), store)
            result.seconds["apply"] = time.monotonic() - mark
            result.apply = apply_status(applied)
            result.problems += [line for r in applied for line in r.errors + r.drift]
            mark = time.monotonic()
            reports = verify_stack(copy, VerifyOptions(probes=probes, secrets=False))  # the copy is one cell
            result.seconds["verify"] = time.monotonic() - mark
            result.verify = verify_status(reports)
            result.problems += [e for r in reports for e in r.errors]
            result.problems += [f"{f.check}: {f.object}" for r in reports for f in r.findings[:5]]
            result.rto = time.monotonic() - started

            with psycopg.connect(**self._conninfo(self.copy.port), autocommit=True) as conn:
                restored = restorecheck.contents(conn)
            source = restorecheck.contents(held)
            result.differences = restorecheck.differences(source, restored)
            result.tenants, result.tables, result.rows = len(source.tenants), len(source.tables), source.rows
            if inspect is not None:
                inspect(self._conninfo(self.copy.port))
        finally:
            lister.shutdown(wait=True, cancel_futures=True)
            if held is not None:
                held.close()
            self.copy.stop()
            try:
                self._drop_wal_slot()
            finally:
                shutil.rmtree(self.copy.home, ignore_errors=True)
        return result


def drill(
    stack: LocalStack,
    outputs: StackOutputs,
    cells: list[str] | None = None,
    probes: int = 5,
    target: str = "failure",
    inspect: Inspect | None = None,
) -> list[DrillResult]:
    """Drill each cell in turn (each one's RTO is its own, not shared with another's)."""
    return [Drill(stack, outputs, cell).run(probes, target, inspect) for cell in cells or outputs.cells]
