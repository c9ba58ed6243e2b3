"""The Pulumi program body, shared by `pulumi up` (__main__.py) and offline mock runs."""

from __future__ import annotations

import pulumi

from components.config import PlatformConfig
from components.platform import CONTRACT_KEYS, RegionalPlatform, RegionalPlatformArgs
from policy.transfers import check_stack_transfers


def program(config: PlatformConfig) -> None:
    """Refuse unrecorded transfers, then build one RegionalPlatform and export the contract."""
    # Before any resource: a refused region (or DR copy) must leave nothing half-declared.
    check_stack_transfers(config.region, config.dr_region, list(config.origins))
    platform = RegionalPlatform(config.stack, RegionalPlatformArgs(config))
    for key in CONTRACT_KEYS:
        pulumi.export(key, platform.outputs[key])
