"""`tenants verify --stress`: the availability attacks, run as one sampled tenant's real
credentials for a bounded time, while another tenant and the master must keep working.

As the attacker: take every connection its role allows and then one more, hold an open
transaction on a shared table, try LOCK TABLE on a shared table and on the apply lock, an
advisory lock, and raising temp_file_limit. Meanwhile a second tenant logs in and does its own
work, and the master opens a new session. Each attack that is not refused, and each failure of
the others to work, is a finding of check `stress`. Everything the attacker opened is closed at
the end (bounded: at most its connection limit + 1 logins, each statement under a 5 s timeout).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import ExitStack

import psycopg

from contract.outputs import Cluster, StackOutputs
from provisioner.connect import Credentials, connect, read_secret_json
from provisioner.credentials import secret_name
from provisioner.errors import ProvisionError, first_line
from provisioner.verify.findings import Finding

CHECK = "stress"
MAX_LOGINS = 50  # whatever a role's limit says, the probe opens no more than this
ATTACKS = (
    ("lock table platform.worker_runs in access exclusive mode", "a strong lock on a shared table"),
    ("lock table platform.apply_lock in share mode", "the apply lock"),
    ("select pg_advisory_lock(7361626173)", "an advisory lock (on the old apply-lock key)"),
    ("set temp_file_limit = -1", "temp_file_limit switched off"),
)


def _finding(obj: str, detail: str, remediation: str) -> Finding:
    return Finding(CHECK, "error", obj, detail, remediation)


def stress_cell(
    outputs: StackOutputs, cluster: Cluster, master: psycopg.Connection, master_login: Callable[[], psycopg.Connection]
) -> tuple[list[Finding], list[str]]:
    """(findings, skipped reasons) for one cell."""
    rows = master.execute(
        "select t.id, r.rolconnlimit from platform.tenants t join pg_roles r on r.rolname = 't_' || t.id || '_app' "
        "where t.status = 'active' and t.cell = %s order by t.id",
        (cluster.cell,),
    ).fetchall()
    if len(rows) < 2:
        return [], ["stress needs two tenants in the cell"]
    (attacker, limit), (other, _) = random.sample(rows, 2)
    role = f"t_{attacker}_app"

    def login(tenant_id: str) -> psycopg.Connection:
        doc = read_secret_json(secret_name(outputs.stack, "tenant", tenant_id), outputs.region)
        conn = connect(cluster, Credentials(doc["username"], doc["password"]))
        conn.execute("set statement_timeout = '5s'; set lock_timeout = '2s'")
        return conn

    findings: list[Finding] = []
    with ExitStack() as held:
        first = held.enter_context(login(attacker))
        for statement, what in ATTACKS:
            try:
                first.execute(statement)
                findings.append(
                    _finding(
                        f"role {role}", f"{what}: allowed ({statement})", "provision tenants apply; see checks 052/053"
                    )
                )
            except psycopg.errors.InsufficientPrivilege:
                pass
            except psycopg.Error as exc:
                findings.append(_finding(f"role {role}", f"{what}: {first_line(exc)}", "investigate"))
            first.rollback()
        # An open transaction on a shared table, then every connection the role may have.
        first.execute("select count(*) from platform.role_bindings").fetchone()
        wanted = MAX_LOGINS if limit < 0 else min(limit, MAX_LOGINS)
        opened = 1
        try:
            while opened < wanted + 1:
                held.enter_context(login(attacker))
                opened += 1
        except ProvisionError:
            pass
        if limit < 0 or opened > limit:
            findings.append(
                _finding(
                    f"role {role}", f"{opened} sessions opened (limit {limit})", "provision tenants apply (check 050)"
                )
            )
        # Meanwhile: another tenant works, the master logs in anew.
        try:
            with login(other) as conn:
                conn.execute("select count(*) from leads").fetchone()
                conn.execute("select count(*) from platform.worker_runs").fetchone()
        except (ProvisionError, psycopg.Error) as exc:
            findings.append(
                _finding(f"role t_{other}_app", f"not served during the attack: {first_line(exc)}", "investigate")
            )
        try:
            with master_login() as conn:
                conn.execute("select count(*) from platform.tenants").fetchone()
        except (ProvisionError, psycopg.Error) as exc:
            findings.append(_finding("the master", f"not served during the attack: {first_line(exc)}", "investigate"))
    return findings, []
