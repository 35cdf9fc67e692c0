"""GPC: one recorded opt-out per person, gpc_opt_out after it, and the well-known file."""

from __future__ import annotations

from typing import Any

from tests.conftest import ApiClient

GPC = {"Sec-GPC": "1"}


def gpc_events(api: ApiClient, subject: str) -> list[dict[str, Any]]:
    events = api.client.get(f"/v1/subjects/{subject}/history").json()["events"]
    return [e for e in events if e["source"] == "gpc"]


def setup(api: ApiClient) -> None:
    api.purpose("ads", opt_out_category="targeted_advertising")
    api.purpose("sale", opt_out_category="sale")
    api.purpose("email")


def test_a_check_with_gpc_records_one_opt_out_per_opt_out_purpose(api: ApiClient) -> None:
    setup(api)
    params = {"subject": "u1", "purpose": "ads", "jurisdiction": "US-CA"}
    for _ in range(3):
        d = api.client.get("/v1/decisions", params=params, headers=GPC).json()
        assert not d["permitted"] and d["reason"] == "gpc_opt_out"
    events = gpc_events(api, "u1")
    assert sorted(e["purpose"] for e in events) == ["ads", "sale"]  # once each, not per request
    assert {e["action"] for e in events} == {"opted_out"}
    assert {e["raw_signal"] for e in events} == {"Sec-GPC: 1"}
    # Without the header, the person's recorded opt-out still holds, and says why.
    d = api.client.get("/v1/decisions", params={"subject": "u1", "purpose": "sale"}).json()
    assert not d["permitted"] and d["reason"] == "gpc_opt_out"


def test_only_the_exact_value_1_counts(api: ApiClient) -> None:
    setup(api)
    for value in ("0", "true", "yes", "11"):
        d = api.client.get(
            "/v1/decisions",
            params={"subject": "u2", "purpose": "ads", "jurisdiction": "US-CA"},
            headers={"Sec-GPC": value},
        ).json()
        assert d["permitted"] and d["reason"] == "not_opted_out", value
    assert gpc_events(api, "u2") == []


def test_nothing_is_recorded_in_an_opt_in_regime(api: ApiClient) -> None:
    setup(api)
    d = api.client.get(
        "/v1/decisions",
        params={"subject": "u3", "purpose": "ads", "jurisdiction": "DE"},
        headers=GPC,
    ).json()
    assert not d["permitted"] and d["reason"] == "not_given"
    assert gpc_events(api, "u3") == []


def test_recording_consent_with_gpc_records_the_opt_out(api: ApiClient) -> None:
    setup(api)
    r = api.client.post(
        "/v1/consents",
        json={
            "subject": "u4",
            "jurisdiction": "US-CA",
            "events": [{"purpose": "email", "action": "given"}],
        },
        headers=GPC,
    )
    assert r.status_code == 201
    assert sorted(e["purpose"] for e in gpc_events(api, "u4")) == ["ads", "sale"]


def test_an_opt_in_after_a_gpc_opt_out_is_honoured(api: ApiClient) -> None:
    setup(api)
    params = {"subject": "u5", "purpose": "ads", "jurisdiction": "US-CA"}
    api.client.get("/v1/decisions", params=params, headers=GPC)
    r = api.client.post(
        "/v1/consents",
        json={
            "subject": "u5",
            "jurisdiction": "US-CA",
            "events": [{"purpose": "ads", "action": "opted_in"}],
        },
    )
    assert r.status_code == 201
    api.client.get("/v1/decisions", params=params, headers=GPC)
    assert len([e for e in gpc_events(api, "u5") if e["purpose"] == "ads"]) == 1
    d = api.client.get("/v1/decisions", params={"subject": "u5", "purpose": "ads"}).json()
    assert d["permitted"] and d["reason"] == "granted"


def test_batch_with_gpc_for_one_subject(api: ApiClient) -> None:
    setup(api)
    r = api.client.post(
        "/v1/decisions",
        json={
            "checks": [{"subject": "u6", "purpose": "ads"}, {"subject": "u6", "purpose": "sale"}],
            "jurisdiction": "US-CA",
        },
        headers=GPC,
    )
    assert [d["reason"] for d in r.json()["decisions"]] == ["gpc_opt_out", "gpc_opt_out"]
    assert len(gpc_events(api, "u6")) == 2


def test_well_known_gpc_json(api: ApiClient) -> None:
    r = api.client.get("/.well-known/gpc.json")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["gpc"] is True and isinstance(body["lastUpdate"], str)
