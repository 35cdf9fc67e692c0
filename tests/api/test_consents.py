"""The core API contract: recording, reading, deciding, on each backend."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from consentry.domain.events import format_time
from consentry.storage.base import Role
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


# Issue 10 #3: a reused event_id with other content is a conflict naming what differs -------
def _consent(event_id: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": "s",
        "source": "api",
        "actor": "subject",
        "jurisdiction": "DE",
        "notice": {"id": "privacy", "version": 1},
        "occurred_at": "2026-01-02T03:04:05Z",
        "evidence": {"ip": "192.0.2.10", "user_agent": "Mozilla/5.0"},
        "events": [{"purpose": "email", "action": "given", "event_id": event_id}],
    }
    body.update(overrides)
    return body


def _catalogue(api: ApiClient) -> None:
    api.purpose("email", lifetime_days=30)
    api.purpose("ads")
    for version in (1, 2):
        api.notice("privacy", version, ["email", "ads"], f"2025-0{version}-01T00:00:00Z")


def test_reusing_an_event_id_with_other_content_is_a_conflict_naming_the_fields(
    api: ApiClient,
) -> None:
    _catalogue(api)
    event_id = str(uuid.uuid4())
    first = api.client.post("/v1/consents", json=_consent(event_id))
    assert first.status_code == 201, first.text
    # An identical retry stays idempotent: the first answer, nothing written.
    retry = api.client.post("/v1/consents", json=_consent(event_id))
    assert retry.status_code == 201 and retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json() == first.json()
    changes: dict[str, dict[str, Any]] = {
        "occurred_at": {"occurred_at": "2026-01-02T03:04:06Z"},
        "source": {"source": "import"},
        "actor": {"actor": "agent"},
        "jurisdiction": {"jurisdiction": "FR"},
        "notice_version": {"notice": {"id": "privacy", "version": 2}},
        "ip": {"evidence": {"ip": "198.51.100.7", "user_agent": "Mozilla/5.0"}},
        "user_agent": {"evidence": {"ip": "192.0.2.10", "user_agent": "curl/8"}},
        "action": {"events": [{"purpose": "email", "action": "refused", "event_id": event_id}]},
        "subject": {"subject": "mallory"},
    }
    for name, change in changes.items():
        r = api.client.post("/v1/consents", json=_consent(event_id, **change))
        assert r.status_code == 409, (name, r.text)
        error = r.json()["error"]
        assert error["code"] == "conflict" and name in error["message"], (name, error)
        fields = {d["field"] for d in error["details"]}
        assert name in fields, (name, fields)
    # A new occurred_at also moves the expiry; both are named.
    r = api.client.post("/v1/consents", json=_consent(event_id, occurred_at="2026-01-09T00:00:00Z"))
    assert {d["field"] for d in r.json()["error"]["details"]} == {"occurred_at", "expires_at"}
    history = api.client.get("/v1/subjects/s/history").json()["events"]
    assert [e["event_id"] for e in history] == [event_id], "nothing of a conflict is written"
    assert api.client.get("/v1/subjects/mallory/history").json()["events"] == []


def test_a_retry_without_occurred_at_is_still_a_replay(api: ApiClient) -> None:
    api.purpose("email", lifetime_days=30)
    body = {"subject": "s", "events": [{"purpose": "email", "action": "given"}]}
    body["events"][0]["event_id"] = str(uuid.uuid4())  # type: ignore[index]
    first = api.client.post("/v1/consents", json=body)
    again = api.client.post("/v1/consents", json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()


def test_another_tenants_event_id_is_answered_as_a_fresh_one(api: ApiClient) -> None:
    """Issue 10 #16: a tenant cannot learn that another tenant used an event id."""
    api.purpose("email")
    other = api.key_for(Role.ADMIN, tenant="acme")
    r = api.client.post(
        "/v1/purposes", json={"id": "email", "name": "E", "legal_basis": "consent"}, headers=other
    )
    assert r.status_code == 201
    taken = str(uuid.uuid4())
    body = {"subject": "s", "events": [{"purpose": "email", "action": "given", "event_id": taken}]}
    assert api.client.post("/v1/consents", json=body).status_code == 201
    fresh = {**body, "events": [{**body["events"][0], "event_id": str(uuid.uuid4())}]}
    answers = [
        api.client.post("/v1/consents", json={**b, "subject": "zed"}, headers=other)
        for b in (body, fresh)
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert [a.headers.get("Idempotent-Replayed") for a in answers] == [None, None]
    assert set(answers[0].json()["events"][0]) == set(answers[1].json()["events"][0])
    assert answers[0].json()["events"][0]["event_id"] == taken
    mine = api.client.get("/v1/subjects/s/history").json()["events"]
    assert [(e["event_id"], e["tenant"]) for e in mine] == [(taken, "default")]
    theirs = api.client.get("/v1/subjects/zed/history", headers=other).json()["events"]
    assert [e["tenant"] for e in theirs] == ["acme", "acme"]


# Issue 10 #4: notices are bitemporal too --------------------------------------------------
def test_known_at_ignores_notice_versions_recorded_after_it(api: ApiClient) -> None:
    api.purpose("email")
    long_ago = datetime.now(UTC) - timedelta(days=90)
    created = api.notice("privacy", 1, ["email"], format_time(long_ago))
    assert created["recorded_at"] is not None
    given = api.client.post(
        "/v1/consents",
        json={
            "subject": "s",
            "notice": {"id": "privacy", "version": 1},
            "occurred_at": format_time(long_ago + timedelta(days=1)),
            "events": [{"purpose": "email", "action": "given"}],
        },
    )
    assert given.status_code == 201
    known_then = given.json()["events"][0]["recorded_at"]
    # Later, a material version is published BACKDATED to before that moment.
    backdated = format_time(long_ago + timedelta(days=2))
    late = api.notice("privacy", 2, ["email"], backdated, material=True, grace_days=0)
    assert late["recorded_at"] > known_then
    now = api.client.get("/v1/subjects/s/consents").json()["purposes"][0]
    assert now["reason"] == "reconsent_required"
    # What we said at known_then did not know of version 2.
    then = api.client.get("/v1/subjects/s/consents", params={"known_at": known_then}).json()
    assert then["purposes"][0]["reason"] == "granted", then
    versions = api.client.get("/v1/notices/privacy").json()["versions"]
    assert [v["recorded_at"] is not None for v in versions] == [True, True]


def test_a_consent_cannot_name_a_notice_published_after_it(api: ApiClient) -> None:
    api.purpose("email")
    published = datetime.now(UTC) - timedelta(days=1)
    api.notice("privacy", 1, ["email"], format_time(published))
    before = api.client.post(
        "/v1/consents",
        json={
            "subject": "s",
            "notice": {"id": "privacy", "version": 1},
            "occurred_at": format_time(published - timedelta(seconds=1)),
            "events": [{"purpose": "email", "action": "given"}],
        },
    )
    assert before.status_code == 422, before.text
    assert "published" in before.json()["error"]["message"]
    assert api.client.get("/v1/subjects/s/history").json()["events"] == []
    at = api.client.post(
        "/v1/consents",
        json={
            "subject": "s",
            "events": [
                {
                    "purpose": "email",
                    "action": "given",
                    "notice": {"id": "privacy", "version": 1},
                }
            ],
            "occurred_at": format_time(published),
        },
    )
    assert at.status_code == 201, at.text
    event = api.client.get("/v1/subjects/s/history").json()["events"][0]
    assert (event["notice_id"], event["notice_version"]) == ("privacy", 1)


# Issue 10 #6: the token covers the GPC opt-outs the same request recorded ------------------
def test_the_token_covers_the_gpc_events_recorded_with_the_consent(api: ApiClient) -> None:
    api.purpose("ads", opt_out_category="targeted_advertising")
    api.purpose("email")
    r = api.client.post(
        "/v1/consents",
        json={
            "subject": "u",
            "jurisdiction": "US-CA",
            "events": [{"purpose": "email", "action": "given"}],
        },
        headers={"Sec-GPC": "1"},
    )
    assert r.status_code == 201, r.text
    history = api.client.get("/v1/subjects/u/history").json()["events"]
    gpc = [e["position"] for e in history if e["source"] == "gpc"]
    assert gpc, history
    assert int(r.json()["token"]) >= max(gpc)
    assert int(r.json()["token"]) == api.services.store.head()
