"""Promises as data: every control compliance/promises.yaml names exists where its kind lives, and
every rule and check that exists serves a clause. The controls are found from their own sources
(the rule registry, the check files, the probe package, the plan's and register's checks), so a
newcomer anywhere fails here with the line that says what to add."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
import yaml

from compliance.promises import KINDS, PROMISES_FILE, Promises, PromisesInvalid, load_promises, policy_text
from compliance.register import REGISTER_CHECKS
from offline.plan import PLAN_CHECKS
from policy.rules import RULES, STACK_RULES
from provisioner import jwtkeys
from provisioner.verify.catalog import catalog_checks
from provisioner.verify.ledger import CHECK as LEDGER_CHECK
from provisioner.verify.probes import probe_checks
from provisioner.verify.secrets import CHECK as SECRETS_CHECK
from tests.unit.mock_stacks import stack_names, stack_run

WHERE = {
    "rule": "policy/rules/ (a @rule or @stack_rule id)",
    "plan": "offline/plan.py PLAN_CHECKS",
    "resource": "the resources the program declares for every stack",
    "verify": "provisioner/sql/verify/NNN_<name>.sql (or ledger_drift, orphan_secrets)",
    "probe": "provisioner/verify/probes/<name>.py (CHECK probe_<name>)",
    "register": "compliance/register.py REGISTER_CHECKS",
    "keys": "provisioner/jwtkeys.py CHECK",
    "lifecycle": "the lifecycle checks (none exist yet: list the control under planned:)",
}
# Kinds whose every member must serve a clause (a resource type may exist for its own sake).
MUST_SERVE = ("rule", "plan", "verify", "probe", "register", "keys", "lifecycle")


@functools.cache
def existing() -> dict[str, frozenset[str]]:
    declared: set[str] = set()
    for stack in stack_names():
        declared |= {r.type for r in stack_run(stack).resources if r.custom}
    return {
        "rule": frozenset(r.id for r in (*RULES, *STACK_RULES)),
        "plan": frozenset(PLAN_CHECKS),
        "resource": frozenset(declared),
        "verify": frozenset({c.name for c in catalog_checks()} | {LEDGER_CHECK, SECRETS_CHECK}),
        "probe": frozenset(c.name for c in probe_checks()),
        "register": frozenset(REGISTER_CHECKS),
        "keys": frozenset({jwtkeys.CHECK}),
        # Lifecycle checks do not exist yet; when they do, name their registry here.
        "lifecycle": frozenset(),
    }


def test_every_kind_has_its_source():
    assert set(existing()) == set(KINDS) == set(WHERE)


def named_but_missing(promises: Promises, found: dict[str, frozenset[str]]) -> list[str]:
    return [
        f"clause {clause.id} names {control.kind} {control.id!r}, which does not exist in {WHERE[control.kind]}"
        for clause in promises.clauses
        for control in clause.controls
        if control.id not in found[control.kind]
    ]


def serving_no_clause(promises: Promises, found: dict[str, frozenset[str]]) -> list[str]:
    named = promises.controls()
    return [
        f"{kind} {name!r} serves no clause: add it under controls.{kind} of the clause it keeps in "
        "compliance/promises.yaml"
        for kind in MUST_SERVE
        for name in sorted(found[kind] - named[kind])
    ]


def test_every_control_a_clause_names_exists():
    missing = named_but_missing(load_promises(), existing())
    assert missing == [], "\n".join(missing)


def test_every_rule_and_check_serves_a_clause():
    serving_none = serving_no_clause(load_promises(), existing())
    assert serving_none == [], "\n".join(serving_none)


def test_a_made_up_control_and_a_check_no_clause_names_are_both_caught(tmp_path: Path):
    """The two tests above fail when promises.yaml names a control nobody built, and when a new
    rule or check lands without a clause."""
    doc = yaml.safe_load(PROMISES_FILE.read_text(encoding="utf-8"))
    clause = next(c for c in doc["clauses"] if c["id"] == "encryption-and-tls")
    clause["controls"]["verify"] = [*clause["controls"]["verify"], "tls_everywhere_maybe"]
    path = tmp_path / "promises.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    found = existing()
    assert named_but_missing(load_promises(path), found) == [
        "clause encryption-and-tls names verify 'tls_everywhere_maybe', which does not exist in " + WHERE["verify"]
    ]
    newcomer = {**found, "verify": found["verify"] | {"sequence_leak"}, "rule": found["rule"] | {"rds-new-rule"}}
    assert serving_no_clause(load_promises(), newcomer) == [
        "rule 'rds-new-rule' serves no clause: add it under controls.rule of the clause it keeps in "
        "compliance/promises.yaml",
        "verify 'sequence_leak' serves no clause: add it under controls.verify of the clause it keeps in "
        "compliance/promises.yaml",
    ]


def test_quotes_are_the_policys_own_words():
    text = policy_text()
    for clause in load_promises().clauses:
        assert clause.quote in text, f"clause {clause.id}: its quote is not in compliance/privacy-policy.txt"


def test_the_clauses_the_issue_names_are_all_there():
    ids = {c.id for c in load_promises().clauses}
    assert {
        "isolation",
        "encryption-and-tls",
        "credential-hashing",
        "short-lived-tokens",
        "sub-processors",
        "international-transfers",
        "retention",
        "deletion",
        "export",
        "breach-notification",
        "data-subject-requests",
    } <= ids


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("clauses: []\n", "non-empty 'clauses:' list"),
        ("policy: p\nclauses:\n  - {id: a, section: '1', title: t, quote: q}\n", "clause a: names no control"),
        (
            "policy: p\nclauses:\n  - {id: a, section: '1', title: t, quote: q, controls: {magic: [x]}}\n",
            "control kind 'magic' is not one of",
        ),
        (
            "policy: p\nclauses:\n  - {id: a, section: '1', title: t, quote: q, controls: {rule: [x, x]}}\n",
            "a control is named twice",
        ),
        (
            "policy: p\nclauses:\n  - {id: a, section: '1', title: t, quote: q, planned: [{control: c}]}\n",
            "planned[0].what: expected text",
        ),
        ("policy: p\nclauses:\n  - {id: a, title: t, quote: q, owner: me, planned: []}\n", "unknown key(s) owner"),
        ("clauses: [\n", "not valid YAML"),
    ],
)
def test_a_malformed_promises_file_is_refused_naming_the_place(tmp_path: Path, text: str, message: str):
    path = tmp_path / "promises.yaml"
    path.write_text(text)
    with pytest.raises(PromisesInvalid, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        load_promises(path)
    with pytest.raises(PromisesInvalid, match="not found"):
        load_promises(tmp_path / "none.yaml")
