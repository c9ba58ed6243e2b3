"""Stack config files: where `stacks/` is, and reading one Pulumi.<stack>.yaml without the engine.

The stack files belong to the deployment being worked on, never to the installed tool: they
are found from the working directory (the nearest Pulumi project above it, or `./stacks`), or
where `--stacks-dir` says.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from contract.project import find_project_dir
from stackconfig.config import ConfigError, PlatformConfig, parse_config

STACKS_DIR_NAME = "stacks"


class StacksNotFound(ConfigError):
    """No stacks/ directory where one was looked for."""


def find_stacks_dir(explicit: Path | None = None, start: Path | None = None) -> Path:
    """`explicit` when given, else stacks/ of the Pulumi project around the working directory."""
    if explicit is not None:
        if not explicit.is_dir():
            raise StacksNotFound(f"--stacks-dir {explicit}: no such directory")
        return explicit
    project = find_project_dir(start)
    base = project if project is not None else (start or Path.cwd()).resolve()
    candidate = base / STACKS_DIR_NAME
    if candidate.is_dir():
        return candidate
    raise StacksNotFound(
        f"no {STACKS_DIR_NAME}/ directory in {base} (looked for the Pulumi project around the working "
        "directory): run from the project or pass --stacks-dir"
    )


def stack_file(stack_name: str, stacks_dir: Path) -> Path:
    return Path(stacks_dir) / f"Pulumi.{stack_name}.yaml"


def stack_names(stacks_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in Path(stacks_dir).glob("Pulumi.*.yaml"))


def load_stack_config(stack_name: str, stacks_dir: Path) -> PlatformConfig:
    """Read and validate stacks/Pulumi.<stack>.yaml without the engine (no secrets needed)."""
    path = stack_file(stack_name, stacks_dir)
    source = f"{path.parent.name}/{path.name}"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{source}: stack config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise ConfigError(f"{source}: expected a top-level 'config:' mapping")
    return parse_config(stack_name, doc["config"], source)


def set_config_value(stack_name: str, stacks_dir: Path, key: str, value: int) -> PlatformConfig:
    """Set one scalar key of stacks/Pulumi.<stack>.yaml in place (its other lines, comments
    included, stay as they are); the result must validate before it replaces the file."""
    path = stack_file(stack_name, stacks_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path.parent.name}/{path.name}: stack config file not found") from None
    existing = re.compile(rf"^(?P<indent>[ \t]+){re.escape(key)}:[^\n]*$", re.MULTILINE)
    if existing.search(text):
        text = existing.sub(lambda m: f"{m['indent']}{key}: {value}", text, count=1)
    else:
        first = re.search(r"^config:[ \t]*\n(?P<indent>[ \t]+)", text, re.MULTILINE)
        if first is None:
            raise ConfigError(f"{path.parent.name}/{path.name}: expected a top-level 'config:' mapping")
        at = first.start("indent")
        text = f"{text[:at]}{first['indent']}{key}: {value}\n{text[at:]}"
    doc = yaml.safe_load(text)
    config = parse_config(stack_name, doc["config"], f"{path.parent.name}/{path.name}")
    if doc["config"].get(key) != value:
        raise ConfigError(f"{path.parent.name}/{path.name}: {key} could not be set to {value}")
    staged = path.with_suffix(".yaml.new")
    staged.write_text(text, encoding="utf-8")
    os.replace(staged, path)
    return config
