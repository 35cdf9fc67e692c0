"""The operators' console's presentation: its Jinja2 environment, SVG charts and text diffs.

Templates live in ui/templates/admin/, assets in ui/static/admin/ (served by Consentry itself,
never from a CDN). The routes that use them are in api/admin/ (docs/admin.md says how to add a
page).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape


def when(value: datetime | None) -> str:
    """A time as an operator reads it: UTC, to the second."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def day(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d")


def number(value: int | float) -> str:
    """Thousands separated by a thin space: readable in every locale."""
    return f"{value:,}".replace(",", "\u202f")


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("consentry.ui", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
    )
    env.filters.update(when=when, day=day, number=number)
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
