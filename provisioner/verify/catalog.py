"""Catalog checks: one query per file in sql/verify/, each returning its violating rows as
(check, level, object, detail, remediation). Set-based over every tenant, shared table and
partition; run by the master in one read-only snapshot."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import psycopg

from contract.outputs import PROXY_USER
from contract.tiers import OPERATOR_RESERVE, PARTNER_LIMITS, PLATFORM_POOL, TIERS
from provisioner.resources import PackageIncomplete, sql_files
from provisioner.targets import ROLES
from provisioner.verify.findings import Finding

_FILE = re.compile(r"^(?P<order>\d{3})_(?P<name>[a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class CatalogCheck:
    name: str
    path: Path
    text: str


@cache
def catalog_checks() -> tuple[CatalogCheck, ...]:
    checks = []
    for path in sql_files("verify", "*.sql"):
        match = _FILE.match(path.name)
        if not match:
            raise PackageIncomplete(f"{path}: not a NNN_name.sql check")
        checks.append(CatalogCheck(match.group("name"), path, path.read_text()))
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        raise PackageIncomplete(f"{path.parent}: two checks share a name")
    return tuple(checks)


def role_limits() -> str:
    """Each tier's (and partners') connection limit and role defaults, as JSON for the checks."""
    limits = {t.name: t.limits for t in TIERS} | {"partner": PARTNER_LIMITS}
    return json.dumps(
        {k: {"connection_limit": v.connection_limit, "settings": v.settings()} for k, v in limits.items()},
        sort_keys=True,
    )


def check_params(master: str) -> dict[str, str]:
    """The named parameters every check may use: the platform roles, the platform's service
    role (the RDS Proxy's one database user), the master's name, the contract's role limits and
    the connections a cell keeps for its operators and the platform's pool."""
    return {
        **ROLES,
        "service": PROXY_USER,
        "master": master,
        "limits": role_limits(),
        "reserve": str(OPERATOR_RESERVE),
        "pool": str(PLATFORM_POOL),
    }


def run_checks(
    conn: psycopg.Connection,
    master: str,
    checks: tuple[CatalogCheck, ...] | None = None,
    timings: dict[str, float] | None = None,
) -> list[Finding]:
    """Run the checks on `conn` inside whatever transaction the caller holds (tests break the
    catalog in a transaction and check on that same connection)."""
    params = check_params(master)
    # Names print schema-qualified (regclass and pg_describe_object drop the schema of anything
    # on the search_path), and nothing a role planted in public can stand in for a catalog function.
    # No JIT and no parallel workers: the planner's row estimates for shared catalogs are stale
    # (autovacuum refreshes them in another database), so both get chosen and both cost more than
    # the query (JIT compiles for a second; each worker starts with a cold catalog cache).
    conn.execute(
        "select set_config('search_path', 'pg_catalog, pg_temp', true), set_config('jit', 'off', true), "
        "set_config('max_parallel_workers_per_gather', '0', true)"
    )
    findings: list[Finding] = []
    for check in checks or catalog_checks():
        started = time.perf_counter()
        rows = conn.execute(check.text, params).fetchall()
        if timings is not None:
            timings[check.name] = time.perf_counter() - started
        for row in rows:
            finding = Finding(*row)
            if finding.check != check.name:
                raise ValueError(f"{check.path.name} returned a row for check {finding.check!r}")
            findings.append(finding)
    return findings


def run_catalog(conn: psycopg.Connection, master: str, timings: dict[str, float] | None = None) -> list[Finding]:
    """All checks in one read-only, repeatable-read transaction: one consistent catalog snapshot."""
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        return run_checks(conn, master, timings=timings)
