"""Onboarding: partners and tenants recorded in the cells' control planes and applied.

Every check runs before anything is written: the rows are validated (provisioner.validation:
pure functions of the input, the known partners and the stack), the control plane is brought
current, then the rows go in and are applied.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from contract.outputs import StackOutputs
from contract.status import ExitStatus
from provisioner import directory
from provisioner.apply import ApplyOptions, CellResult, Progress, apply_stack, apply_status
from provisioner.credentials import CredentialStore
from provisioner.directory import NewTenant, Partner, Placement
from provisioner.errors import InputError
from provisioner.validation import check_origin_served, validate_partner, validate_tenant_rows

NOTHING_ELSE = ApplyOptions(tenant_ids=frozenset(), partner_ids=frozenset())


def validate_new_tenants(outputs: StackOutputs, rows: Sequence[Mapping[str, object]]) -> list[NewTenant]:
    """The rows checked against the stack's partners, before anything is written."""
    known = directory.partners(outputs, directory.onboarding_login(outputs))
    return validate_tenant_rows(rows, {p.slug: p for p in known}, outputs)


def read_tenant_rows(path: Path) -> list[dict]:
    """Rows of a CSV or JSON Lines file (columns partner, tenant, plan, region)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if path.suffix in (".jsonl", ".ndjson"):
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    row = None
                if not isinstance(row, dict):
                    raise InputError(f"{path}:{number}: not a JSON object")
                rows.append(row)
    elif path.suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
    else:
        raise InputError(f"{path}: use .csv or .jsonl (columns partner, tenant, plan, region)")
    if not rows:
        raise InputError(f"{path} has no rows")
    return rows


# -- the service -------------------------------------------------------------------------


@dataclass(frozen=True)
class TenantsOnboarded:
    placements: list[Placement]
    results: list[CellResult]  # empty when not applied

    @property
    def added(self) -> int:
        return sum(p.new for p in self.placements)

    def added_per_cell(self, cells: Sequence[str]) -> dict[str, int]:
        return {c: sum(1 for p in self.placements if p.new and p.cell == c) for c in cells}


class Onboarding:
    def __init__(self, outputs: StackOutputs, credentials: CredentialStore, progress: Progress | None = None):
        self.outputs, self.credentials, self.progress = outputs, credentials, progress

    def skip_cells_down(self) -> dict[str, str]:
        """Go on with the cells that answer (a tenant is placed among them, a partner recorded in
        them; `partners add` again once a cell is back records it there too). Returns the cells
        left out and why."""
        self.outputs, down = directory.reachable(self.outputs, directory.onboarding_login(self.outputs))
        return down

    def ensure_control_plane(self) -> None:
        """The control plane must be current before rows go into it."""
        results = apply_stack(self.outputs, NOTHING_ELSE, None)
        if apply_status(results) is not ExitStatus.OK:
            problems = "; ".join(line for r in results for line in r.errors + r.drift)
            raise InputError(f"the control plane is not in shape: {problems}")

    def apply(self, options: ApplyOptions, jobs: int | None = None, cells: list[str] | None = None) -> list[CellResult]:
        return apply_stack(self.outputs, options, self.credentials, jobs=jobs, progress=self.progress, cells=cells)

    def add_partner(self, slug: str, jurisdiction: str) -> tuple[Partner, list[CellResult]]:
        validate_partner(slug, jurisdiction)
        check_origin_served(jurisdiction, self.outputs)  # its account data lives in every cell
        self.ensure_control_plane()
        partner = directory.add_partner_rows(self.outputs, slug, jurisdiction)
        return partner, self.apply(ApplyOptions(partner_ids=frozenset([partner.id]), tenant_ids=frozenset()))

    def add_tenant(self, row: Mapping[str, object], cell: str | None = None) -> TenantsOnboarded:
        """One tenant, placed (in `cell` or the least-loaded one) and applied alone."""
        placed = self._place([row], cell)
        only = ApplyOptions(tenant_ids=frozenset(p.id for p in placed), partner_ids=frozenset())
        return TenantsOnboarded(placed, self.apply(only, cells=[p.cell for p in placed]))

    def import_tenants(
        self, rows: Sequence[Mapping[str, object]], apply: bool = True, jobs: int | None = None
    ) -> TenantsOnboarded:
        """A batch: every row checked before any is written; then the whole stack reconciled."""
        placed = self._place(rows, None)
        return TenantsOnboarded(placed, self.apply(ApplyOptions(), jobs=jobs) if apply else [])

    def _place(self, rows: Sequence[Mapping[str, object]], cell: str | None) -> list[Placement]:
        new = validate_new_tenants(self.outputs, rows)
        self.ensure_control_plane()
        return directory.place_tenants(self.outputs, new, cell=cell)
