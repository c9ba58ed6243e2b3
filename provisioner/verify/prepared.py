"""Which statements of one probe session go as prepared statements: a statement (its text with
$n placeholders) made a second time in the session is parsed once, under a name of the
session's own, and executed by name with its values from then on. Its parse, analysis and
rewrite are then done once, and a statement without values keeps its plan (a probe's counts run
in every context: one count statement a context, a dozen contexts a login).

A prepared statement belongs to the server session that parsed it: each login probed is its
own session and its own Preparer, so nothing one tenant's session prepared is seen by another.
The names are kept per role in effect (after a SET ROLE of the attempt's setup) as PostgreSQL
replans a statement under row level security when the role changes: one name per role keeps
each role's plan. The parses of a pipeline go first, in a segment of their own; a parse that
fails (a relation the role cannot see) leaves its statement to be sent as it is, and an
attempt that ran before the failure was known is made again (see session.Session._send)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

ROLE_CHANGE = b"set role "


class Bound(NamedTuple):
    """A statement as sent: its text with $n placeholders and its values, dumped."""

    query: bytes
    params: tuple[bytes | None, ...] | None = None
    types: tuple[int, ...] | None = None
    formats: tuple[int, ...] | None = None


# (the SET ROLE in effect, or b"" for the login's own; the query; its values' types and formats):
# a statement is parsed for its parameters' types, and the same text can come with others (an
# id as int2 for one target, int8 for the next), which a name parsed for the first would misread.
Key = tuple[bytes, bytes, tuple[int, ...] | None, tuple[int, ...] | None]


class Parse(NamedTuple):
    name: bytes
    key: Key
    statement: Bound


def keys(statements: Sequence[Bound]) -> list[Key]:
    """Each statement's key: the role a SET ROLE before it in its segment took, and its text."""
    role, found = b"", []
    for statement in statements:
        found.append((role, statement.query, statement.types, statement.formats))
        if statement.query.startswith(ROLE_CHANGE):
            role = statement.query
    return found


class Preparer:
    def __init__(self) -> None:
        self._names: dict[Key, bytes] = {}  # parsed, or parsed in the pipeline being written
        self._uses: Counter[Key] = Counter()
        self._unparsable: set[Key] = set()  # its parse failed: sent as it is from then on
        self._parsed = 0

    def plan(self, segments: Sequence[Sequence[Bound]]) -> tuple[list[Parse], list[list[bytes | None]]]:
        """The parses to send first, and for each segment's statements the name to execute
        (None: sent as it is, once in the session so far)."""
        keyed = [keys(statements) for statements in segments]
        here = Counter(key for segment in keyed for key in segment)
        parses: list[Parse] = []
        for segment, statements in zip(keyed, segments, strict=True):
            for key, statement in zip(segment, statements, strict=True):
                if key in self._names or key in self._unparsable or self._uses[key] + here[key] < 2:
                    continue
                self._parsed += 1  # a name is never given twice, even after a failed parse
                name = self._names[key] = b"probe_%d" % self._parsed
                parses.append(Parse(name, key, statement))
        self._uses.update(here)
        names = [[self._names.get(key) for key in segment] for segment in keyed]
        return parses, names

    def settle(self, parse: Parse, parsed: bool, refused: bool) -> None:
        """A parse's outcome: not parsed, its name is free to be parsed again; refused (an error
        of its own, not a pipeline already aborted), its statement is sent as it is."""
        if parsed:
            return
        self._names.pop(parse.key, None)
        if refused:
            self._unparsable.add(parse.key)
