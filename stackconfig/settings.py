"""Stack settings declared once, as fields of settings classes; everything else is derived.

Each field says where it is read from (its config key), the kind of value the config holds,
its checks (pattern, range, choices), its default and, where a value can give up a secure
default, the `Weakening` it counts as:

    class Backups(Settings):
        retention_days: int = setting("retentionDays", int, default=35, low=1, high=35)

From those declarations come: reading a config mapping (`read`: missing keys, wrong kinds and
unknown keys as one-line ConfigErrors naming the key), the value checks (run on construction,
so a settings object that exists is valid however it was made), the kinds the engine's strings
decode to (`kinds`), and the weakenings a settings object carries (`weakenings`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, dataclass_transform

T = TypeVar("T")

_SPEC = "setting"
_REQUIRED: Any = object()  # Setting.default of a key without one (dataclasses.MISSING means "no default" there)
_KIND_NAMES = {str: "a string (quote it)", int: "an integer", bool: "true or false", list: "a list", dict: "a mapping"}


class ConfigError(ValueError):
    """A missing or wrong stack-config key; the message is one line naming the key."""


class SettingInvalid(ConfigError):
    """A value its setting refuses. `key` is where, relative to the settings object refusing it
    ("" for the object as a whole); `read` prefixes the source and the path to that object."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.key = key
        self.problem = problem


@dataclass(frozen=True)
class Weakening:
    """A secure default a stack may give up only by naming it in its allowInsecure list."""

    name: str  # the allowInsecure name
    cost: str  # what accepting it gives up, for the refusal and the deploy warning
    when: Callable[[Any], bool]  # true for a value weaker than the secure default


@dataclass(frozen=True)
class Setting:
    """How one field is read and checked. Lists apply `pattern` and `choices` to each item."""

    key: str  # "" for a group: a settings class read from its owner's own mapping
    kind: type  # what the config holds: str, int, bool, list or dict
    default: Any = _REQUIRED
    what: str = ""  # the expected form, for messages; for a section, the keys it holds
    pattern: re.Pattern[str] | None = None
    choices: tuple[Any, ...] = ()
    low: int | None = None
    high: int | None = None
    max_length: int | None = None
    refused: Mapping[Any, str] | None = None  # value -> why it is refused, checked first
    of: type | None = None  # the settings class of a section (dict) or of each item (list)
    min_items: int = 0
    noun: str = ""  # a list's item, for "needs at least one cell" / "lists a cell twice"
    unique: bool = True
    weakening: Weakening | None = None

    @property
    def hint(self) -> str:
        """What a missing required key should hold."""
        if self.of is None or not self.what:
            return self.what
        return f"list of {{{self.what}}}" if self.kind is list else f"{{{self.what}}}"


def setting(key: str, kind: type, *, default: Any = dataclasses.MISSING, **checks: Any) -> Any:
    """A field read from `key`; `checks` are the other Setting fields."""
    spec = Setting(key, kind, _REQUIRED if default is dataclasses.MISSING else default, **checks)
    return dataclasses.field(default=default, metadata={_SPEC: spec})


