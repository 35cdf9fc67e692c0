"""Request-scoped dependencies: the services of this app and the caller's API key."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from consentry.keys import AuthenticationError, authenticate, bearer_token, is_revoked, require
from consentry.services import Services
from consentry.storage.base import ApiKey, StoreUnavailableError

KEY_CACHE_SECONDS = 10.0
#: How often a server reads the revocation generation; a revoked key is refused by every server
#: within this (plus the read itself): the bound issue 10 (#17) sets is one second.
REVOCATION_CHECK_SECONDS = 0.5


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


class KeyCache:
    """Remembers resolved keys briefly: a check should not cost a key lookup in the database.

    A revocation must reach every worker within a second, so the cache reads the store's
    revocation generation (one indexed MAX, shared by all keys) at most every
    REVOCATION_CHECK_SECONDS, and forgets every key when it changed. Each entry remembers the
    generation it was read under, so a lookup that raced with a revocation is never served
    after it. A key whose revocation lies ahead (a rotation's grace period) is refused once
    that time has come, from the cache too. A hit costs a clock read and a few compares
    (bench/bench_keycache.py).

    Fail closed, and fast: when the generation cannot be read, keys are served only while the
    last good read is under a second old; after that every request is refused at once
    (StoreUnavailableError: 503) without touching the database again until the next attempt,
    at most one every REVOCATION_CHECK_SECONDS, so a database that hangs holds up one request
    per interval, not all of them.
    """

    def __init__(self, check_interval: float = REVOCATION_CHECK_SECONDS) -> None:
        self.check_interval = check_interval
        self._keys: dict[str, tuple[float, int, ApiKey]] = {}
        self._generation = -1
        self._checked_at = float("-inf")
        self._synced_at = float("-inf")
        self._lock = threading.Lock()

    def cached(self, authorization: str | None) -> ApiKey | None:
        """The key of this header if it can be answered without the database: resolved under
        the current generation, which was read less than REVOCATION_CHECK_SECONDS ago. None
        means: call resolve (off the event loop: it may read the database)."""
        now = time.monotonic()
        interval = self.check_interval
        if now - self._checked_at >= interval or now - self._synced_at > 2 * interval:
            return None
        return self._hit(authorization, now)

    def resolve(self, services: Services, authorization: str | None) -> ApiKey:
        now = time.monotonic()
        if now - self._checked_at >= self.check_interval:
            self._sync(services)
        if now - self._synced_at > 2 * self.check_interval:
            bearer_token(authorization)  # a malformed header is still a 401, not a 503
            raise StoreUnavailableError("cannot read the API keys' revocations")
        generation = self._generation
        key = self._hit(authorization, now)
        if key is not None:
            return key
        key = authenticate(services.store, authorization)
        assert authorization is not None
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[authorization] = (now, generation, key)
        return key

    def _hit(self, authorization: str | None, now: float) -> ApiKey | None:
        entry = self._keys.get(authorization) if authorization else None
        if entry is None or entry[1] != self._generation or now - entry[0] >= KEY_CACHE_SECONDS:
            return None
        key = entry[2]
        if key.revoked_at is not None and is_revoked(key):
            raise AuthenticationError("unknown or revoked API key")
        return key

    def invalidate(self) -> None:
        """This process revoked a key: read the generation again before the next answer."""
        self._checked_at = float("-inf")

    def _sync(self, services: Services) -> None:
        """Read the revocation generation; one thread reads, the others wait for its answer."""
        with self._lock:
            started = time.monotonic()
            if started - self._checked_at < self.check_interval:
                return  # another thread just read it
            self._checked_at = started
            try:
                generation = services.store.api_key_generation()
            except StoreUnavailableError:
                return  # resolve refuses once the last good read is a second old
            if generation != self._generation:
                self._keys.clear()
                self._generation = generation
            self._synced_at = started


def needs(scope: str) -> Callable[..., ApiKey]:
    """A dependency that authenticates the caller and requires `scope`."""

    def dependency(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
    ) -> ApiKey:
        services = get_services(request)
        cache: KeyCache = request.app.state.key_cache
        key = cache.resolve(services, authorization)
        require(key, scope)
        return key

    return dependency
