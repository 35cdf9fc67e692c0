"""The preference center over HTTP (no JavaScript): who may see it, CSRF, giving and withdrawing."""

from __future__ import annotations

import re

from consentry.storage.base import Role
from tests.conftest import ApiClient


def link(api: ApiClient, subject: str) -> str:
    r = api.client.post(f"/v1/subjects/{subject}/preference-link", json={"hours": 1})
    assert r.status_code == 200, r.text
    return str(r.json()["url"]).replace("http://testserver", "")


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
    r = api.client.get(url, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/preferences"
    assert "HttpOnly" in r.headers["set-cookie"] and "Path=/preferences" in r.headers["set-cookie"]
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
