"""The access log of `consentry serve`: method, route template, status and time, nothing else.

uvicorn's own access log writes each request's path and query string, and here those carry
subject ids (`/v1/subjects/alice/history`, `?subject=alice`) and credentials (a preference link's
`?t=` token): personal data and bearer tokens in every log line, at the default level. This one
logs the route's template (`/v1/subjects/{subject}/history`), never the path, the query string,
the client's address or a header. `serve` switches uvicorn's off and wraps the app in this one,
outermost, so that it also sees what the decision fast path answers before FastAPI's routing.

    INFO consentry.access: GET /v1/subjects/{subject}/history 200 3.1ms

A request that matched no route is logged as `<unmatched>`. Running uvicorn directly
(`uvicorn --factory consentry.api.app:factory`), pass `--no-access-log`: the factory wraps
the app in this log as well.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.api.route_table import route_table

log = logging.getLogger("consentry.access")

UNMATCHED = "<unmatched>"


class StatusOf:
    """A `send` that remembers the response's status (500 until one starts: an exception)."""

    def __init__(self, send: Send) -> None:
        self.status = 500
        self._send = send

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self._send(message)


class AccessLog:
    """Pure ASGI, around the whole app (`app` must have `.routes`, as FastAPI has)."""

    def __init__(self, app: Any) -> None:
        self.app: ASGIApp = app
        # Routes without parameters: their path is their template (the fast path's routes
        # are answered before routing, so the scope names no route for them).
        self._plain = frozenset(r.path for r in route_table(app.routes) if "{" not in r.path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        sent = StatusOf(send)
        try:
            await self.app(scope, receive, sent)
        finally:
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %d %.1fms",
                    scope.get("method", ""),
                    self.template(scope),
                    sent.status,
                    (time.perf_counter() - started) * 1000,
                )

    def template(self, scope: Scope) -> str:
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        return scope["path"] if scope.get("path") in self._plain else UNMATCHED


def logging_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, with Consentry's loggers on the same handler.

    uvicorn's access logger is kept quiet (WARNING) even if someone switches it back on; ours
    logs at INFO. `level` is the serve log level (`trace` counts as debug here).
    """
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    ours = "DEBUG" if level.lower() == "trace" else level.upper()
    config["formatters"]["consentry"] = {
        "()": "logging.Formatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s",
    }
    config["handlers"]["consentry"] = {
        "formatter": "consentry",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["consentry"] = {"handlers": ["consentry"], "level": ours, "propagate": False}
    config["loggers"]["uvicorn.access"] = {"handlers": [], "level": "WARNING", "propagate": False}
    return config
