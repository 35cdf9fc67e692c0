"""The console in a real headless Chromium, at 1280 and 390 px, against the real server.

Every page visited is checked the same way (`Watch.check`): no request leaves the server's own
origin, no Content-Security-Policy violation, nothing wider than the screen, and axe-core
(vendored under tests/admin/vendor, loaded into the page by the test, not by Consentry) finds no
serious or critical accessibility violation. The main flows are driven by the keyboard alone.

Screenshots are taken along the way; with CONSENTRY_UPDATE_SCREENSHOTS=1 they replace the ones
in docs/img/ that docs/admin.md shows.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consentry.domain.events import Action, Source
from consentry.domain.notices import Notice
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.keys import create_key
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.storage.base import Role
from tests.ui.conftest import LiveServer

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[1] / "admin" / "vendor" / "axe-core" / "axe.min.js"
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
WIDTHS = {"desktop": (1280, 860), "phone": (390, 844)}
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  return result.violations
    .filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => `${v.id} (${v.impact}): ${v.help} -> `
      + v.nodes.map(n => n.target.join(' ')).join(', '));
}"""


class Watch:
    """Everything one page does that the console forbids, collected while it runs."""

    def __init__(self, page: Any, server: LiveServer, shots: Path, width: str) -> None:
        self.page = page
        self.origin = server.url
        self.shots = shots
        self.width = width
        self.foreign: list[str] = []
        self.csp: list[str] = []
        page.on("request", self._request)
        page.on("console", self._console)

    def _request(self, request: Any) -> None:
        url = request.url
        if not url.startswith((self.origin + "/", "data:", "about:")):
            self.foreign.append(url)

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.csp.append(message.text)

    def check(self, shot: str | None = None) -> None:
        page = self.page
        page.wait_for_load_state("load")
        assert self.foreign == [], f"requests to another origin: {self.foreign}"
        assert self.csp == [], f"Content-Security-Policy violations: {self.csp}"
        overflow = page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{page.url} is {overflow} px wider than the screen"
        page.evaluate(AXE.read_text(encoding="utf-8"))  # through the DevTools protocol, not CSP
        violations = page.evaluate(AXE_RUN)
        assert violations == [], f"{page.url}: {violations}"
        if shot:
            path = self.shots / f"admin-{shot}-{self.width}.png"
            page.screenshot(path=str(path), full_page=True)
            if os.environ.get("CONSENTRY_UPDATE_SCREENSHOTS") == "1":
                shutil.copy(path, DOCS_IMG / path.name)


def seed(server: LiveServer) -> None:
    recorder = server.services.recorder
    for purpose in (
        Purpose("analytics", "Audience measurement", LegalBasis.CONSENT, "Counts visits."),
        Purpose("ads", "Personalised advertising", LegalBasis.CONSENT, "Ads from partners."),
        Purpose("newsletter", "Newsletter", LegalBasis.CONSENT, "A weekly email."),
    ):
        recorder.add_purpose("default", purpose)
    recorder.add_notice(
        "default",
        Notice(
            "privacy",
            1,
            "We measure the audience of this site and send a newsletter to those who ask.",
            ("analytics", "ads", "newsletter"),
            datetime.now(UTC),
        ),
    )
    people = {
        "alice@example.com": {"analytics": Action.GIVEN, "ads": Action.REFUSED},
        "bob@example.com": {"analytics": Action.GIVEN, "ads": Action.GIVEN},
        "carol@example.com": {"analytics": Action.REFUSED, "newsletter": Action.GIVEN},
    }
    for subject, choices in people.items():
        recorder.record(
            "default",
            ConsentRequest(subject, Source.API, [EventRequest(p, a) for p, a in choices.items()]),
        )
    recorder.record(
        "default",
        ConsentRequest("bob@example.com", Source.API, [EventRequest("ads", Action.WITHDRAWN)]),
    )
    server.services.ledger.integrate()


def open_page(ctx: Any, server: LiveServer, width: str, shots: Path) -> tuple[Any, Watch]:
    page = ctx.new_page()
    w, h = WIDTHS[width]
    page.set_viewport_size({"width": w, "height": h})
    return page, Watch(page, server, shots, width)


