"""Ten cells: the no-op run renders nothing yet still finds drift. A step's ledger row carries a
seal of what rendered it (template, context, checksum); a sealed step is current without a
render, and anything that breaks the seal (a checksum edited, a template changed) is rendered
and judged as before."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from provisioner import directory, ledger, render, resources
from provisioner.apply import ApplyOptions, apply_stack
from provisioner.stackref import credential_store
from tests.helpers import RunningStack, onboard, started_stack

CELLS = 10
PER_CELL = 2


@pytest.fixture(scope="module")
def ten_cells(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with started_stack(tmp_path_factory.mktemp("tencells"), cells=CELLS) as running:
        yield running


@pytest.fixture(scope="module")
def placed(ten_cells: RunningStack) -> list[directory.Tenant]:
    tenants = [("scale-p", f"scale-{i:02d}", "starter") for i in range(CELLS * PER_CELL)]
    onboard(ten_cells.outputs, {"scale-p": "EU"}, tenants)
    found = directory.tenants(ten_cells.outputs)
    assert {t.cell for t in found} == set(ten_cells.outputs.cells)  # spread over every cell
    return found


def dry_run(running: RunningStack) -> tuple[int, dict]:
    env = {**os.environ, "ASKASIA_LOCAL_DIR": str(running.root)}
    done = subprocess.run(
        [sys.executable, "-m", "provisioner", "tenants", "apply", "--stack", "local", "--dry-run", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    return done.returncode, json.loads(done.stdout)


def unsealed_rows(running: RunningStack) -> int:
    count = 0
    for cell in running.outputs.cells:
        with running.superuser(cell=cell) as su:
            count += su.execute(
                "select count(*) from platform.schema_ledger where target like 'tenant:%%' "
                "and step = any(%s) and inputs is null",
                ([step.name for step in render.steps("tenant")],),
            ).fetchone()[0]
    return count


def set_ledger(running: RunningStack, cell: str, query: str, params: tuple) -> None:
    with running.superuser(cell=cell) as su:
        su.execute(query, params)
        su.commit()


def test_no_op_reports_exactly_the_one_tenant_whose_applied_step_changed(ten_cells, placed, monkeypatch):
    assert unsealed_rows(ten_cells) == 0  # apply sealed every step it ran
    code, clean = dry_run(ten_cells)
    assert code == 0 and all(c["status"] == "ok" and not c["planned"] for c in clean["cells"])

    victim = placed[7]
    original = (
        ten_cells.superuser(cell=victim.cell)
        .execute(
            "select checksum from platform.schema_ledger where target = %s and step = 'V002__tables'",
            (f"tenant:{victim.id}",),
        )
        .fetchone()[0]
    )
    set_ledger(
        ten_cells,
        victim.cell,
        "update platform.schema_ledger set checksum = 'edited' where target = %s and step = 'V002__tables'",
        (f"tenant:{victim.id}",),
    )
    try:
        code, found = dry_run(ten_cells)
        drifted = {c["cell"]: c["drift"] for c in found["cells"] if c["drift"]}
        assert code == 1
        assert list(drifted) == [victim.cell]
        assert len(drifted[victim.cell]) == 1 and drifted[victim.cell][0].startswith(
            f"tenant:{victim.id}: V002__tables"
        )
        assert all(not c["planned"] for c in found["cells"])
    finally:
        set_ledger(
            ten_cells,
            victim.cell,
            "update platform.schema_ledger set checksum = %s where target = %s and step = 'V002__tables'",
            (original, f"tenant:{victim.id}"),
        )
    assert dry_run(ten_cells)[0] == 0


def test_a_no_op_renders_nothing(ten_cells, placed, monkeypatch):
    rendered = []
    real = render.Step.render
    monkeypatch.setattr(render.Step, "render", lambda step, context: rendered.append(step.name) or real(step, context))
    results = apply_stack(ten_cells.outputs, ApplyOptions(), credential_store(ten_cells.outputs))
    assert all(r.status == "ok" for r in results) and sum(r.steps_run for r in results) == 0
    assert rendered == []


def test_rows_without_a_seal_are_rendered_once_then_sealed(ten_cells, placed):
    cell = placed[0].cell
    set_ledger(ten_cells, cell, "update platform.schema_ledger set inputs = null where target like %s", ("tenant:%",))
    assert unsealed_rows(ten_cells) == PER_CELL * len(render.steps("tenant"))
    assert dry_run(ten_cells)[0] == 0  # current, rendered: nothing to run, and a dry run writes nothing
    assert unsealed_rows(ten_cells) == PER_CELL * len(render.steps("tenant"))
    results = apply_stack(ten_cells.outputs, ApplyOptions(), credential_store(ten_cells.outputs))
    assert sum(r.steps_run for r in results) == 0
    assert unsealed_rows(ten_cells) == 0


def test_a_changed_template_breaks_every_seal(ten_cells, placed, tmp_path, monkeypatch):
    changed = tmp_path / "sql"
    shutil.copytree(resources.sql_dir(), changed)
    grants = changed / "tenant" / "R__grants.sql.j2"
    grants.write_text(grants.read_text() + "-- one more line\n")
    monkeypatch.setattr(resources, "sql_dir", lambda: changed)
    render.environment.cache_clear()
    render.steps.cache_clear()
    try:
        results = apply_stack(ten_cells.outputs, ApplyOptions(dry_run=True), credential_store(ten_cells.outputs))
        planned = sorted(p for r in results for p in r.planned)
        assert planned == sorted((f"tenant:{t.id}", "R__grants") for t in placed)
    finally:
        monkeypatch.undo()
        render.environment.cache_clear()
        render.steps.cache_clear()


def judged_and_planned(su: psycopg.Connection, cell_tenants: list[directory.Tenant]) -> tuple[set[str], dict]:
    """The ids the server finds current, and every tenant's plan as planning here makes it."""
    current = {i for page in ledger.pages(su, "tenant") for i, _ in page.current}
    planned = {p.target.owner_id: p for page in ledger.pages(su, "tenant", judged=False) for p in page.plans}
    assert set(planned) >= {t.id for t in cell_tenants}
    return current, planned


