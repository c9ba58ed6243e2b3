"""The Pulumi program body, shared by `pulumi up` (__main__.py) and offline mock runs."""

from __future__ import annotations

import pulumi

from compliance.transfers import check_stack_transfers
from components.platform import RegionalPlatform, RegionalPlatformArgs
from contract.outputs import TOP_LEVEL_KEYS
from stackconfig.config import PlatformConfig


def program(config: PlatformConfig) -> None:
    """Refuse unrecorded transfers, then build one RegionalPlatform and export the contract."""
    # Before any resource: a refused region (or DR copy) must leave nothing half-declared.
    check_stack_transfers(config.region, config.dr_region, list(config.origins))
    platform = RegionalPlatform(config.stack, RegionalPlatformArgs(config))
    for key in TOP_LEVEL_KEYS:
        pulumi.export(key, platform.outputs[key])
