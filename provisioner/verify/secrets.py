"""Orphan secrets: an app secret in Secrets Manager (`askasia/<stack>/tenants|partners/<id>/app`)
whose tenant or partner no cell has on record. A purge deletes the secret before the records, so
a secret without its owner is a purge that left it behind (or one made by hand): credentials of
a purged tenant or partner, kept past the deletion the privacy policy promises.

Stack-wide, unlike the catalog checks: a tenant lives in one cell and the secrets are per
region, so the records of every cell are needed. It is judged once every cell was read, on the
first cell's report (the others say where); when a cell could not be read it is skipped there,
since that cell's tenants are unknown.

The listing pages through every secret of the stack one page after another, so it runs while the
cells are verified, before their records are read: a secret listed whose owner is then not on
record is reported only if it still exists (a purge in between deleted it before the records)."""

from __future__ import annotations

import re
from concurrent.futures import Future

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from contract.outputs import StackOutputs
from provisioner import aws
from provisioner.stackref import credential_store
from provisioner.verify.findings import CellReport, Finding

CHECK = "orphan_secrets"
_NAME = re.compile(r"^askasia/(?P<stack>[^/]+)/(?P<kind>tenant|partner)s/(?P<id>[a-z0-9]{12})/app$")


def owners_on_record(conn: psycopg.Connection) -> set[str]:
    """`tenant:<id>` and `partner:<id>` for every tenant and partner of this cell."""
    rows = conn.execute(
        "select 'tenant:' || id from platform.tenants union all select 'partner:' || id from platform.partners"
    ).fetchall()
    return {r[0] for r in rows}


def list_names(outputs: StackOutputs) -> dict[str, str]:
    return credential_store(outputs).current_versions()


def still_exists(outputs: StackOutputs, name: str) -> bool:
    try:
        described = aws.client("secretsmanager", outputs.region).describe_secret(SecretId=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return False
        raise
    return not described.get("DeletedDate")


def judge(
    outputs: StackOutputs, reports: list[CellReport], owners: dict[str, set[str]], listing: Future[dict[str, str]]
) -> None:
    """`owners`: per cell read, its owners on record; `listing`: list_names, started before they
    were read. Adds the check to `reports`."""
    if not reports:
        return
    first, rest = reports[0], reports[1:]
    for r in rest:
        r.checks_run.append(CHECK)
        r.skipped[CHECK] = f"stack-wide: judged on {first.cell}"
    first.checks_run.append(CHECK)
    unread = [c for c in outputs.cells if c not in owners]
    if unread:
        first.skipped[CHECK] = f"cell(s) {', '.join(unread)} not read: their tenants are unknown"
        return
    try:
        names = listing.result()
        on_record = set().union(*owners.values())
        orphans = []
        for name in sorted(names):
            match = _NAME.match(name)
            if match and match["stack"] == outputs.stack and f"{match['kind']}:{match['id']}" not in on_record:
                orphans.append((name, match))
        orphans = [(name, match) for name, match in orphans if still_exists(outputs, name)]
    except (BotoCoreError, ClientError) as exc:
        first.errors.append(f"cannot list the secrets of stack {outputs.stack}: {exc}")
        return
    for name, match in orphans:
        first.findings.append(
            Finding(
                CHECK,
                "error",
                f"secret {name}",
                f"no {match['kind']} {match['id']} in any cell of stack {outputs.stack}: credentials left by a purge",
                f"aws secretsmanager delete-secret --secret-id {name} --force-delete-without-recovery",
            )
        )
