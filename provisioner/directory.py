"""The tenant directory: partners and tenants in the cells' control-plane tables.

Partners are recorded in every cell (their tenants may sit in any); a tenant lives in exactly
one cell; the directory is the union of the cells' tenants tables. Every input is validated,
and every refusal happens, before the first row is written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from contract.outputs import Cluster, StackOutputs
from contract.tiers import CONNECTION_BUDGET_SETTING, committed_connections, tier
from provisioner import canaries
from provisioner.connect import SecretReads, connect_master
from provisioner.db import platform_present, scalar
from provisioner.errors import InputError, ProvisionError
from provisioner.names import new_id
from provisioner.operators import VERIFIER, connect_operator, operator_secret

if TYPE_CHECKING:
    from compliance.register import CellsView


@dataclass(frozen=True)
class Partner:
    id: str
    slug: str
    jurisdiction: str
    status: str


@dataclass(frozen=True)
class Tenant:
    id: str
    slug: str
    partner_id: str
    partner: str
    plan: str
    region: str
    cell: str
    status: str
    created_at: dt.datetime
    closed_at: dt.datetime | None

    def as_json(self) -> dict:
        # Shallow (asdict deep-copies every value): the fields are strings and timestamps.
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class NewTenant:
    partner: Partner
    slug: str
    plan: str
    region: str


T = TypeVar("T")
# A session on a cell. Reads are the verifier's (it reads the directory tables and writes
# nothing); onboarding writes its rows as the master (see onboarding_login).
Login = Callable[[Cluster], psycopg.Connection[Any]]


def _reader(outputs: StackOutputs) -> Login:
    # Every cell's verifier secret in one BatchGetSecretValue per twenty (one GetSecretValue per
    # cell before); a secret the batch misses is read alone, where its error names its cell.
    reads = SecretReads(outputs.region)
    reads.prefetch([operator_secret(outputs.stack, c.cell, VERIFIER) for c in outputs.clusters])
    return lambda cluster: connect_operator(outputs, cluster, VERIFIER, secrets=reads)


def onboarding_login(outputs: StackOutputs) -> Login:
    """Onboarding brings the control plane current and records partners and tenants before
    apply has made any operator role on a new stack: it is part of apply, the master's."""
    return lambda cluster: connect_master(cluster, outputs.region)


def _per_cell(
    outputs: StackOutputs,
    work: Callable[[psycopg.Connection[Any], Cluster], T],
    clusters: list[Cluster] | None = None,
    login: Login | None = None,
) -> dict[str, T]:
    """Run `work(conn, cluster)` on every cell in parallel; a cell down is one clear error."""
    clusters = list(clusters or outputs.clusters)
    session = login or _reader(outputs)

    def one(cluster: Cluster) -> T:
        with session(cluster) as conn:
            return work(conn, cluster)

    with ThreadPoolExecutor(max_workers=len(clusters)) as pool:
        futures = {c.cell: pool.submit(one, c) for c in clusters}
        return {cell: f.result() for cell, f in futures.items()}


def _on_reachable(
    outputs: StackOutputs, work: Callable[[psycopg.Connection[Any], Cluster], T] | None, login: Login | None = None
) -> tuple[dict[str, T | None], dict[str, str]]:
    """`work(conn, cluster)` on every cell that answers, on the connection that found it up (one
    login per cell), and for each other cell why it does not. No cell up is an error."""
    session = login or _reader(outputs)

    def one(cluster: Cluster) -> tuple[T | None, str | None]:
        try:
            with session(cluster) as conn:
                return (work(conn, cluster) if work is not None else None), None
        except ProvisionError as exc:
            return None, str(exc)
        except (BotoCoreError, ClientError) as exc:
            return None, f"cell {cluster.cell}: cannot read its credentials: {exc}"

    with ThreadPoolExecutor(max_workers=len(outputs.clusters)) as pool:
        answers = dict(zip(outputs.cells, pool.map(one, outputs.clusters), strict=True))
    down = {cell: why for cell, (_, why) in answers.items() if why is not None}
    if len(down) == len(answers):
        raise ProvisionError(f"no cell of stack {outputs.stack} answers: {next(iter(down.values()))}")
    return {cell: found for cell, (found, why) in answers.items() if why is None}, down


