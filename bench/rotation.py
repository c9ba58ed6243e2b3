"""Credential rotation benchmark on a private local stack (.local/bench-rotation); each figure
beside its target and the floor, in one run.

    .venv/bin/python bench/rotation.py [--tenants 1000]

`provision tenants rotate-credentials --all` over N tenants (alternating users: a pending
secret version per tenant, the other login's ALTER ROLE pipelined per cell, a login test each,
then AWSCURRENT moved), against the floor: `psql -f` of the same ALTER ROLE statements (SCRAM
verifiers, one transaction per 500) on the same server.

Target: <= 60 s for 1,000 tenants. Why: a rotation of a full cell (10,000 tenants) then takes
about 10 minutes, inside a maintenance window, and the tool's own cost over the database floor
is what Secrets Manager (two writes per tenant: no batch API writes versions) and one TLS +
SCRAM login test per tenant take: the two things the scheme needs besides the ALTER ROLE.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _stack import fresh_stack, line, psql_file, record_tenants

from provisioner import directory, rotation
from provisioner.apply import ApplyOptions, apply_stack
from provisioner.connect import connect_master
from provisioner.credentials import scram_verifier
from provisioner.names import TenantNames
from provisioner.stackref import credential_store

TARGET_S_PER_1000 = 60.0


def write_floor(path: Path, conn, tenant_ids: list[str]) -> None:
    """The same statements rotation sends: a verifier per login, PER_TX per transaction."""
    with path.open("w") as fh:
        for i, tenant_id in enumerate(tenant_ids):
            if i % rotation.PER_TX == 0:
                fh.write("begin;\n" if i == 0 else "commit;\nbegin;\n")
            role = TenantNames(tenant_id).twin_role
            verifier = scram_verifier(conn.pgconn, f"floor-{tenant_id}", role)
            fh.write(f"alter role \"{role}\" password '{verifier}';\n")
        fh.write("commit;\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=1000)
    args = parser.parse_args()
    stack, outputs = fresh_stack("bench-rotation")
    store = credential_store(outputs)
    apply_stack(outputs, ApplyOptions(), None)  # the control plane
    partner = directory.add_partner_rows(outputs, "bench-partner", "EU")
    placed = record_tenants(outputs, partner.slug, args.tenants, "rot")
    apply_stack(outputs, ApplyOptions(), store)

    started = time.perf_counter()
    done = rotation.rotate(outputs, "tenant", store, None)
    ours = time.perf_counter() - started
    if done.failed or any(c.status != "ok" for c in done.cells):
        raise SystemExit(f"rotation failed: {list(done.failed.items())[:3]} {[c.errors for c in done.cells]}")
    set_and_test = max(c.seconds for c in done.cells)

    floor_sql = Path(tempfile.mkdtemp(prefix="askasia-bench-")) / "floor.sql"
    with connect_master(outputs.clusters[0], outputs.region) as conn:
        write_floor(floor_sql, conn, [p.id for p in placed])
    started = time.perf_counter()
    psql_file(stack, floor_sql)
    floor = time.perf_counter() - started

    n = len(done.rotated)
    target = TARGET_S_PER_1000 * n / 1000
    print(
        line(
            f"rotate {n} tenants; psql -f floor {floor:.2f} s",
            f"{ours:.1f} s",
            f"<= {target:.0f} s",
            ours <= target,
        )
    )
    print(
        f"  per tenant: tool {1000 * ours / n:.1f} ms (set + login test {1000 * set_and_test / n:.1f} ms), "
        f"floor {1000 * floor / n:.2f} ms; the rest is Secrets Manager (read, pending, current)"
    )
    stack.down(wipe=True)


if __name__ == "__main__":
    main()
