"""The verifier's pieces that need no database: the check files' contract, pair sampling, the
probe log, TAP output and exit codes."""

from __future__ import annotations

import random
import re

from provisioner.verify.catalog import catalog_checks
from provisioner.verify.findings import CellReport, Finding, verify_status
from provisioner.verify.prober import sample_pairs
from provisioner.verify.probes import TenantRef
from provisioner.verify.report import as_json, tap_lines
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
        assert re.sub(r"%\((owner|operator|tenant_app|tenant_read|partner_app|master)\)s", "", text).count("%") == 0


def test_sample_pairs_takes_every_pair_when_few_and_a_fixed_size_when_many():
    few = [TenantRef(f"t{i:011d}", "p") for i in range(3)]
    assert len(sample_pairs(few, 20, random.Random(1))) == 6
    many = [TenantRef(f"t{i:011d}", "p") for i in range(100)]
    pairs = sample_pairs(many, 25, random.Random(1))
    assert len(pairs) == len(set(pairs)) == 25 and all(a != b for a, b in pairs)
    assert pairs == sample_pairs(many, 25, random.Random(1))  # --seed repeats a run
    assert sample_pairs(many, 0, random.Random(1)) == [] and sample_pairs(few[:1], 5, random.Random(1)) == []


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
    assert as_json("s", reports)["exit_code"] == 2
