"""A probing login: every attempt runs after a rollback to one savepoint of one transaction that
is rolled back at the end, so a failed attempt does not end the probe and a successful one
leaves nothing behind.

Attempts are queued and sent together in pipeline mode, each its own sync segment that begins
with that rollback: a failure skips only the rest of its own segment, and the next segment's
rollback recovers the transaction. One round trip carries hundreds of attempts; each is judged
when its results arrive (before any catalog read that steers the next ones, and at close).

An attempt on someone else's object passes only when PostgreSQL refuses it for lack of
privilege (SQLSTATE 42501, which row level security uses too) or the object does not exist.
Any other error means the statement got past the privilege checks: a violation as well.
Timeouts, deadlocks and ambiguous calls prove nothing either way: they are inconclusive.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import psycopg
from psycopg import errors, generators, pq, sql
from psycopg.abc import Params
from psycopg.adapt import Transformer

from provisioner.db import Query
from provisioner.verify.findings import Finding

DENIED = "42501"  # insufficient_privilege; also "new row violates row-level security policy"
ABSENT = {"42704", "3F000", "42P01", "42883"}  # no such role / schema / table / function
INCONCLUSIVE = {"57014", "55P03", "40P01", "42725"}  # timeouts, deadlock, ambiguous function
SESSION_SETTINGS = "set statement_timeout = '5s'; set lock_timeout = '1s'"
REMEDY = "find and revoke the grant, policy, membership or binding that allows it; run the catalog checks"

Statement = tuple[Query, Params | None]


@dataclass
class Outcome:
    kind: str  # ok | denied | absent | error
    rows: list = field(default_factory=list)
    rowcount: int = 0
    sqlstate: str = ""
    message: str = ""

    @property
    def count(self) -> int:
        """The first column of the first row: what a count(*) probe returned."""
        return int(self.rows[0][0]) if self.rows and self.rows[0] and self.rows[0][0] is not None else 0

    def describe(self) -> str:
        return "succeeded" if self.kind == "ok" else f"{self.sqlstate} {self.message}"


@dataclass
class ProbeLog:
    """A cell's probe results, merged by (check, object, attempt): one leak seen in several
    contexts is one row naming them. Attempts are counted per check: a check with none had
    nothing to probe."""

    attempted: Counter[str] = field(default_factory=Counter)
    inconclusive: list[str] = field(default_factory=list)
    _found: dict[tuple[str, str, str], list[str]] = field(default_factory=dict)
    _remedies: dict[tuple[str, str, str], str] = field(default_factory=dict)

    @property
    def attempts(self) -> int:
        return sum(self.attempted.values())

    def violation(self, check: str, obj: str, what: str, context: str | None = None, remediation: str = REMEDY) -> None:
        contexts = self._found.setdefault((check, obj, what), [])
        self._remedies[(check, obj, what)] = remediation
        if context and context not in contexts:
            contexts.append(context)

    def findings(self) -> list[Finding]:
        return [
            Finding(
                check,
                "error",
                obj,
                what + (f" ({'; '.join(contexts)})" if contexts else ""),
                self._remedies[(check, obj, what)],
            )
            for (check, obj, what), contexts in self._found.items()
        ]


def set_role(role: str) -> Statement:
    return sql.SQL("set role {}").format(sql.Identifier(role)), None


BASE = "savepoint base"
UNDO = b"rollback to savepoint base"
Judge = Callable[["Outcome"], None]


@dataclass
class Queued:
    check: str
    setup: int  # how many of `texts` are the context's setup
    texts: list[bytes]
    then: Judge


class Session:
    def __init__(self, conn: psycopg.Connection, who: str, log: ProbeLog):
        self.conn, self.who, self.log = conn, who, log
        self._binder = psycopg.ClientCursor(conn)
        self._setup: list[list[bytes]] = []  # the contexts entered, innermost last
        self._queue: list[Queued] = []
        conn.execute(SESSION_SETTINGS)
        conn.commit()
        conn.execute(BASE)

    def close(self) -> None:
        try:
            self.flush()
            self.conn.rollback()
        finally:
            self.conn.close()

    def _bind(self, statements: Sequence[Statement]) -> list[bytes]:
        return [self._binder.mogrify(q, p).encode() for q, p in statements]

    def catalog(self, query: Query, params: Params | None = None) -> list[tuple]:
        """Reads of the catalog (readable by every role) that steer the probes; not attempts.
        What is queued is judged first, as it would have been in order."""
        self.flush()
        with self.conn.cursor() as cur:
            try:
                return cur.execute(query, params).fetchall()
            finally:
                cur.execute(UNDO)

    def attempt(self, check: str, *statements: Statement, then: Judge) -> None:
        """The statements, after the setup of the contexts entered, in one segment; `then`
        judges the outcome: the last statement's, or the first failure. An attempt whose
        context's setup is refused is not made (nothing to probe there)."""
        self.log.attempted[check] += 1
        setup = [t for texts in self._setup for t in texts]
        self._queue.append(Queued(check, len(setup), setup + self._bind(statements), then))

    def flush(self) -> None:
        """Send every queued attempt in one pipeline and judge each."""
        queued, self._queue = self._queue, []
        if not queued:
            return
        pgconn = self.conn.pgconn
        commands: deque[Callable[[], None]] = deque()
        for item in queued:
            commands.extend(partial(pgconn.send_query_params, text, None) for text in (UNDO, *item.texts))
            commands.append(pgconn.pipeline_sync)
        commands.append(partial(pgconn.send_query_params, UNDO, None))  # leave no failed transaction
        commands.append(pgconn.pipeline_sync)
        expected = len(commands)  # a result list per statement and per sync
        results: list[list[pq.abc.PGresult]] = []
        with self.conn.lock:
            pgconn.enter_pipeline_mode()
            try:
                while commands:  # sends while reading what has come back, so neither side stalls
                    results += self.conn.wait(generators.pipeline_communicate(pgconn, commands))
                self.conn.wait(generators.send(pgconn))
                while len(results) < expected:
                    results.append(self.conn.wait(generators.fetch_many(pgconn)))
            finally:
                pgconn.exit_pipeline_mode()
        segments = iter(results)
        for item in queued:
            segment = [next(segments) for _ in range(len(item.texts) + 2)][:-1]  # drop the sync
            self._judge(item, [r[-1] for r in segment[1:]], segment[0][-1])
        last = [r[-1] for r in segments]
        if last[0].status != pq.ExecStatus.COMMAND_OK:
            raise errors.error_from_result(last[0], encoding=self.conn.info.encoding)

    def _judge(self, item: Queued, results: list[pq.abc.PGresult], undo: pq.abc.PGresult) -> None:
        encoding = self.conn.info.encoding
        if undo.status != pq.ExecStatus.COMMAND_OK:
            raise errors.error_from_result(undo, encoding=encoding)
        for index, res in enumerate(results):
            if res.status == pq.ExecStatus.FATAL_ERROR:
                if index < item.setup:  # cannot take this role or setting: nothing to probe
                    self.log.attempted[item.check] -= 1
                    return
                exc = errors.error_from_result(res, encoding=encoding)
                state = exc.sqlstate or ""
                kind = "denied" if state == DENIED else "absent" if state in ABSENT else "error"
                item.then(Outcome(kind, sqlstate=state, message=(str(exc).strip().splitlines() or [""])[0]))
                return
        last = results[-1]
        rows: list = []
        if last.status == pq.ExecStatus.TUPLES_OK:
            loader = Transformer(self.conn)
            loader.set_pgresult(last)
            rows = loader.load_rows(0, last.ntuples, tuple)
        item.then(Outcome("ok", rows, last.command_tuples if last.command_tuples is not None else -1))

    def within(self, setup: Sequence[Statement]) -> Context:
        return Context(self, setup)

    def _inconclusive(self, obj: str, what: str, outcome: Outcome) -> None:
        self.log.inconclusive.append(f"{self.who}: {what} on {obj}: {outcome.describe()}")

    # -- judgements ----------------------------------------------------------------------
    def blocked(self, check: str, obj: str, what: str, *statements: Statement) -> None:
        """Must be refused for lack of privilege (or aim at nothing that exists)."""
        self.attempt(check, *statements, then=lambda outcome: self._refused(check, obj, what, outcome))

    def _refused(self, check: str, obj: str, what: str, outcome: Outcome) -> None:
        if outcome.kind in ("denied", "absent"):
            return
        if outcome.kind == "error" and outcome.sqlstate in INCONCLUSIVE:
            self._inconclusive(obj, what, outcome)
        elif outcome.kind == "ok":
            rows = f" ({outcome.count} rows)" if what == "SELECT" else ""
            self.log.violation(check, f"{self.who} -> {obj}", f"{what} succeeded{rows}")
        else:
            self.log.violation(
                check, f"{self.who} -> {obj}", f"{what} got past the privilege checks", outcome.describe()
            )

    def sees_nothing(self, check: str, obj: str, what: str, statement: Statement, context: str) -> None:
        """A count of rows that are not the session's own: refused, absent or zero."""
        self.attempt(check, statement, then=lambda outcome: self._saw_nothing(check, obj, what, context, outcome))

    def _saw_nothing(self, check: str, obj: str, what: str, context: str, outcome: Outcome) -> None:
        if outcome.kind in ("denied", "absent") or (outcome.kind == "ok" and outcome.count == 0):
            return
        if outcome.kind == "ok":
            self.log.violation(check, f"{self.who} -> {obj}", what, f"{outcome.count} rows {context}")
        else:
            self._inconclusive(obj, f"{what} ({context})", outcome)

    def sees_nothing_anywhere(
        self,
        check: str,
        what: str,
        contexts: Sequence[tuple[str, Sequence[Statement]]],
        counts: Sequence[tuple[str, Statement]],
    ) -> None:
        """Every count (object, statement) in every context (label, setup) sees nothing; a
        context whose setup is refused has nothing to probe."""
        for label, setup in contexts:
            with self.within(setup):
                for obj, statement in counts:
                    self.sees_nothing(check, obj, what, statement, label)

    def changes_nothing(self, check: str, obj: str, what: str, statement: Statement) -> None:
        self.attempt(check, statement, then=lambda outcome: self._changed_nothing(check, obj, what, outcome))

    def _changed_nothing(self, check: str, obj: str, what: str, outcome: Outcome) -> None:
        if outcome.kind in ("denied", "absent") or (outcome.kind == "ok" and outcome.rowcount == 0):
            return
        if outcome.kind == "ok":
            self.log.violation(check, f"{self.who} -> {obj}", f"{what} changed {outcome.rowcount} rows")
        else:
            self._inconclusive(obj, what, outcome)

    def works(
        self,
        check: str,
        obj: str,
        what: str,
        *statements: Statement,
        expect: Callable[[Outcome], bool] = lambda o: True,
    ) -> None:
        """The session's own normal work must succeed: isolation that breaks it proves nothing."""

        def judge(outcome: Outcome) -> None:
            if outcome.kind != "ok" or not expect(outcome):
                shown = outcome.describe() if outcome.kind != "ok" else f"returned {outcome.rows}"
                self.log.violation(check, f"{self.who} -> {obj}", f"{what}: {shown}")

        self.attempt(check, *statements, then=judge)


class Context:
    """SET ROLE / set_config for a group of attempts: run before each of them, in its segment,
    so it is undone with it; an attempt whose setup is refused is not made."""

    def __init__(self, session: Session, setup: Sequence[Statement]):
        self.session, self.setup = session, setup

    def __enter__(self) -> None:
        self.session._setup.append(self.session._bind(self.setup))

    def __exit__(self, *exc: object) -> None:
        self.session._setup.pop()
