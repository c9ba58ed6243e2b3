"""A probe session's prepared statements, as a tenant's real login: a statement made again with
other values runs by a name of the session's own and is judged as if it were sent as it is;
another tenant's session holds none of them and counts only its own executions; a statement
whose parse PostgreSQL refuses (a schema the role may not use is refused at parse, before any
value is looked at) is made again as it is and judged on that refusal, not on the lost name."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg import sql

from provisioner.names import new_id
from provisioner.verify.session import Outcome, ProbeLog, Session, Statement
from provisioner.verify.statements import MARK, insert
from tests.helpers import connect_as, onboard, unique

CHECK = "probe_session_test"
PREPARED = "select statement, generic_plans + custom_plans from pg_prepared_statements order by statement"


@pytest.fixture(scope="module")
def pair(local_stack, outputs):
    partner, slugs = unique("prep-p"), [unique("prep") for _ in range(2)]
    tenants = onboard(outputs, {partner: "EU"}, [(partner, slug, "starter") for slug in slugs], cell="cell-1")
    return tenants[slugs[0]], tenants[slugs[1]]


@pytest.fixture
def sessions(outputs, pair) -> Iterator[list[Session]]:
    opened = [Session(connect_as(outputs, "tenant", t.id, "cell-1"), f"t_{t.id}_app", ProbeLog()) for t in pair]
    yield opened
    for session in opened:
        session.close()


def outcomes(session: Session, statements: list[Statement]) -> list[Outcome]:
    seen: list[Outcome] = []
    for statement in statements:
        session.attempt(CHECK, statement, then=seen.append)
    session.flush()
    return seen


def counts(ids: list[str]) -> list[Statement]:
    return [("select count(*) from platform.tenants where id = %(id)s", {"id": i}) for i in ids]


def test_a_statement_made_again_runs_prepared_in_its_own_session_only(pair, sessions):
    (a, b), (first, second) = pair, sessions
    seen = outcomes(first, counts([a.id, b.id, new_id()]))
    assert [(o.kind, o.count) for o in seen] == [("ok", 1), ("ok", 0), ("ok", 0)]  # its own row only
    claims = [
        insert("platform", "worker_runs", {"tenant_id": b.id, "partner_id": b.partner_id, "worker": MARK, "status": s})
        for s in ("one", "two")
    ]
    assert [(o.kind, o.sqlstate) for o in outcomes(first, claims)] == [("denied", "42501")] * 2  # row level security
    prepared = dict(first.catalog(PREPARED))
    assert prepared["select count(*) from platform.tenants where id = $1"] == 3
    assert [n for s, n in prepared.items() if s.startswith('insert into "platform"."worker_runs"')] == [2]

    assert second.catalog(PREPARED) == []  # nothing of the first session's
    assert [(o.kind, o.count) for o in outcomes(second, counts([b.id, a.id]))] == [("ok", 1), ("ok", 0)]
    assert second.catalog(PREPARED) == [("select count(*) from platform.tenants where id = $1", 2)]


def test_an_attempt_whose_parse_is_refused_is_made_again_and_judged_on_that_refusal(pair, sessions):
    (_, b), (first, _) = pair, sessions
    leads = sql.SQL("select count(*) from {} where name = %(v)s").format(sql.Identifier(f"t_{b.id}", "leads"))
    seen = outcomes(first, [(leads, {"v": v}) for v in ("one", "two", "three")])
    assert [(o.kind, o.sqlstate) for o in seen] == [("denied", "42501")] * 3  # no usage on b's schema
    assert first.log.attempted[CHECK] == 3 and first.log.findings() == []
    assert first.catalog(PREPARED) == []  # no name kept for it: sent as it is from then on
    again = outcomes(first, [(leads, {"v": "four"}), (leads, {"v": "five"})])
    assert [(o.kind, o.sqlstate) for o in again] == [("denied", "42501")] * 2
