"""A probing login: every attempt in its own savepoint of one transaction that is rolled back,
so a failed attempt does not end the probe and a successful one leaves nothing behind.

An attempt on someone else's object passes only when PostgreSQL refuses it for lack of
privilege (SQLSTATE 42501, which row level security uses too) or the object does not exist.
Any other error means the statement got past the privilege checks: a violation as well.
Timeouts, deadlocks and ambiguous calls prove nothing either way: they are inconclusive.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql
from psycopg.abc import Params

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


class Session:
    def __init__(self, conn: psycopg.Connection, who: str, log: ProbeLog):
        self.conn, self.who, self.log = conn, who, log
        conn.execute(SESSION_SETTINGS)
        conn.commit()

    def close(self) -> None:
        try:
            self.conn.rollback()
        finally:
            self.conn.close()

    def catalog(self, query: Query, params: Params | None = None) -> list[tuple]:
        """Reads of the catalog (readable by every role) that steer the probes; not attempts."""
        with self.conn.cursor() as cur:
            cur.execute("savepoint steer")
            try:
                return cur.execute(query, params).fetchall()
            finally:
                cur.execute("rollback to savepoint steer")

    def attempt(self, check: str, *statements: Statement) -> Outcome:
        """The statements in one savepoint; the outcome is the last one's, or the first failure."""
        self.log.attempted[check] += 1
        with self.conn.cursor() as cur:
            cur.execute("savepoint probe")
            try:
                for query, params in statements:
                    cur.execute(query, params)
                return Outcome("ok", cur.fetchall() if cur.description else [], cur.rowcount)
            except psycopg.Error as exc:
                state = exc.sqlstate or ""
                kind = "denied" if state == DENIED else "absent" if state in ABSENT else "error"
                return Outcome(kind, sqlstate=state, message=(str(exc).strip().splitlines() or [""])[0])
            finally:
                cur.execute("rollback to savepoint probe")

    def within(self, setup: Sequence[Statement]) -> Context:
        return Context(self, setup)

    def _inconclusive(self, obj: str, what: str, outcome: Outcome) -> None:
        self.log.inconclusive.append(f"{self.who}: {what} on {obj}: {outcome.describe()}")

    # -- judgements ----------------------------------------------------------------------
    def blocked(self, check: str, obj: str, what: str, *statements: Statement) -> None:
        """Must be refused for lack of privilege (or aim at nothing that exists)."""
        outcome = self.attempt(check, *statements)
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
        outcome = self.attempt(check, statement)
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
            with self.within(setup) as entered:
                if entered:
                    for obj, statement in counts:
                        self.sees_nothing(check, obj, what, statement, label)

    def changes_nothing(self, check: str, obj: str, what: str, statement: Statement) -> None:
        outcome = self.attempt(check, statement)
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
        outcome = self.attempt(check, *statements)
        if outcome.kind != "ok" or not expect(outcome):
            shown = outcome.describe() if outcome.kind != "ok" else f"returned {outcome.rows}"
            self.log.violation(check, f"{self.who} -> {obj}", f"{what}: {shown}")


class Context:
    """A savepoint holding SET ROLE / set_config for a group of attempts, undone on exit."""

    def __init__(self, session: Session, setup: Sequence[Statement]):
        self.session, self.setup = session, setup
        self.entered = False

    def __enter__(self) -> bool:
        with self.session.conn.cursor() as cur:
            cur.execute("savepoint context")
            try:
                for query, params in self.setup:
                    cur.execute(query, params)
                self.entered = True
            except psycopg.Error:
                cur.execute("rollback to savepoint context")  # cannot take this role: nothing to probe
        return self.entered

    def __exit__(self, *exc: object) -> None:
        if self.entered:
            self.session.conn.execute("rollback to savepoint context")
