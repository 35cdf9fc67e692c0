"""create_app(settings): the HTTP API, built from one Settings object.

The app refuses to build on a database whose schema is not current (run `consentry migrate`);
`consentry serve` creates the schema itself on a new, empty database before it gets here.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from consentry import __version__
from consentry.api import (
    assets,
    banner,
    catalog,
    changes,
    consents,
    decisions,
    docs_pages,
    health,
    mappings,
    pages,
    ratelimit,
)
from consentry.api import keys as keys_api
from consentry.api import ledger as ledger_api
from consentry.api.access_log import AccessLog, StatusOf, logging_config
from consentry.api.deps import KeyCache
from consentry.api.errors import error_body, install_error_handlers
from consentry.api.metrics import Metrics
from consentry.api.security_headers import SecurityHeadersMiddleware
from consentry.config import Settings
from consentry.propagation.notifier import ChangeNotifier
from consentry.services import Services

MAX_BODY_BYTES = 1_048_576


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    """Build the API; `services` may be passed in (tests, embedding), else built from settings."""
    owned = services is None
    services = services or Services.build(settings)
    services.store.require_current_schema()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            services.close()

    # FastPathAPI: FastAPI with the lean check path in front (api/decisions.py says why).
    app = decisions.FastPathAPI(
        title="Consentry",
        version=__version__,
        description="The system of record for consent. Every request authenticates with"
        " `Authorization: Bearer <api key>`; errors share one JSON shape:"
        ' `{"error": {"status", "code", "message", "details"?}}`.',
        lifespan=lifespan,
        docs_url=None,  # served from local files by api/docs_pages.py
        redoc_url=None,
    )
    app.state.services = services
    app.state.settings = settings
    app.state.metrics = Metrics()
    app.state.key_cache = KeyCache()
    app.state.notifier = ChangeNotifier()
    services.recorder.listeners.append(
        lambda _tenant, result: app.state.notifier.notify(result.token)
    )

    install_error_handlers(app)
    for module in (health, catalog, consents, decisions, changes):
        app.include_router(module.router)
    for module in (mappings, banner, pages):  # collection: banner, preference center, demo
        app.include_router(module.router)
    app.include_router(decisions.wellknown)
    app.include_router(ledger_api.router)  # the verifiable ledger (docs/ledger.md)
    for module in (docs_pages, assets):  # /docs, /redoc and /static/*, from local files
        app.include_router(module.router)
    ratelimit.install(app, settings)  # limits of the public endpoints (docs/collection.md)
    app.add_middleware(SecurityHeadersMiddleware)  # CSP & co. on every page (and on 429s)
    app.include_router(keys_api.router)  # API keys: create, list, revoke, rotate (admin)
    app.add_middleware(ObserveMiddleware, metrics=app.state.metrics)
    return app


class ObserveMiddleware:
    """Counts and times requests by route template, and refuses oversized bodies (413)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > MAX_BODY_BYTES:
                await _send_json(
                    send,
                    413,
                    error_body(
                        413,
                        "payload_too_large",
                        f"request bodies are limited to {MAX_BODY_BYTES} bytes; split the request",
                    ),
                )
                return
        started = time.perf_counter()
        sent = StatusOf(send)
        try:
            await self.app(scope, receive, sent)
        finally:
            status = sent.status
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.latency.labels(method, path).observe(time.perf_counter() - started)


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    data = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def served(app: FastAPI) -> ASGIApp:
    """The app as `consentry serve` runs it: inside Consentry's access log (api/access_log.py)."""
    return AccessLog(app)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """What `serve` passes to uvicorn: no uvicorn access log (it logs query strings: subjects,
    tokens), Consentry's loggers configured, and X-Forwarded-For/-Proto believed only from
    CONSENTRY_TRUSTED_PROXIES (uvicorn's own default, FORWARDED_ALLOW_IPS, trusts 127.0.0.1)."""
    trusted = list(settings.trusted_proxies)
    return {
        "access_log": False,
        "log_config": logging_config(settings.log_level),
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
    }


def factory() -> ASGIApp:
    """For `uvicorn --factory consentry.api.app:factory` (several workers): settings from env;
    with Consentry's access log (api/access_log.py: run uvicorn with --no-access-log)."""
    return served(create_app(Settings()))
