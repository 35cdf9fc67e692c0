"""Inputs that broke the installation (issue 10 #7, #8, #9, #11), on both backends: each is a
422 in the one error shape, nothing is written, and the installation keeps answering.

The rules are domain/inputs.py's; docs/model.md ("Input rules") states them for people.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import ApiClient

NUL = "\x00"


@pytest.fixture
def ready(api: ApiClient) -> Iterator[ApiClient]:
    api.purpose("email", lifetime_days=30)
    api.notice("privacy", 1, ["email"], "2025-01-01T00:00:00Z")
    yield api


def consent(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"subject": "s", "events": [{"purpose": "email", "action": "given"}]}
    body.update(overrides)
    return body


def refused(api: ApiClient, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    """The request is answered 422 in the one shape, and the log did not move."""
    head = api.services.store.head()
    notices = api.services.store.get_notices("default")
    purposes = api.services.store.get_purposes("default")
    r = api.client.request(method, url, **kwargs)
    assert r.status_code == 422, (url, kwargs, r.status_code, r.text)
    error = r.json()["error"]
    assert error["status"] == 422 and error["code"] == "validation_error"
    assert api.services.store.head() == head, "nothing of a refused request is written"
    assert api.services.store.get_notices("default") == notices
    assert api.services.store.get_purposes("default") == purposes
    return dict(error)


def still_healthy(api: ApiClient) -> None:
    """What a BC timestamp or a stored NUL broke for good on PostgreSQL: reads of the
    subject, the tenant's change feed and its decisions."""
    assert api.client.get("/v1/subjects/s/history").status_code == 200
    assert api.client.get("/v1/subjects/s/consents").status_code == 200
    assert api.client.get("/v1/changes", params={"after": 0}).status_code == 200
    d = api.client.get("/v1/decisions", params={"subject": "s", "purpose": "email"})
    assert d.status_code == 200, d.text
    assert api.client.post("/v1/consents", json=consent()).status_code == 201


# #7: times outside 1970-01-01T00:00:00Z .. now + skew --------------------------------------
OUT_OF_RANGE = [
    "0001-01-01T00:00:00+01:00",  # the year 0 in UTC: a BC timestamp on PostgreSQL
    "0001-01-01T00:00:00Z",
    "1969-12-31T23:59:59.999999Z",
    "1970-01-01T00:30:00+01:00",  # 1969 in UTC
    "9999-12-31T23:59:59-01:00",  # beyond year 9999 in UTC
    "2999-01-01T00:00:00Z",
]


@pytest.mark.parametrize("when", OUT_OF_RANGE)
def test_times_outside_the_sane_range_are_refused_before_anything_is_written(
    ready: ApiClient, when: str
) -> None:
    error = refused(ready, "POST", "/v1/consents", json=consent(occurred_at=when))
    assert "occurred_at" in error["message"]
    notice = {"id": "privacy", "version": 2, "text": "v2", "purposes": ["email"]}
    error = refused(ready, "POST", "/v1/notices", json={**notice, "published_at": when})
    assert "published_at" in error["message"]
    for name in ("as_of", "known_at"):
        refused(ready, "GET", "/v1/subjects/s/consents", params={name: when})
    still_healthy(ready)


def test_the_edges_of_the_range_are_accepted(ready: ApiClient) -> None:
    r = ready.client.post("/v1/consents", json=consent(occurred_at="1970-01-01T00:00:00Z"))
    assert r.status_code == 201, r.text
    r = ready.client.post(
        "/v1/consents", json=consent(subject="t", occurred_at="1970-01-01T01:00:00+01:00")
    )
    assert r.status_code == 201, r.text
    params = {"as_of": "1970-01-01T00:00:00Z", "known_at": "2026-01-01T00:00:00Z"}
    assert ready.client.get("/v1/subjects/s/consents", params=params).status_code == 200


# #11: RFC 3339 strings only ------------------------------------------------------------------
@pytest.mark.parametrize(
    "when",
    [
        0,
        1_700_000_000,
        1.5,
        True,
        "1700000000",
        "2026-01-01",
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00+0100",
        "20260101T000000Z",
        "2026-01-01T00:00:00Z ",
    ],
)
def test_times_are_rfc3339_strings_never_numbers(ready: ApiClient, when: Any) -> None:
    refused(ready, "POST", "/v1/consents", json=consent(occurred_at=when))
    notice = {"id": "privacy", "version": 2, "text": "v2", "purposes": ["email"]}
    refused(ready, "POST", "/v1/notices", json={**notice, "published_at": when})
    if isinstance(when, str):
        refused(ready, "GET", "/v1/subjects/s/consents", params={"as_of": when})


@pytest.mark.parametrize(
    "code", ["D\u0415", "\uff24\uff25", "\u0434\u0435", "US-\u0421A", "\ufb00", "DE\n", "D", "1A"]
)
def test_jurisdictions_are_ascii_iso_3166_codes(ready: ApiClient, code: str) -> None:
    """Cyrillic, full-width and ligature look-alikes are not country codes."""
    error = refused(ready, "POST", "/v1/consents", json=consent(jurisdiction=code))
    assert "jurisdiction" in error["message"]


def test_ascii_codes_are_accepted_and_normalized(ready: ApiClient) -> None:
    for code, stored in (("de", "DE"), ("us_ca", "US-CA"), ("EU", "EU")):
        r = ready.client.post("/v1/consents", json=consent(subject=code, jurisdiction=code))
        assert r.status_code == 201, r.text
        event = ready.client.get(f"/v1/subjects/{code}/history").json()["events"][0]
        assert event["jurisdiction"] == stored


