"""The banner and the preference center in a real headless Chromium, against the real server.

Each scenario asserts what the page shows, the cookies, the answers of `__tcfapi` and `__gpp`,
Consent Mode's dataLayer, and the events recorded on the server.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from consentry.signals import gpp, tcf
from consentry.tokens import verify_consent_token, verify_token
from consentry.ui.pages import DEMO_TENANT
from tests.ui.conftest import LiveServer

pytestmark = pytest.mark.browser

TCF_DATA = """() => new Promise(resolve => __tcfapi('addEventListener', 2, (data, ok) => {
    __tcfapi('removeEventListener', 2, () => {}, data.listenerId); resolve(data); }))"""
GPP_PING = "() => new Promise(resolve => __gpp('ping', data => resolve(data)))"
GPP_SECTION = "(name) => new Promise(r => __gpp('getSection', d => r(d), name))"
CONSENT_CALLS = """() => (window.dataLayer || []).filter(a => a[0] === 'consent')
    .map(a => [a[1], Object.assign({}, a[2])])"""
OPTIONAL = ("analytics", "personalization", "ads", "data_sale")


def open_demo(ctx: Any, server: LiveServer, query: str = "") -> Any:
    page = ctx.new_page()
    page.goto(f"{server.url}/demo{query}")
    page.get_by_role("dialog").wait_for()
    return page


def cookies(ctx: Any) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in ctx.cookies()}


def subject(ctx: Any, server: LiveServer) -> str:
    sid = cookies(ctx)["consentry_sid"]
    assert sid["httpOnly"] is True, "the identity cookie is out of scripts' reach"
    verified = verify_token(sid["value"], server.services.keyring.verifiers(DEMO_TENANT))
    assert verified.subject is not None
    return verified.subject


def recorded(ctx: Any, server: LiveServer) -> dict[str, tuple[str, str]]:
    """Latest (action, source) per purpose, from the log."""
    events = server.services.store.subject_history(DEMO_TENANT, subject(ctx, server))
    return {e.purpose: (e.action.value, e.evidence.source.value) for e in events}


def consent_token(ctx: Any, server: LiveServer) -> Any:
    cookie = cookies(ctx)["consentry"]
    assert cookie["httpOnly"] is False and cookie["sameSite"] == "Lax"
    key = server.services.keyring.signing_key(DEMO_TENANT).verifier
    return verify_consent_token(cookie["value"], key, tenant=DEMO_TENANT)


def choose(page: Any, name: str) -> None:
    page.get_by_role("button", name=name, exact=True).click()
    page.get_by_role("dialog").wait_for(state="detached")


def test_accept_all_then_reload_makes_no_request(
    browser_context: Any, live_server: LiveServer
) -> None:
    page = open_demo(browser_context, live_server)
    dialog = page.get_by_role("dialog")
    assert dialog.get_by_role("heading").inner_text() == "Your privacy choices"
    accept = page.get_by_role("button", name="Accept all", exact=True)
    reject = page.get_by_role("button", name="Reject all", exact=True)
    assert accept.is_visible() and reject.is_visible()
    assert accept.bounding_box()["height"] == reject.bounding_box()["height"], "equally easy"
    assert page.get_by_role("switch", name="Strictly necessary").is_disabled()
    before = page.evaluate(TCF_DATA)
    assert before["eventStatus"] == "cmpuishown" and before["gdprApplies"] is True
    choose(page, "Accept all")

    calls = page.evaluate(CONSENT_CALLS)
    assert calls[0][0] == "default" and set(calls[0][1].values()) == {"denied", 500}
    assert calls[-1] == ["update", dict.fromkeys(calls[-1][1], "granted")]
    assert len(calls[-1][1]) == 7
    data = page.evaluate(TCF_DATA)
    assert data["eventStatus"] == "useractioncomplete"
    assert set(tcf.decode(data["tcString"]).purpose_consents) == set(range(1, 11))
    assert data["purpose"]["consents"]["1"] is True
    ping = page.evaluate(GPP_PING)
    assert ping["signalStatus"] == "ready" and ping["applicableSections"] == [2]
    assert gpp.decode(ping["gppString"]).tcfeuv2 == tcf.decode(data["tcString"])
    token = consent_token(browser_context, live_server)
    assert all(token.allows(p) for p in OPTIONAL)
    assert recorded(browser_context, live_server) == {p: ("given", "banner") for p in OPTIONAL}
    assert page.get_by_role("button", name="Privacy choices").is_visible()

    # A later page load: the cookie answers everything, nothing is asked of the API.
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.reload()
    page.wait_for_function("() => window.Consentry && window.Consentry.state() !== null")
    assert page.get_by_role("dialog").count() == 0
    assert page.evaluate(TCF_DATA)["eventStatus"] == "tcloaded"
    assert page.evaluate(CONSENT_CALLS)[-1][1]["ad_storage"] == "granted"
    api_calls = [u for u in requests if "/v1/" in u]
    assert api_calls == [], api_calls
    assert all(u.startswith(live_server.url) for u in requests), requests
    assert all(u.endswith(("/demo", "/banner.js", ".css", ".js")) for u in requests), requests


def test_reject_all(browser_context: Any, live_server: LiveServer) -> None:
    page = open_demo(browser_context, live_server)
    choose(page, "Reject all")
    update = page.evaluate(CONSENT_CALLS)[-1]
    assert update[0] == "update"
    assert update[1]["ad_storage"] == "denied" and update[1]["analytics_storage"] == "denied"
    assert update[1]["security_storage"] == "granted"  # the strictly necessary purpose
    data = page.evaluate(TCF_DATA)
    assert tcf.decode(data["tcString"]).purpose_consents == ()
    assert not any(data["purpose"]["consents"].values())
    assert gpp.decode(page.evaluate(GPP_PING)["gppString"]).tcfeuv2 is not None
    assert not any(consent_token(browser_context, live_server).allows(p) for p in OPTIONAL)
    assert recorded(browser_context, live_server) == {p: ("refused", "banner") for p in OPTIONAL}


def test_a_per_purpose_choice(browser_context: Any, live_server: LiveServer) -> None:
    page = open_demo(browser_context, live_server)
    switch = page.get_by_role("switch", name="Audience measurement")
    assert not switch.is_checked()
    page.get_by_text("Details").first.click()  # the layered notice: details on the row
    switch.check()
    choose(page, "Save choices")
    cm = page.evaluate(CONSENT_CALLS)[-1][1]
    assert cm["analytics_storage"] == "granted" and cm["ad_storage"] == "denied"
    data = page.evaluate(TCF_DATA)
    assert set(tcf.decode(data["tcString"]).purpose_consents) == {1, 8, 9}
    section = page.evaluate(GPP_SECTION, "tcfeuv2")
    assert section["PurposeConsents"][7] is True and section["PurposeConsents"][2] is False
    assert page.evaluate("() => new Promise(r => __gpp('hasSection', r, 'usnat'))") is False
    token = consent_token(browser_context, live_server)
    assert token.allows("analytics") and not token.allows("ads")
    assert recorded(browser_context, live_server) == {
        "analytics": ("given", "banner"),
        "personalization": ("refused", "banner"),
        "ads": ("refused", "banner"),
        "data_sale": ("refused", "banner"),
    }


def test_change_of_mind_in_the_preference_center(
    browser_context: Any, live_server: LiveServer
) -> None:
    page = open_demo(browser_context, live_server)
    choose(page, "Accept all")
    page.goto(f"{live_server.url}/preferences")
    assert page.get_by_role("heading", name="Your privacy choices").is_visible()
    group = page.get_by_role("group", name="Audience measurement")
    assert "Allowed: you agreed" in group.inner_text()
    assert "version 1" in group.inner_text()  # the notice and its version
    group.get_by_role("radio", name="Don't allow").check()
    page.get_by_role("button", name="Save choices").click()
    page.wait_for_url(re.compile(r"saved=1"))
    assert page.get_by_role("status").inner_text() == "Your choices were saved."
    group = page.get_by_role("group", name="Audience measurement")
    assert "withdrew" in group.inner_text()
    history = page.get_by_role("table").inner_text()
    assert "Withdrew consent" in history and "preference center" in history
    assert recorded(browser_context, live_server)["analytics"] == (
        "withdrawn",
        "preference_center",
    )
    # The banner's cookie followed the change: the site's tags see it without asking.
    assert not consent_token(browser_context, live_server).allows("analytics")
    page.goto(f"{live_server.url}/demo")
    page.wait_for_function("() => window.Consentry && window.Consentry.state() !== null")
    data = page.evaluate(TCF_DATA)
    assert data["purpose"]["consents"]["8"] is False and data["purpose"]["consents"]["2"] is True
    assert page.evaluate(CONSENT_CALLS)[-1][1]["analytics_storage"] == "denied"
    assert page.evaluate(GPP_PING)["gppString"].endswith(data["tcString"])


def test_preference_center_by_link_without_javascript_by_keyboard(
    playwright_driver: Any, live_server: LiveServer, tmp_path: Any
) -> None:
    from tests.ui.conftest import CHROMIUM, CHROMIUM_FLAGS

    services = live_server.services
    from consentry.api.mappings import CollectionStore
    from consentry.ui.banner import preference_link_token
    from consentry.ui.pages import ensure_demo

    ensure_demo(services, CollectionStore(services.store), DEMO_TENANT)
    link = f"{live_server.url}/preferences?t=" + preference_link_token(
        services, DEMO_TENANT, "crm-42", 1
    )
    ctx = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "nojs"),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_FLAGS,
        java_script_enabled=False,
    )
    try:
        page = ctx.new_page()
        page.goto(link)
        page.get_by_role("button", name="Open my privacy choices").click()
        page.wait_for_url(f"{live_server.url}/preferences")
        assert "?t=" not in page.url, "the token leaves the address bar"
        pref = next(c for c in ctx.cookies() if c["name"] == "consentry_pref")
        assert pref["httpOnly"] and pref["path"] == "/preferences"
        allow = page.get_by_role("group", name="Personalised advertising").get_by_role(
            "radio", name="Allow", exact=True
        )
        allow.focus()
        page.keyboard.press("Space")
        assert allow.is_checked()
        page.get_by_role("button", name="Save choices").focus()
        page.keyboard.press("Enter")
        page.wait_for_url(re.compile(r"saved=1"))
        group = page.get_by_role("group", name="Personalised advertising")
        assert "Allowed: you agreed" in group.inner_text()
        page.get_by_role("button", name="Withdraw all").click()
        page.wait_for_url(re.compile(r"saved="))
        assert "withdrew" in page.get_by_role("group", name="Personalised advertising").inner_text()
        events = services.store.subject_history(DEMO_TENANT, "crm-42")
        assert [(e.purpose, e.action.value) for e in events if e.purpose == "ads"] == [
            ("ads", "given"),
            ("ads", "withdrawn"),
        ]
        assert {e.evidence.source.value for e in events} == {"preference_center"}
    finally:
        ctx.close()


def test_gpc_is_honoured_and_shown(browser_context: Any, live_server: LiveServer) -> None:
    browser_context.set_extra_http_headers({"Sec-GPC": "1"})
    browser_context.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})"
    )
    page = open_demo(browser_context, live_server, "?jurisdiction=US-CA")
    gpc_note = page.locator("#cy-gpc")
    assert "Opt-Out Request Honored" in gpc_note.inner_text()
    ads = page.get_by_role("switch", name="Personalised advertising")
    assert ads.is_disabled() and not ads.is_checked()
    choose(page, "Accept all")
    usnat = page.evaluate(GPP_SECTION, "usnat")
    assert usnat["Gpc"] is True and usnat["SaleOptOut"] == 1 and usnat["SharingOptOut"] == 1
    ping = page.evaluate(GPP_PING)
    assert ping["applicableSections"] == [7]
    decoded = gpp.decode(ping["gppString"]).usnat
    assert decoded is not None and decoded.Gpc is True
    assert page.evaluate(TCF_DATA)["gdprApplies"] is False
    assert page.evaluate(CONSENT_CALLS)[-1][1]["ad_user_data"] == "denied"
    token = consent_token(browser_context, live_server)
    assert token.gpc and not token.allows("ads") and token.allows("analytics")
    assert "Opt-Out Request Honored" in page.locator("#consentry-reopen").inner_text()
    assert recorded(browser_context, live_server) == {
        "ads": ("opted_out", "gpc"),
        "data_sale": ("opted_out", "gpc"),
        "analytics": ("given", "banner"),
        "personalization": ("given", "banner"),
    }


def test_the_opt_out_variant(browser_context: Any, live_server: LiveServer) -> None:
    browser_context.set_extra_http_headers({"X-Consentry-Jurisdiction": "US-CA"})
    page = open_demo(browser_context, live_server)
    dialog = page.get_by_role("dialog")
    assert dialog.get_attribute("data-variant") == "opt_out"
    assert "Do Not Sell or Share" in dialog.get_by_role("heading").inner_text()
    assert page.get_by_role("switch", name="Personalised advertising").is_checked()
    assert not page.get_by_role("switch", name="Audience measurement").is_checked()
    # Before a choice, what the opt-out regime allows is already granted to the tags.
    calls = page.evaluate(CONSENT_CALLS)
    assert calls[-1][0] == "update" and calls[-1][1]["ad_storage"] == "granted"
    before = page.evaluate(GPP_SECTION, "usnat")
    assert before["SaleOptOut"] == 2 and before["SaleOptOutNotice"] == 1
    choose(page, "Reject all")
    usnat = page.evaluate(GPP_SECTION, "usnat")
    assert usnat["SaleOptOut"] == 1 and usnat["TargetedAdvertisingOptOut"] == 1
    assert usnat["Gpc"] is False
    data = page.evaluate(TCF_DATA)
    assert data["gdprApplies"] is False and data["tcString"] == ""
    assert page.evaluate(CONSENT_CALLS)[-1][1]["ad_storage"] == "denied"
    token = consent_token(browser_context, live_server)
    assert token.claims["reg"] == "opt_out" and token.claims["jur"] == "US-CA"
    assert recorded(browser_context, live_server) == {
        "ads": ("opted_out", "banner"),
        "data_sale": ("opted_out", "banner"),
        "analytics": ("refused", "banner"),
        "personalization": ("refused", "banner"),
    }
    events = live_server.services.store.subject_history(
        DEMO_TENANT, subject(browser_context, live_server)
    )
    assert {e.evidence.jurisdiction for e in events} == {"US-CA"}
