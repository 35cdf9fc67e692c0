"""Limits of the public endpoints: per client and per site, answered 429 with Retry-After.

The banner, the preference center, the demo, gpc.json, the API docs, health and metrics answer
without an API key, so anyone can call them as often as they like; without a limit, 300 anonymous
POSTs wrote 600 permanent events in 5 s. Every request to a public route (one whose handler does
not read an API key, found by walking the app's routes, so a new public route is limited without
a line here) takes a token from up to four buckets (docs/collection.md#limits):

- the client's (its IP address, IPv6 by /64: one host usually holds a whole /64), every request;
- the client's writes (POST, PUT, PATCH, DELETE: what can record an event);
- the site's (the tenant named in the path, `/v1/banner/{site}/...`, or in a Consentry token the
  request carries: a preference link, the preference-center or banner session cookie), every
  request, and its writes. The site's buckets bound what strangers together can do to one
  tenant; they are generous, so that one abuser's client limit bites long before.

The request is refused, and takes nothing from any bucket, when one of them is empty. A bucket is
GCRA (a token bucket kept as one timestamp per key): `burst` requests at once, then `per_second`.

Where the buckets live: in the process (`LocalLimiter`), so each worker of `serve --workers N`
counts on its own (a client gets up to N times the limit); with `CONSENTRY_REDIS_URL`, in Redis,
shared by every worker and server (api/ratelimit_redis.py), falling back to the process's own
buckets while Redis fails (it neither lets everything through nor refuses everything).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from consentry.api.client_address import client_address
from consentry.api.errors import error_body
from consentry.api.route_table import RouteInfo, route_table
from consentry.config import RateLimit, Settings
from consentry.tokens import unverified_tenant

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
TOKEN_COOKIES = ("consentry_pref", "consentry_sid")  # ui: preference center, banner session
MAX_SITE = 64
MAX_LOCAL_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    limit: RateLimit
    name: str  # what the 429 names: "client", "site"


@dataclass(frozen=True, slots=True)
class Refusal:
    wait: float  # seconds until the empty bucket has a token again
    bucket: Bucket


class Limiter(Protocol):
    def acquire(self, buckets: Sequence[Bucket]) -> Refusal | None:
        """None when every bucket had a token (each is then taken); else the emptiest one."""
        ...


class LocalLimiter:
    """GCRA buckets in this process: a key's theoretical arrival time (TAT), in a dict.

    A key whose TAT has passed is a full bucket, the same as no key: the dict is swept of them
    when it grows past MAX_LOCAL_KEYS, and cleared if that is not enough (a flood from more
    addresses than that gets fresh buckets: the site buckets still hold).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def acquire(self, buckets: Sequence[Bucket]) -> Refusal | None:
        with self._lock:
            now = self._clock()
            refusal: Refusal | None = None
            new: list[tuple[str, float]] = []
            for bucket in buckets:
                interval = 1.0 / bucket.limit.per_second
                tat = max(self._tat.get(bucket.key, now), now) + interval
                wait = tat - now - bucket.limit.burst * interval
                if wait > 1e-9 and (refusal is None or wait > refusal.wait):
                    refusal = Refusal(wait, bucket)
                new.append((bucket.key, tat))
            if refusal is not None:
                return refusal
            if len(self._tat) > MAX_LOCAL_KEYS:
                self._sweep(now)
            self._tat.update(new)
            return None

    def _sweep(self, now: float) -> None:
        self._tat = {k: t for k, t in self._tat.items() if t > now}
        if len(self._tat) > MAX_LOCAL_KEYS:
            self._tat.clear()


# --------------------------------------------------------------------------- which routes


def _reads_api_key(dependant: Dependant) -> bool:
    if any(p.alias.lower() == "authorization" for p in dependant.header_params):
        return True
    return any(_reads_api_key(d) for d in dependant.dependencies)


def is_public(route: BaseRoute) -> bool:
    """A route anyone may call: its handler (or a dependency) does not read the API key."""
    if isinstance(route, APIRoute):
        return not _reads_api_key(route.dependant)
    return True  # FastAPI's own (openapi.json), or a plain Starlette route: no key either


