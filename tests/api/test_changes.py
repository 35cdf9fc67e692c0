"""The HTTP change feed and the snapshot: what replicas and feed consumers build on."""

from __future__ import annotations

import threading
import time

from consentry.propagation.envelope import from_cloudevent
from consentry.storage.base import Role
from tests.conftest import ApiClient


def test_feed_returns_cloudevents_in_order_and_next_position(api: ApiClient) -> None:
    api.purpose("email")
    api.purpose("analytics")
    api.record("alice", email="given", analytics="refused")
    api.record("bob", email="given")
    r = api.client.get("/v1/changes", params={"after": 0})
    assert r.status_code == 200
    body = r.json()
    events = [from_cloudevent(e) for e in body["events"]]
    assert [e.position for e in events] == [1, 2, 3]
    assert body["events"][0]["type"] == "consentry.consent.given"
    assert body["events"][0]["specversion"] == "1.0"
    assert body["next"] == 3
    again = api.client.get("/v1/changes", params={"after": 2}).json()
    assert [e["data"]["position"] for e in again["events"]] == [3]


def test_feed_is_scoped_to_the_tenant_and_next_moves_past_other_tenants(api: ApiClient) -> None:
    api.purpose("email")
    other = api.key_for(Role.ADMIN, tenant="other")
    r = api.client.post(
        "/v1/purposes",
        json={"id": "email", "name": "E", "legal_basis": "consent"},
        headers=other,
    )
    assert r.status_code == 201
    api.record("alice", email="given")
    r = api.client.post(
        "/v1/consents",
        json={"subject": "zed", "events": [{"purpose": "email", "action": "given"}]},
        headers=other,
    )
    assert r.status_code == 201
    mine = api.client.get("/v1/changes").json()
    assert [e["subject"] for e in mine["events"]] == ["alice"]
    assert mine["next"] == 2  # past the other tenant's position 2
    theirs = api.client.get("/v1/changes", headers=other).json()
    assert [e["subject"] for e in theirs["events"]] == ["zed"]


def test_long_poll_wakes_on_a_write(api: ApiClient) -> None:
    api.purpose("email")

    def write_later() -> None:
        time.sleep(0.3)
        api.record("carol", email="given")

    writer = threading.Thread(target=write_later)
    started = time.monotonic()
    writer.start()
    body = api.client.get("/v1/changes", params={"after": 0, "wait": 5}).json()
    elapsed = time.monotonic() - started
    writer.join()
    assert [e["subject"] for e in body["events"]] == ["carol"]
    assert elapsed < 3, "the long poll should return as soon as the write commits"


def test_long_poll_times_out_empty(api: ApiClient) -> None:
    body = api.client.get("/v1/changes", params={"after": 0, "wait": 0.2}).json()
    assert body == {"events": [], "next": 0}


def test_snapshot_pages_by_subject(api: ApiClient) -> None:
    api.purpose("email")
    api.purpose("analytics")
    for name in ["a", "b", "c"]:
        api.record(name, email="given", analytics="refused")
    first = api.client.get("/v1/snapshot", params={"limit": 2}).json()
    assert first["position"] == 6
    assert sorted({e["subject"] for e in first["entries"]}) == ["a", "b"]
    assert len(first["entries"]) == 4
    second = api.client.get(
        "/v1/snapshot", params={"limit": 2, "after_subject": first["next_subject"]}
    ).json()
    assert [e["subject"] for e in second["entries"]] == ["c", "c"]
    assert second["next_subject"] is None


def test_feed_needs_a_role_that_may_read_changes(api: ApiClient) -> None:
    collector = api.key_for(Role.COLLECTOR)
    r = api.client.get("/v1/changes", headers=collector)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    checker = api.key_for(Role.CHECKER)
    assert api.client.get("/v1/changes", headers=checker).status_code == 200


def test_server_sent_events_stream(api: ApiClient) -> None:
    api.purpose("email")
    api.record("dave", email="given")
    with api.client.stream("GET", "/v1/changes/stream", params={"after": 0}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        seen = ""
        for chunk in r.iter_text():
            seen += chunk
            if "event: position" in seen:
                break
    assert "id: 1\nevent: consent\ndata: " in seen
    assert '"subject":"dave"' in seen
