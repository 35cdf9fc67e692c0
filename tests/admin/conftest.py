"""Console fixtures: the app on each backend, and a browser-like client that signs in by form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from consentry.keys import create_key
from consentry.services import Services
from consentry.storage.base import Role

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class Console:
    """A TestClient that keeps cookies, as a browser does, and fills in the forms' CSRF token."""

    def __init__(self, client: Any, services: Services) -> None:
        self.client = client
        self.services = services
        self.csrf = ""

    def key(self, role: Role, tenant: str = "default") -> str:
        self.services.store.ensure_tenant(tenant)
        return create_key(self.services.store, tenant, role, f"{role.value} for tests").key

    def sign_in(self, key: str) -> Any:
        form = self.client.get("/admin/sign-in")
        token = CSRF.search(form.text)
        assert token, form.text
        answer = self.client.post(
            "/admin/sign-in",
            data={"csrf": token.group(1), "key": key, "next": "/admin"},
            follow_redirects=False,
        )
        if answer.status_code == 303:
            self.page("/admin")
        return answer

    def page(self, path: str, status: int = 200) -> Any:
        answer = self.client.get(path, follow_redirects=False)
        assert answer.status_code == status, answer.text[-2000:]
        found = CSRF.search(answer.text)
        if found:
            self.csrf = found.group(1)
        return answer

    def post(self, path: str, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.client.post(
            path, data={"csrf": self.csrf, **data}, follow_redirects=False, **kwargs
        )


@pytest.fixture
def raw_sql(db_url: str) -> Any:
    """raw_sql("UPDATE ...", params) on the test database, bypassing the store."""
    from tests.storage.conftest import run_raw_sql

    return lambda sql, params=(): run_raw_sql(db_url, sql, params)


@pytest.fixture
def console(services: Services) -> Iterator[Console]:
    from fastapi.testclient import TestClient

    from consentry.api.app import create_app

    with TestClient(create_app(services.settings, services)) as client:
        yield Console(client, services)


@pytest.fixture
def admin(console: Console) -> Console:
    """Signed in with an admin key of `default`."""
    answer = console.sign_in(console.key(Role.ADMIN))
    assert answer.status_code == 303
    return console
