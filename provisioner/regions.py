"""Region expansion: a new stack file derived from an existing stack, for another region.

What is the deployment's stays (origins, cells and their sizes, domain, sub-processors, alert
addresses, accepted weakenings); what belongs to the source region changes: the region and DR
region, the rotation Lambda's region and name, and the network when one is given. Restores are
the source cells' history and are dropped. Before anything is written the new config must be
valid and the transfer gate must accept every origin in the region and in its DR region.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from compliance.transfers import Basis, check_stack_transfers, load_transfers, stack_bases
from provisioner.errors import InputError
from stackconfig.config import NS, NetworkConfig, PlatformConfig, parse_config
from stackconfig.files import load_stack_config, stack_file, stack_names
from stackconfig.settings import read

RESTORE_KEYS = ("restoreFromSnapshot", "restoreToPointInTime")
NETWORK_KEYS = {
    "vpc_id": f"{NS}:vpcId",
    "private_subnet_ids": f"{NS}:privateSubnetIds",
    "allowed_source_security_group_ids": f"{NS}:allowedSourceSecurityGroupIds",
}


@dataclass(frozen=True)
class Arrow:
    origin: str
    role: str  # primary | dr
    region: str
    country: str
    basis: Basis

    def __str__(self) -> str:
        where = f"{self.origin} -> {self.region} ({self.country}) {self.role}"
        return f"{where}: {self.basis.mechanism}, {self.basis.summary()}"


@dataclass(frozen=True)
class NewStack:
    name: str
    path: Path
    source: PlatformConfig
    config: PlatformConfig
    doc: dict[str, Any]
    arrows: list[Arrow]
    network_copied: bool  # the source's network ids, to be replaced before `pulumi up`
    watched_elsewhere: str | None  # the stack whose GuardDuty already covers the DR region
    detector_elsewhere: str | None = None  # ... and the region itself (its DR detection)

    def text(self) -> str:
        header = [
            f"# {self.config.environment}, {self.config.region}; DR copies to {self.config.dr_region}.",
            f"# Derived from {self.source.stack} by `provision region add`.",
        ]
        if self.network_copied:
            header.append(f"# The network ids are {self.source.stack}'s: replace them with {self.config.region}'s.")
        return "\n".join(header) + "\n" + yaml.safe_dump(self.doc, sort_keys=False, allow_unicode=True)


def _read_doc(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {"config": copy.deepcopy(doc["config"])}  # a backend's secrets salt is per stack: never copied


def _detectors(stacks_dir: Path, exclude: str) -> dict[str, str]:
    """region -> the stack whose GuardDuty detector is there (primary, or DR detection)."""
    found: dict[str, str] = {}
    for name in stack_names(stacks_dir):
        if name == exclude:
            continue
        other = load_stack_config(name, stacks_dir)
        found.setdefault(other.region, name)
        if other.dr_breach_detection:
            found.setdefault(other.dr_region, name)
    return found


def derive(
    stacks_dir: Path,
    region: str,
    from_stack: str,
    dr_region: str | None = None,
    name: str | None = None,
    network: NetworkConfig | None = None,
) -> NewStack:
    """The new stack, checked; nothing is written. Refusals raise (InputError, ConfigError,
    TransferRefused), each one line."""
    source = load_stack_config(from_stack, stacks_dir)
    transfers = load_transfers()
    transfers.country_of(region)  # an unknown region is refused by name before anything else
    if region == source.region:
        raise InputError(f"{from_stack} already runs in {region}")
    taken = {load_stack_config(n, stacks_dir).region: n for n in stack_names(stacks_dir)}
    if region in taken:
        raise InputError(f"stack {taken[region]} already runs in {region}: one stack per region")
    dr = dr_region or (source.dr_region if source.dr_region != region else source.region)
    transfers.country_of(dr)
    new_name = name or f"{source.environment}-{region}"
    path = stack_file(new_name, stacks_dir)
    if path.exists():
        raise InputError(f"{path} exists: choose another --stack name")
    check_stack_transfers(region, dr, list(source.origins), transfers=transfers)

    doc = _read_doc(stack_file(from_stack, stacks_dir))
    config = doc["config"]
    config["aws:region"] = region
    config[f"{NS}:drRegion"] = dr
    for cell in config[f"{NS}:cells"]:
        for key in RESTORE_KEYS:
            cell.pop(key, None)
    config.pop(f"{NS}:drNetwork", None)  # the source's DR landing zone is not this stack's
    payments = config[f"{NS}:subprocessors"]["payments"]
    if "rotationLambdaArn" in payments:
        payments["rotationLambdaArn"] = (
            payments["rotationLambdaArn"]
            .replace(f":lambda:{source.region}:", f":lambda:{region}:")
            .replace(f"askasia-{source.stack}-", f"askasia-{new_name}-")
        )
    if network is not None:
        for field_name, key in NETWORK_KEYS.items():
            value = getattr(network, field_name)
            config[key] = list(value) if isinstance(value, tuple) else value
    detectors = _detectors(stacks_dir, exclude=new_name)
    watched = detectors.get(dr)
    for key, covered in ((f"{NS}:drBreachDetection", watched), (f"{NS}:guardDutyDetector", detectors.get(region))):
        if covered is not None:
            config[key] = False  # that region's one detector is another stack's
        else:
            config.pop(key, None)

    parsed = parse_config(new_name, config, f"{stacks_dir.name}/{path.name}")
    arrows = [
        Arrow(origin, role, where, transfers.country_of(where), basis)
        for origin, role, where, basis in stack_bases(region, dr, list(parsed.origins), transfers=transfers)
        if basis is not None
    ]
    return NewStack(new_name, path, source, parsed, doc, arrows, network is None, watched, detectors.get(region))


def write(new: NewStack) -> None:
    """Create the file (never overwrite one that appeared meanwhile)."""
    fd = os.open(new.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(new.text())


def network_from_options(
    vpc_id: str | None, subnet_ids: Sequence[str], source_sgs: Sequence[str]
) -> NetworkConfig | None:
    """All three network options, or none of them (then the source's ids are copied)."""
    given = [bool(vpc_id), bool(subnet_ids), bool(source_sgs)]
    if not any(given):
        return None
    if not all(given):
        raise InputError("give --vpc-id, --subnet-id (two or more) and --source-security-group-id together")
    values = {"vpcId": vpc_id, "privateSubnetIds": list(subnet_ids), "allowedSourceSecurityGroupIds": list(source_sgs)}
    return read(NetworkConfig, values, "the network options")
