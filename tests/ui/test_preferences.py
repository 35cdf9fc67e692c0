"""The preference center over HTTP (no JavaScript): who may see it, CSRF, giving and withdrawing."""

from __future__ import annotations

import re

from consentry.storage.base import Role
from tests.conftest import ApiClient


def link(api: ApiClient, subject: str) -> str:
    r = api.client.post(f"/v1/subjects/{subject}/preference-link", json={"hours": 1})
    assert r.status_code == 200, r.text
    return str(r.json()["url"]).replace("http://testserver", "")


def token_of(url: str) -> str:
    return url.split("?t=", 1)[1]


def open_link(api: ApiClient, url: str) -> None:
    """What a person does: open the link, press its one button."""
    page = api.client.get(url)
    assert page.status_code == 200 and 'action="/preferences/open"' in page.text
    r = api.client.post("/preferences/open", data={"t": token_of(url)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/preferences", r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Path=/preferences" in cookie and "Max-Age=3600" in cookie
    assert token_of(url) not in cookie, "the cookie holds a session token, not the link's"


def csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_strangers_and_bad_links_see_nothing(api: ApiClient) -> None:
    api.purpose("email")
    r = api.client.get("/preferences")
    assert r.status_code == 401 and "do not know whose choices" in r.text
    r = api.client.get("/preferences?t=abc.def.ghi")
    assert r.status_code == 403 and "invalid or has expired" in r.text
    r = api.client.post("/preferences", data={"all": "allow"})
    assert r.status_code == 401
    checker = api.key_for(Role.CHECKER)
    r = api.client.post("/v1/subjects/x/preference-link", json={}, headers=checker)
    assert r.status_code == 403


def test_link_access_and_withdrawing_as_easy_as_giving(api: ApiClient) -> None:
    api.purpose("email")
    api.purpose("billing", "contract")
    api.purpose("fraud", "legitimate_interest")
    r = api.client.post(
        "/v1/notices",
        json={"id": "privacy", "version": 1, "text": "We email you.", "purposes": ["email"]},
    )
    assert r.status_code == 201, r.text
    url = link(api, "crm-7")
    api.client.headers.pop("Authorization")
    open_link(api, url)
    page = api.client.get("/preferences")
    assert page.status_code == 200
    assert "Notice “privacy”, version 1" in page.text and "We email you." in page.text
    assert "Always active: needed for our contract" in page.text
    assert "Allowed (legitimate interest) until you object" in page.text
    token = csrf(page.text)

    # Without the form's token, or from another site, nothing is recorded.
    assert api.client.post("/preferences", data={"all": "allow"}).status_code == 403
    evil = {"Origin": "https://evil.example"}
    r = api.client.post("/preferences", data={"all": "allow", "csrf": token}, headers=evil)
    assert r.status_code == 403

    r = api.client.post("/preferences", data={"csrf": token, "all": "allow"})
    assert r.status_code == 200 and "Your choices were saved." in r.text  # after the redirect
    assert "Allowed: you agreed" in r.text
    r = api.client.post("/preferences", data={"csrf": token, "all": "deny"})
    assert "you withdrew your consent" in r.text and "Not allowed: you objected" in r.text
    r = api.client.post("/preferences", data={"csrf": token, "all": "deny"})
    assert "Nothing changed." in r.text
    r = api.client.post("/preferences", data={"csrf": token, "choice.fraud": "allow"})
    events = api.services.store.subject_history("default", "crm-7")
    assert [(e.purpose, e.action.value) for e in events] == [
        ("email", "given"),
        ("email", "withdrawn"),
        ("fraud", "objected"),
        ("fraud", "given"),
    ]
    assert {e.evidence.source.value for e in events} == {"preference_center"}
    assert all(e.evidence.notice_id is None for e in events if e.purpose == "fraud")


def test_a_link_opens_the_preference_center_once(api: ApiClient) -> None:
    api.purpose("email")
    url = link(api, "crm-8")
    api.client.headers.pop("Authorization")
    # Looking at the link (a mail scanner fetches every link of an email) does not use it up.
    assert api.client.get(url).status_code == 200
    open_link(api, url)
    assert api.client.get("/preferences").status_code == 200
    api.client.cookies.clear()

    # Taken once: the same link, again or copied elsewhere, opens nothing.
    r = api.client.post("/preferences/open", data={"t": token_of(url)}, follow_redirects=False)
    assert r.status_code == 403 and "already used" in r.text
    assert "set-cookie" not in r.headers
    r = api.client.get(url)
    assert r.status_code == 403 and "already used" in r.text
    # Nor does the link's token work as the cookie itself.
    api.client.cookies.set("consentry_pref", token_of(url), path="/preferences")
    assert api.client.get("/preferences").status_code == 401
    assert api.client.get("/preferences?t=abc.def.ghi").status_code == 403


def test_opening_a_link_is_refused_from_another_site(api: ApiClient) -> None:
    api.purpose("email")
    url = link(api, "crm-9")
    api.client.headers.pop("Authorization")
    evil = {"Origin": "https://evil.example"}
    r = api.client.post("/preferences/open", data={"t": token_of(url)}, headers=evil)
    assert r.status_code == 403 and "not sent from the preference center" in r.text
    open_link(api, url)  # not used up by the refused attempt


def test_a_link_without_an_id_is_refused(api: ApiClient) -> None:
    """Links issued before single use (no `jti`) cannot be taken once: refused."""
    import time

    from consentry.tokens import PREFERENCES, sign_token

    api.purpose("email")
    now = int(time.time())
    claims = {"typ": PREFERENCES, "tnt": "default", "sub": "old", "iat": now, "exp": now + 60}
    old = sign_token(api.services.keyring.signing_key("default"), claims)
    api.client.headers.pop("Authorization")
    assert api.client.get(f"/preferences?t={old}").status_code == 403
    assert api.client.post("/preferences/open", data={"t": old}).status_code == 403
