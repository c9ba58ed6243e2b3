"""The stack outputs contract between the Pulumi program and this tool (DESIGN.md).

Read from a `pulumi stack output --json` file, from the local stack, or through the Automation
API; validated into typed objects so a wrong shape is one clear error, not a KeyError later.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.errors import InputError, ProvisionError

# "secrets" encrypts the app credentials the provisioner stores in Secrets Manager.
KMS_PURPOSES = ("data", "logs", "backup", "secrets", "jwt_signing")
PLAN_TIERS = ("starter", "growth", "enterprise")


@dataclass(frozen=True)
class Cluster:
    cell: str
    endpoint: str
    port: int
    database: str
    master_secret_arn: str
    ca_bundle: str
    iam_auth: bool


@dataclass(frozen=True)
class StackOutputs:
    stack: str
    region: str
    clusters: tuple[Cluster, ...]
    kms: dict[str, str]
    dr: dict[str, str]
    audit_log_groups: dict[str, str]

    def cluster(self, cell: str) -> Cluster:
        for cluster in self.clusters:
            if cluster.cell == cell:
                return cluster
        raise InputError(f"stack {self.stack} has no cell {cell!r} (cells: {', '.join(self.cells)})")

    @property
    def cells(self) -> list[str]:
        return [c.cell for c in self.clusters]


def _expect(value: Any, kind: type, where: str) -> Any:
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise InputError(f"stack outputs: {where} must be {kind.__name__}, got {value!r}")
    return value


def _str_map(raw: Any, keys: tuple[str, ...], where: str) -> dict[str, str]:
    _expect(raw, dict, where)
    missing = [k for k in keys if k not in raw]
    if missing:
        raise InputError(f"stack outputs: {where} lacks {', '.join(missing)}")
    return {k: _expect(v, str, f"{where}.{k}") for k, v in raw.items()}


def parse_outputs(raw: Any) -> StackOutputs:
    _expect(raw, dict, "top level")
    missing = [k for k in ("stack", "region", "clusters", "kms", "dr", "audit_log_groups") if k not in raw]
    if missing:
        raise InputError(f"stack outputs lack {', '.join(missing)}")
    clusters = []
    for i, item in enumerate(_expect(raw["clusters"], list, "clusters")):
        where = f"clusters[{i}]"
        _expect(item, dict, where)
        fields = {
            "cell": str,
            "endpoint": str,
            "port": int,
            "database": str,
            "master_secret_arn": str,
            "ca_bundle": str,
            "iam_auth": bool,
        }
        for key, kind in fields.items():
            if key not in item:
                raise InputError(f"stack outputs: {where} lacks {key}")
            _expect(item[key], kind, f"{where}.{key}")
        clusters.append(Cluster(**{k: item[k] for k in fields}))
    if not clusters:
        raise InputError("stack outputs: clusters is empty")
    cells = [c.cell for c in clusters]
    if len(set(cells)) != len(cells):
        raise InputError(f"stack outputs: duplicate cell names in {cells}")
    dr = _str_map(raw["dr"], ("region", "mode"), "dr")
    return StackOutputs(
        stack=_expect(raw["stack"], str, "stack"),
        region=_expect(raw["region"], str, "region"),
        clusters=tuple(clusters),
        kms=_str_map(raw["kms"], KMS_PURPOSES, "kms"),
        dr=dr,
        audit_log_groups=_str_map(raw["audit_log_groups"], PLAN_TIERS, "audit_log_groups"),
    )


def load_outputs_file(path: Path) -> StackOutputs:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"outputs file {path} not found") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"outputs file {path} is not JSON: {exc}") from None
    return parse_outputs(raw)


def load_from_pulumi(stack: str, work_dir: Path) -> StackOutputs:
    """Read outputs through the Automation API; needs the `pulumi` CLI and a logged-in backend."""
    if shutil.which("pulumi") is None:
        raise ProvisionError(
            f"stack {stack}: the pulumi CLI is not on PATH to read its outputs; "
            f"pass --outputs FILE written by `pulumi stack output --json --stack {stack}`"
        )
    from pulumi import automation

    selected = automation.select_stack(stack_name=stack, work_dir=str(work_dir))
    return parse_outputs({k: v.value for k, v in selected.outputs().items()})
