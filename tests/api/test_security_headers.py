"""Every HTML page carries its security headers (api/security_headers.py); /metrics can be locked.

The walk visits every GET route of the app (with an admin key, so that JSON routes answer too)
and checks every answer that is HTML, including the error pages: a new page is covered without a
line here, and the set of HTML routes found is pinned so that the walk cannot go quietly empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from consentry.api.app import create_app
from consentry.api.route_table import route_table
from consentry.api.security_headers import DEMO_POLICY, DOCS_POLICY, PAGE_POLICY
from consentry.config import Settings
from consentry.keys import create_key
from consentry.services import Services
from consentry.storage import SqlStore
from consentry.storage.base import Role
from consentry.ui.banner import preference_link_token
from tests.api.test_errors import assert_error

HTML_ROUTES = {"/demo", "/docs", "/preferences", "/redoc"}
PARAMS = {"site": "default", "subject": "s-1", "path": "pages.css"}
ENDLESS = {"/v1/changes/stream"}  # server-sent events, never HTML: tests/api/test_changes.py


@pytest.fixture
def client(store: SqlStore, settings: Settings) -> Iterator[tuple[TestClient, Services]]:
    configured = settings.model_copy(update={"demo": True, "rate_limit": False})
    services = Services.build(configured, store)
    key = create_key(store, "default", Role.ADMIN).key
    with TestClient(create_app(configured, services)) as test_client:
        test_client.headers["Authorization"] = f"Bearer {key}"
        yield test_client, services


def assert_page_headers(r: Any, policy: str) -> None:
    assert r.headers["content-security-policy"] == policy, r.url
    assert "frame-ancestors 'none'" in policy and "base-uri 'none'" in policy
    assert "'unsafe-eval'" not in policy and "script-src 'self';" in policy
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"


def test_every_html_page_has_its_security_headers(client: tuple[TestClient, Services]) -> None:
    test_client, services = client
    html = {}
    for route in route_table(test_client.app.routes):  # type: ignore[attr-defined]
        if "GET" not in route.methods or route.path in ENDLESS:
            continue
        path = re.sub(r"\{(\w+)(:\w+)?\}", lambda m: PARAMS.get(m.group(1), "x"), route.path)
        r = test_client.get(path)
        assert r.headers["x-content-type-options"] == "nosniff", path
        if r.headers.get("content-type", "").startswith("text/html"):
            html[route.path] = r
    assert set(html) == HTML_ROUTES
    policies = {"/docs": DOCS_POLICY, "/redoc": DOCS_POLICY, "/demo": DEMO_POLICY}
    for path, r in html.items():
        assert_page_headers(r, policies.get(path, PAGE_POLICY))
    assert "style-src 'self';" in PAGE_POLICY, "the preference center allows no inline style"

    # The preference center's other faces: a link's page, a person's page, its error pages.
    test_client.headers.pop("Authorization")
    link = preference_link_token(services, "default", "s-1", 1)
    faces = [
        test_client.get(f"/preferences?t={link}"),
        test_client.get("/preferences?t=not.a.token"),
        test_client.post("/preferences", data={"all": "allow"}),
        test_client.post("/preferences/open", data={"t": "nope"}),
    ]
    opened = test_client.post("/preferences/open", data={"t": link})
    assert opened.status_code == 200 and opened.url.path == "/preferences"
    for r in [*faces, opened]:
        assert r.headers["content-type"].startswith("text/html")
        assert_page_headers(r, PAGE_POLICY)
        assert r.headers["cache-control"] == "no-store"


def test_pages_have_no_inline_script_or_style(client: tuple[TestClient, Services]) -> None:
    """What lets the CSP forbid them: a template that adds one fails here, not in a browser."""
    test_client, _ = client
    for path in sorted(HTML_ROUTES):
        text = test_client.get(path).text
        assert "<style" not in text, path
        assert " style=" not in text, path
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), path
        assert not re.search(r"\son[a-z]+=", text), path  # no onclick= and the like


def test_metrics_behind_a_token(store: SqlStore, settings: Settings) -> None:
    configured = Settings.model_validate(
        {**settings.model_dump(), "metrics_token": "s3cret-scrape"}
    )
    services = Services.build(configured, store)
    with TestClient(create_app(configured, services)) as test_client:
        r = test_client.get("/metrics")
        assert_error(r, 401, "unauthenticated", "bearer")
        assert r.headers["www-authenticate"] == "Bearer"
        wrong = test_client.get("/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = test_client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"})
        assert ok.status_code == 200 and "consentry_http_requests_total" in ok.text


def test_metrics_open_without_a_token(api: Any) -> None:
    api.client.headers.pop("Authorization")
    assert api.client.get("/metrics").status_code == 200
