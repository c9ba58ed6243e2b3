"""One cell's probe run: sample tenant pairs, seed rows to be seen, log in as each sampled tenant
and partner with the credentials Secrets Manager holds for them, run every probe check's hooks
(probes/), and clean up. A check that made no attempt is reported skipped, with the reason."""

from __future__ import annotations

import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from contract.outputs import Cluster
from provisioner import canaries
from provisioner.connect import Credentials, LoginRefused, SecretReads, connect
from provisioner.credentials import secret_name
from provisioner.db import scalar
from provisioner.errors import ProvisionError
from provisioner.names import ROLES, PartnerNames, twin_of
from provisioner.verify import logins
from provisioner.verify.findings import Finding
from provisioner.verify.probes import probe_checks
from provisioner.verify.probing import PartnerProbe, ProbeCheck, TenantProbe, TenantRef
from provisioner.verify.session import ProbeLog, Session
from provisioner.verify.statements import (
    MARK,
    SchemaObjects,
    SharedRelation,
    granted,
    shared_relations,
    tenant_objects,
)

PARTNER_SCHEMA_SAMPLE = 8  # tenant schemas each partner probe tries


def sample_pairs(tenants: Sequence[TenantRef], size: int, rng: random.Random) -> list[tuple[TenantRef, TenantRef]]:
    """Every ordered pair when there are at most `size`, else `size` distinct random ones. With
    more tenants than pairs, the pairs are a path through `size + 1` random tenants, in order:
    each pair's target is the next pair's source, so its witness session goes on to probe."""
    if size <= 0 or len(tenants) < 2:
        return []
    if len(tenants) * (len(tenants) - 1) <= size:
        return [(a, b) for a in tenants for b in tenants if a != b]
    if len(tenants) > size:
        path = rng.sample(list(tenants), size + 1)
        return list(zip(path[:-1], path[1:], strict=True))
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < size:
        i, j = rng.sample(range(len(tenants)), 2)
        chosen.add((i, j))
    return [(tenants[i], tenants[j]) for i, j in sorted(chosen)]


@dataclass
class ProbeRun:
    tenants: int = 0  # active tenants in the cell (among those asked for, when limited)
    logins: int = 0  # tenants logged in and probed
    pairs: int = 0
    witnessed: int = 0  # pairs probed while the other tenant's session sat idle
    partners: int = 0
    attempts: int = 0
    findings: list[Finding] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # check -> why it had nothing to probe


def nothing_probed(check: ProbeCheck, run: ProbeRun, limited: bool) -> str:
    """Why `check` made no attempt in a cell: the reason of its SKIP."""
    where = "among the tenants asked for" if limited else "in the cell"
    if run.tenants == 0:
        return f"no active tenant {where}"
    lacking = []
    if check.alone is not None and not run.logins:
        lacking.append("no tenant could log in")
    if check.needs_pair and not run.pairs:
        lacking.append(f"one active tenant {where}: no pair to probe" if run.tenants == 1 else "no pair was probed")
    elif check.witnessed is not None and not run.witnessed:
        lacking.append("no witness session: the other tenants could not log in")
    if check.partner is not None and not run.partners:
        lacking.append("no partner could log in")
    return "; ".join(lacking) or "nothing to probe"


