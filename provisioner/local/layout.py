"""Where the local stack keeps its files, and which unprivileged user runs PostgreSQL."""

from __future__ import annotations

import hashlib
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from provisioner.stackref import AWS_ENV_FILE, OUTPUTS_FILE, local_root

LOCAL_REGION = "eu-west-1"
LOCAL_DR_REGION = "eu-central-1"
# Whom the local stack serves, like prod-eu-west-1 plus India: each has a recorded basis for
# eu-west-1 and eu-central-1 in compliance/transfers.yaml, so the demo's partners are placed
# and a partner from anywhere else is refused, as in production.
LOCAL_ORIGINS = ("EU", "UK", "IN")


def default_root() -> Path:
    return local_root()


@dataclass(frozen=True)
class ServerUser:
    """The account PostgreSQL runs as: ourselves, or an unprivileged one when we are root."""

    name: str
    uid: int
    gid: int

    @property
    def is_self(self) -> bool:
        return self.uid == os.getuid()


def server_user() -> ServerUser:
    if os.getuid() != 0:
        me = pwd.getpwuid(os.getuid())
        return ServerUser(me.pw_name, me.pw_uid, me.pw_gid)
    for name in (os.environ.get("ASKASIA_PG_USER", ""), "postgres", "nobody"):
        if not name:
            continue
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return ServerUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    from provisioner.errors import ProvisionError

    raise ProvisionError(
        "running as root and no unprivileged user to run PostgreSQL as: "
        "create one (useradd --system postgres) or set ASKASIA_PG_USER"
    )


def _reachable_by(path: Path, user: ServerUser) -> bool:
    """True when every ancestor of `path` lets `user` traverse it."""
    for part in [path, *path.parents]:
        if not part.exists():
            continue
        st = part.stat()
        if st.st_uid == user.uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == user.gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
    return True


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def outputs_file(self) -> Path:
        return self.root / OUTPUTS_FILE

    @property
    def aws_env_file(self) -> Path:
        return self.root / AWS_ENV_FILE

    @property
    def tls_dir(self) -> Path:
        return self.root / "tls"

    @property
    def ca_cert(self) -> Path:
        return self.tls_dir / "ca.pem"

    @property
    def moto_dir(self) -> Path:
        return self.root / "moto"

    def server_home(self, user: ServerUser) -> Path:
        """PostgreSQL's own files: under the root when the server user can reach it, else
        a private directory in /var/tmp keyed by the root (a pytest tmp dir under a 0700
        home is not reachable by an unprivileged server user)."""
        if user.is_self or _reachable_by(self.root, user):
            return self.root / "pg"
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        return Path("/var/tmp") / f"askasia-local-{digest}"

    def cell_dir(self, user: ServerUser, cell: str) -> Path:
        return self.server_home(user) / cell
