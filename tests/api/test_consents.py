"""The core API contract: recording, reading, deciding, on each backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from consentry.domain.events import format_time
from tests.conftest import ApiClient


def test_record_then_decide_with_token(api: ApiClient) -> None:
    api.purpose("email_marketing", lifetime_days=365)
    r = api.client.post(
        "/v1/consents",
        json={
            "subject": "u-1",
            "source": "banner",
            "jurisdiction": "DE",
            "evidence": {"ip": "203.0.113.77", "user_agent": "Firefox"},
            "events": [{"purpose": "email_marketing", "action": "given"}],
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token"] == "1"
    assert body["events"][0]["position"] == 1 and body["events"][0]["purpose"] == "email_marketing"
    d = api.client.get(
        "/v1/decisions",
        params={"subject": "u-1", "purpose": "email_marketing", "min_token": body["token"]},
    ).json()
    assert d["permitted"] is True and d["reason"] == "granted" and d["position"] == 1
    assert d["basis"] == "consent" and d["valid_until"] is not None
    assert set(d) >= {
        "subject",
        "purpose",
        "permitted",
        "reason",
        "basis",
        "position",
        "notice_version",
        "decided_at",
        "valid_until",
    }
    history = api.client.get("/v1/subjects/u-1/history").json()["events"]
    assert history[0]["ip"] == "203.0.113.0"  # truncated by the default evidence policy
    assert history[0]["jurisdiction"] == "DE" and history[0]["source"] == "banner"


def test_batch_decisions_and_withdrawal(api: ApiClient) -> None:
    api.purpose("email")
    api.purpose("analytics")
    api.record("a", email="given", analytics="given")
    token = api.record("a", email="withdrawn")["token"]
    r = api.client.post(
        "/v1/decisions",
        json={
            "checks": [
                {"subject": "a", "purpose": "email"},
                {"subject": "a", "purpose": "analytics"},
                {"subject": "b", "purpose": "email"},
            ],
            "min_token": token,
        },
    )
    assert r.status_code == 200
    reasons = [(d["permitted"], d["reason"]) for d in r.json()["decisions"]]
    assert reasons == [(False, "withdrawn"), (True, "granted"), (False, "not_given")]


def test_retry_with_same_event_ids_writes_nothing_twice(api: ApiClient) -> None:
    api.purpose("email")
    body = {
        "subject": "s",
        "events": [{"purpose": "email", "action": "given", "event_id": str(uuid.uuid4())}],
    }
    first = api.client.post("/v1/consents", json=body)
    second = api.client.post("/v1/consents", json=body)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(api.client.get("/v1/subjects/s/history").json()["events"]) == 1


def test_idempotency_key(api: ApiClient) -> None:
    api.purpose("email")
    body = {"subject": "s", "events": [{"purpose": "email", "action": "given"}]}
    headers = {"Idempotency-Key": "order-42"}
    first = api.client.post("/v1/consents", json=body, headers=headers)
    second = api.client.post("/v1/consents", json=body, headers=headers)
    assert first.json() == second.json()
    other = {"subject": "s", "events": [{"purpose": "email", "action": "refused"}]}
    conflict = api.client.post("/v1/consents", json=other, headers=headers)
    assert conflict.status_code == 409
    assert conflict.json()["error"]["code"] == "conflict"
    assert len(api.client.get("/v1/subjects/s/history").json()["events"]) == 1


def test_late_event_is_kept_but_does_not_override(api: ApiClient) -> None:
    api.purpose("email")
    now = datetime.now(UTC)
    api.client.post(
        "/v1/consents",
        json={
            "subject": "s",
            "occurred_at": format_time(now - timedelta(minutes=1)),
            "events": [{"purpose": "email", "action": "withdrawn"}],
        },
    )
    late = api.client.post(
        "/v1/consents",
        json={
            "subject": "s",
            "occurred_at": format_time(now - timedelta(hours=3)),
            "events": [{"purpose": "email", "action": "given"}],
        },
    )
    assert late.status_code == 201
    d = api.client.get("/v1/decisions", params={"subject": "s", "purpose": "email"}).json()
    assert d["reason"] == "withdrawn" and d["position"] == 1
    history = api.client.get("/v1/subjects/s/history").json()["events"]
    assert [e["action"] for e in history] == ["given", "withdrawn"]  # by legal time


def test_state_as_of_and_known_at(api: ApiClient) -> None:
    api.purpose("email")
    now = datetime.now(UTC)
    first = api.record("s", email="given")
    given_at = first["events"][0]["recorded_at"]
    api.client.post(
        "/v1/consents",
        json={
            "subject": "s",
            "occurred_at": format_time(now - timedelta(days=1)),
            "events": [{"purpose": "email", "action": "refused"}],
        },
    )
    current = api.client.get("/v1/subjects/s/consents").json()["purposes"][0]
    assert current["reason"] == "granted" and current["event"]["position"] == 1
    before = api.client.get(
        "/v1/subjects/s/consents", params={"as_of": format_time(now - timedelta(hours=1))}
    ).json()
    assert before["purposes"][0]["reason"] == "refused"
    # As we knew it right after the first write, the refusal (recorded later) was unknown.
    known = api.client.get(
        "/v1/subjects/s/consents",
        params={"as_of": format_time(now - timedelta(hours=1)), "known_at": given_at},
    ).json()
    assert known["purposes"][0]["reason"] == "not_given"
    assert known["purposes"][0]["event"] is None


def test_reconsent_after_material_notice(api: ApiClient) -> None:
    api.purpose("email")
    long_ago = datetime.now(UTC) - timedelta(days=90)
    r = api.client.post(
        "/v1/notices",
        json={
            "id": "privacy",
            "version": 1,
            "text": "v1",
            "purposes": ["email"],
            "published_at": format_time(long_ago),
        },
    )
    assert r.status_code == 201
    api.client.post(
        "/v1/consents",
        json={
            "subject": "s",
            "notice": {"id": "privacy", "version": 1},
            "occurred_at": format_time(long_ago + timedelta(days=1)),
            "events": [{"purpose": "email", "action": "given"}],
        },
    )
    api.client.post(
        "/v1/notices",
        json={
            "id": "privacy",
            "version": 2,
            "text": "v2",
            "purposes": ["email"],
            "material": True,
            "grace_days": 30,
            "published_at": format_time(datetime.now(UTC) - timedelta(days=10)),
        },
    )
    pending = api.client.get("/v1/decisions", params={"subject": "s", "purpose": "email"}).json()
    assert pending["permitted"] and pending["restrictions"] == ["reconsent_pending"]
    api.client.post(
        "/v1/notices",
        json={
            "id": "privacy",
            "version": 3,
            "text": "v3",
            "purposes": ["email"],
            "material": True,
            "grace_days": 5,
            "published_at": format_time(datetime.now(UTC) - timedelta(days=6)),
        },
    )
    required = api.client.get("/v1/decisions", params={"subject": "s", "purpose": "email"}).json()
    assert not required["permitted"] and required["reason"] == "reconsent_required"
    versions = api.client.get("/v1/notices/privacy").json()["versions"]
    assert [v["version"] for v in versions] == [1, 2, 3]


def test_opt_out_regime_through_the_api(api: ApiClient) -> None:
    api.purpose("ads", opt_out_category="targeted_advertising")
    d = api.client.get(
        "/v1/decisions", params={"subject": "x", "purpose": "ads", "jurisdiction": "US-CA"}
    ).json()
    assert d["permitted"] and d["reason"] == "not_opted_out"
    r = api.client.post(
        "/v1/consents",
        json={
            "subject": "x",
            "jurisdiction": "US-CA",
            "events": [{"purpose": "ads", "action": "opted_out"}],
        },
    )
    assert r.status_code == 201
    d = api.client.get("/v1/decisions", params={"subject": "x", "purpose": "ads"}).json()
    assert not d["permitted"] and d["reason"] == "opted_out"


def test_catalogue(api: ApiClient) -> None:
    created = api.client.post(
        "/v1/purposes", json={"id": "email", "name": "Email", "legal_basis": "consent"}
    )
    assert created.status_code == 201
    same = api.client.post(
        "/v1/purposes", json={"id": "email", "name": "Email", "legal_basis": "consent"}
    )
    assert same.status_code == 200
    changed = api.client.post(
        "/v1/purposes", json={"id": "email", "name": "Email", "legal_basis": "contract"}
    )
    assert changed.status_code == 409
    assert [p["id"] for p in api.client.get("/v1/purposes").json()["purposes"]] == ["email"]
    assert api.client.get("/v1/notices/none").status_code == 404


def test_operations_endpoints(api: ApiClient) -> None:
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    api.purpose("email")
    api.record("s", email="given")
    metrics = api.client.get("/metrics").text
    assert 'consentry_events_recorded_total{action="given"} 1.0' in metrics
    assert "consentry_http_request_seconds" in metrics
    spec = api.client.get("/openapi.json").json()
    for path in [
        "/v1/consents",
        "/v1/decisions",
        "/v1/purposes",
        "/v1/notices/{notice_id}",
        "/v1/subjects/{subject}/consents",
        "/v1/subjects/{subject}/history",
    ]:
        assert path in spec["paths"], path
