"""The stack outputs: what the Pulumi program exports and `provision` reads.

`parse_outputs` validates a decoded JSON document into typed objects, so a wrong shape is one
clear `OutputsInvalid`, not a KeyError later; `StackOutputs.to_json` gives the document back in
the same shape (the local stack writes its outputs with it). The key lists below are the
contract: the program exports exactly these, the parser requires exactly these.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, get_type_hints

from contract.kms import KMS_PURPOSES
from contract.tiers import PLAN_TIERS

DR_KEYS = ("region", "mode")
# The database user the cell's RDS Proxy logs in as (end-to-end IAM), the platform's own
# service; tenants' and partners' applications connect to `app_endpoint`, never through it.
PROXY_USER = "askasia_platform_service"
# Where the application reads its token policy and the JWT verification keys (contract/jwks.py).
JWT_KEYS = ("jwks_parameter", "config_parameter")


class OutputsInvalid(ValueError):
    """The outputs document does not have the contract's shape; the message names the key."""


@dataclass(frozen=True)
class Cluster:
    """One cell: an Aurora cluster (or a local PostgreSQL server) and how to reach it."""

    cell: str
    endpoint: str  # the writer, where `provision` connects
    # Where tenants' app roles and partners' console roles connect: the cluster itself, each
    # with its own credential, so row level security binds the session to its role.
    app_endpoint: str
    # The RDS Proxy: pooled, IAM-authenticated, for PROXY_USER only ("" where there is none,
    # as in the local stack).
    proxy_endpoint: str
    port: int
    database: str
    master_secret_arn: str
    ca_bundle: str
    iam_auth: bool


CLUSTER_KEYS = tuple(f.name for f in fields(Cluster))
_CLUSTER_TYPES = get_type_hints(Cluster)


@dataclass(frozen=True)
class StackOutputs:
    stack: str
    region: str
    # The jurisdictions the stack serves (askasia:origins): the program checked a transfer
    # basis for each into the region and the DR region, so placement admits these only.
    origins: tuple[str, ...]
    clusters: tuple[Cluster, ...]
    kms: dict[str, str]
    dr: dict[str, str]
    audit_log_groups: dict[str, str]
    jwt: dict[str, str]

    def cluster(self, cell: str) -> Cluster:
        for cluster in self.clusters:
            if cluster.cell == cell:
                return cluster
        raise OutputsInvalid(f"stack {self.stack} has no cell {cell!r} (cells: {', '.join(self.cells)})")

    @property
    def cells(self) -> list[str]:
        return [c.cell for c in self.clusters]

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["origins"] = list(self.origins)
        doc["clusters"] = [asdict(c) for c in self.clusters]
        return doc


TOP_LEVEL_KEYS = tuple(f.name for f in fields(StackOutputs))


def _expect(value: Any, kind: type, where: str) -> Any:
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise OutputsInvalid(f"stack outputs: {where} must be {kind.__name__}, got {value!r}")
    return value


def _str_map(raw: Any, keys: tuple[str, ...], where: str) -> dict[str, str]:
    _expect(raw, dict, where)
    missing = [k for k in keys if k not in raw]
    if missing:
        raise OutputsInvalid(f"stack outputs: {where} lacks {', '.join(missing)}")
    return {k: _expect(v, str, f"{where}.{k}") for k, v in raw.items()}


def _origins(raw: Any) -> tuple[str, ...]:
    items = tuple(_expect(o, str, f"origins[{i}]") for i, o in enumerate(_expect(raw, list, "origins")))
    if not items:
        raise OutputsInvalid("stack outputs: origins is empty")
    if len(set(items)) != len(items):
        raise OutputsInvalid(f"stack outputs: origins lists a jurisdiction twice: {list(items)}")
    return items


def _cluster(item: Any, where: str) -> Cluster:
    _expect(item, dict, where)
    missing = [k for k in CLUSTER_KEYS if k not in item]
    if missing:
        raise OutputsInvalid(f"stack outputs: {where} lacks {', '.join(missing)}")
    return Cluster(**{k: _expect(item[k], _CLUSTER_TYPES[k], f"{where}.{k}") for k in CLUSTER_KEYS})


def parse_outputs(raw: Any) -> StackOutputs:
    _expect(raw, dict, "top level")
    missing = [k for k in TOP_LEVEL_KEYS if k not in raw]
    if missing:
        raise OutputsInvalid(f"stack outputs lack {', '.join(missing)}")
    clusters = tuple(
        _cluster(item, f"clusters[{i}]") for i, item in enumerate(_expect(raw["clusters"], list, "clusters"))
    )
    if not clusters:
        raise OutputsInvalid("stack outputs: clusters is empty")
    cells = [c.cell for c in clusters]
    if len(set(cells)) != len(cells):
        raise OutputsInvalid(f"stack outputs: duplicate cell names in {cells}")
    return StackOutputs(
        stack=_expect(raw["stack"], str, "stack"),
        region=_expect(raw["region"], str, "region"),
        origins=_origins(raw["origins"]),
        clusters=clusters,
        kms=_str_map(raw["kms"], KMS_PURPOSES, "kms"),
        dr=_str_map(raw["dr"], DR_KEYS, "dr"),
        audit_log_groups=_str_map(raw["audit_log_groups"], PLAN_TIERS, "audit_log_groups"),
        jwt=_str_map(raw["jwt"], JWT_KEYS, "jwt"),
    )