def reachable(outputs: StackOutputs, login: Login | None = None) -> tuple[StackOutputs, dict[str, str]]:
    """The outputs narrowed to the cells that answer, and for each other cell why it does not;
    directory commands go on with the cells that are up. No cell up is an error."""
    answered, down = _on_reachable(outputs, None, login)
    up = tuple(c for c in outputs.clusters if c.cell in answered)
    return dataclasses.replace(outputs, clusters=up), down


def partners(outputs: StackOutputs, login: Login | None = None) -> list[Partner]:
    def read(conn, cluster):
        if not platform_present(conn):
            return []
        return conn.execute(
            "select id, slug, jurisdiction, status from platform.partners where status <> %s", (canaries.STATUS,)
        ).fetchall()

    found: dict[str, Partner] = {}
    for rows in _per_cell(outputs, read, login=login).values():
        for row in rows:
            found[row[0]] = Partner(*row)
    return sorted(found.values(), key=lambda p: p.slug)


def _read_tenants(conn: psycopg.Connection[Any], cluster: Cluster) -> list[tuple]:
    if not platform_present(conn):
        return []
    return conn.execute(
        "select t.id, t.slug, t.partner_id, p.slug, t.plan, t.home_region, t.cell, t.status, "
        "t.created_at, t.closed_at from platform.tenants t join platform.partners p on p.id = t.partner_id "
        "where t.status <> %s",
        (canaries.STATUS,),
    ).fetchall()


def _sorted_tenants(per_cell: Iterable[list[tuple] | None]) -> list[Tenant]:
    rows = [Tenant(*row) for cell_rows in per_cell for row in cell_rows or ()]
    return sorted(rows, key=lambda t: (t.partner, t.slug))


def tenants(outputs: StackOutputs, login: Login | None = None) -> list[Tenant]:
    return _sorted_tenants(_per_cell(outputs, _read_tenants, login=login).values())


def reachable_tenants(outputs: StackOutputs) -> tuple[list[Tenant], dict[str, str]]:
    """The tenants of the cells that answer, and why each other cell does not (`tenants list`)."""
    answered, down = _on_reachable(outputs, _read_tenants)
    return _sorted_tenants(answered.values()), down


def served_origins(outputs: StackOutputs) -> dict[str, tuple[int, int]]:
    """Jurisdiction -> (partners, tenants) whose rows the cells hold, whatever their status: data
    still in a cell is data that made its transfer. Partners are in every cell, counted once."""

    def read(conn, cluster):
        if not platform_present(conn):
            return []
        return conn.execute(
            "select p.jurisdiction, p.id, count(t.id) from platform.partners p "
            "left join platform.tenants t on t.partner_id = p.id where p.status <> %s group by p.jurisdiction, p.id",
            (canaries.STATUS,),
        ).fetchall()

    partners: dict[str, set[str]] = {}
    tenants: dict[str, int] = {}
    for rows in _per_cell(outputs, read).values():
        for jurisdiction, partner_id, count in rows:
            partners.setdefault(jurisdiction, set()).add(partner_id)
            tenants[jurisdiction] = tenants.get(jurisdiction, 0) + count
    return {j: (len(partners[j]), tenants[j]) for j in sorted(partners)}


def cells_view(outputs: StackOutputs) -> CellsView:
    """What the register judges of a deployed stack: whom it declares, whose data its cells hold."""
    from compliance.register import CellsView, ServedOrigin  # the register's rooms: only when judged

    return CellsView(
        stack=outputs.stack,
        region=outputs.region,
        dr_region=outputs.dr["region"],
        declared=outputs.origins,
        served=tuple(ServedOrigin(o, p, t) for o, (p, t) in served_origins(outputs).items()),
    )


@dataclass
class CellRoom:
    """A cell's load (active tenants) and its connections: the budget and what is committed."""

    tenants: int
    budget: int
    committed: int

    def fits(self, plan: str) -> bool:
        return self.committed + tier(plan).limits.connection_limit <= self.budget

    def take(self, plan: str) -> None:
        self.tenants += 1
        self.committed += tier(plan).limits.connection_limit


def cell_rooms(outputs: StackOutputs, login: Login | None = None) -> dict[str, CellRoom]:
    """Per cell: its active tenants, its connection budget (max_connections, or the server's
    declared askasia.connection_budget) and the connections its tenants and partners hold."""

    def read(conn, cluster):
        budget = scalar(
            conn,
            "select coalesce(nullif(current_setting(%s, true), '')::int, current_setting('max_connections')::int)",
            (CONNECTION_BUDGET_SETTING,),
        )
        if not platform_present(conn):
            return CellRoom(0, budget, committed_connections({}, 0))
        plans = dict(
            conn.execute("select plan, count(*) from platform.tenants where status = 'active' group by plan").fetchall()
        )
        partners = scalar(conn, "select count(*) from platform.partners where status = 'active'")
        return CellRoom(sum(plans.values()), budget, committed_connections(plans, partners))

    return _per_cell(outputs, read, login=login)


