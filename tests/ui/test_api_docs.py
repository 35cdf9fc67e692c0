"""Every page in headless Chromium: /docs and /redoc render the API from this server's own files,
and no page requests another origin or breaks its Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import pytest

from consentry.storage.collection import CollectionStore
from consentry.ui.banner import preference_link_token
from consentry.ui.pages import DEMO_TENANT, ensure_demo
from tests.ui.conftest import LiveServer

pytestmark = pytest.mark.browser

WATCH_CSP = """document.addEventListener('securitypolicyviolation', e => {
  (window.__csp = window.__csp || []).push(e.violatedDirective + ' ' + e.blockedURI); });"""


class Visit:
    """A page's requests and CSP violations, as the browser saw them."""

    def __init__(self, ctx: Any, server: LiveServer) -> None:
        self.server = server
        self.requests: list[str] = []
        self.console: list[str] = []
        self.page = ctx.new_page()
        self.page.add_init_script(WATCH_CSP)
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.console.append(m.text))

    def check(self) -> None:
        foreign = [
            u
            for u in self.requests
            if not u.startswith(self.server.url + "/") and not u.startswith(("data:", "blob:"))
        ]
        assert foreign == [], f"requests to another origin: {foreign}"
        violations = self.page.evaluate("() => window.__csp || []")
        refused = [m for m in self.console if "Content Security Policy" in m]
        assert violations == [] and refused == [], (violations, refused)


@pytest.mark.parametrize(
    ("path", "operation", "title", "bundle"),
    [
        ("/docs", ".opblock", ".info .title", "swagger-ui/swagger-ui-bundle.js"),
        ("/redoc", "[data-section-id^='operation/']", "h1", "redoc/redoc.standalone.js"),
    ],
)
def test_the_api_docs_render_from_local_files(
    browser_context: Any,
    live_server: LiveServer,
    path: str,
    operation: str,
    title: str,
    bundle: str,
) -> None:
    visit = Visit(browser_context, live_server)
    visit.page.goto(f"{live_server.url}{path}")
    visit.page.wait_for_selector(operation, timeout=20_000)
    assert visit.page.locator(operation).count() > 20, "the operations are shown"
    assert visit.page.locator(title).first.inner_text().startswith("Consentry")
    assert "/v1/consents" in visit.page.content()
    visit.check()
    assert f"{live_server.url}/static/vendor/{bundle}" in visit.requests


def test_the_pages_keep_to_their_policy(browser_context: Any, live_server: LiveServer) -> None:
    services = live_server.services
    ensure_demo(services, CollectionStore(services.store), DEMO_TENANT)
    # The demo, with the banner on it, and a choice made.
    visit = Visit(browser_context, live_server)
    visit.page.goto(f"{live_server.url}/demo")
    visit.page.get_by_role("button", name="Accept all", exact=True).click()
    visit.page.get_by_role("dialog").wait_for(state="detached")
    visit.page.wait_for_function(
        "() => document.getElementById('demo-cookie').textContent !== '(no choice yet)'"
    )
    visit.check()
    # The preference center of that visitor, and its form.
    visit = Visit(browser_context, live_server)
    visit.page.goto(f"{live_server.url}/preferences")
    visit.page.get_by_role("button", name="Withdraw all").click()
    visit.page.wait_for_url("**/preferences?saved=1")
    assert visit.page.locator("main h1").inner_text() == "Your privacy choices"
    assert visit.page.evaluate("getComputedStyle(document.body).backgroundColor") == (
        "rgb(244, 244, 245)"
    ), "the stylesheet (a file, allowed by the policy) applies"
    visit.check()
    # A preference link's page, and a stranger's.
    link = preference_link_token(services, DEMO_TENANT, "crm-1", 1)
    for path in (f"/preferences?t={link}", "/preferences?t=bad"):
        browser_context.clear_cookies()
        visit = Visit(browser_context, live_server)
        visit.page.goto(f"{live_server.url}{path}")
        visit.check()
