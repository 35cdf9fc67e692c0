"""The lean decision path answers exactly as the FastAPI routes would."""

from __future__ import annotations

from consentry.storage.base import Role
from tests.conftest import ApiClient


def test_fast_and_reference_paths_agree(api: ApiClient) -> None:
    api.purpose("email")
    api.record("s", email="given")
    fast = api.client.get("/v1/decisions", params={"subject": "s", "purpose": "email"}).json()
    # A repeated parameter is handed to FastAPI (the reference route): same answer but the time.
    slow = api.client.get("/v1/decisions?subject=x&subject=s&purpose=email").json()
    fast.pop("decided_at")
    slow.pop("decided_at")
    assert fast == slow
    assert fast["permitted"] and fast["reason"] == "granted" and fast["position"] == 1


def test_errors_keep_the_one_shape(api: ApiClient) -> None:
    api.purpose("email")
    anon = api.client.get(
        "/v1/decisions", params={"subject": "s", "purpose": "email"}, headers={"Authorization": ""}
    )
    assert anon.status_code == 401 and anon.json()["error"]["code"] == "unauthenticated"
    unknown = api.client.get("/v1/decisions", params={"subject": "s", "purpose": "nope"})
    assert unknown.status_code == 422 and "unknown purpose" in unknown.json()["error"]["message"]
    ahead = api.client.get(
        "/v1/decisions", params={"subject": "s", "purpose": "email", "min_token": "999"}
    )
    assert ahead.status_code == 409 and ahead.json()["error"]["code"] == "token_ahead"
    bad = api.client.post("/v1/decisions", json={"checks": []})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_error"
    auditor = api.key_for(Role.COLLECTOR)
    ok = api.client.get(
        "/v1/decisions", params={"subject": "s", "purpose": "email"}, headers=auditor
    )
    assert ok.status_code == 200


def test_batch_and_utf8_subjects(api: ApiClient) -> None:
    api.purpose("email")
    api.record("zoë", email="given")
    one = api.client.get("/v1/decisions", params={"subject": "zoë", "purpose": "email"}).json()
    assert one["subject"] == "zoë" and one["permitted"]
    r = api.client.post(
        "/v1/decisions",
        json={
            "checks": [{"subject": "zoë", "purpose": "email"}, {"subject": "x", "purpose": "email"}]
        },
    )
    assert [(d["subject"], d["reason"]) for d in r.json()["decisions"]] == [
        ("zoë", "granted"),
        ("x", "not_given"),
    ]


def test_read_your_writes_and_withdrawal_through_the_cache(api: ApiClient) -> None:
    api.purpose("email")
    for _ in range(3):  # warm the caches
        api.record("w", email="given")
        assert api.client.get("/v1/decisions", params={"subject": "w", "purpose": "email"}).json()[
            "permitted"
        ]
    token = api.record("w", email="withdrawn")["token"]
    d = api.client.get(
        "/v1/decisions", params={"subject": "w", "purpose": "email", "min_token": token}
    ).json()
    assert not d["permitted"] and d["reason"] == "withdrawn" and d["position"] == int(token)


def test_documented_and_measured(api: ApiClient) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/v1/decisions"])
    assert "/.well-known/gpc.json" in paths
    api.purpose("email")
    api.client.get("/v1/decisions", params={"subject": "m", "purpose": "email"})
    metrics = api.client.get("/metrics").text
    assert 'route="/v1/decisions"' in metrics
    assert 'consentry_decisions_total{reason="not_given"}' in metrics
