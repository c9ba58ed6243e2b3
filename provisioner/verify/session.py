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

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache, partial
from typing import TypeVar

import psycopg
from psycopg import errors, pq, sql
from psycopg._queries import PostgresQuery  # psycopg's own conversion to $n placeholders and dumped values
from psycopg.abc import Params, PQGen
from psycopg.adapt import Transformer
from psycopg.waiting import Ready, Wait

from provisioner.db import Query
from provisioner.verify.findings import Finding
from provisioner.verify.prepared import Bound, Parse, Preparer

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


@cache
def composed(template: str, *names: tuple[str, ...]) -> str:
    """`template` with each {} replaced by a quoted (possibly qualified) name, composed once:
    the same statements are built for every target, and composing them is most of the client's
    cost of an attempt. Values stay placeholders, bound by the session."""
    return sql.SQL(template).format(*(sql.Identifier(*name) for name in names)).as_string()


def set_role(role: str) -> Statement:
    return composed("set role {}", (role,)), None


BASE = "savepoint base"
UNDO = b"rollback to savepoint base"
Judge = Callable[["Outcome"], None]
T = TypeVar("T")


def _once(made: dict[tuple, T], make: Callable[[Query, Params | None], T], query: Query, params: Params | None) -> T:
    """make(query, params), once a session for a text statement with plain values: the same
    counts and claims run in every context."""
    if not isinstance(query, str) or not isinstance(params, dict | None):
        return make(query, params)
    key = (query, *(params.items() if params else ()))
    try:
        found = made.get(key)
    except TypeError:  # a value that is not hashable: made every time
        return make(query, params)
    if found is None:
        found = made[key] = make(query, params)
    return found


@dataclass
class Queued:
    check: str
    setup: int  # how many of `statements` are the context's setup
    statements: list[Bound]
    then: Judge


class Session:
    def __init__(self, conn: psycopg.Connection, who: str, log: ProbeLog):
        self.conn, self.who, self.log = conn, who, log
        self._binder = psycopg.ClientCursor(conn)
        self._converter = PostgresQuery(Transformer(conn))
        self._bound_once: dict[tuple, Bound] = {}
        self._literals: dict[tuple, bytes] = {}
        self._loader = Transformer(conn)
        self._prepared = Preparer()  # this login's own: its server session is the statements' scope
        self._setup: list[list[Bound]] = []  # the contexts entered, innermost last
        self._queue: list[Queued] = []
        self._made: set[tuple[str | Bound, ...]] = set()
        conn.execute(
            f"{SESSION_SETTINGS}; {BASE}"
        )  # in the probe's one transaction: the settings outlive every rollback to BASE

    def close(self) -> None:
        try:
            self.flush()
            self.conn.rollback()
        finally:
            self.conn.close()

    def _bind(self, statements: Sequence[Statement]) -> list[Bound]:
        return [self._bound(q, p) for q, p in statements]

    def _bound(self, query: Query, params: Params | None) -> Bound:
        """The statement with $n placeholders and its values dumped, bound server-side (so that
        the same statement with another target's values is the same prepared statement)."""
        return _once(self._bound_once, self._convert, query, params)

    def _literal(self, query: Query, params: Params | None) -> bytes:
        """The statement as text, its values bound client-side: a part of a larger statement
        (the counts of a context, counted together)."""
        return _once(self._literals, self._mogrify, query, params)

    def _mogrify(self, query: Query, params: Params | None) -> bytes:
        return self._binder.mogrify(query, params).encode()

    def _convert(self, query: Query, params: Params | None) -> Bound:
        converted = self._converter
        converted.convert(query, params)
        if converted.params is None:
            return Bound(converted.query)
        values = tuple(None if value is None else bytes(value) for value in converted.params)
        return Bound(converted.query, values, tuple(converted.types), tuple(converted.formats or ()))

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
        self._enqueue(check, self._context(), self._bind(statements), then)

    def _context(self) -> list[Bound]:
        """The setup of the contexts entered, bound."""
        return [t for texts in self._setup for t in texts]

    def _enqueue(self, check: str, setup: list[Bound], statements: list[Bound], then: Judge) -> None:
        """Queues the attempt, unless the session made the very same one (same check, setup and
        statements; another target's group role, or the canaries' shared partner): the same
        statements in the same rolled-back state are refused or allowed alike."""
        key: tuple[str | Bound, ...] = (check, *setup, *statements)
        if key in self._made:
            return
        self._made.add(key)
        self.log.attempted[check] += 1
        self._queue.append(Queued(check, len(setup), setup + statements, then))

    def flush(self) -> None:
        """Send every queued attempt in one pipeline and judge each; what a judge queues (an
        attempt made again in parts) goes in the next pipeline, until nothing is left."""
        while self._queue:
            queued, self._queue = self._queue, []
            self._send(queued)

    def _send(self, queued: list[Queued]) -> None:
        parses, names = self._prepared.plan([item.statements for item in queued])
        pgconn = self.conn.pgconn
        with self.conn.lock:
            pgconn.enter_pipeline_mode()
            try:
                results = self.conn.wait(_communicate(pgconn, parses, queued, names))
            finally:
                pgconn.exit_pipeline_mode()
        segments = iter(results)
        lost: set[bytes] = set()
        if parses:
            undo, *parsed, _ = [next(segments)[-1] for _ in range(len(parses) + 2)]
            self._undone(undo)
            for parse, res in zip(parses, parsed, strict=True):
                if res.status != pq.ExecStatus.COMMAND_OK:
                    lost.add(parse.name)
                self._prepared.settle(
                    parse, res.status == pq.ExecStatus.COMMAND_OK, refused=res.status == pq.ExecStatus.FATAL_ERROR
                )
        for item, item_names in zip(queued, names, strict=True):
            segment = [next(segments) for _ in range(len(item.statements) + 2)][:-1]  # drop the sync
            self._judge(item, [r[-1] for r in segment[1:]], segment[0][-1], [n in lost for n in item_names])
        self._undone([r[-1] for r in segments][0])

    def _undone(self, undo: pq.abc.PGresult) -> None:
        if undo.status != pq.ExecStatus.COMMAND_OK:
            raise errors.error_from_result(undo, encoding=self.conn.info.encoding)

    def _judge(self, item: Queued, results: list[pq.abc.PGresult], undo: pq.abc.PGresult, lost: list[bool]) -> None:
        """`lost`: which statements were executed by a name whose parse failed in the same
        pipeline: the attempt is made again, in the next one, with its statements as they are."""
        encoding = self.conn.info.encoding
        self._undone(undo)
        for index, res in enumerate(results):
            if res.status == pq.ExecStatus.FATAL_ERROR:
                if lost[index]:
                    self._queue.append(item)
                    return
                if index < item.setup:  # cannot take this role or setting: nothing to probe
                    self.log.attempted[item.check] -= 1
                    return
                state = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
                message = (res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or b"").decode(encoding, "replace")
                kind = "denied" if state == DENIED else "absent" if state in ABSENT else "error"
                item.then(Outcome(kind, sqlstate=state, message=(message.strip().splitlines() or [""])[0]))
                return
        last = results[-1]
        rows: list = []
        if last.status == pq.ExecStatus.TUPLES_OK:
            self._loader.set_pgresult(last)
            rows = self._loader.load_rows(0, last.ntuples, tuple)
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

    def sees_nothing_together(
        self, check: str, what: str, counts: Sequence[tuple[str, Statement]], context: str
    ) -> None:
        """Every count (object, statement) sees nothing, asked in one statement that selects
        them all. Only objects the session may read belong here: when that statement fails
        (one of them refused after all, an error, a timeout), each count is attempted again
        alone in the same context, so what is found names its object as sees_nothing would."""
        if len(counts) < 2:
            for obj, statement in counts:
                self.sees_nothing(check, obj, what, statement, context)
            return
        setup = self._context()
        texts = [self._literal(*statement) for _, statement in counts]
        together = Bound(b"select " + b", ".join(b"(" + text + b")" for text in texts))

        def judge(outcome: Outcome) -> None:
            if outcome.kind != "ok":
                for obj, statement in counts:
                    alone = self._bound(*statement)
                    self._enqueue(check, setup, [alone], partial(self._saw_nothing, check, obj, what, context))
                return
            for (obj, _), seen in zip(counts, outcome.rows[0], strict=True):
                self._saw_nothing(check, obj, what, context, Outcome("ok", [(seen,)]))

        self._enqueue(check, setup, [together], judge)

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


