"""`provision dsr`: a request recorded with its due date and listed overdue after 30 days; the
person's records found across every cell and exported; erasure pseudonymises the address and
keeps each audit row's facts, touching no other row; a tenant's own schema searched as its role."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest

from provisioner.lifecycle import dsr
from tests.helpers import connect_as, converge, onboard, provision, unique


@pytest.fixture(scope="module")
def tenants(local_stack, outputs):
    converge(outputs)
    partner = unique("dsr-p")
    one, two = unique("dsr-a"), unique("dsr-b")
    made = {}
    made.update(onboard(outputs, {partner: "EU"}, [(partner, one, "growth")], cell="cell-1"))
    made.update(onboard(outputs, {}, [(partner, two, "starter")], cell="cell-2"))
    return made[one], made[two]


@pytest.fixture
def world(local_stack, tenants):
    """A person of its own for each test (one test's erasure is no other's starting point)."""
    one, two = tenants
    email = f"{unique('person')}@example.com"
    other = f"{unique('someone')}@example.com"
    for t, detail in ((one, {"by": email}), (two, {"note": f"mail from {email.upper()} about x"})):
        with local_stack.superuser(cell=t.cell) as su:
            su.execute(
                "insert into platform.audit_events (tenant_id, partner_id, actor, action, detail) "
                "values (%s, %s, %s, 'login', %s), (%s, %s, %s, 'login', '{}')",
                (t.id, t.partner_id, email if t is one else "svc", json.dumps(detail), t.id, t.partner_id, other),
            )
            su.commit()
    yield one, two, email, other
    # A request a test left open would be overdue for every later verify of the shared stack.
    with local_stack.superuser() as su:
        su.execute(
            "update platform.dsr_requests set closed_at = now() where email = %s and closed_at is null", (email,)
        )
        su.commit()


def cli(local_stack, *args: str) -> subprocess.CompletedProcess:
    return provision(local_stack, "dsr", *args)


def rows(local_stack, needle: str) -> list[tuple]:
    found = []
    for cell in ("cell-1", "cell-2"):
        with local_stack.superuser(cell=cell) as su:
            found += su.execute(
                "select id::text, tenant_id, occurred_at, action, actor, detail::text from platform.audit_events "
                "where strpos(lower(actor || detail::text), %s) > 0 order by id",
                (needle.lower(),),
            ).fetchall()
    return found


def audited(local_stack, action: str, subject: str) -> list[dict]:
    """The audit rows of a dsr action about this subject (pseudonymised), in the first cell."""
    with local_stack.superuser(cell="cell-1") as su:
        return [
            r[0]
            for r in su.execute(
                "select detail from platform.audit_events where tenant_id = '' and action = %s "
                "and detail ->> 'subject' = %s order by id",
                (action, subject),
            ).fetchall()
        ]


def test_requests_are_due_in_30_days_and_listed_overdue(local_stack, world):
    _, _, email, _ = world
    opened = cli(
        local_stack,
        "open",
        "--email",
        email,
        "--kind",
        "deletion",
        "--as-of",
        (dt.datetime.now(dt.UTC) - dt.timedelta(days=31)).isoformat(),
    )
    assert opened.returncode == 0, opened.stderr
    listed = cli(local_stack, "list", "--email", email, "--json")
    assert listed.returncode == 1  # overdue
    (request,) = [r for r in json.loads(listed.stdout) if r["closed_at"] is None]  # an erasure closes its own
    assert request["overdue"] is True and request["kind"] == "deletion"
    assert audited(local_stack, "dsr.listed", dsr.pseudonym(email))[-1] == {
        "subject": dsr.pseudonym(email),
        "requests": 1,
        "overdue": 1,
    }
    earlier = cli(
        local_stack, "list", "--email", email, "--as-of", (dt.datetime.now(dt.UTC) - dt.timedelta(days=2)).isoformat()
    )
    assert earlier.returncode == 0 and "open" in earlier.stdout
    bad = cli(local_stack, "open", "--email", "not-an-address")
    assert bad.returncode == 2 and "is not an e-mail address" in bad.stderr


def test_export_finds_the_person_in_every_cell(local_stack, world, tmp_path):
    _, _, email, _ = world
    result = cli(local_stack, "export", "--email", email, "--to", str(tmp_path / "dsr.json"))
    assert result.returncode == 0, result.stderr
    records = json.loads((tmp_path / "dsr.json").read_text())["records"]
    assert {r["cell"] for r in records} == {"cell-1", "cell-2"}
    assert sorted(r["id"] for r in records) == sorted(r[0] for r in rows(local_stack, email))
    (row,) = audited(local_stack, "dsr.exported", dsr.pseudonym(email))
    assert row == {"subject": dsr.pseudonym(email), "records": len(records), "cells": ["cell-1", "cell-2"]}
    assert rows(local_stack, email) and email not in json.dumps(row)  # the trail names the pseudonym only


def test_erase_pseudonymises_and_keeps_the_facts(local_stack, world):
    _, _, email, other = world
    assert cli(local_stack, "open", "--email", email, "--kind", "deletion").returncode == 0
    before = rows(local_stack, email)
    others_before = rows(local_stack, other)
    refused = cli(local_stack, "erase", "--email", email)
    assert refused.returncode == 2 and rows(local_stack, email) == before
    done = cli(local_stack, "erase", "--email", email, "--yes")
    assert done.returncode == 0, done.stderr
    assert rows(local_stack, email) == []
    alias = dsr.pseudonym(email)
    after = {r[0]: r for r in rows(local_stack, alias)}
    for row in before:
        kept = after[row[0]]
        assert kept[1:4] == row[1:4]  # tenant, time and action unchanged
    assert rows(local_stack, other) == others_before  # nobody else's row touched
    listed = cli(local_stack, "list", "--email", email, "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout)[0]["closed_at"] is not None


def test_a_tenant_schema_is_searched_as_the_tenant(local_stack, outputs, world):
    a, b, email, _ = world
    with connect_as(outputs, "tenant", a.id, a.cell) as conn:
        conn.execute("insert into leads (name, email) values ('P', %s)", (email,))
    result = cli(local_stack, "search-tenant", "--tenant", a.id, "--email", email, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["leads"] == 1
    other = cli(local_stack, "search-tenant", "--tenant", b.id, "--email", email, "--json")
    assert json.loads(other.stdout) == {"emails": 0, "leads": 0, "outputs": 0, "tickets": 0}
