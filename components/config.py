"""The engine's reader of the stack config: `pulumi up` hands the program its config as strings;
this decodes them and validates through the same `parse_config` as the file reader."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi

from stackconfig.config import KINDS, NS, ConfigError, PlatformConfig, parse_config


class EngineConfigError(ConfigError, pulumi.RunError):
    """A ConfigError the engine prints as one line, without a traceback."""


def config_from_pulumi(
    stack: str | None = None,
    get: Callable[[str], Any] | None = None,
    keys: Callable[[], list[str]] | None = None,
) -> PlatformConfig:
    """Read and validate the config the engine gives this program (`pulumi up`).

    `get`/`keys` default to the SDK's config store; tests pass their own.
    """
    from pulumi.runtime import config as runtime_config

    get = get or runtime_config.get_config
    keys = keys or (lambda: [*runtime_config.CONFIG.get(), *runtime_config.get_config_env()])
    stack = stack or pulumi.get_stack()
    source = f"stack {stack} config"
    values: dict[str, Any] = {}
    for key in set(keys()):
        if key.startswith(f"{NS}:") and key not in KINDS:
            values[key] = None  # reported as unknown by parse_config
    for key, kind in KINDS.items():
        raw = get(key)
        if raw is None:
            continue
        values[key] = raw if kind is str or not isinstance(raw, str) else _decode(raw)
    try:
        return parse_config(stack, values, source)
    except ConfigError as exc:
        raise EngineConfigError(str(exc)) from None


def _decode(raw: str) -> Any:
    # The engine passes numbers, booleans, lists and objects as JSON text.
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw  # left as a string, so validation names the expected type
