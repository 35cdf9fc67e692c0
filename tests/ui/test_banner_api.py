"""The banner's server side over HTTP: settings, the public config, the collection endpoint, its
cookies and tokens, CORS and the rules that keep a public endpoint harmless; and the script."""

from __future__ import annotations

import gzip
from importlib import resources
from typing import Any

import pytest

from consentry.api.mappings import get_collection
from consentry.signals import gpp, tcf
from consentry.storage.base import Role
from consentry.tokens import verify_consent_token, verify_token
from consentry.ui.pages import ensure_demo
from tests.conftest import ApiClient

BANNER_JS_GZIP_LIMIT = 15 * 1024
CHOICE = {"analytics": True, "personalization": False, "ads": False, "data_sale": False}


@pytest.fixture
def demo(api: ApiClient) -> ApiClient:
    """The (empty) default tenant set up as /demo sets up its own tenant on first visit."""
    assert ensure_demo(api.services, get_collection_of(api), "default")
    api.client.headers.pop("Authorization")  # the banner's endpoints are public
    return api


def events_of(api: ApiClient, subject: str) -> list[dict[str, Any]]:
    events = api.services.store.subject_history("default", subject)
    return [e.to_dict() for e in events]


def subject_of(api: ApiClient) -> str:
    sid = api.client.cookies.get("consentry_sid")
    keys = api.services.keyring.verifiers("default")
    subject = verify_token(sid, keys, kind="sid").subject
    assert subject is not None
    return subject