BAD_SUBJECTS = {
    "nul": "a\x00b",
    "tab": "a\tb",
    "newline": "a\n",
    "leading space": " a",
    "trailing space": "a ",
    "zero-width joiner": "a\u200db",
    "bidi override": "\u202eabc",
    "no-break space": "a\u00a0b",
    "line separator": "a\u2028b",
    "private use": "a\ue000",
    "not NFC": "e\u0301",
    "too long": "x" * 257,
}


@pytest.mark.parametrize("name", sorted(BAD_SUBJECTS))
def test_the_subject_policy_holds_on_every_route(ready: ApiClient, name: str) -> None:
    subject = BAD_SUBJECTS[name]
    refused(ready, "POST", "/v1/consents", json=consent(subject=subject))
    check = {"subject": subject, "purpose": "email"}
    refused(ready, "POST", "/v1/decisions", json={"checks": [check]})
    refused(ready, "GET", "/v1/decisions", params=check)
    segment = quote(subject, safe="")
    for route in ("consents", "history"):
        refused(ready, "GET", f"/v1/subjects/{segment}/{route}")
    refused(ready, "POST", f"/v1/subjects/{segment}/preference-link", json={})
    still_healthy(ready)


def test_unicode_subjects_in_nfc_are_accepted_everywhere(ready: ApiClient) -> None:
    for subject in ("\u00e9l\u00e8ve", "u 42", "\u5c71\u7530", "a+b@example.com", "\U0001f600"):
        assert ready.client.post("/v1/consents", json=consent(subject=subject)).status_code == 201
        d = ready.client.get("/v1/decisions", params={"subject": subject, "purpose": "email"})
        assert d.status_code == 200 and d.json()["permitted"], (subject, d.text)
        batch = {"checks": [{"subject": subject, "purpose": "email"}]}
        assert ready.client.post("/v1/decisions", json=batch).json()["decisions"][0]["permitted"]
        history = ready.client.get(f"/v1/subjects/{quote(subject, safe='')}/history")
        assert [e["subject"] for e in history.json()["events"]] == [subject]


# #8: NUL and control characters in what is recorded or stored ----------------------------
def test_nul_and_control_characters_are_refused_in_every_recorded_string(
    ready: ApiClient,
) -> None:
    ev = {"ip": "192.0.2.1"}
    for body in (
        consent(evidence={**ev, "user_agent": f"Mozilla{NUL}"}),
        consent(evidence={**ev, "user_agent": "Mozilla\x1b[31m"}),
        consent(evidence={"ip": f"192.0.2.1{NUL}"}),
        consent(jurisdiction=f"DE{NUL}"),
        consent(events=[{"purpose": f"email{NUL}", "action": "given"}]),
        consent(notice={"id": f"privacy{NUL}", "version": 1}),
        {"subject": "s", "tc_string": f"CPX{NUL}"},
        {"subject": "s", "gpp_string": f"DBABMA~{NUL}"},
    ):
        refused(ready, "POST", "/v1/consents", json=body)
    purpose = {"id": "ads", "name": "Ads", "legal_basis": "consent"}
    for change in (
        {"name": f"A{NUL}ds"},
        {"name": "Ads\n"},
        {"description": f"about{NUL}"},
        {"description": "bell\x07"},
        {"id": "ads\n"},
    ):
        refused(ready, "POST", "/v1/purposes", json={**purpose, **change})
    notice = {"id": "privacy", "version": 2, "text": "v2", "purposes": ["email"]}
    for change in ({"text": f"We{NUL}"}, {"text": "form\x0cfeed"}, {"id": "terms\n"}):
        refused(ready, "POST", "/v1/notices", json={**notice, **change})
    # Several lines are fine where text has lines.
    ok = ready.client.post("/v1/notices", json={**notice, "text": "Line one.\r\n\tLine two.\n"})
    assert ok.status_code == 201, ok.text
    r = ready.client.post("/v1/consents", json=consent(), headers={"Idempotency-Key": "key\x7f"})
    assert r.status_code == 422, r.text
    still_healthy(ready)


def test_banner_settings_refuse_control_characters(ready: ApiClient) -> None:
    for body in (
        {"texts": {"title": f"Hi{NUL}"}},
        {"privacy_url": f"https://example.com/{NUL}"},
        {"cookie_domain": "example.com\r\n"},
    ):
        r = ready.client.put("/v1/banner", json=body)
        assert r.status_code == 422, (body, r.text)
    r = ready.client.put("/v1/banner", json={"texts": {"body": "Two\nlines."}})
    assert r.status_code == 200, r.text


# #9: integers every backend can store ------------------------------------------------------
@pytest.mark.parametrize("version", [2**31, 2**63, 2**64 + 1])
def test_notice_versions_beyond_the_column_are_refused(ready: ApiClient, version: int) -> None:
    notice = {"id": "privacy", "version": version, "text": "v", "purposes": ["email"]}
    refused(ready, "POST", "/v1/notices", json=notice)
    refused(
        ready, "POST", "/v1/consents", json=consent(notice={"id": "privacy", "version": version})
    )
    still_healthy(ready)


def test_the_largest_version_is_accepted(ready: ApiClient) -> None:
    notice = {"id": "privacy", "version": 2**31 - 1, "text": "v", "purposes": ["email"]}
    r = ready.client.post("/v1/notices", json=notice)
    assert r.status_code == 201, r.text
    r = ready.client.post(
        "/v1/consents", json=consent(notice={"id": "privacy", "version": 2**31 - 1})
    )
    assert r.status_code == 201, r.text
