"""The verifier's pieces that need no database: the check files' and probe modules' contracts,
pair sampling, the probe log, skip reasons, the three outputs and exit codes."""

from __future__ import annotations

import importlib
import pkgutil
import random
import re

import pytest

from provisioner.console import out
from provisioner.resources import PackageIncomplete
from provisioner.verify import probes
from provisioner.verify.catalog import catalog_checks, check_params
from provisioner.verify.findings import CellReport, Finding, verify_status
from provisioner.verify.prober import ProbeRun, nothing_probed, sample_pairs
from provisioner.verify.probes import discover, probe_checks
from provisioner.verify.probing import ProbeCheck, TenantRef
from provisioner.verify.report import as_json, show_table, tap_lines
from provisioner.verify.session import ProbeLog


def test_every_check_file_returns_rows_of_its_own_name_in_the_uniform_shape():
    checks = catalog_checks()
    assert len(checks) >= 20
    for check in checks:
        text = check.text
        assert f"'{check.name}' as \"check\"" in text, check.path.name
        for column in ("level", "object", "detail", "remediation"):
            assert re.search(rf"\bas {column}\b", text), f"{check.path.name} lacks {column}"
        # psycopg named parameters only: a bare % would be read as a placeholder.
        named = "|".join(check_params("master"))
        assert re.sub(rf"%\(({named})\)s", "", text).count("%") == 0


def test_sample_pairs_takes_every_pair_when_few_and_a_fixed_size_when_many():
    few = [TenantRef(f"t{i:011d}", "p") for i in range(3)]
    assert len(sample_pairs(few, 20, random.Random(1))) == 6
    many = [TenantRef(f"t{i:011d}", "p") for i in range(100)]
    pairs = sample_pairs(many, 25, random.Random(1))
    assert len(pairs) == len(set(pairs)) == 25 and all(a != b for a, b in pairs)
    assert pairs == sample_pairs(many, 25, random.Random(1))  # --seed repeats a run
    assert sample_pairs(many, 0, random.Random(1)) == [] and sample_pairs(few[:1], 5, random.Random(1)) == []
    # more tenants than pairs: a path, each target the next pair's source, 26 tenants for 25 pairs
    assert all(pairs[i][1] == pairs[i + 1][0] for i in range(len(pairs) - 1))
    assert len({t for pair in pairs for t in pair}) == 26
    # fewer: distinct random pairs
    some = [TenantRef(f"t{i:011d}", "p") for i in range(10)]
    pairs = sample_pairs(some, 25, random.Random(1))
    assert len(set(pairs)) == 25 and all(a != b for a, b in pairs)


def test_probe_log_merges_one_leak_seen_in_several_contexts():
    log = ProbeLog()
    log.violation("probe_shared_rows", "a -> platform.worker_runs", "sees rows of other tenants", "2 rows plainly")
    log.violation("probe_shared_rows", "a -> platform.worker_runs", "sees rows of other tenants", "2 rows after set x")
    log.violation("probe_set_role", "a -> role b", "SET ROLE succeeded")
    (rows, role) = log.findings()
    assert rows.detail == "sees rows of other tenants (2 rows plainly; 2 rows after set x)"
    assert role.detail == "SET ROLE succeeded" and role.level == "error"


def _report(cell: str, findings=(), errors=(), run=("tenant_acl", "role_membership")) -> CellReport:
    return CellReport(cell, findings=list(findings), errors=list(errors), checks_run=list(run))


def test_exit_codes_could_not_run_beats_violations_beats_clean():
    bad = Finding("tenant_acl", "error", "table t.x", "SELECT held by PUBLIC", "revoke")
    assert verify_status([_report("c1")]) == 0
    assert verify_status([_report("c1", [bad]), _report("c2")]) == 1
    assert verify_status([_report("c1", [bad]), _report("c2", errors=["cell c2: cannot connect"])]) == 2