def test_banner_js_is_small_cacheable_and_revalidates(api: ApiClient) -> None:
    data = resources.files("consentry.ui").joinpath("static", "banner.js").read_bytes()
    size = len(gzip.compress(data, compresslevel=9))
    assert size <= BANNER_JS_GZIP_LIMIT, f"banner.js is {size} bytes gzipped, over 15 KB"
    r = api.client.get("/banner.js", headers={"Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.content == data
    assert "content-encoding" not in r.headers
    assert r.headers["content-type"].startswith("application/javascript")
    assert r.headers["cache-control"] == "public, max-age=3600"
    assert r.headers["vary"] == "Accept-Encoding"
    again = api.client.get("/banner.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["cache-control"] == "public, max-age=3600"


def test_banner_js_goes_out_compressed(api: ApiClient) -> None:
    data = resources.files("consentry.ui").joinpath("static", "banner.js").read_bytes()
    # stream=True: the raw bytes as sent, not decoded by the client
    with api.client.stream("GET", "/banner.js", headers={"Accept-Encoding": "gzip"}) as r:
        raw = b"".join(r.iter_raw())
    assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == data
    assert len(raw) == int(r.headers["content-length"]) < len(data) / 2
    etag = r.headers["etag"]
    assert etag.endswith('-gzip"') and r.headers["vary"] == "Accept-Encoding"
    plain = api.client.get("/banner.js", headers={"Accept-Encoding": "identity"})
    assert plain.headers["etag"] != etag, "one strong validator per representation"
    for validator in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        r = api.client.get(
            "/banner.js", headers={"Accept-Encoding": "gzip", "If-None-Match": validator}
        )
        assert r.status_code == 304 and r.headers["etag"] == etag, validator
        assert "content-encoding" not in r.headers
    stale = api.client.get("/banner.js", headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200
    refused = api.client.get("/banner.js", headers={"Accept-Encoding": "gzip;q=0, br;q=0"})
    assert "content-encoding" not in refused.headers and refused.content == data


def test_config_opt_in_by_default(demo: ApiClient) -> None:
    r = demo.client.get("/v1/banner/default/config")
    assert r.status_code == 200
    assert "public" in r.headers["cache-control"] and "Sec-GPC" in r.headers["vary"]
    c = r.json()
    assert c["variant"] == "opt_in" and c["gpc"] is False
    assert c["texts"]["accept_all"] == "Accept all" and c["texts"]["reject_all"] == "Reject all"
    assert c["notice"] == {"id": "demo-privacy", "version": 1}
    purposes = {p["id"]: p for p in c["purposes"]}
    assert purposes["necessary"]["required"] and not purposes["necessary"]["choosable"]
    assert purposes["analytics"]["default"] is False  # opt-in: nothing before a choice
    state = c["state"]
    assert state["cm"]["analytics_storage"] == "denied"
    assert state["cm"]["security_storage"] == "granted"  # mapped to the required purpose
    assert tcf.decode(state["tcf"]).purpose_consents == ()
    assert gpp.decode(state["gpp"]).section_ids == (2,)


def test_config_opt_out_variant_by_jurisdiction_header_and_gpc(demo: ApiClient) -> None:
    headers = {"X-Consentry-Jurisdiction": "US-CA", "Sec-GPC": "1"}
    c = demo.client.get("/v1/banner/default/config", headers=headers).json()
    assert c["variant"] == "opt_out" and c["jurisdiction"] == "US-CA" and c["gpc"] is True
    assert c["title"] == "Do Not Sell or Share My Personal Information"
    purposes = {p["id"]: p for p in c["purposes"]}
    assert purposes["ads"]["gpc_locked"] and purposes["data_sale"]["gpc_locked"]
    assert purposes["analytics"]["gpc_locked"] is False
    usnat = gpp.decode(c["state"]["gpp"]).usnat
    assert usnat is not None and usnat.Gpc is True and usnat.SaleOptOut == 1
    plain = demo.client.get(
        "/v1/banner/default/config", headers={"X-Consentry-Jurisdiction": "US-CA"}
    ).json()
    assert {p["id"]: p["default"] for p in plain["purposes"]}["ads"] is True  # until opt-out


def test_accept_all_records_and_sets_first_party_cookies(demo: ApiClient) -> None:
    choice = dict.fromkeys(CHOICE, True)
    r = demo.client.post("/v1/banner/default/consent", json={"choices": choice})
    assert r.status_code == 200, r.text
    cookies = r.headers.get_list("set-cookie")
    consent_cookie = next(c for c in cookies if c.startswith("consentry="))
    sid_cookie = next(c for c in cookies if c.startswith("consentry_sid="))
    assert "HttpOnly" not in consent_cookie and "SameSite=lax" in consent_cookie
    assert "HttpOnly" in sid_cookie and "Max-Age=15552000" in sid_cookie
    key = demo.client.get("/v1/banner/default/config").json()["token_key"]
    token = verify_consent_token(demo.client.cookies["consentry"], key, tenant="default")
    assert token.subject is None, "the script-readable cookie names no subject"
    assert all(token.allows(p) for p in CHOICE) and token.allows("necessary")
    assert token.consent_mode["ad_user_data"] == "granted"
    assert set(tcf.decode(token.tc_string or "").purpose_consents) == set(range(1, 11))
    assert token.position is not None and token.claims == r.json()["consent"] | {
        "iat": token.issued_at,
        "exp": token.expires_at,
        "iss": "consentry/default",
    }
    events = events_of(demo, subject_of(demo))
    assert {(e["purpose"], e["action"], e["source"]) for e in events} == {
        (p, "given", "banner") for p in CHOICE
    }
    assert all(e["notice_id"] == "demo-privacy" and e["notice_version"] == 1 for e in events)


def test_the_session_cookie_keeps_one_subject_and_cannot_be_forged(demo: ApiClient) -> None:
    demo.client.post("/v1/banner/default/consent", json={"choices": CHOICE})
    first = subject_of(demo)
    r = demo.client.post("/v1/banner/default/consent", json={"choices": {"analytics": False}})
    assert subject_of(demo) == first
    assert [e["action"] for e in events_of(demo, first) if e["purpose"] == "analytics"] == [
        "given",
        "withdrawn",
    ]
    assert r.json()["consent"]["p"]["analytics"] is False
    # A made-up or foreign session is ignored: the caller gets a new subject, not `victim`.
    demo.client.cookies.clear()
    forged = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ2aWN0aW0ifQ.AAAA"
    demo.client.cookies.set("consentry_sid", forged, domain="testserver.local")
    r = demo.client.post("/v1/banner/default/consent", json={"choices": {"analytics": True}})
    assert r.headers["X-Consentry-New-Subject"] == "1"
    assert subject_of(demo) not in (first, "victim")
    assert events_of(demo, "victim") == []


def test_gpc_opts_out_with_source_gpc_and_is_shown(demo: ApiClient) -> None:
    headers = {"Sec-GPC": "1", "X-Consentry-Jurisdiction": "US-CA"}
    choice = dict.fromkeys(CHOICE, True)  # even "accept all" cannot undo the GPC opt-out
    r = demo.client.post("/v1/banner/default/consent", json={"choices": choice}, headers=headers)
    assert r.status_code == 200, r.text
    claims = r.json()["consent"]
    assert claims["gpc"] is True and claims["p"]["ads"] is False and claims["p"]["analytics"]
    got = {(e["purpose"], e["action"], e["source"]) for e in events_of(demo, subject_of(demo))}
    assert got == {
        ("ads", "opted_out", "gpc"),
        ("data_sale", "opted_out", "gpc"),
        ("analytics", "given", "banner"),
        ("personalization", "given", "banner"),
    }
    # A second visit with GPC records nothing new for the opted-out purposes.
    again = demo.client.post(
        "/v1/banner/default/consent", json={"choices": choice}, headers=headers
    )
    assert {e["source"] for e in again.json()["events"]} == {"banner"}


def test_cors_only_for_allowed_origins(demo: ApiClient) -> None:
    evil = {"Origin": "https://evil.example"}
    r = demo.client.post("/v1/banner/default/consent", json={"choices": CHOICE}, headers=evil)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert demo.client.options("/v1/banner/default/consent", headers=evil).status_code == 403
    admin = demo.key_for(Role.ADMIN)
    body = {"allowed_origins": ["https://shop.example"]}
    assert demo.client.put("/v1/banner", json=body, headers=admin).status_code == 200
    get_collection_of(demo).invalidate("default")
    ok = {"Origin": "https://shop.example"}
    pre = demo.client.options("/v1/banner/default/consent", headers=ok)
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == "https://shop.example"
    r = demo.client.post("/v1/banner/default/consent", json={"choices": CHOICE}, headers=ok)
    assert r.status_code == 200
    assert r.headers["access-control-allow-credentials"] == "true"
    same = {"Origin": "http://testserver"}
    r = demo.client.post("/v1/banner/default/consent", json={"choices": CHOICE}, headers=same)
    assert r.status_code == 200


def get_collection_of(api: ApiClient) -> Any:
    class _Req:
        app = api.client.app

    return get_collection(_Req())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v1/banner/nobody/consent", {"choices": {}}, 404, "PUT /v1/banner"),
        ("/v1/banner/default/consent", {"choices": {"ghost": True}}, 422, "not offered"),
        ("/v1/banner/default/consent", {"choices": {"necessary": False}}, 422, "always active"),
        ("/v1/banner/default/consent", {"choices": {"ads": "yes"}}, 422, "choices"),
        ("/v1/banner/default/consent", {"choices": {}, "subject": "x"}, 422, "subject"),
    ],
)
def test_public_endpoint_errors(
    demo: ApiClient, path: str, body: dict[str, Any], status: int, message: str
) -> None:
    r = demo.client.post(path, json=body)
    assert r.status_code == status, r.text
    assert message in r.text and r.json()["error"]["status"] == status


def test_banner_settings_api(api: ApiClient) -> None:
    assert api.client.get("/v1/banner").json() == {"version": 0, "enabled": False}
    assert api.client.get("/v1/banner/default/config").status_code == 404
    api.purpose("email")
    r = api.client.put("/v1/banner", json={"purposes": ["email"], "cookie_days": 30})
    assert r.status_code == 200 and r.json()["version"] == 1
    assert api.client.put("/v1/banner", json={"purposes": ["nope"]}).status_code == 422
    assert api.client.put("/v1/banner", json={"allowed_origins": ["evil"]}).status_code == 422
    checker = api.key_for(Role.CHECKER)
    assert api.client.put("/v1/banner", json={}, headers=checker).status_code == 403
    c = api.client.get("/v1/banner/default/config").json()
    assert [p["id"] for p in c["purposes"]] == ["email"]
