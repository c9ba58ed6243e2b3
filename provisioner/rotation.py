"""Credential rotation with alternating users, the scheme of AWS Secrets Manager's rotation
templates ("Lambda function rotation strategies: alternating users",
https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotation-strategy.html).

PostgreSQL keeps one password per role, so each tenant and partner has two logins: the app role
and its twin (names.twin_of, a LOGIN member of the app role: tenant V020, partner V010). The
secret's AWSCURRENT version names one of them. A rotation, in the templates' four steps:

  create  a new AWSPENDING version naming the OTHER login, with a new password;
  set     that password on the other login in every cell holding it (one pipelined transaction
          per cell, under the cell's apply lock, as the migrator);
  test    log in as the other login with it, over verified TLS;
  finish  move AWSCURRENT to the pending version (only where every cell passed), and record
          the version in the ledger's credentials row.

The login the application holds is never altered and its sessions are never touched: there is
no moment where AWSCURRENT names a password the database refuses. A kill at any point leaves
AWSCURRENT as it was or as finished; a re-run creates a new pending version and redoes the rest.

A secret that is missing, malformed or names neither login, or whose password the database
refuses (a tenant may ALTER ROLE itself PASSWORD), is repaired by the same steps: the pending
version names a login the tool then sets and tests; the application had nothing working.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg import sql

from contract.outputs import Cluster, StackOutputs
from contract.status import ExitStatus
from provisioner import aws, celllock, operators
from provisioner.connect import Credentials, LoginRefused, connect
from provisioner.credcheck import MISSING, Owner, judge, read_current
from provisioner.credentials import CredentialStore, Endpoint, credentials_document, scram_verifier, secret_name
from provisioner.errors import InputError, ProvisionError, first_line
from provisioner.ledger import CREDENTIALS_STEP, upsert_sql
from provisioner.names import check_id, check_slug, other_login

PER_TX = 500  # ALTER ROLEs per transaction (one round trip each)
LOGIN_TESTS = 4  # logins tested at once per cell
SECRET_CALLS = 8  # Secrets Manager calls in flight (no batch API writes versions or moves labels)
PENDING = "AWSPENDING"

Progress = Callable[[str, int, int], None]


@dataclass
class Staged:
    """A pending version: the login it names and its password, and whether it is already the
    current one (a missing secret's first version is AWSCURRENT at once)."""

    owner: Owner
    login: str
    password: str = field(repr=False)
    document: str = field(repr=False)
    version: str
    first: bool  # the secret was made with it: AWSCURRENT already (there was nothing to keep working)
    repair: str | None  # why the current one was unusable (None: an ordinary rotation)


@dataclass
class CellRotation:
    cell: str
    status: str = "ok"  # ok | failed | unreachable | busy
    set: int = 0
    errors: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # owner key -> why it was not rotated here
    seconds: float = 0.0


@dataclass
class Rotation:
    kind: str
    cells: list[CellRotation]
    rotated: list[str] = field(default_factory=list)  # owner keys whose AWSCURRENT moved
    repaired: dict[str, str] = field(default_factory=dict)  # owner key -> what was broken
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def status(self) -> ExitStatus:
        if any(c.status in ("unreachable", "busy") for c in self.cells):
            return ExitStatus.COULD_NOT_RUN
        return ExitStatus.VIOLATIONS if self.failed or any(c.status != "ok" for c in self.cells) else ExitStatus.OK


# -- which owners, in which cells ----------------------------------------------------------------


def _active(conn: psycopg.Connection, kind: str) -> list[str]:
    table = sql.Identifier("tenants" if kind == "tenant" else "partners")
    query = sql.SQL("select id from platform.{} where status = 'active' order by id").format(table)
    return [r[0] for r in conn.execute(query).fetchall()]


def select_owners(
    outputs: StackOutputs, kind: str, ref: str | None, sessions: dict[str, psycopg.Connection]
) -> dict[str, list[Owner]]:
    """Cell -> the active owners it holds (all, or the one `ref` names: an id or a slug), read on
    the cells that answered. An unknown or closed owner is bad input."""
    per_cell = {cell: [Owner(kind, i) for i in _active(conn, kind)] for cell, conn in sessions.items()}
    if ref is None:
        return per_cell
    column = sql.Identifier("tenants" if kind == "tenant" else "partners")
    found: set[str] = set()
    for conn in sessions.values():
        rows = conn.execute(
            sql.SQL("select id from platform.{} where status = 'active' and (id = %s or slug = %s)").format(column),
            (ref, ref),
        ).fetchall()
        found |= {r[0] for r in rows}
    if len(found) != 1:
        why = "is used by several partners: pass its id" if found else "not found (or not active)"
        raise InputError(f"{kind} {ref!r} {why} in stack {outputs.stack}")
    (owner_id,) = found
    return {cell: [o for o in owners if o.id == owner_id] for cell, owners in per_cell.items()}


def chosen(kind: str, ref: str | None, every: bool) -> str | None:
    """--tenant/--partner REF or --all, exactly one; REF an opaque id or a slug (nothing else
    reaches SQL). None means all."""
    if (ref is None) == (not every):
        raise InputError(f"pass either --{kind} ID-OR-SLUG or --all (exactly one)")
    if ref is None:
        return None
    try:
        return check_id(ref, f"{kind} id")
    except InputError:
        return check_slug(ref, kind)


# -- Secrets Manager: read, create pending, finish ------------------------------------------------


def create_pending(
    store: CredentialStore, endpoint: Endpoint, owner: Owner, current: tuple[dict | None, str | None]
) -> Staged:
    """The create step: a new AWSPENDING version naming the login AWSCURRENT does not (the app
    role when the current one is unusable). A missing secret is made with it: Secrets Manager
    makes a secret's first version AWSCURRENT whatever label is asked for, and the application
    had no working credentials to keep."""
    sm = aws.client("secretsmanager", store.region)
    name = secret_name(store.stack, owner.kind, owner.id)
    user, _, repair = judge(owner, *current)
    login = other_login(owner.app_role, user)
    password = secrets.token_urlsafe(32)
    document = credentials_document(login, password, endpoint)
    if current[0] is None and current[1] == MISSING:
        with contextlib.suppress(sm.exceptions.ResourceExistsException):
            return Staged(owner, login, password, document, store.create(owner.kind, owner.id, document), True, repair)
    put = sm.put_secret_value(SecretId=name, SecretString=document, VersionStages=[PENDING])
    return Staged(owner, login, password, document, put["VersionId"], False, repair)


def finish(region: str, stack: str, staged: Staged) -> str:
    """The finish step: the tested document becomes AWSCURRENT (Secrets Manager moves AWSPREVIOUS
    to the version it replaces, whose login still works). Written as a new current version rather
    than by moving the label (UpdateSecretVersionStage), which moto's GetSecretValue does not
    follow; on AWS both leave AWSCURRENT on the tested credentials. Returns that version."""
    if staged.first:
        return staged.version
    sm = aws.client("secretsmanager", region)
    put = sm.put_secret_value(
        SecretId=secret_name(stack, staged.owner.kind, staged.owner.id), SecretString=staged.document
    )
    return put["VersionId"]


# -- the database: set and test -------------------------------------------------------------------


@dataclass
class CellSession:
    """A cell held for rotation: the apply lock on a session of its own, the work on another,
    both as the migrator (CREATEROLE; no master credential)."""

    cluster: Cluster
    lock: psycopg.Connection
    work: psycopg.Connection

    def close(self) -> None:
        self.work.close()
        self.lock.close()


def open_cell(outputs: StackOutputs, cluster: Cluster, lock_wait: float) -> CellSession:
    creds = operators.operator_credentials(outputs, cluster, operators.MIGRATOR)
    lock = connect(cluster, creds, autocommit=True)
    try:
        celllock.take_exclusive(lock, cluster.cell, lock_wait)
        work = connect(cluster, creds, autocommit=True)
        work.execute("set lock_timeout = '5s'; set statement_timeout = '300s'")
    except BaseException:
        lock.close()
        raise
    return CellSession(cluster, lock, work)


def missing_logins(conn: psycopg.Connection, logins: list[str]) -> set[str]:
    rows = conn.execute(
        "select l from unnest(%s::text[]) l where to_regrole(quote_ident(l)) is null", (logins,)
    ).fetchall()
    return {r[0] for r in rows}


def set_passwords(conn: psycopg.Connection, staged: list[Staged]) -> None:
    """The set step: SCRAM verifiers computed here (no plaintext reaches the server), PER_TX
    ALTER ROLEs per transaction sent as one query text."""
    for i in range(0, len(staged), PER_TX):
        text = "\n".join(
            sql.SQL("alter role {} password {};")
            .format(sql.Identifier(s.login), sql.Literal(scram_verifier(conn.pgconn, s.password, s.login)))
            .as_string(None)
            for s in staged[i : i + PER_TX]
        )
        with conn.transaction():
            conn.execute(text)


def test_login(cluster: Cluster, staged: Staged) -> str | None:
    """The test step: None when the pending login logs in with its new password, else why not."""
    try:
        with connect(cluster, Credentials(staged.login, staged.password), autocommit=True) as conn:
            conn.execute("select 1")
        return None
    except (LoginRefused, ProvisionError, psycopg.Error) as exc:
        return first_line(exc)


def record_versions(conn: psycopg.Connection, finished: list[Staged]) -> None:
    """The ledger's credentials row of each finished owner: the version its login was set from
    (apply compares it with AWSCURRENT)."""
    if finished:
        rows: list[tuple[str, str, str, bool, str | None]] = [
            (s.owner.key, CREDENTIALS_STEP, s.version, False, None) for s in finished
        ]
        with conn.transaction():
            conn.execute(upsert_sql(rows))


# -- the whole run ------------------------------------------------------------------------------


@dataclass
class Rotator:
    outputs: StackOutputs
    kind: str
    store: CredentialStore
    lock_wait: float = 0.0
    progress: Progress | None = None

    def run(self, ref: str | None) -> Rotation:
        started = time.monotonic()
        results = {c.cell: CellRotation(c.cell) for c in self.outputs.clusters}
        with self._cells(results) as sessions:
            per_cell = select_owners(self.outputs, self.kind, ref, {c: s.work for c, s in sessions.items()})
            rotation = Rotation(self.kind, list(results.values()))
            self._rotate(sessions, per_cell, results, rotation)
        rotation.seconds = time.monotonic() - started
        return rotation

    @contextlib.contextmanager
    def _cells(self, results: dict[str, CellRotation]) -> Iterator[dict[str, CellSession]]:
        """Every cell's lock and session, opened in parallel; a cell down or busy is that cell's
        result. No cell up is an error."""

        def one(cluster: Cluster) -> CellSession | None:
            result = results[cluster.cell]
            try:
                return open_cell(self.outputs, cluster, self.lock_wait)
            except celllock.CellBusy as exc:
                result.status, result.errors = "busy", [str(exc)]
            except (ProvisionError, psycopg.Error, BotoCoreError, ClientError) as exc:
                result.status, result.errors = "unreachable", [first_line(exc)]
            return None

        with ThreadPoolExecutor(max_workers=len(self.outputs.clusters)) as pool:
            opened = dict(zip(self.outputs.cells, pool.map(one, self.outputs.clusters), strict=True))
        sessions = {cell: s for cell, s in opened.items() if s is not None}
        try:
            if not sessions:
                raise ProvisionError(
                    f"no cell of stack {self.outputs.stack} could be held: {results[self.outputs.cells[0]].errors[0]}"
                )
            yield sessions
        finally:
            for s in sessions.values():
                s.close()

    def _rotate(
        self,
        sessions: dict[str, CellSession],
        per_cell: dict[str, list[Owner]],
        results: dict[str, CellRotation],
        rotation: Rotation,
    ) -> None:
        owners = {o.key: o for found in per_cell.values() for o in found}
        down = [c for c in self.outputs.cells if c not in sessions]
        if self.kind == "partner" and down:
            # A partner logs in to every cell: its new password must be set in all of them first.
            for key in owners:
                rotation.failed[key] = f"cell(s) {', '.join(down)} not held: its password cannot be set everywhere"
            return
        current = read_current(self.outputs.region, self.outputs.stack, list(owners.values()))
        home = {o.key: self.outputs.cluster(c) for c, found in per_cell.items() for o in found}

        def create(owner: Owner) -> Staged:
            cluster = home[owner.key]  # the secret's host fields: a tenant's cell, a partner's last
            endpoint = Endpoint(cluster.endpoint, cluster.port, cluster.database)
            return create_pending(self.store, endpoint, owner, current[owner.key])

        with ThreadPoolExecutor(max_workers=SECRET_CALLS) as pool:
            staged = dict(zip(owners, pool.map(create, owners.values()), strict=True))

        def cell(name: str) -> None:
            self._set_and_test(sessions[name], [staged[o.key] for o in per_cell[name]], results[name])

        with ThreadPoolExecutor(max_workers=len(sessions)) as pool:
            list(pool.map(cell, list(sessions)))
        held = {o.key: [c for c, found in per_cell.items() if o in found] for o in owners.values()}
        ready: list[Staged] = []
        for key, pending in staged.items():
            failures = [results[c].failed[key] for c in held[key] if key in results[c].failed]
            if failures:
                rotation.failed[key] = failures[0]
            else:
                ready.append(pending)

        def moved(pending: Staged) -> str | None:
            try:
                pending.version = finish(self.outputs.region, self.outputs.stack, pending)
                return None
            except (BotoCoreError, ClientError) as exc:
                return f"AWSCURRENT not moved: {exc}"

        finished: list[Staged] = []
        with ThreadPoolExecutor(max_workers=SECRET_CALLS) as pool:
            for pending, why in zip(ready, pool.map(moved, ready), strict=True):
                key = pending.owner.key
                if why is not None:
                    rotation.failed[key] = why
                    continue
                finished.append(pending)
                rotation.rotated.append(key)
                if pending.repair:
                    rotation.repaired[key] = pending.repair
        for name, session in sessions.items():
            mine = [s for s in finished if s.owner in per_cell[name]]
            try:
                record_versions(session.work, mine)
            except psycopg.Error as exc:
                results[name].status = "failed"
                results[name].errors.append(f"cell {name}: ledger: {first_line(exc)}")

    def _set_and_test(self, session: CellSession, staged: list[Staged], result: CellRotation) -> None:
        started = time.monotonic()
        report = self.progress or (lambda cell, done, total: None)
        cell = session.cluster.cell
        total = len(staged)
        report(cell, 0, total)
        try:
            absent = missing_logins(session.work, [s.login for s in staged])
            for s in staged:
                if s.login in absent:
                    result.failed[s.owner.key] = f"no role {s.login} in {cell}: run `provision tenants apply` first"
            ready = [s for s in staged if s.login not in absent]
            set_passwords(session.work, ready)
            result.set = len(ready)
        except psycopg.Error as exc:
            result.status = "failed"
            result.errors.append(f"cell {cell}: {first_line(exc)}")
            for s in staged:
                result.failed.setdefault(s.owner.key, "its password could not be set")
            return
        done = 0
        with ThreadPoolExecutor(max_workers=LOGIN_TESTS) as pool:
            for s, refused in zip(ready, pool.map(lambda s: test_login(session.cluster, s), ready), strict=True):
                if refused is not None:
                    result.failed[s.owner.key] = f"{s.login} refused its new password: {refused}"
                done += 1
                if done % 50 == 0 or done == len(ready):
                    report(cell, done, total)
        result.seconds = time.monotonic() - started
        if result.failed:
            result.status = "failed"


def rotate(
    outputs: StackOutputs,
    kind: str,
    store: CredentialStore,
    ref: str | None,
    lock_wait: float = 0.0,
    progress: Progress | None = None,
) -> Rotation:
    """Rotate one owner's (`ref`) or every active owner's credentials of `kind`, cells in parallel."""
    if kind not in ("tenant", "partner"):
        raise InputError(f"kind {kind!r} is not tenant or partner")
    return Rotator(outputs, kind, store, lock_wait, progress).run(ref)
