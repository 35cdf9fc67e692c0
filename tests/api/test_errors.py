"""Bad input: a 4xx with the one error shape, a message saying what to fix, nothing written.

The shape is pinned here: {"error": {"status", "code", "message"[, "details"]}}.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consentry.domain.events import format_time
from consentry.storage.base import Role
from tests.conftest import ApiClient


def assert_error(response: Any, status: int, code: str, fragment: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) <= {"status", "code", "message", "details"}
    assert error["status"] == status and error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert fragment.lower() in error["message"].lower(), error["message"]


def consent(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"subject": "s", "events": [{"purpose": "email", "action": "given"}]}
    body.update(overrides)
    return body


def future(minutes: int) -> str:
    return format_time(datetime.now(UTC) + timedelta(minutes=minutes))


BAD_CONSENTS = [
    (consent(events=[{"purpose": "nope", "action": "given"}]), 422, "unknown purpose"),
    (consent(events=[{"purpose": "billing", "action": "withdrawn"}]), 422, "contract"),
    (consent(events=[{"purpose": "session", "action": "withdrawn"}]), 422, "required"),
    (consent(events=[{"purpose": "fraud", "action": "withdrawn"}]), 422, "objected"),
    (consent(events=[{"purpose": "email", "action": "objected"}]), 422, "consent"),
    (consent(events=[{"purpose": "email", "action": "maybe"}]), 422, "events.0.action"),
    (consent(occurred_at="yesterday"), 422, "occurred_at"),
    (consent(occurred_at="2026-01-01T00:00:00"), 422, "occurred_at"),
    (consent(occurred_at=future(30)), 422, "future"),
    (consent(events=[{"purpose": "email", "action": "given"}] * 101), 422, "at most"),
    (consent(events=[]), 422, "events"),
    (consent(subject=42), 422, "subject"),
    (consent(subject=""), 422, "subject"),
    (consent(unknown_field=1), 422, "unknown_field"),
    (consent(notice={"id": "privacy", "version": "1"}), 422, "notice.version"),
    (consent(notice={"id": "privacy", "version": 9}), 422, "no version 9"),
    (consent(notice={"id": "missing", "version": 1}), 404, "does not exist"),
    (consent(source="fax"), 422, "source"),
    (consent(jurisdiction="Germany!"), 422, "jurisdiction"),
    (consent(evidence={"ip": "not-an-ip"}), 422, "ip"),
    (
        consent(
            events=[
                {"purpose": "email", "action": "given"},
                {"purpose": "email", "action": "refused"},
            ]
        ),
        422,
        "twice",
    ),
    (
        consent(
            events=[{"purpose": "ads", "action": "given"}], notice={"id": "privacy", "version": 1}
        ),
        422,
        "does not cover",
    ),
    (consent(events=[{"purpose": "email", "action": "given", "event_id": "x"}]), 422, "event_id"),
]


@pytest.fixture
def catalog(api: ApiClient) -> ApiClient:
    api.purpose("email")
    api.purpose("ads")
    api.purpose("billing", basis="contract")
    api.purpose("fraud", basis="legitimate_interest")
    api.purpose("session", required=True)
    r = api.client.post(
        "/v1/notices", json={"id": "privacy", "version": 1, "text": "t", "purposes": ["email"]}
    )
    assert r.status_code == 201
    return api


@pytest.mark.parametrize(("body", "status", "fragment"), BAD_CONSENTS)
def test_bad_consent_is_refused_and_nothing_is_written(
    catalog: ApiClient, body: dict[str, Any], status: int, fragment: str
) -> None:
    r = catalog.client.post("/v1/consents", json=body)
    code = {404: "not_found", 422: "validation_error"}[status]
    assert_error(r, status, code, fragment)
    assert catalog.services.store.head() == 0


def test_a_batch_with_one_bad_event_writes_none(catalog: ApiClient) -> None:
    r = catalog.client.post(
        "/v1/consents",
        json=consent(
            events=[
                {"purpose": "email", "action": "given"},
                {"purpose": "billing", "action": "refused"},
            ]
        ),
    )
    assert_error(r, 422, "validation_error", "billing")
    assert catalog.services.store.head() == 0


def test_malformed_json_and_wrong_content(api: ApiClient) -> None:
    r = api.client.post(
        "/v1/consents", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(r, 422, "validation_error")
    r = api.client.post(
        "/v1/consents", content=b"x" * 2_000_000, headers={"content-type": "application/json"}
    )
    assert_error(r, 413, "payload_too_large")


def test_authentication_and_roles(api: ApiClient) -> None:
    api.purpose("email")
    anonymous = api.client.get("/v1/purposes", headers={"Authorization": ""})
    assert_error(anonymous, 401, "unauthenticated", "authorization")
    wrong = api.client.get("/v1/purposes", headers={"Authorization": "Bearer csk_x_y"})
    assert_error(wrong, 401, "unauthenticated", "unknown")
    checker = api.key_for(Role.CHECKER)
    assert_error(
        api.client.post("/v1/consents", json=consent(), headers=checker),
        403,
        "forbidden",
        "collector",
    )
    ok = api.client.get(
        "/v1/decisions", params={"subject": "s", "purpose": "email"}, headers=checker
    )
    assert ok.status_code == 200
    assert_error(api.client.get("/v1/subjects/s/history", headers=checker), 403, "forbidden")
    auditor = api.key_for(Role.AUDITOR)
    assert api.client.get("/v1/subjects/s/history", headers=auditor).status_code == 200
    collector = api.key_for(Role.COLLECTOR)
    assert api.client.post("/v1/consents", json=consent(), headers=collector).status_code == 201
    assert_error(
        api.client.post(
            "/v1/purposes",
            json={"id": "x", "name": "x", "legal_basis": "consent"},
            headers=collector,
        ),
        403,
        "forbidden",
    )


def test_tenants_are_isolated(api: ApiClient) -> None:
    api.purpose("email")
    api.record("shared-subject", email="given")
    other = api.key_for(Role.ADMIN, tenant="acme")
    assert api.client.get("/v1/purposes", headers=other).json() == {"purposes": []}
    history = api.client.get("/v1/subjects/shared-subject/history", headers=other).json()
    assert history["events"] == []
    r = api.client.get(
        "/v1/decisions", params={"subject": "shared-subject", "purpose": "email"}, headers=other
    )
    assert_error(r, 422, "validation_error", "unknown purpose")


def test_other_errors_share_the_shape(api: ApiClient) -> None:
    assert_error(api.client.get("/v1/nowhere"), 404, "not_found")
    assert_error(api.client.delete("/v1/purposes"), 405, "method_not_allowed")
    assert_error(
        api.client.get("/v1/decisions", params={"subject": "s"}), 422, "validation_error", "purpose"
    )
    assert_error(
        api.client.get("/v1/subjects/s/consents", params={"as_of": "noon"}),
        422,
        "validation_error",
        "as_of",
    )
    api.purpose("email")
    r = api.client.get(
        "/v1/decisions", params={"subject": "s", "purpose": "email", "min_token": "abc"}
    )
    assert_error(r, 422, "validation_error", "min_token")
    r = api.client.get(
        "/v1/decisions", params={"subject": "s", "purpose": "email", "min_token": "99"}
    )
    assert_error(r, 409, "token_ahead", "ahead")
