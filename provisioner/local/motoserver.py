"""A moto server on loopback standing in for the AWS APIs (Secrets Manager, KMS, S3, Logs)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import ProvisionError
from provisioner.local import motojournal

REPLAY_TIMEOUT = 600  # seconds; a journal replays at a few hundred requests a second


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    # A zombie or a recycled pid running something else does not count.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"moto" in cmdline


@dataclass
class MotoServer:
    home: Path
    port: int
    seed: int  # the stack's own, for moto's random ids (seed_ids_for)

    @property
    def pidfile(self) -> Path:
        return self.home / "moto.pid"

    @property
    def journal(self) -> Path:
        return self.home / "journal.jsonl"

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        pid = self.pid()
        return pid is not None and pid_alive(pid) and self._answers()

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/reset-auth", timeout=1):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer means the server is up
        except OSError:
            return False

    def start(self) -> None:
        """Start the server and replay its journal: it comes back holding what it held."""
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.home, 0o700)
        recorded = motojournal.compact(self.journal)
        log = (self.home / "moto.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "provisioner.local.motoserve", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **motojournal.recording_env(self.journal)},
            umask=0o077,  # whatever moto writes is ours alone
            start_new_session=True,  # survives the CLI process that started it
        )
        self.pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + 30
        while not self._answers():
            if proc.poll() is not None:
                raise ProvisionError(f"moto server exited at start; see {self.home / 'moto.log'}")
            if time.monotonic() > deadline:
                raise ProvisionError(f"moto server did not answer on {self.endpoint} within 30 s")
            time.sleep(0.1)
        if recorded:
            self._post("/moto-api/recorder/replay-recording", "replay its journal", REPLAY_TIMEOUT)

    def seed_ids_for(self, name: str) -> None:
        """Seed moto's random ids right before `name` is created: the same request after the
        same seed gets the same id, so made again (by a replay, or by a server that lost its
        journal) it keeps its ARN."""
        value = self.seed + zlib.crc32(name.encode())
        self._post(f"{motojournal.SEED_PATH}?a={value}", "take a seed", 10)

    def _post(self, path: str, what: str, timeout: float) -> None:
        request = urllib.request.Request(f"{self.endpoint}{path}", data=b"", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                pass
        except OSError as exc:
            raise ProvisionError(
                f"moto server on {self.endpoint} could not {what}: {exc}; see {self.home / 'moto.log'}"
            ) from None

    def stop(self) -> None:
        pid = self.pid()
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                if not pid_alive(pid):
                    break
                time.sleep(0.1)
        self.pidfile.unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
