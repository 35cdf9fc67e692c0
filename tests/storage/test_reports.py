"""Contract of the console's read-only stores, on every backend: reports and admin sessions."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from consentry.domain.events import Action, NewEvent
from consentry.keys import create_key
from consentry.storage import SqlStore
from consentry.storage.admin_sessions import AdminSessionStore
from consentry.storage.base import Role
from consentry.storage.reports import DailyCount, PurposeCount, SqlReports

NewEventFactory = Callable[..., NewEvent]
Dump = Callable[[], dict[str, list[tuple[Any, ...]]]]
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def test_counts_per_day_and_per_purpose(
    store: SqlStore, new_event: NewEventFactory, second_tenant: str
) -> None:
    reports = SqlReports(store)
    result = store.append(
        "default",
        [
            new_event("alice", "analytics", Action.GIVEN),
            new_event("alice", "ads", Action.REFUSED),
            new_event("bob", "analytics", Action.GIVEN),
        ],
    )
    store.append("default", [new_event("alice", "analytics", Action.WITHDRAWN)])
    store.append(second_tenant, [new_event("carol", "analytics", Action.GIVEN, tenant="other")])
    today = result.events[0].recorded_at.astimezone(UTC).date()

    daily = reports.daily_actions("default", LONG_AGO)
    assert sorted(daily, key=lambda d: d.action.value) == [
        DailyCount(today, Action.GIVEN, 2),
        DailyCount(today, Action.REFUSED, 1),
        DailyCount(today, Action.WITHDRAWN, 1),
    ]
    assert reports.purpose_actions("default", LONG_AGO) == [
        PurposeCount("ads", Action.REFUSED, 1),
        PurposeCount("analytics", Action.GIVEN, 2),
        PurposeCount("analytics", Action.WITHDRAWN, 1),
    ]
    assert reports.purpose_actions("other", LONG_AGO) == [
        PurposeCount("analytics", Action.GIVEN, 1)
    ]
    assert reports.daily_actions("nobody", LONG_AGO) == []


def test_a_window_starts_at_the_first_position_recorded_since(
    store: SqlStore, new_event: NewEventFactory
) -> None:
    reports = SqlReports(store)
    assert reports.first_position_since(LONG_AGO) == 1  # an empty log: head + 1
    first = store.append("default", [new_event("alice"), new_event("bob")]).events
    later = store.append("default", [new_event("carol", "ads", Action.REFUSED)]).events
    assert later[0].recorded_at > first[-1].recorded_at  # the clock moved between commits
    assert reports.first_position_since(LONG_AGO) == 1
    assert reports.first_position_since(first[0].recorded_at) == 1
    assert reports.first_position_since(later[0].recorded_at) == later[0].position
    after = later[0].recorded_at + timedelta(microseconds=1)
    assert reports.first_position_since(after) == later[0].position + 1
    assert reports.purpose_actions("default", later[0].recorded_at) == [
        PurposeCount("ads", Action.REFUSED, 1)
    ]
    assert reports.daily_actions("default", after) == []


def test_consent_holders_count_current_grants(store: SqlStore, new_event: NewEventFactory) -> None:
    reports = SqlReports(store)
    store.append(
        "default",
        [
            new_event("alice", "analytics", Action.GIVEN),
            new_event("bob", "analytics", Action.GIVEN),
            new_event("carol", "analytics", Action.REFUSED),
            new_event("alice", "ads", Action.GIVEN),
            new_event("dave", "ads", Action.OPTED_IN),
            new_event("erin", "ads", Action.OPTED_OUT),
        ],
    )
    store.append("default", [new_event("bob", "analytics", Action.WITHDRAWN)])
    assert reports.consent_holders("default", ["analytics", "ads", "email"]) == {
        "analytics": 1,
        "ads": 2,
        "email": 0,
    }
    assert reports.consent_holders("default", []) == {}


def test_tenants_are_listed_by_name(store: SqlStore) -> None:
    store.ensure_tenant("acme")
    names = [t.name for t in SqlReports(store).tenants()]
    assert names == ["acme", "default"]


def test_reports_never_write(
    store: SqlStore, new_event: NewEventFactory, tables_dump: Dump
) -> None:
    store.append("default", [new_event("alice"), new_event("bob", "ads", Action.REFUSED)])
    before = tables_dump()
    reports = SqlReports(store)
    reports.daily_actions("default", LONG_AGO)
    reports.purpose_actions("default", LONG_AGO)
    reports.consent_holders("default", ["analytics"])
    reports.tenants()
    assert tables_dump() == before


# Admin sessions -------------------------------------------------------------------------------


def test_a_session_is_found_until_it_expires_or_ends(store: SqlStore) -> None:
    sessions = AdminSessionStore(store)
    issued = create_key(store, "default", Role.AUDITOR, "privacy office")
    now = datetime.now(UTC)
    sessions.open("h1", issued.record, now, now + timedelta(hours=1))
    found = sessions.find("h1", now)
    assert found is not None
    assert found.key.key_id == issued.record.key_id and found.key.role is Role.AUDITOR
    assert found.key.tenant == "default" and found.key.label == "privacy office"
    assert sessions.find("h1", now + timedelta(hours=1)) is None  # expired
    assert sessions.find("other", now) is None
    assert sessions.close("h1") is True
    assert sessions.find("h1", now) is None
    assert sessions.close("h1") is False


def test_opening_a_session_sweeps_expired_ones(store: SqlStore, raw_sql: Any) -> None:
    sessions = AdminSessionStore(store)
    key = create_key(store, "default", Role.ADMIN).record
    now = datetime.now(UTC)
    sessions.open("old", key, now - timedelta(hours=2), now - timedelta(hours=1))
    sessions.open("new", key, now, now + timedelta(hours=1))
    assert [r[0] for r in raw_sql("SELECT session_hash FROM admin_sessions")] == ["new"]


def test_a_revoked_key_has_no_session(store: SqlStore, raw_sql: Any) -> None:
    sessions = AdminSessionStore(store)
    key = create_key(store, "default", Role.ADMIN).record
    now = datetime.now(UTC)
    sessions.open("h", key, now, now + timedelta(hours=1))
    revoked_at = now + timedelta(minutes=5)  # e.g. a rotation's grace period
    stamp: Any = revoked_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    raw_sql("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (stamp, key.key_id))
    assert sessions.find("h", now) is not None  # not yet revoked
    assert sessions.find("h", revoked_at) is None