def _communicate(
    pgconn: pq.abc.PGconn, parses: list[Parse], queued: list[Queued], names: list[list[bytes | None]]
) -> PQGen[list[list[pq.abc.PGresult]]]:
    """The parses of the statements to prepare (a rollback, the parses, a sync), every attempt's
    segment (the rollback, its statements, each by name when prepared, a sync), then a last
    rollback, written into libpq's buffer at once (the connection does not block: the buffer
    grows), then sent while reading what comes back, so neither side stalls: a few waits for the
    whole pipeline instead of one per statement. A result list per command and one per sync."""
    expected = 2
    if parses:
        pgconn.send_query_params(UNDO, None)
        for parse in parses:
            pgconn.send_prepare(parse.name, parse.statement.query, parse.statement.types)
        pgconn.pipeline_sync()
        expected += len(parses) + 2
    for item, item_names in zip(queued, names, strict=True):
        pgconn.send_query_params(UNDO, None)
        for statement, name in zip(item.statements, item_names, strict=True):
            if name is None:
                pgconn.send_query_params(statement.query, statement.params, statement.types, statement.formats)
            else:
                pgconn.send_query_prepared(name, statement.params, statement.formats)
        pgconn.pipeline_sync()
        expected += len(item.statements) + 2
    pgconn.send_query_params(UNDO, None)  # leave no failed transaction
    pgconn.pipeline_sync()
    results: list[list[pq.abc.PGresult]] = []
    current: list[pq.abc.PGresult] = []
    while len(results) < expected:
        flushed = pgconn.flush() == 0
        ready = yield Wait.R if flushed else Wait.RW
        if not ready & Ready.R:
            continue
        pgconn.consume_input()
        while not pgconn.is_busy():
            res = pgconn.get_result()
            if res is None:  # the end of one statement's results
                if not current:
                    break
                results.append(current)
                current = []
            elif res.status == pq.ExecStatus.PIPELINE_SYNC:
                results.append([res])
            else:
                current.append(res)
    return results


class Context:
    """SET ROLE / set_config for a group of attempts: run before each of them, in its segment,
    so it is undone with it; an attempt whose setup is refused is not made."""

    def __init__(self, session: Session, setup: Sequence[Statement]):
        self.session, self.setup = session, setup

    def __enter__(self) -> None:
        self.session._setup.append(self.session._bind(self.setup))

    def __exit__(self, *exc: object) -> None:
        self.session._setup.pop()
