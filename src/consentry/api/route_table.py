"""Every route of an app as one flat table: its path template, methods and original route.

The rate limits need to know, before routing, whether a request is for a public route, and the
access log needs the templates of the routes without parameters. FastAPI >= 0.16x keeps
included routers as lazy `_IncludedRouter` entries in `app.routes` (flattened on demand by its
public `iter_route_contexts`); older versions keep a flat list. This module reads both, so
nothing else depends on the difference.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.convertors import Convertor
from starlette.routing import BaseRoute, compile_path


@dataclass(frozen=True, slots=True)
class RouteInfo:
    path: str
    methods: frozenset[str]
    route: BaseRoute  # the route as declared (an APIRoute for FastAPI's own)
    regex: re.Pattern[str]
    convertors: dict[str, Convertor[Any]]

    def match(self, path: str) -> dict[str, Any] | None:
        """The path parameters when `path` is this route's, whatever the method; else None."""
        found = self.regex.match(path)
        if found is None:
            return None
        return {k: self.convertors[k].convert(v) for k, v in found.groupdict().items()}


def _flat(routes: Sequence[BaseRoute]) -> Iterator[tuple[str | None, Any, BaseRoute]]:
    try:
        from fastapi.routing import iter_route_contexts  # type: ignore[attr-defined, unused-ignore]
    except ImportError:  # a FastAPI whose app.routes is flat already
        for route in routes:
            yield getattr(route, "path", None), getattr(route, "methods", None), route
        return
    for context in iter_route_contexts(routes):
        yield context.path, context.methods, context.original_route


def route_table(routes: Sequence[BaseRoute]) -> list[RouteInfo]:
    table = []
    for path, methods, route in _flat(routes):
        if not isinstance(path, str):
            continue  # a mount or websocket without a path template: none here
        regex, _, convertors = compile_path(path)
        table.append(RouteInfo(path, frozenset(methods or ()), route, regex, convertors))
    return table
