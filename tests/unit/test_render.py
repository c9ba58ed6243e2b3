"""Rendering: StrictUndefined, quoting filters only, Flyway ordering, one keyword style."""

import re

import jinja2
import pytest

from provisioner import render, resources
from provisioner.targets import audit_months, platform_target, tenant_target


def test_values_reach_sql_only_through_quoting_filters():
    env = render.environment()
    assert env.from_string("{{ x | ident }}").render(x='a"b') == '"a""b"'
    assert env.from_string("{{ x | literal }}").render(x="o'k") == "'o''k'"
    with pytest.raises(jinja2.TemplateError, match="without the ident or literal filter"):
        env.from_string("drop schema {{ x }}").render(x="t_abc; drop table y")
    with pytest.raises(jinja2.TemplateError, match="without the ident or literal filter"):
        env.from_string("select {{ n }}").render(n=5)


def test_undefined_variables_fail():
    with pytest.raises(jinja2.UndefinedError):
        render.environment().from_string("{{ missing | ident }}").render()


@pytest.mark.parametrize("kind", ["platform", "partner", "tenant"])
def test_steps_are_versioned_first_then_repeatable(kind):
    steps = render.steps(kind)
    flags = [s.repeatable for s in steps]
    assert flags == sorted(flags)
    versions = [s.name for s in steps if not s.repeatable]
    assert versions == sorted(versions) and versions


def test_every_template_renders():
    for target in (platform_target("platform"), tenant_target("abcdefghij12", "zyxwvutsrq98", "growth")):
        assert all(r.text.strip() and len(r.checksum) == 32 for r in target.rendered)


def test_checksums_follow_the_rendered_text():
    a = tenant_target("abcdefghij12", "zyxwvutsrq98", "growth").rendered
    b = tenant_target("abcdefghij13", "zyxwvutsrq98", "growth").rendered
    assert [x.checksum for x in a] != [y.checksum for y in b]
    assert [x.checksum for x in a] == [
        x.checksum for x in tenant_target("abcdefghij12", "zyxwvutsrq98", "growth").rendered
    ]


def test_audit_months_cover_the_year_boundary():
    import datetime as dt

    months = audit_months(dt.date(2026, 12, 15))
    assert [m["name"] for m in months] == [
        "audit_events_2026_11",
        "audit_events_2026_12",
        "audit_events_2027_01",
        "audit_events_2027_02",
        "audit_events_2027_03",
    ]
    assert months[1]["end"] == "2027-01-01"


KEYWORDS = re.compile(
    r"\b(CREATE|ALTER|GRANT|REVOKE|SELECT|INSERT|UPDATE|DELETE|TABLE|ROLE|SCHEMA|POLICY|FROM|WHERE|JOIN|AND|OR)\b"
)


def test_sql_uses_one_keyword_style_lower_case():
    offenders = []
    for path in sorted(resources.sql_dir().rglob("*.sql*")):
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            code = line.split("--", 1)[0]
            if KEYWORDS.search(code):
                offenders.append(f"{path.relative_to(resources.sql_dir())}:{number}")
    assert offenders == []