def add_partner_rows(outputs: StackOutputs, slug: str, jurisdiction: str, login: Login | None = None) -> Partner:
    """Record a partner in every cell (idempotent: the same slug keeps its id); the slug and
    jurisdiction are validated by the caller (provisioner.onboarding)."""
    login = login or onboarding_login(outputs)
    existing = {p.slug: p for p in partners(outputs, login)}
    if slug in existing:
        partner = existing[slug]
        if partner.jurisdiction != jurisdiction:
            raise InputError(f"partner {slug!r} exists with jurisdiction {partner.jurisdiction}, not {jurisdiction}")
    else:
        partner = Partner(new_id(), slug, jurisdiction, "active")

    def insert(conn, cluster):
        with conn.transaction():
            conn.execute(
                "insert into platform.partners (id, slug, jurisdiction) values (%s, %s, %s) "
                "on conflict (id) do nothing",
                (partner.id, partner.slug, partner.jurisdiction),
            )

    _per_cell(outputs, insert, login=login)
    return partner


@dataclass(frozen=True)
class Placement:
    id: str
    cell: str
    new: bool


def place_tenants(
    outputs: StackOutputs, new: list[NewTenant], cell: str | None = None, login: Login | None = None
) -> list[Placement]:
    """Assign ids and cells (the least-loaded cell with room for the tenant's connection limit,
    or the cell asked for, if it has room) and write the rows. Tenants already present (same
    partner and slug) are kept, not duplicated, so a re-run of an interrupted import converges.
    A tenant no cell has room for refuses the whole batch before any row is written."""
    if cell is not None:
        outputs.cluster(cell)  # unknown cell -> clear error
    login = login or onboarding_login(outputs)
    existing = {(t.partner, t.slug): t for t in tenants(outputs, login)}
    rooms = cell_rooms(outputs, login)
    placements: list[Placement] = []
    by_cell: dict[str, list[tuple]] = {c: [] for c in outputs.cells}
    for item in new:
        known = existing.get((item.partner.slug, item.slug))
        if known is not None:
            if known.plan != item.plan:
                raise InputError(f"tenant {item.slug!r} of {item.partner.slug!r} exists with plan {known.plan}")
            placements.append(Placement(known.id, known.cell, False))
            continue
        target = _cell_with_room(rooms, item, cell)
        rooms[target].take(item.plan)
        tenant_id = new_id()
        by_cell[target].append((tenant_id, item.partner.id, item.slug, item.plan, item.region, target))
        placements.append(Placement(tenant_id, target, True))

    def insert(conn, cluster):
        rows = by_cell[cluster.cell]
        if rows:
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(
                    "insert into platform.tenants (id, partner_id, slug, plan, home_region, cell) "
                    "values (%s, %s, %s, %s, %s, %s)",
                    rows,
                )

    _per_cell(outputs, insert, login=login)
    return placements


def _cell_with_room(rooms: dict[str, CellRoom], item: NewTenant, cell: str | None) -> str:
    fitting = [c for c in ([cell] if cell else rooms) if rooms[c].fits(item.plan)]
    if not fitting:
        where = f"cell {cell} has no room for it" if cell else "no cell of the stack has room for it"
        full = ", ".join(f"{c} {r.committed}/{r.budget}" for c, r in sorted(rooms.items()) if not cell or c == cell)
        raise InputError(
            f"tenant {item.slug!r} ({item.plan}, {tier(item.plan).limits.connection_limit} connections): "
            f"{where} (committed/budget connections: {full}); nothing was written"
        )
    return min(fitting, key=lambda c: (rooms[c].tenants, c))


def tenant_by_slug_or_id(outputs: StackOutputs, value: str) -> Tenant:
    matches = [t for t in tenants(outputs) if value in (t.id, t.slug)]
    if not matches:
        raise InputError(f"tenant {value!r} not found in stack {outputs.stack}")
    if len(matches) > 1:
        raise ProvisionError(f"tenant slug {value!r} is used by several partners: pass the tenant id")
    return matches[0]