def test_tap_has_a_plan_a_point_per_cell_and_check_and_yaml_for_failures():
    bad = Finding("role_membership", "error", 'role "x"', "reaches pg_read_all_data", "revoke pg_read_all_data from x")
    reports = [_report("c1", [bad]), _report("c2", errors=["cell c2: cannot connect"], run=())]
    lines = tap_lines(reports, ["tenant_acl", "role_membership"])
    points = [line for line in lines if line.startswith(("ok ", "not ok "))]
    assert lines[:2] == ["TAP version 14", f"1..{len(points)}"]
    assert points == [
        "ok 1 - c1: verified",
        "ok 2 - c1: tenant_acl",
        "not ok 3 - c1: role_membership",
        "not ok 4 - c2: verified",
        "ok 5 - c2: tenant_acl # SKIP not run",
        "ok 6 - c2: role_membership # SKIP not run",
    ]
    assert '      object: "role \\"x\\""' in lines  # YAML scalars quoted as JSON
    assert as_json("s", reports, ["tenant_acl", "role_membership"])["exit_code"] == 2


def test_the_probe_checks_are_the_modules_of_the_probes_package_each_declaring_itself():
    modules = [m.name for m in pkgutil.iter_modules(probes.__path__)]
    checks = probe_checks()
    assert [c.name for c in checks] == [f"probe_{m}" for m in modules] and len(checks) >= 8
    for module, check in zip(modules, checks, strict=True):
        doc = importlib.import_module(f"{probes.__name__}.{module}").__doc__
        assert doc and len(doc.split()) > 10, f"{module}.py must say what {check.name} proves"
        assert any((check.alone, check.against, check.witnessed, check.partner)), f"{check.name} probes nothing"


def test_an_empty_probe_package_fails_closed(tmp_path):
    with pytest.raises(PackageIncomplete, match="no probe checks in .*: the package is incomplete"):
        discover("emptyprobes", [str(tmp_path)])


def test_a_probe_module_without_its_check_fails_closed(tmp_path, monkeypatch):
    package = tmp_path / "strayprobes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "own_work.py").write_text("CHECK = 'probe_own_work'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    declare = r"strayprobes.own_work does not declare CHECK = ProbeCheck\('probe_own_work'"
    with pytest.raises(PackageIncomplete, match=declare):
        discover("strayprobes", [str(package)])


def _probe(name: str) -> ProbeCheck:
    (check,) = [c for c in probe_checks() if c.name == name]
    return check


def test_a_probe_check_with_nothing_to_probe_says_why():
    alone = ProbeRun(tenants=1, logins=1, partners=1)
    assert nothing_probed(_probe("probe_set_role"), alone, limited=False) == (
        "one active tenant in the cell: no pair to probe"
    )
    assert nothing_probed(_probe("probe_stat_activity"), alone, limited=True) == (
        "one active tenant among the tenants asked for: no pair to probe"
    )
    no_witness = ProbeRun(tenants=2, logins=1, pairs=1, partners=1)
    assert nothing_probed(_probe("probe_stat_activity"), no_witness, limited=False).startswith("no witness session")
    assert nothing_probed(_probe("probe_partner"), ProbeRun(tenants=2, logins=2, pairs=2), limited=False) == (
        "no partner could log in"
    )
    assert nothing_probed(_probe("probe_own_work"), ProbeRun(), limited=False) == "no active tenant in the cell"


def test_a_skip_shows_its_reason_in_tap_json_and_the_table():
    checks = ["tenant_acl", "probe_set_role", "probe_create"]
    lone = CellReport(
        "c1",
        checks_run=["tenant_acl", "probe_set_role", "probe_create"],
        skipped={"probe_set_role": "one active tenant in the cell: no pair to probe"},
    )
    assert [line for line in tap_lines([lone], checks) if line.startswith("ok ")] == [
        "ok 1 - c1: verified",
        "ok 2 - c1: tenant_acl",
        "ok 3 - c1: probe_set_role # SKIP one active tenant in the cell: no pair to probe",
        "ok 4 - c1: probe_create",
    ]
    (cell,) = as_json("s", [lone], checks)["cells"]
    assert cell["checks"] == [
        {"check": "tenant_acl", "status": "pass"},
        {"check": "probe_set_role", "status": "skip", "reason": "one active tenant in the cell: no pair to probe"},
        {"check": "probe_create", "status": "pass"},
    ]
    assert verify_status([lone]) == 0  # a skip is not a violation; the run says so instead
    with out.capture() as shown:
        show_table("s", [lone], checks)
    text = shown.get()
    assert "skipped: 1 check(s) had nothing to probe" in text
    assert "probe_set_role" in text and "no pair to probe" in text
