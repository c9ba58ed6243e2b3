"""Jinja rendering of sql/: StrictUndefined, and values reach SQL only through quoting filters.

`ident` and `literal` quote with psycopg's sql.Identifier / sql.Literal; any other value that
reaches the output is an error, so a template cannot splice a raw string into SQL by mistake.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from markupsafe import Markup
from psycopg import sql

from provisioner import resources
from provisioner.resources import PackageIncomplete

_STEP = re.compile(r"^(?:V(?P<version>\d{3})|R)__(?P<name>[a-z0-9_]+)\.sql\.j2$")


class SqlText(Markup):
    """Text that is already safe SQL: quoted by a filter, or a macro's rendered output."""


def _defined(value: Any) -> Any:
    if isinstance(value, jinja2.Undefined):
        str(value)  # StrictUndefined raises UndefinedError naming the missing variable
    return value


def ident(*parts: str) -> SqlText:
    return SqlText(sql.Identifier(*map(_defined, parts)).as_string(None))


def literal(value: Any) -> SqlText:
    return SqlText(sql.Literal(_defined(value)).as_string(None))


def literals(values: Iterable[Any]) -> SqlText:
    """A comma-separated list of literals, e.g. for `in (...)`."""
    return SqlText(sql.SQL(", ").join(sql.Literal(_defined(v)) for v in values).as_string(None))


# The only ways a value reaches SQL (sqlfluff's lint context renders with the same ones).
FILTERS = {"ident": ident, "literal": literal, "literals": literals}


def _only_quoted(value: Any) -> Any:
    # Markup is what a filter or a macro returns; a plain str or number is a raw value.
    if isinstance(value, Markup):
        return value
    raise jinja2.TemplateError(f"value {value!r} reached SQL without the ident or literal filter")


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.sql_dir())),
        undefined=jinja2.StrictUndefined,
        finalize=_only_quoted,
        autoescape=True,  # with finalize: only Markup (quoted SQL) is ever emitted
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # they ship with the package: no stat of the file on every render
    )
    env.filters.update(FILTERS)
    return env


@dataclass(frozen=True)
class Step:
    kind: str  # the sql/ subdirectory: platform, partner, tenant
    file: str
    repeatable: bool

    @property
    def name(self) -> str:
        return self.file.removesuffix(".sql.j2")

    def render(self, context: dict[str, Any]) -> str:
        return environment().get_template(f"{self.kind}/{self.file}").render(**context)

    @property
    def digest(self) -> str:
        """What the step's text is made from besides its context: its template, every template
        it pulls in, and this module (the filters that quote values)."""
        return _template_digest(environment(), f"{self.kind}/{self.file}")


@cache
def _renderer_digest() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


@cache
def _template_digest(env: jinja2.Environment, name: str) -> str:
    # Keyed by the environment too: a new one (another sql/ directory) digests afresh.
    assert env.loader is not None
    source = env.loader.get_source(env, name)[0]
    parts = [_renderer_digest(), source]
    found = set(jinja2.meta.find_referenced_templates(env.parse(source)))
    referenced = {n for n in found if n is not None}
    if None in found:  # a name computed at render time: it may be any template
        referenced = set(env.list_templates(extensions=["j2"])) - {name}
    for included in sorted(referenced):
        parts.append(_template_digest(env, included))
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@cache
def steps(kind: str) -> tuple[Step, ...]:
    """Versioned steps in version order, then repeatable steps by name (Flyway's order)."""
    versioned, repeatable = [], []
    for path in resources.sql_files(kind, "*.sql.j2"):
        match = _STEP.match(path.name)
        if not match:
            raise PackageIncomplete(f"{path}: not a V###__name.sql.j2 or R__name.sql.j2 step")
        if match.group("version"):
            versioned.append(Step(kind, path.name, False))
        else:
            repeatable.append(Step(kind, path.name, True))
    versions = [s.file[:4] for s in versioned]
    if len(set(versions)) != len(versions):
        raise PackageIncomplete(f"sql/{kind}: two steps share a version number")
    return tuple(versioned + repeatable)
