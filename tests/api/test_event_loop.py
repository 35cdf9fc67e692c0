"""No route touches the database or Redis on the event loop (issue 10, item 12, as a rule).

Every database access goes through the store's `_read`/`_write`, every Redis access through
the decision cache's methods; here each of them notes when it runs on a thread that is running
an event loop. Then every route of the app is called (every method, path parameters filled, as
an admin, with bodies that pass validation where it matters), the decision fast path in each of
its forms, the change feed long-poll and stream: none may have touched either on the loop.
A new async route that reads the database directly fails this test.
"""

from __future__ import annotations

import asyncio
import re
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from consentry.decisions.cache import RedisStateCache
from consentry.storage import SqlStore
from consentry.storage.base import Role
from tests.conftest import ApiClient

PATH_VALUES = {"subject": "alice", "notice_id": "privacy", "site": "default"}


def guarded(violations: list[str], name: str, target: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # a worker thread: where blocking work belongs
        else:
            violations.append(f"{name} on the event loop:\n{''.join(traceback.format_stack())}")
        return target(*args, **kwargs)

    return wrapper


@pytest.fixture
def guard(api: ApiClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    violations: list[str] = []
    store: SqlStore = api.services.store
    for name in ("_read", "_write"):
        monkeypatch.setattr(store, name, guarded(violations, f"store.{name}", getattr(store, name)))
    yield violations


def every_route(app: Any) -> Iterator[tuple[str, str]]:
    def walk(routes: list[Any]) -> Iterator[tuple[str, str]]:
        for route in routes:
            if hasattr(route, "original_router"):  # an included router
                yield from walk(route.original_router.routes)
            elif hasattr(route, "path"):
                for method in sorted(getattr(route, "methods", None) or ()):
                    if method != "HEAD":
                        yield method, route.path

    yield from walk(app.router.routes)


def test_no_route_touches_the_database_on_the_event_loop(api: ApiClient, guard: list[str]) -> None:
    api.purpose("email")
    api.record("alice", email="given")
    calls = 0
    for method, path in every_route(api.client.app):
        if path == "/v1/changes/stream":
            continue  # endless: below
        url = re.sub(r"{(\w+)(:\w+)?}", lambda m: PATH_VALUES.get(m[1], "x"), path)
        params = {"subject": "alice", "purpose": "email", "after": 0, "wait": 0.05}
        api.client.request(method, url, params=params, json={})
        calls += 1
    for params in (
        {"subject": "alice", "purpose": "email"},
        {"subject": "alice", "purpose": "email", "min_token": "1"},
        {"subject": "alice", "purpose": "email", "min_token": "99"},  # waits, then 409
        {"subject": "bob", "purpose": "nope"},
    ):
        api.client.get("/v1/decisions", params=params)
        api.client.get("/v1/decisions", params=params, headers={"Sec-GPC": "1"})
    batch = {"checks": [{"subject": "alice", "purpose": "email"}], "min_token": 1}
    api.client.post("/v1/decisions", json=batch)
    api.client.post("/v1/decisions", json=batch, headers={"Sec-GPC": "1"})
    # A key never seen before: looked up in the database (the key cache is empty for it).
    checker = api.key_for(Role.CHECKER)
    api.client.get("/v1/decisions", params={"subject": "a", "purpose": "email"}, headers=checker)
    api.client.get("/v1/changes", params={"after": 0, "wait": 0.1})
    with api.client.stream("GET", "/v1/changes/stream", params={"after": 0}) as r:
        seen = ""
        for chunk in r.iter_text():
            seen += chunk
            if "event: position" in seen:
                break
    assert calls >= 25, "the walk missed the routes"
    assert not guard, guard[0]


def test_no_decision_touches_redis_on_the_event_loop(
    api: ApiClient, redis_url: str, guard: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = api.services.decisions.active_reader
    cache = RedisStateCache(redis_url)
    for name in ("get_many", "fill_many", "invalidate"):
        monkeypatch.setattr(cache, name, guarded(guard, f"redis.{name}", getattr(cache, name)))
    monkeypatch.setattr(reader, "redis", cache)
    monkeypatch.setattr(reader, "follows", True)
    api.purpose("email")
    api.record("alice", email="given")
    for _ in range(2):
        reader.clear()  # past the L1, to Redis
        r = api.client.get("/v1/decisions", params={"subject": "alice", "purpose": "email"})
        assert r.json()["permitted"]
        api.client.post(
            "/v1/decisions", json={"checks": [{"subject": "alice", "purpose": "email"}]}
        )
    assert cache.hits >= 1, "Redis was never read: the test proved nothing"
    assert not guard, guard[0]
    cache.close()