class CellProber:
    def __init__(
        self,
        cluster: Cluster,
        stack: str,
        region: str,
        master: psycopg.Connection,
        size: int,
        rng: random.Random,
        only: frozenset[str] | None = None,
    ):
        self.cluster, self.stack, self.region, self.master = cluster, stack, region, master
        self.size, self.rng, self.only = size, rng, only
        self.checks = probe_checks()
        self.log = ProbeLog()
        self.run_id = f"probe:{secrets.token_hex(6)}"
        self._secrets = SecretReads(region)
        self._drift: dict[str, str] = {}  # login role -> how its defaults differ from the templates'
        self.shared: tuple[SharedRelation, ...] = ()  # the platform's relations, read once a run
        self.objects: dict[str, SchemaObjects] = {}  # what the probed tenant schemas hold, read once a run
        self._handed: dict[str, psycopg.Connection] = {}  # tenant id -> its witness session, to probe next

    def credentials(self, kind: str, owner_id: str) -> Credentials:
        name = secret_name(self.stack, kind, owner_id)
        try:
            return self._secrets.credentials(name)
        except ProvisionError:
            raise
        except Exception as exc:  # botocore: no such secret, access denied, endpoint down
            raise ProvisionError(
                f"cell {self.cluster.cell}: no credentials for {kind} {owner_id} (secret {name}): {exc}"
            ) from None

    def prefetch(self, owners: list[tuple[str, str]]) -> None:
        """The (kind, id) owners' credentials, twenty secrets a call instead of one each. What a
        batch does not return well is left to credentials(), which reads it alone and names it."""
        self._secrets.prefetch([secret_name(self.stack, kind, owner_id) for kind, owner_id in owners])

    def login(self, kind: str, owner_id: str, who: str) -> Session | None:
        """A probing session, or None (and a finding naming the tenant or partner) when its role's
        defaults drifted or the server refuses its credentials: what it did to itself."""
        self.log.attempted[logins.NAME] += 1
        who = self._holder(kind, owner_id, who)
        handed = self._handed.pop(owner_id, None) if kind == "tenant" else None
        if who in self._drift:
            if handed is not None:
                handed.close()
            drift = f"its role's defaults are not the templates': {self._drift[who]}; its own probes were not run"
            self._self_inflicted(kind, owner_id, who, drift, logins.APPLY)
            return None
        if handed is not None:  # the same login, idle since its marker: the probe's transaction starts here
            handed.autocommit = False
        conn = handed or self.connect_as(kind, owner_id, who)
        return Session(conn, who, self.log) if conn is not None else None

    def _holder(self, kind: str, owner_id: str, app_role: str) -> str:
        """The login AWSCURRENT names: the app role or, after a rotation, its twin (probed alike)."""
        named = self.credentials(kind, owner_id).username
        return named if named in (app_role, twin_of(app_role)) else app_role

    def connect_as(self, kind: str, owner_id: str, who: str, autocommit: bool = False) -> psycopg.Connection | None:
        try:
            return connect(self.cluster, self.credentials(kind, owner_id), autocommit=autocommit)
        except LoginRefused as exc:
            refused = f"cannot log in with the credentials Secrets Manager holds: {str(exc).split(': ', 2)[-1]}"
            self._self_inflicted(kind, owner_id, who, refused, logins.RESET_PASSWORD)
            return None

    def _self_inflicted(self, kind: str, owner_id: str, who: str, what: str, remediation: str) -> None:
        self.log.violation(logins.NAME, f"{kind} {owner_id} (role {who})", what, remediation=remediation)

    def tenants(self) -> list[TenantRef]:
        rows = self.master.execute(
            "select t.id, t.partner_id from platform.tenants t where t.status = 'active' "
            "and exists (select 1 from pg_namespace n where n.nspname = 't_' || t.id) "
            "and (%(only)s::text[] is null or t.id = any(%(only)s)) order by t.id",
            {"only": sorted(self.only) if self.only is not None else None},
        ).fetchall()
        return [TenantRef(*row) for row in rows]

    def canaries(self) -> list[TenantRef]:
        """The cell's canary tenants (apply makes them): rows of someone else in every shared table."""
        rows = self.master.execute(
            "select id, partner_id from platform.tenants where status = %s order by id", (canaries.STATUS,)
        ).fetchall()
        return [TenantRef(*row) for row in rows]

    def run(self) -> ProbeRun:
        result = ProbeRun()
        tenants = self.tenants()
        result.tenants = len(tenants)
        pairs = sample_pairs(tenants, self.size, self.rng)
        by_source: dict[TenantRef, list[TenantRef]] = {}
        for a, b in pairs:
            by_source.setdefault(a, []).append(b)
        if len(tenants) == 1 and self.size > 0:  # alone in the cell: its own work and what it creates still count
            by_source[tenants[0]] = []
        sampled = sorted({t for pair in pairs for t in pair} | set(by_source), key=lambda t: t.id)
        partners = self._partners(tenants, sampled)
        if sampled or partners:
            self._drift = logins.role_drift(self.master, [t.id for t in by_source], partners)
            self.prefetch([("tenant", t.id) for t in sampled] + [("partner", p) for p in partners])
            canary = self.canaries()
            self.shared = shared_relations(self.master)
            schemas = {t.names.schema for t in [*sampled, *canary]}  # a canary has none: it holds nothing
            self.objects = tenant_objects(self.master, sorted(schemas))
            following = [*list(by_source)[1:], None]  # each source's next one
            try:
                for (a, targets), after in zip(by_source.items(), following, strict=True):
                    try:
                        self._probe_tenant(a, targets, canary, result, after)
                    except ProvisionError as exc:  # no credentials for this tenant: the others still run
                        result.errors.append(str(exc))
            finally:
                for conn in self._handed.values():
                    conn.close()
                self._handed.clear()
            for partner_id in partners:
                try:
                    if self._probe_partner(partner_id, sampled):
                        result.partners += 1
                except ProvisionError as exc:
                    result.errors.append(str(exc))
        result.attempts = self.log.attempts
        result.findings = self.log.findings()
        result.errors += [f"cell {self.cluster.cell}: inconclusive probe: {line}" for line in self.log.inconclusive]
        idle = [c for c in self.checks if not self.log.attempted[c.name]]
        result.skipped = {c.name: nothing_probed(c, result, self.only is not None) for c in idle}
        return result

    def _partners(self, tenants: list[TenantRef], sampled: list[TenantRef]) -> list[str]:
        if self.size <= 0:
            return []
        # Partners of the sampled tenants first, then any other partner with tenants here.
        ordered = list(dict.fromkeys([t.partner_id for t in sampled] + [t.partner_id for t in tenants]))
        return ordered[: self.size]

    def _probe_tenant(
        self,
        a: TenantRef,
        targets: list[TenantRef],
        canary: list[TenantRef],
        result: ProbeRun,
        following: TenantRef | None = None,
    ) -> None:
        """`following`: the tenant probed next; a witness session of its own is handed on to it."""
        session = self.login("tenant", a.id, a.names.app_role)
        if session is None:
            return
        try:
            shared = granted(session, self.shared, ROLES["tenant_app"])
            probe = TenantProbe(session, a, self.run_id, shared, self.objects)
            for check in self.checks:
                if check.alone:
                    check.alone(probe)
            result.logins += 1
            for b in targets:
                for check in self.checks:
                    if check.against:
                        check.against(probe, b)
                result.pairs += 1
                self._witnessed(probe, b, result, keep=b == following and b is targets[-1])
            for c in canary:  # no login, no schema: what a pair probes of shared rows and roles
                for check in self.checks:
                    if check.against:
                        check.against(probe, c)
        finally:
            session.close()

    def _witnessed(self, probe: TenantProbe, b: TenantRef, result: ProbeRun, keep: bool = False) -> None:
        """B's own session runs a distinctive query and stays idle while A looks for it; `keep`
        hands it on to B's own probes (one login fewer)."""
        hooks = [c.witnessed for c in self.checks if c.witnessed]
        if not hooks:
            return
        marker = f"{MARK}:{secrets.token_hex(8)}"
        try:
            witness = self.connect_as("tenant", b.id, b.names.app_role, autocommit=True)
        except ProvisionError as exc:  # the other probes of this pair ran
            result.errors.append(str(exc))
            return
        if witness is None:  # B cannot log in: a finding naming B; no witness for this pair
            return
        try:
            witness.execute(sql.SQL("select {}").format(sql.Literal(marker)))
            for hook in hooks:
                hook(probe, b, marker)
            probe.session.flush()  # judged while B's session still sits idle
            result.witnessed += 1
        except BaseException:
            witness.close()
            raise
        if keep:
            self._handed[b.id] = witness
        else:
            witness.close()

    def _probe_partner(self, partner_id: str, sampled: list[TenantRef]) -> bool:
        """Whether the partner logged in and was probed."""
        tenants = scalar(self.master, "select count(*) from platform.tenants where partner_id = %s", (partner_id,))
        runs = scalar(self.master, "select count(*) from platform.worker_runs where partner_id = %s", (partner_id,))
        session = self.login("partner", partner_id, PartnerNames(partner_id).app_role)
        if session is None:
            return False
        try:
            probe = PartnerProbe(
                session,
                partner_id,
                self.run_id,
                granted(session, self.shared, ROLES["partner_app"]),
                tenants=tenants,
                runs=runs,
                other=next((t for t in sampled if t.partner_id != partner_id), None),
                schemas=tuple(sampled[:PARTNER_SCHEMA_SAMPLE]),
                objects=self.objects,
            )
            for check in self.checks:
                if check.partner:
                    check.partner(probe)
        finally:
            session.close()
        return True
