"""The console over HTTP, on every backend: sign-in, sessions, CSRF, roles, and every page.

The browser tests (test_browser.py) drive the same pages in Chromium; these pin down what a
browser cannot show: cookie attributes, refusals of forged requests, what is (not) recorded.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from consentry.domain.events import Action, Source
from consentry.domain.notices import Notice
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.storage.base import Role
from tests.admin.conftest import Console

PAGES = ["/admin", "/admin/purposes", "/admin/notices", "/admin/subjects"]
ADMIN_PAGES = ["/admin/keys", "/admin/tenants", "/admin/notices/new"]


def seed(console: Console) -> None:
    """Two purposes, a notice, and decisions of three people."""
    services = console.services
    recorder = services.recorder
    recorder.add_purpose(
        "default", Purpose("analytics", "Audience measurement", LegalBasis.CONSENT)
    )
    recorder.add_purpose("default", Purpose("ads", "Advertising", LegalBasis.CONSENT))
    recorder.add_notice(
        "default",
        Notice(
            "privacy",
            1,
            "We measure the audience.",
            ("analytics", "ads"),
            datetime.now(UTC),
        ),
    )
    for subject, choices in {
        "alice": {"analytics": Action.GIVEN, "ads": Action.REFUSED},
        "bob": {"analytics": Action.GIVEN, "ads": Action.GIVEN},
        "carol": {"analytics": Action.REFUSED},
    }.items():
        recorder.record(
            "default",
            ConsentRequest(
                subject,
                Source.API,
                [EventRequest(p, a) for p, a in choices.items()],
            ),
        )


def cookie(answer: Any, name: str) -> str:
    headers = [v for k, v in answer.headers.multi_items() if k == "set-cookie"]
    found = [h for h in headers if h.startswith(name + "=")]
    assert found, headers
    return found[0]


# Signing in and out ---------------------------------------------------------------------------


def test_every_page_asks_to_sign_in_first(console: Console) -> None:
    answer = console.client.get("/admin/notices", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/admin/sign-in?next=%2Fadmin%2Fnotices"
    form = console.page("/admin/sign-in?next=%2Fadmin%2Fnotices")
    assert 'name="next" value="/admin/notices"' in form.text


def test_sign_in_sets_a_strict_http_only_session_cookie(console: Console) -> None:
    answer = console.sign_in(console.key(Role.ADMIN))
    assert answer.status_code == 303 and answer.headers["location"] == "/admin"
    session = cookie(answer, "consentry_admin").lower()
    assert "httponly" in session and "samesite=strict" in session and "path=/admin" in session
    assert "max-age=28800" in session
    assert "secure" not in session  # plain http (tests); see the https test below
    assert console.services.store.head() == 0  # signing in records nothing in the log


def test_the_cookie_is_secure_behind_https(services: Any) -> None:
    from fastapi.testclient import TestClient

    from consentry.api.app import create_app

    with TestClient(create_app(services.settings, services), base_url="https://console") as c:
        client = Console(c, services)
        answer = client.sign_in(client.key(Role.AUDITOR))
        assert "secure" in cookie(answer, "consentry_admin").lower()


def test_only_admin_and_auditor_keys_open_the_console(console: Console) -> None:
    refused = console.sign_in(console.key(Role.COLLECTOR))
    assert refused.status_code == 403 and "cannot open the console" in refused.text
    wrong = console.sign_in("csk_000000000000_not-a-key")
    assert wrong.status_code == 401 and "not valid" in wrong.text
    assert console.client.get("/admin", follow_redirects=False).status_code == 303


def test_the_sign_in_form_needs_its_own_token(console: Console) -> None:
    key = console.key(Role.ADMIN)
    console.client.get("/admin/sign-in")
    answer = console.client.post(
        "/admin/sign-in", data={"key": key, "csrf": "forged"}, follow_redirects=False
    )
    assert answer.status_code == 403
    assert "consentry_admin=" not in answer.headers.get("set-cookie", "")


def test_sign_out_ends_the_session_on_the_server(admin: Console) -> None:
    stolen = admin.client.cookies.get("consentry_admin")
    answer = admin.post("/admin/sign-out", {})
    assert answer.status_code == 303 and answer.headers["location"] == "/admin/sign-in"
    admin.client.cookies.set("consentry_admin", stolen, path="/admin")  # a copy kept elsewhere
    assert admin.client.get("/admin", follow_redirects=False).status_code == 303


def test_a_revoked_key_ends_its_sessions(admin: Console, raw_sql: Any) -> None:
    key_id = admin.services.store.list_api_keys("default")[0].key_id
    admin.page("/admin")
    raw_sql(
        "UPDATE api_keys SET revoked_at = ? WHERE key_id = ?",
        ("2000-01-01T00:00:00.000000Z", key_id),
    )
    assert admin.client.get("/admin", follow_redirects=False).status_code == 303


def test_next_never_leaves_the_console(console: Console) -> None:
    key = console.key(Role.ADMIN)
    for target in ("https://evil.example/", "//evil.example/admin", "/admin//evil.example"):
        console.client.cookies.clear()
        form = console.page("/admin/sign-in")
        token = form.text.split('name="csrf" value="')[1].split('"')[0]
        answer = console.client.post(
            "/admin/sign-in",
            data={"csrf": token, "key": key, "next": target},
            follow_redirects=False,
        )
        assert answer.headers["location"] == "/admin", target


# Forms: CSRF, origin, roles ------------------------------------------------------------------


def test_a_form_without_its_token_changes_nothing(admin: Console) -> None:
    answer = admin.client.post(
        "/admin/purposes",
        data={"id": "ads", "name": "Ads", "legal_basis": "consent"},
        follow_redirects=False,
    )
    assert answer.status_code == 403 and "text/html" in answer.headers["content-type"]
    assert "did not come from the console" in answer.text
    assert admin.services.store.get_purposes("default") == []


def test_a_form_from_another_site_changes_nothing(admin: Console) -> None:
    admin.page("/admin/purposes")
    answer = admin.post(
        "/admin/purposes",
        {"id": "ads", "name": "Ads", "legal_basis": "consent"},
        headers={"Origin": "https://evil.example"},
    )
    assert answer.status_code == 403
    assert admin.services.store.get_purposes("default") == []


def test_an_auditor_sees_but_cannot_change(console: Console) -> None:
    seed(console)
    console.sign_in(console.key(Role.AUDITOR))
    for path in PAGES:
        page = console.page(path)
        assert "auditor" in page.text
        assert 'method="post" action="/admin/purposes"' not in page.text
    notices = console.page("/admin/notices")
    assert "Publish a new version" not in notices.text
    for path in ("/admin/keys", "/admin/tenants"):
        assert console.client.get(path).status_code == 403
    # Forms are refused by the server too, even with a valid token.
    answer = console.post("/admin/purposes", {"id": "email", "name": "E", "legal_basis": "consent"})
    assert answer.status_code == 403 and "can see this but not change it" in answer.text
    publish = console.post(
        "/admin/notices/new",
        {"id": "privacy", "version": "2", "text": "New", "purposes": "ads", "step": "publish"},
    )
    assert publish.status_code == 403
    assert [p.id for p in console.services.store.get_purposes("default")] == ["ads", "analytics"]
    assert len(console.services.store.get_notices("default")) == 1


def test_pages_carry_a_strict_content_security_policy(admin: Console) -> None:
    for path in [*PAGES, *ADMIN_PAGES, "/admin/sign-in", "/admin/nowhere"]:
        answer = admin.client.get(path, follow_redirects=False)
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        assert answer.headers["cache-control"] == "no-store"
        assert "<script>" not in answer.text and "style=" not in answer.text
        assert "http://" not in answer.text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_errors_are_pages_in_the_console_and_json_in_the_api(admin: Console) -> None:
    page = admin.client.get("/admin/nowhere")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    api = admin.client.get("/v1/purposes")
    assert api.status_code == 401 and api.json()["error"]["code"] == "unauthenticated"
    schema = admin.client.get("/openapi.json").json()
    assert not [p for p in schema["paths"] if p.startswith("/admin")]


# Pages --------------------------------------------------------------------------------------


def test_purposes_are_listed_and_created(admin: Console) -> None:
    admin.page("/admin/purposes")
    answer = admin.post(
        "/admin/purposes",
        {
            "id": "newsletter",
            "name": "Newsletter",
            "legal_basis": "consent",
            "description": "A weekly email.",
            "lifetime_days": "365",
        },
    )
    assert answer.status_code == 303
    page = admin.page("/admin/purposes")
    assert "Purpose &#39;newsletter&#39; created." in page.text and "A weekly email." in page.text
    (purpose,) = admin.services.store.get_purposes("default")
    assert purpose.lifetime_days == 365 and purpose.legal_basis is LegalBasis.CONSENT
    bad = admin.post("/admin/purposes", {"id": "Bad Id", "name": "x", "legal_basis": "consent"})
    assert bad.status_code == 422 and "purpose id" in bad.text and 'value="Bad Id"' in bad.text


def test_a_notice_is_previewed_with_its_diff_and_who_must_consent_again(admin: Console) -> None:
    seed(admin)
    form = admin.page("/admin/notices/new?notice=privacy")
    assert "version <strong>2</strong>" in form.text and "We measure the audience." in form.text
    fields = {
        "id": "privacy",
        "existing": "on",
        "version": "2",
        "text": "We measure the audience and share it with partners.",
        "purposes": ["analytics", "ads"],
        "material": "on",
        "grace_days": "14",
    }
    preview = admin.post("/admin/notices/new", {**fields, "step": "preview"})
    assert preview.status_code == 200
    assert '[added: </span> and share it with partners<span class="sr-only">]' in preview.text
    assert "5 word(s) added, 0 removed" in preview.text and "<del>" not in preview.text
    assert "<strong>2</strong> person(s) who consent today" in preview.text  # analytics
    assert "<strong>1</strong> person(s) who consent today" in preview.text  # ads
    assert len(admin.services.store.get_notices("default", "privacy")) == 1  # not yet
    published = admin.post("/admin/notices/new", {**fields, "step": "publish"})
    assert published.status_code == 303
    page = admin.page("/admin/notices")
    assert "Published privacy version 2. 3 current consent(s) must be given again" in page.text
    latest = admin.services.store.get_notices("default", "privacy")[-1]
    assert (latest.version, latest.material, latest.grace_days) == (2, True, 14)
    assert latest.text == fields["text"]
    again = admin.post("/admin/notices/new", {**fields, "step": "publish"})
    assert again.status_code == 422 and "published meanwhile" in again.text


def test_a_new_notice_and_its_mistakes(admin: Console) -> None:
    seed(admin)
    admin.page("/admin/notices/new")
    empty = admin.post(
        "/admin/notices/new",
        {"id": "cookies", "version": "1", "text": " ", "purposes": "ads", "step": "preview"},
    )
    assert empty.status_code == 422 and "text is empty" in empty.text
    unknown = admin.post(
        "/admin/notices/new",
        {"id": "cookies", "version": "1", "text": "Hi", "purposes": "nope", "step": "preview"},
    )
    assert unknown.status_code == 422 and "unknown purposes: nope" in unknown.text
    ok = admin.post(
        "/admin/notices/new",
        {"id": "cookies", "version": "1", "text": "Cookies.", "purposes": "ads", "step": "publish"},
    )
    assert ok.status_code == 303
    assert admin.services.store.get_notices("default", "cookies")[0].text == "Cookies."


def test_a_person_is_looked_up_with_reasons_history_and_proofs(admin: Console) -> None:
    seed(admin)
    admin.services.ledger.integrate()
    page = admin.page("/admin/subjects?subject=alice")
    assert "<code>granted</code>: consent given" in page.text
    assert "<code>refused</code>: refused" in page.text
    assert page.text.count("Leaf ") == 2 and "Not in the ledger yet" not in page.text
    assert "comes with the DSAR export (issue 14)" in page.text  # its route does not exist yet
    download = admin.client.get("/admin/subjects/history.json?subject=alice")
    assert download.headers["content-disposition"] == 'attachment; filename="history-alice.json"'
    body = json.loads(download.text)
    assert body["subject"] == "alice" and len(body["events"]) == 2
    assert all(e["ledger"]["inclusion_proof"] is not None for e in body["events"])
    assert body["checkpoint"].startswith("consentry/default")
    bad = admin.client.get("/admin/subjects", params={"subject": "rene\u0301"})  # not NFC
    assert bad.status_code == 422 and "normalization form NFC" in bad.text
    nobody = admin.page("/admin/subjects?subject=zoe")
    assert "No decision has been recorded" in nobody.text and "not_given" in nobody.text


def test_the_overview_draws_its_numbers(admin: Console) -> None:
    seed(admin)
    page = admin.page("/admin?days=7")
    text = page.text
    assert text.count("<svg") == 3 and text.count('role="img"') == 3
    assert '<title id="events-per-day-t">Events recorded per day</title>' in text
    today = datetime.now(UTC).date().isoformat()
    assert f'<th scope="row">{today}</th><td>5</td><td>0</td>' in text  # 5 events, 0 withdrawn
    assert f'<th scope="row">{today}</th><td>60 %</td>' in text  # 3 grants of 5 decisions
    assert '<th scope="row">Audience measurement</th><td>2</td><td>1</td><td>0</td>' in text
    assert "No Kafka" in text and "Up to date with the log" not in text  # not integrated yet
    admin.services.ledger.integrate()
    assert "Up to date with the log" in admin.page("/admin").text


def test_a_key_is_shown_once_and_works(admin: Console) -> None:
    admin.page("/admin/keys")
    answer = admin.post("/admin/keys", {"role": "checker", "label": "shop"})
    assert answer.status_code == 201
    key = answer.text.split('id="issued-key" class="secret" readonly value="')[1].split('"')[0]
    assert key.startswith("csk_")
    check = admin.client.get("/v1/purposes", headers={"Authorization": f"Bearer {key}"})
    assert check.status_code == 200
    assert key not in admin.page("/admin/keys").text


def test_the_operator_creates_tenants_others_cannot(admin: Console) -> None:
    admin.page("/admin/tenants")
    answer = admin.post("/admin/tenants", {"name": "acme"})
    assert answer.status_code == 201 and "Tenant acme created" in answer.text
    key = answer.text.split('readonly value="')[1].split('"')[0]
    assert admin.services.store.tenant_exists("acme")
    assert admin.post("/admin/tenants", {"name": "acme"}).status_code == 422
    assert admin.post("/admin/tenants", {"name": "../x"}).status_code == 422
    admin.post("/admin/sign-out", {})
    admin.sign_in(key)  # acme's own admin: a tenant admin, not the operator
    assert admin.client.get("/admin/tenants").status_code == 403
    assert "Tenants" not in admin.page("/admin").text.split("<main")[0]
    assert admin.page("/admin/keys").status_code == 200


def test_revoking_and_rotating_a_key_ask_first(admin: Console) -> None:
    other = admin.key(Role.COLLECTOR)
    key_id = other.split("_")[1]
    asked = admin.client.get(f"/admin/keys/{key_id}/revoke")
    assert asked.status_code == 200 and "stops working on every server" in asked.text
    assert admin.client.get("/admin/keys/nope/revoke").status_code == 404
    rotate = admin.page(f"/admin/keys/{key_id}/rotate")
    assert 'name="grace_seconds" value="3600"' in rotate.text
    rotated = admin.post(f"/admin/keys/{key_id}/rotate", {"grace_seconds": "3600"})
    assert rotated.status_code == 201 and "Replaced: stops working" in rotated.text
    admin.page("/admin/keys")
    assert admin.post(f"/admin/keys/{key_id}/revoke", {}).status_code == 303
    answer = admin.client.get("/v1/purposes", headers={"Authorization": f"Bearer {other}"})
    assert answer.status_code == 401
