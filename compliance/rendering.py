"""One Jinja environment for the documents built from the records (register, evidence): the
templates/ of the package, StrictUndefined, and the filters their formats need."""

from __future__ import annotations

import jinja2

from compliance.paths import TEMPLATES_DIR


def md_cell(value: object) -> str:
    # A pipe or newline would break a Markdown table row.
    return str(value).replace("|", "\\|").replace("\n", " ")


def css_class(value: str) -> str:
    """A status or verdict as a class-name suffix: "not kept yet" -> not-kept-yet, "n/a" -> na."""
    return value.replace("/", "").replace(" ", "-")


def environment(autoescape: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_cell
    env.filters["css"] = css_class
    return env
