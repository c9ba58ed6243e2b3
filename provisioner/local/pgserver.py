"""One local PostgreSQL server (a cell): initdb, TLS + SCRAM configuration, start, stop."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from contract.tiers import CONNECTION_BUDGET_SETTING, SERVER_LIMITS
from provisioner.errors import ProvisionError
from provisioner.local.layout import ServerUser

MIN_MAJOR = 15
BOOTSTRAP_SUPERUSER = "askasia_bootstrap"
INSTALL_HINT = (
    "install them with `apt-get install -y postgresql` (Debian/Ubuntu), "
    "or set ASKASIA_PG_BIN to the directory holding initdb and pg_ctl"
)
# Extensions Aurora offers that the platform schedules its maintenance with; loaded at start.
PRELOADED_EXTENSIONS = ("pg_cron",)
# A local cell's declared connection budget: 16,646 starter tenants with 10 partners. It stands
# in for a cell's max_connections; the server's own 100 slots are overcommitted by design there.
LOCAL_CONNECTION_BUDGET = 50_000


def find_pg_bin() -> Path:
    """The directory with initdb/pg_ctl/postgres of the newest PostgreSQL >= 15 on this machine."""
    if env := os.environ.get("ASKASIA_PG_BIN"):
        candidates = [Path(env)]  # an explicit choice is the only place looked at
    else:
        candidates = sorted(
            Path("/usr/lib/postgresql").glob("*/bin"),
            key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
            reverse=True,
        )
        if found := shutil.which("pg_ctl"):
            candidates.append(Path(found).resolve().parent)
    for directory in candidates:
        if all((directory / tool).exists() for tool in ("initdb", "pg_ctl", "postgres")):
            major = _major_version(directory)
            if major >= MIN_MAJOR:
                _require_extensions(directory, major)
                return directory
    raise ProvisionError(f"PostgreSQL {MIN_MAJOR}+ server binaries not found: {INSTALL_HINT}")


def _require_extensions(pg_bin: Path, major: int) -> None:
    for name in PRELOADED_EXTENSIONS:
        if not (pg_bin.parent / "lib" / f"{name}.so").exists():
            package = f"postgresql-{major}-{name.removeprefix('pg_')}"
            raise ProvisionError(f"{name} for PostgreSQL {major} not found: `apt-get install -y {package}`")


def _major_version(pg_bin: Path) -> int:
    out = subprocess.run([str(pg_bin / "pg_ctl"), "--version"], capture_output=True, text=True)
    match = re.search(r"(\d+)", out.stdout)
    return int(match.group(1)) if match else 0


@dataclass
class PgServer:
    """Files of one cell live in `home`: data/, tls/, run/ (socket), server.log."""

    home: Path
    port: int
    user: ServerUser
    pg_bin: Path

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def log(self) -> Path:
        return self.home / "server.log"

    @property
    def socket_dir(self) -> Path:
        return self.home / "run"

    @property
    def tls_dir(self) -> Path:
        return self.home / "tls"

    def _run(self, args: list[str]) -> subprocess.CompletedProcess[str]:
        # PostgreSQL refuses to run as root: run its tools as the unprivileged server user.
        other = not self.user.is_self
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            cwd=self.home,
            user=self.user.uid if other else None,
            group=self.user.gid if other else None,
        )

    def _chown_tree(self) -> None:
        self._chown(self.home, *self.home.rglob("*"))

    def _chown(self, *paths: Path) -> None:
        if self.user.is_self:
            return
        for path in paths:
            os.chown(path, self.user.uid, self.user.gid, follow_symlinks=False)

    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def init(self, bootstrap_password: str, server_cert: Path, server_key: Path, ca: Path, database: str) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        self.socket_dir.mkdir(exist_ok=True)
        self.tls_dir.mkdir(exist_ok=True)
        for src, name in ((server_cert, "server.crt"), (server_key, "server.key"), (ca, "ca.pem")):
            shutil.copyfile(src, self.tls_dir / name)
        os.chmod(self.tls_dir / "server.key", 0o600)
        pwfile = self.home / ".pwfile"
        pwfile.write_text(bootstrap_password + "\n")
        os.chmod(pwfile, 0o600)
        self._chown_tree()
        try:
            result = self._run(
                [
                    str(self.pg_bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    BOOTSTRAP_SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-instructions",
                ]
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise ProvisionError(f"initdb failed in {self.data}: {result.stderr.strip()[-300:]}")
        with (self.data / "postgresql.conf").open("a") as fh:
            fh.write("\ninclude 'askasia.conf'\n")
        self.configure(database)

    def configure(self, database: str) -> None:
        """Loopback only, TLS 1.2+, SCRAM only, plain-text connections rejected."""
        tls = self.tls_dir
        (self.data / "askasia.conf").write_text(
            "\n".join(
                [
                    "listen_addresses = '127.0.0.1'",
                    f"port = {self.port}",
                    f"unix_socket_directories = '{self.socket_dir}'",
                    "unix_socket_permissions = 0700",
                    "ssl = on",
                    f"ssl_cert_file = '{tls / 'server.crt'}'",
                    f"ssl_key_file = '{tls / 'server.key'}'",
                    f"ssl_ca_file = '{tls / 'ca.pem'}'",
                    "ssl_min_protocol_version = 'TLSv1.2'",
                    "password_encryption = 'scram-sha-256'",
                    "lo_compat_privileges = off",
                    "max_connections = 100",
                    # The connection budget placement and check 054 size the cell by (see
                    # contract/tiers.py): tests and benches put thousands of tenants in a local
                    # cell, which a 100-connection server cannot hold with every limit reachable at
                    # once; raising max_connections instead would grow the shared lock table
                    # (max_locks_per_transaction x max_connections) the lock-table tests fill.
                    f"{CONNECTION_BUDGET_SETTING} = {LOCAL_CONNECTION_BUDGET}",
                    "shared_buffers = '256MB'",
                    # Disposable local data: durability settings traded for speed, never in production.
                    "fsync = off",
                    "synchronous_commit = off",
                    "full_page_writes = off",
                    "log_connections = off",
                    # `provision dr drill`: a physical backup with WAL, a copy that streams WAL up to
                    # an exact failure point (a logical slot's consistent point and its exported
                    # snapshot), and commit times for the RPO.
                    "wal_level = logical",
                    "track_commit_timestamp = on",
                    # Scheduled maintenance inside the database, as Aurora's pg_cron runs it.
                    f"shared_preload_libraries = '{','.join(PRELOADED_EXTENSIONS)}'",
                    f"cron.database_name = '{database}'",
                    "cron.use_background_workers = on",
                    "max_worker_processes = 16",
                    # Limits no tenant can raise in its session, as the cluster parameter group sets them.
                    *(f"{name} = {value}" for name, value in SERVER_LIMITS.items()),
                    "",
                ]
            )
        )
        (self.data / "pg_hba.conf").write_text(
            "\n".join(
                [
                    "# TYPE   DATABASE USER ADDRESS       METHOD",
                    "local    all      all                scram-sha-256",
                    "hostssl  all      all  127.0.0.1/32  scram-sha-256",
                    f"hostssl  replication {BOOTSTRAP_SUPERUSER} 127.0.0.1/32 scram-sha-256",
                    "hostnossl all     all  0.0.0.0/0     reject",
                    "host     all      all  ::/0          reject",
                    "",
                ]
            )
        )
        # Only what this wrote: PostgreSQL's own tools wrote the rest as the server user, and a
        # walk of the whole data directory (thousands of files) was most of a drill's restore.
        self._chown(self.data / "askasia.conf", self.data / "pg_hba.conf")

    def running(self) -> bool:
        if not self.initialised:
            return False
        return self._run([str(self.pg_bin / "pg_ctl"), "status", "-D", str(self.data)]).returncode == 0

    def start(self) -> None:
        result = self._run(
            [
                str(self.pg_bin / "pg_ctl"),
                "start",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
            ]
        )
        if result.returncode != 0:
            tail = self.log.read_text()[-400:] if self.log.exists() else result.stderr
            raise ProvisionError(f"PostgreSQL on 127.0.0.1:{self.port} did not start: {tail.strip()}")

    def stop(self) -> None:
        if self.running():
            self._run([str(self.pg_bin / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w"])
