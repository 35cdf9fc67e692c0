"""Banner and preference-center writes carry, for each event, the notice version (and hash)
that covers ITS purpose (issue 10 #5: when the site's notice did not cover every choosable
purpose, every event of the request was recorded without notice evidence); on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consentry.domain.events import format_time
from consentry.domain.notices import content_hash
from tests.conftest import ApiClient
from tests.ui.test_preferences import csrf, link

TEXTS = {"cookies": "We measure visits.", "advertising": "We show you ads."}


@pytest.fixture
def split(api: ApiClient) -> ApiClient:
    """Two choosable purposes, each covered by a different notice; no notice covers both."""
    api.purpose("analytics")
    api.purpose("ads")
    for notice_id, purpose in (("cookies", "analytics"), ("advertising", "ads")):
        for version in (1, 2):
            published = f"2025-0{version}-01T00:00:00Z"
            text = f"{TEXTS[notice_id]} (v{version})"
            api.notice(notice_id, version, [purpose], published, text=text)
    return api


def evidence(api: ApiClient, subject: str) -> dict[str, tuple[Any, ...]]:
    return {
        e.purpose: (e.evidence.notice_id, e.evidence.notice_version, e.evidence.notice_hash)
        for e in api.services.store.subject_history("default", subject)
    }


def expected(notice_id: str, version: int = 2) -> tuple[Any, ...]:
    return (notice_id, version, content_hash(f"{TEXTS[notice_id]} (v{version})"))


def subject_of_banner(api: ApiClient) -> str:
    events = api.services.store.events_after(0, 100)
    return events[-1].subject


@pytest.mark.parametrize("banner", [{}, {"notice_id": "cookies"}])
def test_banner_records_each_purposes_own_notice(split: ApiClient, banner: dict[str, Any]) -> None:
    assert split.client.put("/v1/banner", json=banner).status_code == 200
    split.client.headers.pop("Authorization")
    config = split.client.get("/v1/banner/default/config").json()
    shown = {p["id"]: p["notice"] for p in config["purposes"]}
    assert shown == {
        "analytics": {"id": "cookies", "version": 2},
        "ads": {"id": "advertising", "version": 2},
    }
    r = split.client.post(
        "/v1/banner/default/consent", json={"choices": {"analytics": True, "ads": False}}
    )
    assert r.status_code == 200, r.text
    assert evidence(split, subject_of_banner(split)) == {
        "analytics": expected("cookies"),
        "ads": expected("advertising"),
    }


def test_preference_center_records_each_purposes_own_notice(split: ApiClient) -> None:
    url = link(split, "crm-1")
    split.client.headers.pop("Authorization")
    split.client.get(url)
    page = split.client.get("/preferences")
    assert "Notice “cookies”, version 2" in page.text
    assert "Notice “advertising”, version 2" in page.text
    r = split.client.post("/preferences", data={"csrf": csrf(page.text), "all": "allow"})
    assert r.status_code == 200, r.text
    assert evidence(split, "crm-1") == {
        "analytics": expected("cookies"),
        "ads": expected("advertising"),
    }


def test_a_notice_not_yet_published_is_not_shown_nor_recorded(split: ApiClient) -> None:
    """A version published in the future (within the allowed skew) cannot have been shown yet:
    the banner keeps the current one, and the recorder refuses the newer one."""
    soon = format_time(datetime.now(UTC) + timedelta(seconds=120))
    split.notice("cookies", 3, ["analytics"], soon)
    body = {"subject": "s", "events": [{"purpose": "analytics", "action": "given"}]}
    r = split.client.post("/v1/consents", json={**body, "notice": {"id": "cookies", "version": 3}})
    assert r.status_code == 422 and "published" in r.text
    assert split.client.put("/v1/banner", json={}).status_code == 200
    split.client.headers.pop("Authorization")
    r = split.client.post("/v1/banner/default/consent", json={"choices": {"analytics": True}})
    assert r.status_code == 200, r.text
    assert evidence(split, subject_of_banner(split))["analytics"] == expected("cookies")