def tab_to(page: Any, selector: str, limit: int = 80) -> None:
    """Press Tab until `selector` has the focus: it is reachable by keyboard, in order."""
    target = page.locator(selector).first
    target.wait_for()
    for _ in range(limit):
        if target.evaluate("el => el === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def sign_in(page: Any, server: LiveServer, key: str) -> None:
    """By keyboard: the form, the key typed, Enter."""
    page.goto(f"{server.url}/admin")
    assert page.url.endswith("/admin/sign-in")
    tab_to(page, "#key")
    page.keyboard.type(key)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{server.url}/admin")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = tmp_path / "screenshots"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_main_flows_by_keyboard(
    browser_context: Any, live_server: LiveServer, width: str, shots: Path
) -> None:
    seed(live_server)
    key = create_key(live_server.services.store, "default", Role.ADMIN, "privacy office").key
    page, watch = open_page(browser_context, live_server, width, shots)

    page.goto(f"{live_server.url}/admin")
    watch.check("sign-in")
    sign_in(page, live_server, key)
    assert page.get_by_role("heading", name="Overview").is_visible()
    assert page.locator("svg[role=img]").count() == 3
    watch.check("overview")

    # A notice published: a new, material version, reviewed with its diff.
    tab_to(page, "nav a[href='/admin/notices']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/notices")
    watch.check("notices")
    tab_to(page, "a[href='/admin/notices/new?notice=privacy']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/notices/new?notice=privacy")
    tab_to(page, "#n-text")
    page.keyboard.press("Control+End")  # to the end of the text
    page.keyboard.type(" We also show personalised ads with our partners.")
    tab_to(page, "#n-material")
    page.keyboard.press("Space")
    watch.check("notice-edit")
    tab_to(page, "button[value=preview]")
    page.keyboard.press("Enter")
    page.wait_for_load_state("load")
    assert "We also show personalised ads" in page.locator("ins").first.inner_text()
    assert "2 person(s) who consent today" in page.inner_text("main")  # analytics
    watch.check("notice-preview")
    tab_to(page, "button[value=publish]")
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/notices")
    assert "Published privacy version 2." in page.get_by_role("status").inner_text()
    latest = live_server.services.store.get_notices("default", "privacy")[-1]
    assert latest.version == 2 and latest.material

    # A person looked up, and their history with proofs downloaded.
    tab_to(page, "nav a[href='/admin/subjects']")
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/subjects")
    tab_to(page, "#subject")
    page.keyboard.type("bob@example.com")
    page.keyboard.press("Enter")
    page.wait_for_url("**/admin/subjects?subject=bob%40example.com")
    main = page.inner_text("main")
    assert "withdrawn: consent withdrawn" in main and "granted: consent given" in main
    watch.check("subject")
    tab_to(page, "a[download]")
    with page.expect_download() as download:
        page.keyboard.press("Enter")
    saved = shots / "proofs.json"
    download.value.save_as(saved)
    assert '"inclusion_proof"' in saved.read_text()


@pytest.mark.parametrize("width", list(WIDTHS))
def test_keys_created_and_revoked(
    browser_context: Any, live_server: LiveServer, width: str, shots: Path
) -> None:
    store = live_server.services.store
    key = create_key(store, "default", Role.ADMIN, "privacy office").key
    page, watch = open_page(browser_context, live_server, width, shots)
    sign_in(page, live_server, key)
    page.goto(f"{live_server.url}/admin/keys")
    page.get_by_label("Checker: check decisions only").check()
    page.get_by_label("Label").fill("order service")
    page.get_by_role("button", name="Create key").click()
    new_key = page.locator("#issued-key").input_value()
    assert new_key.startswith("csk_")
    watch.check("key-created")
    key_id = new_key.split("_")[1]
    page.get_by_role("link", name=f"Revoke key {key_id}").click()
    assert "stops working on every server" in page.inner_text("main")
    watch.check("key-revoke")
    page.get_by_role("button", name="Revoke this key").click()
    page.wait_for_url("**/admin/keys")
    assert f"Key {key_id} is revoked." in page.get_by_role("status").inner_text()
    revoked = next(k for k in store.list_api_keys("default") if k.key_id == key_id)
    assert revoked.revoked_at is not None


def test_an_auditor_sees_and_is_refused_a_change(
    browser_context: Any, live_server: LiveServer, shots: Path
) -> None:
    seed(live_server)
    key = create_key(live_server.services.store, "default", Role.AUDITOR, "auditor").key
    page, watch = open_page(browser_context, live_server, "desktop", shots)
    sign_in(page, live_server, key)
    page.goto(f"{live_server.url}/admin/notices")
    assert page.get_by_role("link", name="Publish a new version of privacy").count() == 0
    assert "change nothing" in page.inner_text("main")
    watch.check("auditor")
    # A change sent anyway (with the page's own token) is refused by the server.
    token = page.locator("input[name=csrf]").first.input_value()
    answer = page.request.post(
        f"{live_server.url}/admin/notices/new",
        form={
            "csrf": token,
            "id": "privacy",
            "version": "2",
            "text": "Changed by an auditor",
            "purposes": "analytics",
            "step": "publish",
        },
        headers={"Origin": live_server.url},
    )
    assert answer.status == 403
    assert len(live_server.services.store.get_notices("default", "privacy")) == 1
    assert page.get_by_role("link", name="API keys").count() == 0