def public_routes(routes: Sequence[BaseRoute]) -> list[RouteInfo]:
    return [r for r in route_table(routes) if is_public(r.route)]


def site_of(scope: Scope, path_params: dict[str, object]) -> str | None:
    """The tenant a public request speaks for, when it names one (unverified: only a key)."""
    site = path_params.get("site")
    if isinstance(site, str):
        return site[:MAX_SITE]
    for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
        if name == "t":
            return _tenant(value)
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            cookies = cookie_parser(value.decode("latin-1"))
            for cookie in TOKEN_COOKIES:
                if cookie in cookies:
                    return _tenant(cookies[cookie])
    return None


def _tenant(token: str) -> str | None:
    tenant = unverified_tenant(token)
    return tenant[:MAX_SITE] if tenant else None


def client_key(scope: Scope, settings: Settings) -> str:
    address = client_address(scope, settings.trusted_proxies)
    if address is None:
        peer = scope.get("client")
        return "peer:" + (str(peer[0])[:64] if peer else "unknown")
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def buckets_for(scope: Scope, path_params: dict[str, object], settings: Settings) -> list[Bucket]:
    write = scope.get("method", "GET") in WRITE_METHODS
    client = client_key(scope, settings)
    found = [Bucket("c:" + client, settings.rate_limit_client, "client")]
    if write:
        found.append(Bucket("cw:" + client, settings.rate_limit_client_writes, "client"))
    site = site_of(scope, path_params)
    if site is not None:
        found.append(Bucket("s:" + site, settings.rate_limit_site, "site"))
        if write:
            found.append(Bucket("sw:" + site, settings.rate_limit_site_writes, "site"))
    return found


# --------------------------------------------------------------------------- the middleware


class RateLimitMiddleware:
    """Refuses, before routing and before reading a body, what is over a public limit."""

    def __init__(
        self, app: ASGIApp, settings: Settings, limiter: Limiter, blocking: bool = False
    ) -> None:
        self.app = app
        self.settings = settings
        self.limiter = limiter
        self.blocking = blocking  # a limiter that does I/O runs in the thread pool
        self._public: list[RouteInfo] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.settings.rate_limit:
            await self.app(scope, receive, send)
            return
        path_params = self._match(scope)
        if path_params is None:
            await self.app(scope, receive, send)
            return
        buckets = buckets_for(scope, path_params, self.settings)
        if self.blocking:
            refusal = await run_in_threadpool(self.limiter.acquire, buckets)
        else:
            refusal = self.limiter.acquire(buckets)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        seconds = max(1, math.ceil(refusal.wait))
        who = "this client" if refusal.bucket.name == "client" else "all clients of this site"
        response = JSONResponse(
            error_body(
                429,
                "too_many_requests",
                f"too many requests from {who}; retry in {seconds} s",
            ),
            429,
            headers={"Retry-After": str(seconds)},
        )
        await response(scope, receive, send)

    def _match(self, scope: Scope) -> dict[str, object] | None:
        """The path parameters of the public route this request is for; None if it is not one."""
        if self._public is None:
            self._public = public_routes(scope["app"].routes)
        for route in self._public:
            params = route.match(scope["path"])
            if params is not None:
                return params
        return None


def install(app: Any, settings: Settings) -> None:
    """Add the middleware to `app`, with Redis buckets when CONSENTRY_REDIS_URL is set."""
    limiter: Limiter = LocalLimiter()
    blocking = False
    if settings.redis_url and settings.rate_limit:
        from consentry.api.ratelimit_redis import RedisLimiter

        limiter = RedisLimiter.from_url(
            settings.redis_url,
            timeout_ms=settings.redis_timeout_ms,
            retry_seconds=settings.redis_retry_seconds,
        )
        blocking = True
    app.state.rate_limiter = limiter
    app.add_middleware(RateLimitMiddleware, settings=settings, limiter=limiter, blocking=blocking)
