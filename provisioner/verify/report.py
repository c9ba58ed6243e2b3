"""How verify results are shown: a table per failing check for people, JSON, and TAP for CI."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict

from rich.table import Table

from provisioner.console import err, out, print_json
from provisioner.verify.findings import CellReport, Finding, verify_status

ROWS_SHOWN = 20  # per check in the table; --json has them all


def check_json(report: CellReport, check: str) -> dict:
    status, reason = report.check_status(check)
    return {"check": check, "status": status, **({"reason": reason} if status == "skip" else {})}


def cell_json(r: CellReport, checks: Sequence[str]) -> dict:
    return {
        "cell": r.cell,
        "status": r.status,
        "errors": r.errors,
        "checks_run": r.checks_run,
        "checks": [check_json(r, c) for c in checks],
        "timings": {k: round(v, 4) for k, v in r.timings.items()},
        "probes": {"pairs": r.probe_pairs, "partners": r.probe_partners, "attempts": r.probe_attempts},
        "findings": [asdict(f) for f in r.findings],
    }


def as_json(stack: str, reports: Sequence[CellReport], checks: Sequence[str]) -> dict:
    return {
        "stack": stack,
        "exit_code": int(verify_status(list(reports))),
        "cells": [cell_json(r, checks) for r in reports],
    }


def show_json(stack: str, reports: Sequence[CellReport], checks: Sequence[str]) -> None:
    print_json(as_json(stack, reports, checks))


def show_table(stack: str, reports: Sequence[CellReport], checks: Sequence[str]) -> None:
    by_check: dict[str, list[tuple[str, Finding]]] = defaultdict(list)
    for report in reports:
        for finding in report.findings:
            by_check[finding.check].append((report.cell, finding))
    for check in [c for c in checks if c in by_check] + sorted(set(by_check) - set(checks)):
        rows = by_check[check]
        levels = sorted({f.level for _, f in rows})
        colour = "red" if "error" in levels else "yellow"
        table = Table(
            title=f"[{colour}]{check}[/] ({', '.join(levels)}): {len(rows)} row(s)",
            title_justify="left",
            show_lines=False,
        )
        for column in ("cell", "level", "object", "detail", "remediation"):
            table.add_column(column, overflow="fold")
        for cell, f in rows[:ROWS_SHOWN]:
            table.add_row(cell, f.level, f.object, f.detail, f.remediation)
        if len(rows) > ROWS_SHOWN:
            table.add_row("", "", f"... {len(rows) - ROWS_SHOWN} more (--json for all)", "", "")
        out.print(table)
    skips = [(r.cell, check, why) for r in reports for check, why in r.skipped.items()]
    if skips:
        table = Table(title=f"[yellow]skipped[/]: {len(skips)} check(s) had nothing to probe", title_justify="left")
        for column in ("cell", "check", "reason"):
            table.add_column(column, overflow="fold")
        for row in skips:
            table.add_row(*row)
        out.print(table)
    summary = Table(title=f"verify {stack}", title_justify="left")
    columns = ("cell", "status", "errors", "warnings", "checks", "skipped", "pairs", "partners", "attempts", "seconds")
    for column in columns:
        summary.add_column(column, justify="left" if column in ("cell", "status") else "right")
    for r in reports:
        colour = {"clean": "green", "violations": "red"}.get(r.status, "magenta")
        summary.add_row(
            r.cell,
            f"[{colour}]{r.status}[/]",
            str(sum(f.level == "error" for f in r.findings)),
            str(sum(f.level == "warn" for f in r.findings)),
            str(len(r.checks_run)),
            str(len(r.skipped)),
            str(r.probe_pairs),
            str(r.probe_partners),
            str(r.probe_attempts),
            f"{r.timings.get('total', 0.0):.2f}",
        )
    out.print(summary)
    for r in reports:
        for line in r.errors:
            err.print(f"[magenta]{r.cell}[/]: could not run: {line}", highlight=False, soft_wrap=True)


def _yaml_block(findings: list[Finding]) -> list[str]:
    # JSON scalars are valid YAML, so values are quoted with json.dumps.
    lines = ["  ---", f"  count: {len(findings)}", "  rows:"]
    for f in findings:
        lines.append(f"    - level: {json.dumps(f.level)}")
        lines.append(f"      object: {json.dumps(f.object)}")
        lines.append(f"      detail: {json.dumps(f.detail)}")
        lines.append(f"      remediation: {json.dumps(f.remediation)}")
    lines.append("  ...")
    return lines


def tap_lines(reports: Sequence[CellReport], checks: Sequence[str]) -> list[str]:
    """TAP 14: per cell, one point for reaching it, then one per check (a skip with its reason)."""
    points: list[str] = []
    body: list[str] = []

    def point(ok: bool, description: str, block: list[str]) -> None:
        points.append(f"{'ok' if ok else 'not ok'} {len(points) + 1} - {description}")
        body.extend([points[-1], *block])

    for r in reports:
        errors = ["  ---", "  errors:", *(f"    - {json.dumps(e)}" for e in r.errors), "  ..."] if r.errors else []
        point(not r.errors, f"{r.cell}: verified", errors)
        grouped: dict[str, list[Finding]] = defaultdict(list)
        for f in r.findings:
            grouped[f.check].append(f)
        for check in checks:
            status, reason = r.check_status(check)
            if status == "skip":
                point(True, f"{r.cell}: {check} # SKIP {reason}", [])
            else:
                point(status == "pass", f"{r.cell}: {check}", _yaml_block(grouped[check]) if status == "fail" else [])
    return ["TAP version 14", f"1..{len(points)}", *body]


def show_tap(reports: Sequence[CellReport], checks: Sequence[str]) -> None:
    print("\n".join(tap_lines(reports, checks)))
