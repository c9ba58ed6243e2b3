"""Verify a stack: on every cell in parallel, the catalog checks, the ledger drift and the
behaviour probes. One cell down is that cell's error; the other cells are still reported."""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import psycopg

from contract.outputs import Cluster, StackOutputs
from provisioner import celllock
from provisioner.connect import connect
from provisioner.db import platform_present, scalar
from provisioner.errors import ProvisionError, first_line
from provisioner.operators import VERIFIER, operator_credentials
from provisioner.verify.catalog import catalog_checks, run_catalog
from provisioner.verify.findings import CellReport
from provisioner.verify.ledger import CHECK as LEDGER_CHECK
from provisioner.verify.ledger import ledger_findings
from provisioner.verify.prober import CellProber, ProbeRun
from provisioner.verify.probes import probe_checks
from provisioner.verify.secrets import CHECK as SECRETS_CHECK
from provisioner.verify.secrets import judge as judge_secrets
from provisioner.verify.secrets import list_names as list_secrets
from provisioner.verify.secrets import owners_on_record
from provisioner.verify.stress import CHECK as STRESS_CHECK
from provisioner.verify.stress import stress_cell

VERIFIER_TIMEOUTS = "set statement_timeout = '120s'; set lock_timeout = '5s'"


@dataclass(frozen=True)
class VerifyOptions:
    probes: int = 20  # tenant pairs per cell; every pair when there are fewer
    seed: int | None = None  # the pair sample's seed (reproducible runs)
    tenants: frozenset[str] | None = None  # probe only pairs among these tenant ids
    catalog: bool = True
    ledger: bool = True
    stress: bool = False  # the availability attacks as one sampled tenant (opt-in: it takes connections)
    # the stack's app secrets against every cell's records (off where the outputs name only part
    # of the stack's cells, as a DR drill's copy of one cell does)
    secrets: bool = True


def check_names(options: VerifyOptions) -> list[str]:
    """The checks a run with these options makes; a package missing its checks stops here."""
    names = [c.name for c in catalog_checks()] if options.catalog else []
    if options.secrets:
        names.append(SECRETS_CHECK)
    if options.ledger:
        names.append(LEDGER_CHECK)
    if options.probes > 0:
        names.extend(c.name for c in probe_checks())
    if options.stress:
        names.append(STRESS_CHECK)
    return names


def database_owner(conn: psycopg.Connection) -> str:
    """The master: the owner of the cell's database (Aurora's master user created it)."""
    return str(scalar(conn, "select pg_get_userbyid(datdba) from pg_database where datname = current_database()"))


def verify_cell(
    outputs: StackOutputs,
    cluster: Cluster,
    options: VerifyOptions,
    owners: dict[str, set[str]] | None = None,
    overlap: bool = False,
) -> CellReport:
    """`owners`, when given, receives this cell's tenants and partners on record (orphan_secrets);
    `overlap` runs the probes beside the catalog checks instead of after them."""
    report = CellReport(cluster.cell)
    started = time.perf_counter()
    try:
        _verify_cell(outputs, cluster, options, report, owners, overlap)
    finally:
        report.timings["total"] = time.perf_counter() - started
    return report


def _verify_cell(
    outputs: StackOutputs,
    cluster: Cluster,
    options: VerifyOptions,
    report: CellReport,
    owners: dict[str, set[str]] | None,
    overlap: bool,
) -> None:
    # Verify runs as the verifier (V040): catalog reads and every session's state, no write, no
    # membership in any tenant or platform role.
    try:
        creds = operator_credentials(outputs, cluster, VERIFIER)
        conn = connect(cluster, creds, autocommit=True)
    except ProvisionError as exc:
        report.errors.append(str(exc))
        return
    with conn, ExitStack() as stack:
        try:
            conn.execute(VERIFIER_TIMEOUTS)
            if not platform_present(conn):
                report.errors.append(
                    f"cell {cluster.cell}: no control plane (schema platform): run provision tenants apply"
                )
                return
            # Shared with other verifies, exclusive with apply: a half-applied cell would show
            # findings that are only transient. Held on a session of its own, released with it.
            lock = connect(cluster, creds, autocommit=True)
            stack.enter_context(lock)
            if not celllock.take_shared(lock):
                report.errors.append(
                    f"cell {cluster.cell}: an apply is running{celllock.holder(conn)}; verify when it has finished"
                )
                return
            if owners is not None:
                owners[cluster.cell] = owners_on_record(conn)  # read under the lock, with the catalog
            probing = None
            if overlap and options.probes > 0 and (options.catalog or options.ledger):
                # Cores the cells leave idle: the probes run beside the catalog checks, on a
                # verifier session of their own (still under this verify's shared lock).
                side = stack.enter_context(connect(cluster, creds, autocommit=True))
                side.execute(VERIFIER_TIMEOUTS)
                probing = stack.enter_context(ThreadPoolExecutor(1)).submit(_probe, outputs, cluster, side, options)
            if options.catalog:
                mark = time.perf_counter()
                report.findings += run_catalog(conn, database_owner(conn))
                report.timings["catalog"] = time.perf_counter() - mark
                report.checks_run += [c.name for c in catalog_checks()]
            if options.ledger:
                mark = time.perf_counter()
                report.findings += ledger_findings(conn, cluster.database)
                report.timings["ledger"] = time.perf_counter() - mark
                report.checks_run.append(LEDGER_CHECK)
            if options.probes > 0:
                probe, report.timings["probes"] = (
                    probing.result() if probing else _probe(outputs, cluster, conn, options)
                )
                report.findings += probe.findings
                report.errors += probe.errors
                report.probe_pairs, report.probe_partners = probe.pairs, probe.partners
                report.probe_attempts = probe.attempts
                report.checks_run += [c.name for c in probe_checks()]  # a skipped one ran and found nothing to probe
                report.skipped |= probe.skipped
            if options.stress:
                mark = time.perf_counter()
                found, skipped = stress_cell(outputs, cluster, conn, lambda: connect(cluster, creds, autocommit=True))
                report.timings["stress"] = time.perf_counter() - mark
                report.findings += found
                report.checks_run.append(STRESS_CHECK)
                if skipped:
                    report.skipped[STRESS_CHECK] = skipped[0]
        except ProvisionError as exc:  # the lock's own session could not connect
            report.errors.append(str(exc))
        except psycopg.Error as exc:
            report.errors.append(f"cell {cluster.cell}: {first_line(exc)}")


def _probe(
    outputs: StackOutputs, cluster: Cluster, conn: psycopg.Connection, options: VerifyOptions
) -> tuple[ProbeRun, float]:
    mark = time.perf_counter()
    prober = CellProber(
        cluster, outputs.stack, outputs.region, conn, options.probes, random.Random(options.seed), options.tenants
    )
    return prober.run(), time.perf_counter() - mark


def verify_stack(outputs: StackOutputs, options: VerifyOptions, cells: list[str] | None = None) -> list[CellReport]:
    clusters = [outputs.cluster(c) for c in cells] if cells else list(outputs.clusters)
    owners: dict[str, set[str]] = {}
    with ThreadPoolExecutor(max_workers=len(clusters) + 1) as pool:
        listing = pool.submit(list_secrets, outputs) if options.secrets else None  # pages while the cells run
        # Fewer cells than cores: each cell's probes and catalog checks run side by side too.
        overlap = len(clusters) < (os.cpu_count() or 1)
        futures = [pool.submit(verify_cell, outputs, c, options, owners, overlap) for c in clusters]
        reports = [f.result() for f in futures]
        if listing is not None:
            judge_secrets(outputs, reports, owners, listing)
    return reports
