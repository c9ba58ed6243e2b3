"""Reconcile a cell with sql/: platform, then partners, then tenants, in lock-bounded batches.

A target's pending steps (V steps never recorded, R steps whose rendered checksum changed) run
in one transaction together with their ledger rows, so a kill at any moment leaves each target
either fully at its previous state or fully at the new one; a re-run converges. A recorded V
step whose text changed is drift: that target stops, the others go on.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg import sql
from psycopg.pq.abc import PGconn

from contract.outputs import Cluster, StackOutputs
from contract.status import ExitStatus
from provisioner import celllock, credcheck, ledger, lockwait, operators
from provisioner.celllock import CellBusy
from provisioner.connect import LoginRefused, SecretReads, connect
from provisioner.credentials import CredentialStore, Endpoint, scram_verifier, secret_name
from provisioner.db import platform_present, scalar
from provisioner.errors import ProvisionError, first_line
from provisioner.ledger import CREDENTIALS_STEP, TargetPlan, plan_target, record_role_states
from provisioner.names import twin_of
from provisioner.targets import platform_target

LOCKS_PER_TENANT = 80  # measured: a new tenant holds ~66 locks (tests/db/test_apply.py checks it)
MAX_TARGETS_PER_TX = 50
RECONNECTS = 3  # a connection lost mid-apply is reopened this many times; the ledger says what is left
# A batch that times out waiting for a lock (a session holding a table the step alters) is tried
# again after these pauses (seconds): a tenant's idle transaction ends by its role default or
# the guard meanwhile. Bounded: after the last, the cell fails naming the blocking session.
LOCK_RETRY_BACKOFF = (1.0, 2.0, 4.0, 8.0)

Progress = Callable[[str, int, int], None]  # (cell, done, total)


@dataclass(frozen=True)
class ApplyOptions:
    dry_run: bool = False
    lock_wait: float = 0.0
    lock_timeout: str = "5s"
    statement_timeout: str = "300s"
    tenant_ids: frozenset[str] | None = None  # limit tenants (e.g. the one just added)
    partner_ids: frozenset[str] | None = None
    # Check every recorded credential against Secrets Manager in the stack's region, and set the
    # role again from its secret (made anew when missing) where the two may disagree: after a
    # restore or a rebuild in another region, the ledger's "credentials set" is the old cell's.
    check_credentials: bool = False
    # Report (not repair) partners and tenants whose secret is missing or was replaced behind the
    # tool's back (credcheck: ListSecrets beside the ledger, no round trip per tenant) and, with
    # check_logins, whose secret is malformed or refused by the database (a login each).
    report_credentials: bool = False
    check_logins: bool = False


@dataclass
class CellResult:
    cell: str
    status: str = "ok"  # ok | drift | failed | unreachable | busy
    targets_changed: dict[str, int] = field(default_factory=lambda: {"platform": 0, "partner": 0, "tenant": 0})
    steps_run: int = 0
    planned: list[tuple[str, str]] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    reconnects: int = 0  # connections lost and reopened during this run
    reissued: int = 0  # login roles set again because their secret was missing or newer
    lock_waits: list[str] = field(default_factory=list)  # lock timeouts retried, with who blocked
    credentials: list[str] = field(default_factory=list)  # owners whose credentials do not work, and the repair


COULD_NOT_RUN = {"unreachable", "busy"}


def apply_status(results: list[CellResult]) -> ExitStatus:
    """COULD_NOT_RUN when a cell was not reached or was busy, VIOLATIONS when a target failed or drifted."""
    if any(r.status in COULD_NOT_RUN for r in results):
        return ExitStatus.COULD_NOT_RUN
    return ExitStatus.VIOLATIONS if any(r.status != "ok" for r in results) else ExitStatus.OK


def seal_sql(plans: list[TargetPlan]) -> str | None:
    """One update recording the seal of every step found current by rendering it (a ledger
    written before seals, or a template or context that changed back), so the next run need
    not render it. Only where the checksum is still the one compared."""
    rows = [(p.target.key, step, p.recorded[step], seal) for p in plans for step, seal in p.unsealed]
    if not rows:
        return None
    return (
        sql.SQL(
            "update platform.schema_ledger l set inputs = v.inputs from (values {}) v (target, step, checksum, inputs) "
            "where l.target = v.target and l.step = v.step and l.checksum = v.checksum;"
        )
        .format(ledger.values_sql(rows))
        .as_string(None)
    )


def batch_sql(plans: list[TargetPlan], verifiers: dict[str, tuple[str, str, str]]) -> str:
    """One transaction's text: each target's pending steps and password, then the ledger rows
    (the credentials row records the secret version the password came from)."""
    parts: list[str] = []
    entries: list[tuple[str, str, str, bool, str | None]] = []
    for plan in plans:
        key = plan.target.key
        for pending in plan.pending:
            rendered = pending.render()
            parts.append(rendered.text)
            seal = plan.target.seal(rendered.step, rendered.checksum)
            entries.append((key, rendered.step.name, rendered.checksum, rendered.step.repeatable, seal))
        if key in verifiers and plan.role:
            verifier, version, login = verifiers[key]  # login: the role the secret names (app or twin)
            parts.append(
                sql.SQL("alter role {} password {};")
                .format(sql.Identifier(login), sql.Literal(verifier))
                .as_string(None)
            )
            entries.append((key, CREDENTIALS_STEP, version, False, None))
    if entries:
        parts.append(ledger.upsert_sql(entries))
    # The roles as these steps left them: a later change by the role itself shows as drift.
    reasserted = [p.target.key for p in plans if p.pending and p.target.kind in ledger.REASSERTS]
    if reasserted:
        parts.append(record_role_states(reasserted))
    return "\n".join(parts)


class CellApplier:
    def __init__(
        self,
        outputs: StackOutputs,
        cluster: Cluster,
        options: ApplyOptions,
        credentials: CredentialStore | None,
        progress: Progress | None = None,
        secret_versions: dict[str, str] | None = None,
        secrets: SecretReads | None = None,
    ):
        self.outputs, self.cluster, self.options = outputs, cluster, options
        # The run's secret reads: the master's is read once for all this cell's sessions.
        self.secrets = secrets or SecretReads(outputs.region)
        self.credentials = credentials
        self.secret_versions = secret_versions  # set: check recorded credentials against these
        self.progress = progress or (lambda cell, done, total: None)
        self.result = CellResult(cluster.cell)
        self.endpoint = Endpoint(cluster.endpoint, cluster.port, cluster.database)
        self.observer: psycopg.Connection | None = None  # the lock's session: watches who blocks a batch
        self.migrator: psycopg.Connection | None = None  # partners' and tenants' steps run on it
        self.recorded_logins: list[tuple[credcheck.Owner, str]] = []  # owners set earlier, their secret version

    # -- connection and lock -------------------------------------------------------------
    def _session(self) -> psycopg.Connection:
        secret = self.cluster.master_secret_arn
        try:
            conn = connect(self.cluster, self.secrets.credentials(secret), autocommit=True)
        except LoginRefused:
            # Maybe rotated since this run read it: read it again, once.
            self.secrets.forget(secret)
            conn = connect(self.cluster, self.secrets.credentials(secret), autocommit=True)
        return self._timeouts(conn)

    def _operator(self, conn: psycopg.Connection, role: str) -> psycopg.Connection:
        assert self.credentials is not None
        known = self.secrets.prefetched(operators.operator_secret(self.outputs.stack, self.cluster.cell, role))
        return operators.ensure_operator(conn, self.credentials, self.cluster, role, known=known)

    def _timeouts(self, conn: psycopg.Connection) -> psycopg.Connection:
        conn.execute(
            sql.SQL(
                "set lock_timeout = {}; set statement_timeout = {}; set idle_in_transaction_session_timeout = '120s'"
            ).format(sql.Literal(self.options.lock_timeout), sql.Literal(self.options.statement_timeout))
        )
        return conn

    # -- running -------------------------------------------------------------------------
    def run(self) -> CellResult:
        started = time.monotonic()
        try:
            self._run()
        finally:
            self.result.seconds = time.monotonic() - started
        if self.result.status == "ok" and self.result.drift:
            self.result.status = "drift"
        return self.result

    def _connect(self) -> psycopg.Connection | None:
        try:
            return self._session()
        except ProvisionError as exc:
            self.result.status, self.result.errors = "unreachable", [str(exc)]
        except (BotoCoreError, ClientError) as exc:
            self.result.status = "unreachable"
            self.result.errors = [f"cell {self.cluster.cell}: cannot read the master secret: {exc}"]
        return None

    def _run(self) -> None:
        """Apply; when the connection is lost (a failover, a restart, a terminated backend)
        reconnect, take the lock again and go on: each target's transaction either committed with
        its ledger rows or left nothing, so planning again from the ledger resumes exactly."""
        for attempt in range(RECONNECTS + 1):
            conn = self._connect()
            if conn is None:
                return
            lock = None
            try:
                if not self.options.dry_run:
                    # The lock lives on a session of its own, idle in its transaction while the
                    # batches commit on this one.
                    lock = self._connect()
                    if lock is None:
                        return
                    celllock.take_exclusive(lock, self.cluster.cell, self.options.lock_wait)
                self.observer = lock
                self._apply_all(conn)
                return
            except CellBusy as exc:
                self.result.status, self.result.errors = "busy", [str(exc)]
                return
            except psycopg.Error as exc:
                broken = conn.broken or (self.migrator is not None and self.migrator.broken)
                if isinstance(exc, psycopg.OperationalError) and broken and attempt < RECONNECTS:
                    self.result.reconnects += 1
                    self.result.status, self.result.errors = "ok", []
                    self.result.drift, self.result.planned = [], []
                    time.sleep(0.5 * (attempt + 1))
                    continue
                self.result.status = "failed"
                self.result.errors.append(f"cell {self.cluster.cell}: {first_line(exc)}")
                return
            except (BotoCoreError, ClientError, ProvisionError) as exc:
                # Credentials could not be stored: the batch that needed them never ran.
                self.result.status = "failed"
                self.result.errors.append(f"cell {self.cluster.cell}: credentials: {exc}")
                return
            finally:
                conn.close()
                if self.migrator is not None:
                    self.migrator.close()
                    self.migrator = None
                if lock is not None:
                    lock.close()

    def _apply_all(self, conn: psycopg.Connection) -> None:
        exists = platform_present(conn)
        target = platform_target(self.cluster.database)
        platform = ledger.recorded_plan(conn, target) if exists else plan_target(target, {})
        self._run_plans(lambda: conn, [platform], batch=1)
        if self.result.drift or self.result.errors or (self.options.dry_run and not exists):
            return  # without a current control plane, nothing else can be judged or run
        self._seal(lambda: conn, [platform])
        # The master's part ends with the platform and the operator roles' passwords (checked, and
        # set from their secrets where refused): partners' and tenants' steps run as the migrator,
        # which holds a tenant's owner only inside its step. The master reads the ledger to plan.
        if not self.options.dry_run and self.credentials is not None:
            self._operator(conn, operators.VERIFIER).close()
            self.migrator = self._timeouts(self._operator(conn, operators.MIGRATOR))
        # The server judges which targets are current where the ledger has its seals (a dry run
        # may find V070 pending), except when every target's recorded credentials are checked
        # against the secrets' versions (_stale_credentials).
        judged = self.secret_versions is None and not (self.options.dry_run and platform.pending)
        for kind in ("partner", "tenant"):
            self._apply_kind(conn, kind, judged)

    def _worker(self) -> psycopg.Connection:
        if self.migrator is None:
            raise ProvisionError("partners' and tenants' steps run as the migrator: no credential store was configured")
        return self.migrator

    def _apply_kind(self, conn: psycopg.Connection, kind: str, judged: bool) -> None:
        per_tx = self._targets_per_tx(conn) if kind == "tenant" else MAX_TARGETS_PER_TX
        only = self.options.tenant_ids if kind == "tenant" else self.options.partner_ids
        for page in ledger.pages(conn, kind, only, judged=judged):
            if self.options.report_credentials:
                self.recorded_logins.extend((credcheck.Owner(kind, i), version) for i, version in page.current)
            self._run_plans(self._worker, page.plans, batch=per_tx)
            self._seal(self._worker, page.plans)

    def _seal(self, runner: Callable[[], psycopg.Connection], plans: list[TargetPlan]) -> None:
        sealing = None if self.options.dry_run else seal_sql(plans)
        if sealing is not None:
            self._execute_waiting(runner(), sealing)

    def _targets_per_tx(self, conn: psycopg.Connection) -> int:
        # Stay well under the shared lock table (max_locks_per_transaction x max_connections):
        # one giant transaction fails with "out of shared memory".
        per_tx = scalar(conn, "select current_setting('max_locks_per_transaction')::int")
        conns = scalar(conn, "select current_setting('max_connections')::int")
        return max(1, min(MAX_TARGETS_PER_TX, per_tx * conns // 4 // LOCKS_PER_TENANT))

    def _stale_credentials(self, plan: TargetPlan) -> bool:
        """The role was set from a secret version that is no longer the current one (or from a
        secret this region does not have): its password may not be the secret's."""
        recorded = plan.recorded.get(CREDENTIALS_STEP)
        if self.secret_versions is None or recorded is None or not plan.role:
            return False
        current = self.secret_versions.get(secret_name(self.outputs.stack, plan.target.kind, plan.target.owner_id))
        return current is None or (recorded != "set" and recorded != current)  # "set": recorded before versions

    def _run_plans(self, runner: Callable[[], psycopg.Connection], plans: list[TargetPlan], batch: int) -> None:
        """Plans' pending work in batches, on the session `runner` gives (asked only when there is work)."""
        for plan in plans:
            self.result.drift.extend(str(d) for d in plan.drift)
            if self._stale_credentials(plan):
                plan.needs_credentials = True
                self.result.reissued += 1
            elif self.options.report_credentials and plan.role and CREDENTIALS_STEP in plan.recorded:
                owner = credcheck.Owner(plan.target.kind, plan.target.owner_id)
                self.recorded_logins.append((owner, plan.recorded[CREDENTIALS_STEP]))
        work = [p for p in plans if p.has_work]
        if self.options.dry_run:
            for plan in work:
                self.result.planned.extend((plan.target.key, r.step.name) for r in plan.pending)
                if plan.needs_credentials:
                    self.result.planned.append((plan.target.key, CREDENTIALS_STEP))
            return
        batches = [work[i : i + batch] for i in range(0, len(work), batch)]
        if not batches:
            return
        conn = runner()
        total = len(work)
        done = 0
        self.progress(self.cluster.cell, done, total)
        # Secrets Manager calls and SCRAM hashing for the next batch overlap the database's work
        # on the current one. The one worker hashes with this connection's libpq handle while a
        # batch runs on it: given the algorithm, PQencryptPasswordConn sends no query; it reads
        # only the iteration count the server reported at login (and writes the handle's error
        # message if hashing itself fails, which fails the cell anyway). Hashing here, between
        # batches, would add libpq's ~2 ms per new role to the run.
        with ThreadPoolExecutor(max_workers=1) as pool:
            upcoming: Future = pool.submit(self._verifiers, conn.pgconn, batches[0])
            for index, current in enumerate(batches):
                verifiers = upcoming.result()
                if index + 1 < len(batches):
                    upcoming = pool.submit(self._verifiers, conn.pgconn, batches[index + 1])
                self._execute(conn, current, verifiers)
                done += len(current)
                self.progress(self.cluster.cell, done, total)

    def _verifiers(self, pgconn: PGconn, plans: list[TargetPlan]) -> dict[str, tuple[str, str, str]]:
        """Each app role's password from the credential store, as the verifier the role gets and
        the secret version it came from."""
        out = {}
        for plan in plans:
            if plan.needs_credentials and plan.role:
                if self.credentials is None:
                    raise ProvisionError("credentials are needed but no credential store was configured")
                target = plan.target
                issued = self.credentials.ensure_versioned(
                    target.kind, target.owner_id, plan.role, self.endpoint, twin=twin_of(plan.role)
                )
                verifier = scram_verifier(pgconn, issued.password, issued.username)
                out[plan.target.key] = (verifier, issued.version, issued.username)
        return out

    def _execute(
        self, conn: psycopg.Connection, plans: list[TargetPlan], verifiers: dict[str, tuple[str, str, str]]
    ) -> None:
        try:
            self._execute_waiting(conn, batch_sql(plans, verifiers))
        except psycopg.errors.LockNotAvailable:
            raise
        except psycopg.Error as exc:
            if conn.broken:  # the connection is gone, not the batch: reconnect and resume
                raise
            if len(plans) > 1:  # find the one target that fails; the others still go in
                for plan in plans:
                    self._execute(conn, [plan], {k: v for k, v in verifiers.items() if k == plan.target.key})
                return
            self.result.status = "failed"
            self.result.errors.append(f"{plans[0].target.key}: {first_line(exc)}")
            return
        for plan in plans:
            self.result.targets_changed[plan.target.kind] += 1
            self.result.steps_run += len(plan.pending)

    def _execute_waiting(self, conn: psycopg.Connection, text: str) -> None:
        """One transaction; a lock timeout is retried after LOCK_RETRY_BACKOFF's pauses, each
        recorded with the sessions that blocked it (raised again after the last)."""
        for pause in (*LOCK_RETRY_BACKOFF, None):
            with contextlib.ExitStack() as stack:
                seen = (
                    stack.enter_context(lockwait.watch(self.observer, conn.info.backend_pid))
                    if self.observer is not None
                    else lockwait.Watch()
                )
                try:
                    with conn.transaction():
                        conn.execute(text)
                    return
                except psycopg.errors.LockNotAvailable as exc:
                    blocked = f"lock timeout ({self.options.lock_timeout}); blocked by {seen}"
                    self.result.lock_waits.append(blocked)
                    if pause is None:
                        retries = len(LOCK_RETRY_BACKOFF)
                        raise psycopg.errors.LockNotAvailable(f"{blocked}; gave up after {retries} retries") from exc
            time.sleep(pause)


