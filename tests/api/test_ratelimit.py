"""Limits of the public endpoints (api/ratelimit.py): 429 + Retry-After, nothing written past them.

Every public route is walked (found the way the middleware finds them: routes that read no API
key), so a new public route is limited, or this test says why not.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.api.app import create_app
from consentry.api.ratelimit import Bucket, LocalLimiter, public_routes
from consentry.api.ratelimit_redis import RedisLimiter
from consentry.config import RateLimit, Settings
from consentry.keys import create_key
from consentry.services import Services
from consentry.storage import SqlStore
from consentry.storage.base import Role
from consentry.storage.collection import CollectionStore
from consentry.ui.pages import ensure_demo
from tests.api.test_errors import assert_error

CHOICE = {"analytics": True, "personalization": False, "ads": False, "data_sale": False}
TIGHT = RateLimit(per_second=0.01, burst=3)  # 3 at once, then one per 100 s
AMPLE = RateLimit(per_second=1000, burst=1000)

# What anyone may call without an API key. A route that joins this list is limited
# automatically; this list makes sure it joins on purpose.
PUBLIC = {
    ("GET", "/.well-known/gpc.json"),
    ("GET", "/banner.js"),
    ("GET", "/demo"),
    ("GET", "/docs"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/preferences"),
    ("POST", "/preferences"),
    ("POST", "/preferences/open"),
    ("GET", "/readyz"),
    ("GET", "/redoc"),
    ("GET", "/static/{path:path}"),
    ("GET", "/v1/banner/{site}/config"),
    ("POST", "/v1/banner/{site}/consent"),
    ("OPTIONS", "/v1/banner/{site}/consent"),
}
PARAMS = {"site": "default", "path": "pages.css"}


@contextmanager
def app_with(
    store: SqlStore,
    settings: Settings,
    client: tuple[str, int] = ("203.0.113.7", 4000),
    **limits: Any,
) -> Iterator[tuple[TestClient, Services]]:
    configured = Settings.model_validate({**settings.model_dump(), "demo": True, **limits})
    services = Services.build(configured, store)
    with TestClient(create_app(configured, services), client=client) as test_client:
        yield test_client, services


def banner_events(services: Services) -> int:
    return len(services.store.events_after(0, 100_000, tenant="default"))


def test_a_burst_of_anonymous_banner_posts_is_refused_and_writes_nothing_more(
    store: SqlStore, settings: Settings
) -> None:
    """300 anonymous POSTs wrote 600 permanent events in 5 s: past the (default) write burst of
    one client, each is refused with 429 and Retry-After, and records nothing. (The refill rate is
    slowed so that a slow machine's test does not earn a token back while it runs.)"""
    burst = Settings.model_fields["rate_limit_client_writes"].default.burst
    writes = RateLimit(per_second=0.001, burst=burst)
    with app_with(store, settings, rate_limit_client_writes=writes) as (client, services):
        ensure_demo(services, CollectionStore(store), "default")
        statuses = []
        for _ in range(30):
            client.cookies.clear()  # a new "visitor" each time, as the flood was
            r = client.post("/v1/banner/default/consent", json={"choices": CHOICE})
            statuses.append(r.status_code)
        assert statuses == [200] * burst + [429] * (30 - burst)
        assert banner_events(services) == burst * len(CHOICE)
        assert_error(r, 429, "too_many_requests", "too many requests from this client")
        assert int(r.headers["retry-after"]) >= 1
        assert r.headers.get("set-cookie") is None
        # Reads of the same client are counted apart from its writes.
        assert client.get("/v1/banner/default/config").status_code == 200


def test_every_public_route_is_limited_per_client(store: SqlStore, settings: Settings) -> None:
    with app_with(store, settings, rate_limit_client=TIGHT) as (client, services):
        ensure_demo(services, CollectionStore(store), "default")
        found = set()
        for route in public_routes(client.app.routes):  # type: ignore[attr-defined]
            for method in sorted(route.methods - {"HEAD"}):
                found.add((method, route.path))
                path = route.path.replace("{path:path}", "{path}").format(**PARAMS)
                # Each route from its own client address, so that each starts with a full bucket.
                peer = (f"198.51.100.{len(found)}", 4000)
                with TestClient(client.app, client=peer) as one:
                    answers = [one.request(method, path).status_code for _ in range(4)]
                assert 429 not in answers[:3], (method, path, answers)
                assert answers[3] == 429, (method, path, answers)
        assert found == PUBLIC, "a route became public, or stopped being: on purpose?"


def test_authenticated_routes_are_not_limited(store: SqlStore, settings: Settings) -> None:
    with app_with(store, settings, rate_limit_client=TIGHT) as (client, _):
        key = create_key(store, "default", Role.ADMIN).key
        for _ in range(10):
            r = client.get("/v1/purposes", headers={"Authorization": f"Bearer {key}"})
            assert r.status_code == 200


def test_the_site_limit_holds_across_clients(store: SqlStore, settings: Settings) -> None:
    with app_with(store, settings, rate_limit_site=TIGHT, rate_limit_client=AMPLE) as (
        client,
        services,
    ):
        ensure_demo(services, CollectionStore(store), "default")
        answers = []
        for i in range(5):
            with TestClient(client.app, client=(f"192.0.2.{i}", 1)) as stranger:
                answers.append(stranger.get("/v1/banner/default/config").status_code)
        assert answers == [200, 200, 200, 429, 429]
        r = TestClient(client.app, client=("192.0.2.99", 1)).get("/v1/banner/default/config")
        assert_error(r, 429, "too_many_requests", "all clients of this site")
        # Another site (tenant) has its own bucket.
        assert client.get("/v1/banner/other/config").status_code == 404


def test_x_forwarded_for_is_believed_only_from_trusted_proxies(
    store: SqlStore, settings: Settings
) -> None:
    limits = {"rate_limit_client": TIGHT}
    # Not trusted (the default): a client cannot pick a new address per request.
    with app_with(store, settings, **limits) as (client, _):
        answers = [
            client.get("/healthz", headers={"X-Forwarded-For": f"192.0.2.{i}"}).status_code
            for i in range(4)
        ]
        assert answers[3] == 429
    # Behind a trusted proxy: each forwarded client has its own bucket.
    with app_with(
        store, settings, client=("10.1.2.3", 1), trusted_proxies=["10.0.0.0/8"], **limits
    ) as (client, _):
        for i in range(4):
            forwarded = {"X-Forwarded-For": f"198.51.100.{i}, 10.9.9.9"}
            assert client.get("/healthz", headers=forwarded).status_code == 200
        one = {"X-Forwarded-For": "198.51.100.200"}
        assert [client.get("/healthz", headers=one).status_code for _ in range(4)][3] == 429


def test_the_recorded_address_is_the_forwarded_client_behind_a_trusted_proxy(
    store: SqlStore, settings: Settings
) -> None:
    with app_with(
        store,
        settings,
        client=("10.1.2.3", 1),
        trusted_proxies=["10.0.0.0/8"],
        evidence_policy="full",
    ) as (client, services):
        ensure_demo(services, CollectionStore(store), "default")
        forwarded = {"X-Forwarded-For": "198.51.100.23, 10.0.0.7"}
        r = client.post("/v1/banner/default/consent", json={"choices": CHOICE}, headers=forwarded)
        assert r.status_code == 200
        events = services.store.events_after(0, 100, tenant="default")
        assert {e.evidence.ip for e in events} == {"198.51.100.23"}


def test_switched_off(store: SqlStore, settings: Settings) -> None:
    with app_with(store, settings, rate_limit=False, rate_limit_client=TIGHT) as (client, _):
        assert all(client.get("/healthz").status_code == 200 for _ in range(10))


def test_local_buckets_refill_at_their_rate() -> None:
    now = [0.0]
    limiter = LocalLimiter(clock=lambda: now[0])
    bucket = [Bucket("c:x", RateLimit(per_second=2, burst=2), "client")]
    assert limiter.acquire(bucket) is None and limiter.acquire(bucket) is None
    refused = limiter.acquire(bucket)
    assert refused is not None and refused.wait == pytest.approx(0.5)
    now[0] = 0.5
    assert limiter.acquire(bucket) is None
    assert limiter.acquire(bucket) is not None
    # A refusal takes no token from the other buckets of the request.
    other = Bucket("s:x", RateLimit(per_second=1, burst=1), "site")
    assert limiter.acquire([*bucket, other]) is not None
    assert limiter.acquire([other]) is None


@pytest.mark.redis
def test_redis_buckets_are_shared_by_every_worker(
    store: SqlStore, settings: Settings, redis_url: str
) -> None:
    """Two apps (two workers) on one Redis share the client's bucket: 3 in all, not 3 each."""
    peer = (f"2001:db8:{uuid.uuid4().hex[:4]}::1", 1)  # a fresh /64: no bucket of another run
    limits = {"rate_limit_client": TIGHT, "redis_url": redis_url}
    with (
        app_with(store, settings, client=peer, **limits) as (one, _),
        app_with(store, settings, client=peer, **limits) as (two, _),
    ):
        assert one.app.state.rate_limiter.__class__ is RedisLimiter  # type: ignore[attr-defined]
        answers = [c.get("/healthz").status_code for c in (one, two, one, two)]
        assert answers == [200, 200, 200, 429]
        # Same /64, another host: the same client.
        other = (peer[0].replace("::1", "::2"), 1)
        with TestClient(one.app, client=other) as neighbour:
            assert neighbour.get("/healthz").status_code == 429


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_without_redis_each_process_counts_alone(store: SqlStore, settings: Settings) -> None:
    """Redis down: neither open (no limit) nor closed (every visitor refused)."""
    dead = f"redis://127.0.0.1:{_closed_port()}/0"
    with app_with(store, settings, rate_limit_client=TIGHT, redis_url=dead) as (client, _):
        answers = [client.get("/healthz").status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]


def test_a_refusal_carries_the_security_headers(store: SqlStore, settings: Settings) -> None:
    with app_with(store, settings, rate_limit_client=TIGHT) as (client, _):
        refused = [client.get("/preferences") for _ in range(4)][3]
        assert refused.status_code == 429
        assert refused.headers["x-content-type-options"] == "nosniff"