def quiet(plan: ledger.TargetPlan) -> bool:
    return not (plan.pending or plan.drift or plan.unsealed or plan.roles_drifted or plan.needs_credentials)


_STEP = "target = %(target)s and step = "
BREAKS = {
    "a step's checksum edited": f"update platform.schema_ledger set checksum = 'x' where {_STEP} 'V002__tables'",
    "a step's seal gone": f"update platform.schema_ledger set inputs = null where {_STEP} 'R__grants'",
    "a seal edited": f"update platform.schema_ledger set inputs = md5(inputs) where {_STEP} 'R__limits'",
    "a step's row gone": f"delete from platform.schema_ledger where {_STEP} 'V020__twin_login'",
    "its plan changed": "update platform.tenants set plan = 'enterprise' where id = %(id)s",
    "its credentials never set": f"delete from platform.schema_ledger where {_STEP} 'credentials'",
    "its role state changed": "alter role {app} set work_mem = '1GB'",
}


@pytest.mark.parametrize("brk", sorted(BREAKS))
def test_the_server_finds_current_exactly_the_tenants_planning_finds_current(ten_cells, placed, brk):
    """The no-op's judgement in SQL (seals recomputed from the templates' digests and each
    tenant's context shape) against plan_target's, with one tenant broken inside a transaction
    that is rolled back: that tenant, and only it, is not current, and comes back whole."""
    victim = placed[3]
    cell_tenants = [t for t in placed if t.cell == victim.cell]
    with ten_cells.superuser(cell=victim.cell) as su:
        current, planned = judged_and_planned(su, cell_tenants)
        assert current == set(planned) and all(quiet(p) for p in planned.values())
        statement = sql.SQL(BREAKS[brk]).format(app=sql.Identifier(f"t_{victim.id}_app"))
        su.execute(statement, {"target": f"tenant:{victim.id}", "id": victim.id})
        current, planned = judged_and_planned(su, cell_tenants)
        assert not quiet(planned[victim.id])
        assert current == set(planned) - {victim.id}
        (looked,) = [p for page in ledger.pages(su, "tenant") for p in page.plans]
        assert looked.target.key == planned[victim.id].target.key
        assert (looked.drift, looked.unsealed, looked.roles_drifted, looked.needs_credentials) == (
            planned[victim.id].drift,
            planned[victim.id].unsealed,
            planned[victim.id].roles_drifted,
            planned[victim.id].needs_credentials,
        )
        assert [p.step.name for p in looked.pending] == [p.step.name for p in planned[victim.id].pending]
        su.rollback()


def test_without_context_shapes_the_server_finds_no_tenant_current(ten_cells, placed, monkeypatch):
    """When names are no longer an id put in (the shapes' self-check fails) every tenant is
    planned here, as before the server judged."""
    monkeypatch.setattr(ledger, "_shapes", lambda kind: {})
    cell_tenants = [t for t in placed if t.cell == placed[0].cell]
    with ten_cells.superuser(cell=placed[0].cell) as su:
        pages = list(ledger.pages(su, "tenant"))
    assert [i for page in pages for i, _ in page.current] == []
    assert {p.target.owner_id for page in pages for p in page.plans} >= {t.id for t in cell_tenants}


def test_pages_plan_at_most_planned_targets_and_cover_every_target_once(ten_cells, placed, monkeypatch):
    """Memory is bounded by the targets planned a page, not by a query's rows: smaller pages,
    split within a query or across queries, plan the same targets in the same order, each once."""
    with ten_cells.superuser(cell=placed[0].cell) as su:
        whole = [p.target.owner_id for page in ledger.pages(su, "tenant", judged=False) for p in page.plans]
        monkeypatch.setattr(ledger, "PLANNED", 1)
        within = list(ledger.pages(su, "tenant", chunk=len(whole) + 1, judged=False))
        across = list(ledger.pages(su, "tenant", chunk=1, judged=False))
    assert len(whole) >= 2
    for paged in (within, across):
        assert [len(page.plans) for page in paged] == [1] * len(whole)
        assert [p.target.owner_id for page in paged for p in page.plans] == whole
