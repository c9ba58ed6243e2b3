"""Shared helpers for the component tests: stack configs, cached mock runs, small look-ups."""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

from offline.mockrun import MockResource, MockRun, run_under_mocks
from stackconfig.config import PlatformConfig
from stackconfig.files import load_stack_config

ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = ROOT / "stacks"
STACKS = ("prod-eu-west-1", "prod-ap-south-1", "prod-us-east-1")


def stack_names() -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in STACKS_DIR.glob("Pulumi.*.yaml"))


@functools.cache
def config(stack: str = "prod-eu-west-1") -> PlatformConfig:
    return load_stack_config(stack, STACKS_DIR)


def variant(stack: str = "prod-eu-west-1", **changes: Any) -> PlatformConfig:
    return dataclasses.replace(config(stack), **changes)


@functools.cache
def run(cfg: PlatformConfig) -> MockRun:
    """One mock run per distinct config (configs are frozen, so they key the cache)."""
    return run_under_mocks(cfg)


def stack_run(stack: str = "prod-eu-west-1") -> MockRun:
    return run(config(stack))


def key(r: MockRun, purpose: str) -> MockResource:
    """The key of a purpose; for jwt_signing, the ring's current key (the one the outputs name)."""
    found = [
        k
        for k in r.of_type("aws:kms/key:Key")
        if k.tags.get("askasia:key-purpose") == purpose and k.tags.get("askasia:jwt-role", "current") == "current"
    ]
    assert len(found) == 1, f"expected one {purpose} key, found {len(found)}"
    return found[0]


def key_arn(r: MockRun, purpose: str) -> str:
    return key(r, purpose).outputs["arn"]


def policy(resource: MockResource, prop: str = "policy") -> dict[str, Any]:
    return json.loads(resource.inputs[prop])


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    found = doc["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
