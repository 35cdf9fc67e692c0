"""Request-scoped dependencies: the services of this app and the caller's API key."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Header, Request

from consentry.keys import authenticate, require
from consentry.services import Services
from consentry.storage.base import ApiKey

KEY_CACHE_SECONDS = 10.0


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


class KeyCache:
    """Remembers resolved keys briefly: a check should not cost a key lookup in the database.

    A revoked key stays usable for at most KEY_CACHE_SECONDS in a running server.
    """

    def __init__(self) -> None:
        self._keys: dict[str, tuple[float, ApiKey]] = {}

    def resolve(self, services: Services, authorization: str | None) -> ApiKey:
        now = time.monotonic()
        if authorization:
            cached = self._keys.get(authorization)
            if cached is not None and now - cached[0] < KEY_CACHE_SECONDS:
                return cached[1]
        key = authenticate(services.store, authorization)
        assert authorization is not None
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[authorization] = (now, key)
        return key


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