def apply_stack(
    outputs: StackOutputs,
    options: ApplyOptions,
    credentials: CredentialStore | None,
    jobs: int | None = None,
    progress: Progress | None = None,
    cells: list[str] | None = None,
) -> list[CellResult]:
    """Cells in parallel; one cell down fails that cell, not the others."""
    clusters = [c for c in outputs.clusters if cells is None or c.cell in cells]
    versions = credentials.current_versions() if options.check_credentials and credentials else None
    secrets = SecretReads(outputs.region)
    wanted = [c.master_secret_arn for c in clusters]
    if credentials is not None and not options.dry_run:
        wanted += [operators.operator_secret(outputs.stack, c.cell, r) for c in clusters for r in operators.OPERATORS]
    secrets.prefetch(wanted)
    ledger.warm()
    workers = max(1, min(jobs or len(clusters), len(clusters)))
    reporting = options.report_credentials and credentials is not None and not options.dry_run
    with ThreadPoolExecutor(max_workers=workers + 1) as pool:
        # The secrets are listed while the cells apply.
        listed = pool.submit(credentials.current_versions) if reporting and credentials else None
        appliers = [CellApplier(outputs, c, options, credentials, progress, versions, secrets) for c in clusters]
        results = [f.result() for f in [pool.submit(a.run) for a in appliers]]
        if listed is not None:
            try:
                versions = listed.result()
            except (BotoCoreError, ClientError) as exc:  # what was applied stands; only the report is lost
                unlisted = f"credentials not checked: the stack's secrets could not be listed: {first_line(exc)}"
                for a in appliers:
                    a.result.credentials = [unlisted]
            else:
                list(pool.map(lambda a: _report_credentials(outputs, a, versions), appliers))
    return results


def _report_credentials(outputs: StackOutputs, applier: CellApplier, versions: dict[str, str]) -> None:
    """Warnings naming each owner of the cell whose credentials do not work (credcheck)."""
    found = credcheck.replaced(outputs.stack, applier.recorded_logins, versions)
    if applier.options.check_logins and applier.result.status == "ok":
        rest = [o for o, _ in applier.recorded_logins if o.key not in found]
        found |= credcheck.refused(applier.cluster, outputs.stack, outputs.region, rest)
    applier.result.credentials = [credcheck.warning(outputs.stack, k, why) for k, why in sorted(found.items())]
