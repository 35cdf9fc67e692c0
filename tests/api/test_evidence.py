"""Personal evidence (IP, user agent, raw signal) is shown only to roles that may read history.

A checker key read every subject's IP and user agent through /v1/changes and /v1/snapshot,
though it may not read history (issue 10, item 16). Each route that returns events is tested
per role, and a walk over every GET route of the API keeps a new route from leaking it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from consentry.domain.events import Action, Source
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.storage.base import Role
from tests.conftest import ApiClient

IP = "198.51.100.0"  # the truncated form the default evidence policy keeps
USER_AGENT = "EvidenceProbe/1.0 (X11; Linux)"
RAW_SIGNAL = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"
SECRETS = (IP, USER_AGENT, RAW_SIGNAL)
MAY_READ_HISTORY = {Role.ADMIN, Role.AUDITOR}
PATH_VALUES = {"subject": "alice", "notice_id": "privacy", "site": "default"}


@pytest.fixture
def recorded(api: ApiClient) -> ApiClient:
    api.purpose("email")
    api.services.recorder.record(
        "default",
        ConsentRequest(
            "alice",
            Source.API,
            [EventRequest("email", Action.GIVEN)],
            ip="198.51.100.7",
            user_agent=USER_AGENT,
            raw_signal=RAW_SIGNAL,
        ),
    )
    return api


def shows_evidence(body: str) -> bool:
    found = [s in body for s in SECRETS]
    assert all(found) or not any(found), f"partly redacted: {found}"
    return all(found)


def stream_until_position(api: ApiClient, headers: dict[str, str]) -> tuple[int, str]:
    with api.client.stream("GET", "/v1/changes/stream", params={"after": 0}, headers=headers) as r:
        seen = ""
        if r.status_code != 200:
            return r.status_code, r.read().decode()
        for chunk in r.iter_text():
            seen += chunk
            if "event: position" in seen:
                break
    return 200, seen


EVENT_ROUTES: dict[str, Any] = {
    "/v1/changes": lambda api, h: api.client.get("/v1/changes", headers=h),
    "/v1/changes/stream": stream_until_position,
    "/v1/snapshot": lambda api, h: api.client.get("/v1/snapshot", headers=h),
    "/v1/subjects/{subject}/consents": lambda api, h: api.client.get(
        "/v1/subjects/alice/consents", headers=h
    ),
    "/v1/subjects/{subject}/history": lambda api, h: api.client.get(
        "/v1/subjects/alice/history", headers=h
    ),
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("route", list(EVENT_ROUTES))
def test_evidence_only_for_roles_that_may_read_history(
    recorded: ApiClient, route: str, role: Role
) -> None:
    result = EVENT_ROUTES[route](recorded, recorded.key_for(role))
    status, body = result if isinstance(result, tuple) else (result.status_code, result.text)
    if status == 403:
        return  # the role may not use the route at all
    assert status == 200, body
    assert "alice" in body, "the event itself must still be there"
    assert shows_evidence(body) == (role in MAY_READ_HISTORY), (route, role, body)


def test_a_checker_replica_still_decides_from_the_redacted_feed(recorded: ApiClient) -> None:
    """Deciding needs none of the evidence: the redacted events are still valid CloudEvents."""
    from consentry.propagation.envelope import from_cloudevent

    checker = recorded.key_for(Role.CHECKER)
    body = recorded.client.get("/v1/changes", headers=checker).json()
    event = from_cloudevent(body["events"][0])
    assert (event.subject, event.action, event.evidence.ip) == ("alice", Action.GIVEN, None)
    snapshot = recorded.client.get("/v1/snapshot", headers=checker).json()
    entry = snapshot["entries"][0]
    assert entry["ip"] is None and entry["user_agent"] is None and entry["raw_signal"] is None
    assert entry["action"] == "given" and entry["source"] == "api"


def test_no_get_route_shows_evidence_to_a_role_that_may_not_read_history(
    recorded: ApiClient,
) -> None:
    """Every GET route of the OpenAPI document, every role: a new route cannot leak it."""
    spec = recorded.client.get("/openapi.json").json()
    params = {"subject": "alice", "purpose": "email", "after": 0, "event_id": "", "size": 1}
    walked = 0
    for path, operations in spec["paths"].items():
        if "get" not in operations or path == "/v1/changes/stream":  # endless: tested above
            continue
        url = re.sub(r"{(\w+)(:\w+)?}", lambda m: PATH_VALUES.get(m[1], "x"), path)
        for role in Role:
            r = recorded.client.get(url, params=params, headers=recorded.key_for(role))
            walked += 1
            if role not in MAY_READ_HISTORY:
                assert not any(s in r.text for s in SECRETS), (path, role, r.text)
    assert walked >= 4 * 10
