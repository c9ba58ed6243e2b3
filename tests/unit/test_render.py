"""Rendering: StrictUndefined, quoting filters only, Flyway ordering; the SQL lint sees one keyword style."""

import subprocess
import sys
from pathlib import Path

import jinja2
import pytest

from contract.tiers import PLAN_TIERS
from provisioner import ledger, render, resources
from provisioner.names import TenantNames
from provisioner.resources import PackageIncomplete
from provisioner.targets import audit_months, platform_target, tenant_target
from provisioner.verify.catalog import catalog_checks

ROOT = Path(__file__).resolve().parents[2]


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


def sqlfluff(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("sqlfluff")), "lint", *args, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("name", "text", "args"),
    [
        (
            "R__upper.sql.j2",
            "GRANT usage ON SCHEMA {{ tenant.schema | ident }} TO {{ tenant.app_role | ident }};\n",
            ("--config", "pyproject.toml"),
        ),
        (
            "999_upper.sql",
            'select 1 AS "check" FROM pg_roles r WHERE r.rolname = %(owner)s;\n',
            ("--config", "provisioner/sql/verify/.sqlfluff", "--dialect", "postgres", "--templater", "placeholder"),
        ),
    ],
)
def test_the_sql_lint_catches_a_second_keyword_style(
    tmp_path: Path, name: str, text: str, args: tuple[str, ...]
) -> None:
    """`make lint` runs sqlfluff over the templates and checks; a file in another case fails it."""
    path = tmp_path / name
    path.write_text(text)
    result = sqlfluff(path, *args)
    assert result.returncode != 0 and "CP01" in result.stdout, result.stdout


def test_the_plan_constraint_is_rendered_from_the_contract(monkeypatch):
    """A new tier is one edit in contract/tiers.py: only the repeatable plan step changes."""
    from provisioner import targets

    before = {r.step.name: r.checksum for r in platform_target("platform").rendered}
    text = next(r.text for r in platform_target("platform").rendered if r.step.name == "R__plan_tiers")
    assert "check (plan in ('starter', 'growth', 'enterprise'))" in text
    monkeypatch.setattr(targets, "PLAN_TIERS", (*targets.PLAN_TIERS, "scale"))
    after = {r.step.name: r.checksum for r in platform_target("platform").rendered}
    assert {name for name in before if before[name] != after[name]} == {"R__plan_tiers"}
    text = next(r.text for r in platform_target("platform").rendered if r.step.name == "R__plan_tiers")
    assert "'enterprise', 'scale'" in text


@pytest.mark.parametrize("missing", ["platform", "partner", "tenant"])
def test_a_target_kind_without_steps_fails_closed(tmp_path: Path, monkeypatch, missing: str) -> None:
    """An install whose sql/<kind>/ holds no steps renders nothing for that target: an error, not a no-op."""
    for kind in ("platform", "partner", "tenant"):
        (tmp_path / kind).mkdir()
        if kind != missing:
            (tmp_path / kind / "V001__x.sql.j2").write_text("select 1;\n")
    monkeypatch.setattr(resources, "sql_dir", lambda: tmp_path)
    with pytest.raises(PackageIncomplete, match=rf"no \*\.sql\.j2 files in .*{missing}: the package is incomplete"):
        render.steps.__wrapped__(missing)
    assert render.steps.__wrapped__("platform" if missing != "platform" else "tenant")


def test_a_verifier_without_checks_fails_closed(tmp_path: Path, monkeypatch) -> None:
    """No catalog checks is a broken install: the verifier stops instead of reporting a clean stack."""
    (tmp_path / "verify").mkdir()
    monkeypatch.setattr(resources, "sql_dir", lambda: tmp_path)
    with pytest.raises(PackageIncomplete, match=r"no \*\.sql files in .*verify: the package is incomplete"):
        catalog_checks.__wrapped__()
    (tmp_path / "verify" / "001_example.sql").write_text("select 1;\n")
    assert [c.name for c in catalog_checks.__wrapped__()] == ["example"]


def test_context_shapes_are_a_targets_text_with_its_ids_put_in():
    ledger._shapes.cache_clear()
    shapes = ledger._shapes("tenant")
    assert set(shapes) == set(PLAN_TIERS)
    text = tenant_target("q1w2e3r4t5y6", "u7i8o9p0a1s2", "growth").context_text
    assert (
        shapes["growth"].replace(ledger.SENTINEL, "q1w2e3r4t5y6").replace(ledger.SENTINEL_PARTNER, "u7i8o9p0a1s2")
        == text
    )
    assert set(ledger._shapes("partner")) == {""}


def test_no_context_shapes_when_names_are_not_an_id_put_in(monkeypatch):
    """A name made otherwise (here: from part of the id) leaves the server nothing to judge with."""
    monkeypatch.setattr(TenantNames, "app_role", property(lambda self: f"t_{self.id[:6]}_app"))
    ledger._shapes.cache_clear()
    try:
        assert ledger._shapes("tenant") == {}
    finally:
        ledger._shapes.cache_clear()