def group(of: type) -> Any:
    """A field holding settings read from the same mapping as its owner's (a named part of it)."""
    return dataclasses.field(metadata={_SPEC: Setting("", dict, of=of)})


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(setting, group))
class Settings:
    """Base of the settings classes: each is a frozen, keyword-only dataclass whose construction
    checks every declared value, then `check()` (the class's checks across its fields)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]  # set by dataclass() on each subclass

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        dataclass(frozen=True, kw_only=True)(cls)
        _SPECS[cls] = tuple((f.name, f.metadata[_SPEC]) for f in dataclasses.fields(cls) if _SPEC in f.metadata)

    def __post_init__(self) -> None:
        for name, spec in specs(type(self)):
            _check(spec, getattr(self, name))
        self.check()

    def check(self) -> None:
        """Checks across fields; raise SettingInvalid (see `invalid`)."""


_SPECS: dict[type, tuple[tuple[str, Setting], ...]] = {}


def specs(cls: type) -> tuple[tuple[str, Setting], ...]:
    """(field name, Setting) of a settings class, in declaration order."""
    return _SPECS[cls]


def invalid(obj: Settings, field_name: str, problem: str) -> SettingInvalid:
    """A refusal of one field of `obj`, named by its key (for checks across fields)."""
    return SettingInvalid(dict(specs(type(obj)))[field_name].key, problem)


def _flat(cls: type) -> Iterator[Setting]:
    for _, spec in specs(cls):
        if spec.key:
            yield spec
        elif spec.of is not None:
            yield from _flat(spec.of)


def kinds(cls: type) -> dict[str, type]:
    """key -> kind of every key read from a mapping by `cls` (its groups included)."""
    return {spec.key: spec.kind for spec in _flat(cls)}


def declared_weakenings(cls: type) -> Iterator[Weakening]:
    """Every weakening declared by `cls` and the settings classes inside it."""
    for _, spec in specs(cls):
        if spec.weakening is not None:
            yield spec.weakening
        if spec.of is not None:
            yield from declared_weakenings(spec.of)


def weakenings(*objects: Any) -> tuple[Weakening, ...]:
    """The secure defaults these settings objects give up, sorted by name."""
    found: dict[str, Weakening] = {}
    for obj in objects:
        for name, spec in specs(type(obj)):
            value = getattr(obj, name)
            if spec.weakening is not None and value is not None and spec.weakening.when(value):
                found[spec.weakening.name] = spec.weakening
            if spec.of is not None and value is not None:
                for part in weakenings(*(value if isinstance(value, tuple) else (value,))):
                    found[part.name] = part
    return tuple(found[name] for name in sorted(found))


# Checking values (on construction) ------------------------------------------------------------


def _problem(spec: Setting, value: Any) -> str | None:
    if spec.refused and isinstance(value, str) and value in spec.refused:
        return spec.refused[value]
    if spec.pattern is not None and not (isinstance(value, str) and spec.pattern.match(value)):
        return f"{value!r} is not a valid {spec.what or 'value'}"
    if spec.max_length is not None and len(value) > spec.max_length:
        return f"{value!r} is longer than {spec.max_length} characters"
    if spec.low is not None and spec.high is not None and not spec.low <= value <= spec.high:
        return f"{value} is outside {spec.low}..{spec.high}"
    if spec.choices and value not in spec.choices:
        return f"{value!r} is not one of {', '.join(map(str, spec.choices))}"
    return None


def _check(spec: Setting, value: Any) -> None:
    if value is None and spec.default is None:
        return
    if spec.kind is not list:
        if spec.of is None and (problem := _problem(spec, value)):
            raise SettingInvalid(spec.key, problem)
        return  # a section checked itself when it was built
    if len(value) < spec.min_items:
        need = f"one {spec.noun}" if spec.noun else f"{spec.min_items} item(s), got {len(value)}"
        raise SettingInvalid(spec.key, f"needs at least {need}")
    if spec.of is not None:
        return
    for i, item in enumerate(value):
        if problem := _problem(spec, item):
            raise SettingInvalid(f"{spec.key}[{i}]", problem)
    if spec.unique and len(set(value)) != len(value):
        raise SettingInvalid(spec.key, f"lists {f'a {spec.noun}' if spec.noun else 'an item'} twice")


# Reading a config mapping -----------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    if not path or not key:
        return path or key
    return f"{path}{key}" if key.startswith("[") else f"{path}.{key}"


def read(cls: type[T], values: Mapping[str, Any], source: str, path: str = "", **given: Any) -> T:
    """Build `cls` from a config mapping. `path` is where the mapping sits ("" at the top);
    `given` are fields that are not settings. Every mistake is one line: source, key, problem."""
    found = dict(given)
    for name, spec in specs(cls):
        if not spec.key and spec.of is not None:  # a group: read from this same mapping
            found[name] = read(spec.of, values, source, path)
            continue
        key = _join(path, spec.key)
        if spec.key in values:
            found[name] = _value(spec, values[spec.key], key, source)
        elif spec.default is _REQUIRED:
            hint = f" ({spec.hint})" if spec.hint else ""
            raise ConfigError(f"{source}: missing required key {key}{hint}")
    try:
        return cls(**found)
    except SettingInvalid as exc:
        where = _join(path, exc.key)
        raise ConfigError(f"{source}: {where}: {exc.problem}" if where else f"{source}: {exc.problem}") from None


def _is_kind(value: Any, kind: type) -> bool:
    # bool is an int in Python; a YAML `true` must not pass for a number.
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _value(spec: Setting, value: Any, key: str, source: str) -> Any:
    if not _is_kind(value, spec.kind):
        raise ConfigError(f"{source}: {key}: expected {_KIND_NAMES[spec.kind]}, got {value!r}")
    if spec.of is None:
        return tuple(value) if spec.kind is list else value
    if spec.kind is dict:
        return _section(spec.of, value, key, source)
    items = []
    for i, item in enumerate(value):
        where = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{source}: {where}: expected a mapping with {spec.what}, got {item!r}")
        items.append(_section(spec.of, item, where, source))
    return tuple(items)


def _section(cls: type, values: Mapping[str, Any], key: str, source: str) -> Any:
    unknown = set(values) - set(kinds(cls))
    if unknown:
        raise ConfigError(f"{source}: {key}: unknown key(s) {', '.join(sorted(unknown))}")
    return read(cls, values, source, key)
