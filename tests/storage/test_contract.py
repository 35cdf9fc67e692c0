"""The storage contract: what every backend's ConsentStore does, run once per backend.

The invariants of DESIGN.md have their own module (test_invariants.py); this one covers the
protocol's behaviour: the log's reads, idempotent retries, the catalogue, keys, tenant isolation,
snapshots and reader offsets.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from consentry.domain.errors import ConflictError, ValidationError
from consentry.domain.events import Action, Actor, Evidence, NewEvent, RecordedEvent, Source
from consentry.domain.notices import Notice
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.storage import SqlStore, open_store
from consentry.storage.base import ApiKey, AppendResult, Role

NewEventFactory = Callable[..., NewEvent]
RawSql = Callable[..., list[tuple[Any, ...]]]
Dump = Callable[[], dict[str, list[tuple[Any, ...]]]]

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def full_event(tenant: str = "default", subject: str = "alice") -> NewEvent:
    """An event with every optional field set, a non-UTC offset and microseconds."""
    cest = timezone(timedelta(hours=2))
    occurred = datetime(2024, 6, 30, 23, 59, 59, 999999, tzinfo=cest)
    return NewEvent(
        event_id=uuid.uuid4(),
        tenant=tenant,
        subject=subject,
        purpose="marketing.email",
        action=Action.GIVEN,
        legal_basis=LegalBasis.CONSENT,
        occurred_at=occurred,
        evidence=Evidence(
            source=Source.BANNER,
            actor=Actor.GUARDIAN,
            jurisdiction="DE",
            notice_id="privacy",
            notice_version=3,
            notice_hash="sha256:" + "ab" * 32,
            ip="192.0.2.0",
            user_agent="Mozilla/5.0 (X11; Linux) — ünïcode ✓",
            raw_signal="CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
        ),
        expires_at=occurred + timedelta(days=395, microseconds=1),
    )


# The log ---------------------------------------------------------------------------------


def test_empty_log(store: SqlStore) -> None:
    assert store.head() == 0
    assert store.events_after(0, 100) == []
    assert store.subject_history("default", "nobody") == []
    assert store.subject_state("default", "nobody") == []
    assert store.get_events("default", [uuid.uuid4()]) == []
    store.ping()


def test_append_assigns_positions_versions_and_one_recorded_at(
    store: SqlStore, new_event: NewEventFactory
) -> None:
    first = store.append("default", [new_event("alice"), new_event("bob"), new_event("alice")])
    assert not first.replayed
    assert [e.position for e in first.events] == [1, 2, 3]
    assert [e.subject_version for e in first.events] == [1, 1, 2]
    assert len({e.recorded_at for e in first.events}) == 1, "one request, one commit time"
    assert first.token == 3

    second = store.append("default", [new_event("alice", "ads")])
    assert second.events[0].position == 4
    assert second.events[0].subject_version == 3
    assert second.events[0].recorded_at >= first.events[0].recorded_at
    assert second.token == 4
    assert store.head() == 4


def test_append_rejects_malformed_requests(
    store: SqlStore, new_event: NewEventFactory, tables_dump: Dump
) -> None:
    before = tables_dump()
    with pytest.raises(ValidationError):
        store.append("default", [])
    with pytest.raises(ValidationError):
        store.append("default", [new_event(tenant="other")])
    twice = new_event()
    with pytest.raises(ValidationError):
        store.append("default", [twice, twice])
    assert tables_dump() == before


@pytest.mark.parametrize("count", [1, 3, 7])
def test_events_after_pages_in_position_order(
    store: SqlStore, new_event: NewEventFactory, count: int
) -> None:
    appended: list[RecordedEvent] = []
    for i in range(10):
        appended.extend(store.append("default", [new_event(f"s{i % 3}")]).events)
    seen: list[RecordedEvent] = []
    last = 0
    while page := store.events_after(last, count):
        assert len(page) <= count
        seen.extend(page)
        last = page[-1].position
    assert seen == appended
    assert store.events_after(4, 2) == appended[4:6]
    assert store.events_after(10, 5) == []


def test_read_back_is_what_append_returned(store: SqlStore) -> None:
    """Every read path returns the committed event exactly: same fields, same canonical bytes
    (so the ledger's hash of a re-read event matches the receipt given at write time)."""
    new = full_event()
    (recorded,) = store.append("default", [new]).events
    assert recorded.occurred_at == new.occurred_at
    reads = {
        "get_events": store.get_events("default", [new.event_id]),
        "events_after": store.events_after(0, 10),
        "subject_history": store.subject_history("default", "alice"),
        "subject_state": store.subject_state("default", "alice"),
        "state_snapshot": store.state_snapshot("default", "", 10),
    }
    for name, events in reads.items():
        assert events == [recorded], name
        assert events[0].canonical_bytes() == recorded.canonical_bytes(), name
        assert events[0].occurred_at.utcoffset() == timedelta(0), name
        assert events[0].recorded_at == recorded.recorded_at, name
        assert events[0].expires_at == recorded.expires_at, name


def test_timestamps_round_trip_to_the_microsecond(
    store: SqlStore, new_event: NewEventFactory
) -> None:
    times = [
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2024, 2, 29, 0, 0, 0, 1, tzinfo=timezone(timedelta(hours=-11, minutes=-30))),
        datetime(2038, 1, 19, 3, 14, 8, 500000, tzinfo=timezone(timedelta(hours=14))),
    ]
    result = store.append(
        "default", [new_event(f"t{i}", occurred_at=t) for i, t in enumerate(times)]
    )
    back = store.events_after(0, 10)
    assert [e.occurred_at for e in back] == times
    assert [e.canonical_bytes() for e in back] == [e.canonical_bytes() for e in result.events]


def test_subject_history_and_state(store: SqlStore, new_event: NewEventFactory) -> None:
    given = store.append("default", [new_event("alice", "ads"), new_event("alice", "email")])
    store.append("default", [new_event("bob", "ads")])
    withdrawn = store.append("default", [new_event("alice", "ads", Action.WITHDRAWN)])
    history = store.subject_history("default", "alice")
    assert history == [*given.events, *withdrawn.events]
    state = {e.purpose: e for e in store.subject_state("default", "alice")}
    assert state == {"ads": withdrawn.events[0], "email": given.events[1]}


def test_get_events_in_position_order_and_unknown_ids_ignored(
    store: SqlStore, new_event: NewEventFactory
) -> None:
    events = store.append("default", [new_event("a"), new_event("b"), new_event("c")]).events
    ids = [events[2].event_id, uuid.uuid4(), events[0].event_id]
    assert store.get_events("default", ids) == [events[0], events[2]]
    assert store.get_events("default", []) == []


# Idempotency -----------------------------------------------------------------------------


def test_same_event_ids_again_is_a_replay(
    store: SqlStore, new_event: NewEventFactory, tables_dump: Dump
) -> None:
    batch = [new_event("alice"), new_event("bob")]
    first = store.append("default", batch)
    before = tables_dump()
    again = store.append("default", batch)
    assert again.replayed
    assert again.events == first.events
    assert again.token == first.token
    # A retry in another order answers in the order asked, from what was recorded.
    reordered = store.append("default", batch[::-1])
    assert reordered.replayed
    assert reordered.events == first.events[::-1]
    assert tables_dump() == before, "a replay writes nothing"


def test_partially_overlapping_event_ids_conflict_and_write_nothing(
    store: SqlStore, new_event: NewEventFactory, tables_dump: Dump
) -> None:
    old = new_event("alice")
    store.append("default", [old])
    before = tables_dump()
    with pytest.raises(ConflictError):
        store.append("default", [old, new_event("alice")])
    with pytest.raises(ConflictError):
        store.append("default", [new_event("bob"), old])
    assert tables_dump() == before


def test_reused_event_id_with_other_content_conflicts(
    store: SqlStore, new_event: NewEventFactory, tables_dump: Dump
) -> None:
    old = new_event("alice", "ads")
    store.append("default", [old])
    before = tables_dump()
    for changed in (
        new_event("mallory", "ads", event_id=old.event_id),
        new_event("alice", "email", event_id=old.event_id),
        new_event("alice", "ads", Action.WITHDRAWN, event_id=old.event_id),
    ):
        with pytest.raises(ConflictError):
            store.append("default", [changed])
    assert tables_dump() == before


def test_event_id_of_another_tenant_conflicts(
    store: SqlStore, new_event: NewEventFactory, second_tenant: str
) -> None:
    """Event ids are unique across the whole log: another tenant cannot replay (and so read)
    an event by guessing its id."""
    old = new_event("alice")
    store.append("default", [old])
    with pytest.raises(ConflictError):
        store.append(
            second_tenant, [new_event("alice", tenant=second_tenant, event_id=old.event_id)]
        )
    assert store.subject_history(second_tenant, "alice") == []


def test_idempotency_key_same_request_returns_first_result(
    store: SqlStore, new_event: NewEventFactory, tables_dump: Dump
) -> None:
    first = store.append("default", [new_event()], idempotency_key="k1", request_hash="h1")
    before = tables_dump()
    # A retry of the same request: the server may have generated new event ids this time.
    retry = store.append("default", [new_event()], idempotency_key="k1", request_hash="h1")
    assert retry == AppendResult(first.events, replayed=True)
    assert tables_dump() == before


def test_idempotency_key_with_another_request_conflicts(
    store: SqlStore, new_event: NewEventFactory, tables_dump: Dump
) -> None:
    store.append("default", [new_event()], idempotency_key="k1", request_hash="h1")
    before = tables_dump()
    with pytest.raises(ConflictError):
        store.append("default", [new_event()], idempotency_key="k1", request_hash="h2")
    with pytest.raises(ConflictError):
        store.append("default", [new_event()], idempotency_key="k1")
    assert tables_dump() == before


def test_idempotency_keys_are_per_tenant(
    store: SqlStore, new_event: NewEventFactory, second_tenant: str
) -> None:
    a = store.append("default", [new_event()], idempotency_key="k", request_hash="h")
    b = store.append(
        second_tenant, [new_event(tenant=second_tenant)], idempotency_key="k", request_hash="h"
    )
    assert not b.replayed
    assert b.events[0].position == a.events[0].position + 1


# Catalogue -------------------------------------------------------------------------------


def test_add_purpose(store: SqlStore, second_tenant: str) -> None:
    ads = Purpose("ads", "Advertising", LegalBasis.CONSENT, "Ads", lifetime_days=395)
    sale = Purpose("sale", "Sale of data", LegalBasis.CONSENT, opt_out_category=OptOutCategory.SALE)
    fraud = Purpose("fraud", "Fraud prevention", LegalBasis.LEGITIMATE_INTEREST, required=True)
    assert store.add_purpose("default", sale)
    assert store.add_purpose("default", ads)
    assert store.add_purpose("default", fraud)
    assert not store.add_purpose("default", ads), "identical: nothing to do"
    for changed in (
        Purpose("ads", "Advertising", LegalBasis.LEGITIMATE_INTEREST, "Ads", lifetime_days=395),
        Purpose("ads", "Advertising", LegalBasis.CONSENT, "Ads", lifetime_days=30),
        Purpose("ads", "Adverts", LegalBasis.CONSENT, "Ads", lifetime_days=395),
    ):
        with pytest.raises(ConflictError):
            store.add_purpose("default", changed)
    assert store.get_purposes("default") == [ads, fraud, sale]
    assert store.get_purposes(second_tenant) == []
    assert store.add_purpose(second_tenant, fraud), "purposes are per tenant"
    assert store.get_purposes(second_tenant) == [fraud]


def notice(
    version: int, text: str = "We use cookies.", *, notice_id: str = "privacy", days: int = 0
) -> Notice:
    return Notice(
        id=notice_id,
        version=version,
        text=text,
        purposes=("ads", "analytics"),
        published_at=T0 + timedelta(days=days, microseconds=7),
        material=version > 1,
        grace_days=14,
    )


def test_notices_are_append_only_with_increasing_versions(
    store: SqlStore, second_tenant: str
) -> None:
    assert store.add_notice("default", notice(1, days=0))
    assert not store.add_notice("default", notice(1, days=0)), "identical: nothing to do"
    with pytest.raises(ConflictError):
        store.add_notice("default", notice(1, "We use MORE cookies.", days=0))
    assert store.add_notice("default", notice(3, "v3", days=2))
    with pytest.raises(ConflictError):
        store.add_notice("default", notice(2, "v2", days=1))  # older than the latest
    assert not store.add_notice("default", notice(1, days=0)), "still identical after v3"
    assert [n.version for n in store.get_notices("default", "privacy")] == [1, 3]
    assert store.get_notices(second_tenant) == []
    assert store.get_notices("default", "unknown") == []


def test_get_notices_oldest_first_and_read_back_exactly(store: SqlStore) -> None:
    published = [
        notice(1, "terms v1", notice_id="terms", days=0),
        notice(1, "privacy v1", days=1),
        notice(2, "terms v2", notice_id="terms", days=2),
        notice(2, "privacy v2", days=3),
    ]
    for n in published:
        assert store.add_notice("default", n)
    assert store.get_notices("default") == published
    assert store.get_notices("default", "terms") == [published[0], published[2]]
    assert [n.content_hash for n in store.get_notices("default", "privacy")] == [
        published[1].content_hash,
        published[3].content_hash,
    ]


# Tenants and keys ------------------------------------------------------------------------


def test_tenants(store: SqlStore) -> None:
    assert store.tenant_exists("default")
    assert not store.tenant_exists("acme")
    assert store.ensure_tenant("acme")
    assert not store.ensure_tenant("acme")
    assert store.tenant_exists("acme")


def test_installation_id_is_created_once_and_kept(
    store: SqlStore, db_url: str, raw_sql: RawSql
) -> None:
    """Created by the migration, random, stable across reopening and migrating again, and the
    database itself refuses a second one (the Redis cache is named after it)."""
    first = store.installation_id()
    assert re.fullmatch(r"[0-9a-f]{32}", first), first
    assert store.migrate() == []
    reopened = open_store(db_url)
    try:
        assert reopened.installation_id() == first
    finally:
        reopened.close()
    with pytest.raises(Exception, match=r"(?i)unique|duplicate|check"):
        raw_sql(
            "INSERT INTO installation (singleton, id, created_at) VALUES (?, ?, ?)",
            (True, "0" * 32, "2024-01-01T00:00:00.000000Z"),
        )
    assert store.installation_id() == first


def test_api_keys_by_hash(store: SqlStore, second_tenant: str) -> None:
    created = datetime(2024, 3, 1, 8, 30, 0, 250000, tzinfo=UTC)
    admin = ApiKey("k_admin", "default", Role.ADMIN, created, label="ops")
    checker = ApiKey("k_check", "default", Role.CHECKER, created + timedelta(seconds=1))
    other = ApiKey("k_other", second_tenant, Role.AUDITOR, created)
    assert store.count_api_keys() == 0
    store.add_api_key(admin, "hash-admin")
    store.add_api_key(checker, "hash-check")
    store.add_api_key(other, "hash-other")
    assert store.find_api_key("hash-admin") == admin
    assert store.find_api_key("hash-other") == other
    assert store.find_api_key("k_admin") is None, "found by hash only"
    assert store.find_api_key("nope") is None
    assert store.list_api_keys("default") == [admin, checker]
    assert store.list_api_keys(second_tenant) == [other]
    assert store.count_api_keys() == 3


def test_api_key_errors(store: SqlStore) -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValidationError):
        store.add_api_key(ApiKey("k1", "no-such-tenant", Role.ADMIN, now), "h1")
    store.add_api_key(ApiKey("k1", "default", Role.ADMIN, now), "h1")
    with pytest.raises(ConflictError):
        store.add_api_key(ApiKey("k1", "default", Role.CHECKER, now), "h2")
    with pytest.raises(ConflictError):
        store.add_api_key(ApiKey("k2", "default", Role.CHECKER, now), "h1")
    assert store.count_api_keys() == 1


def test_tenant_isolation(store: SqlStore, new_event: NewEventFactory, second_tenant: str) -> None:
    mine = store.append("default", [new_event("alice"), new_event("bob")]).events
    theirs = store.append(
        second_tenant,
        [new_event("alice", tenant=second_tenant), new_event("carol", tenant=second_tenant)],
    ).events
    assert [e.subject_version for e in theirs] == [1, 1], "subject versions are per tenant"
    assert store.events_after(0, 10, tenant="default") == list(mine)
    assert store.events_after(0, 10, tenant=second_tenant) == list(theirs)
    assert store.events_after(0, 10) == [*mine, *theirs]
    assert store.events_after(1, 10, tenant=second_tenant) == list(theirs)
    assert store.subject_history("default", "carol") == []
    assert store.subject_history(second_tenant, "bob") == []
    assert store.subject_history(second_tenant, "alice") == [theirs[0]]
    assert store.subject_state(second_tenant, "bob") == []
    assert store.subject_state("default", "alice") == [mine[0]]
    all_ids = [e.event_id for e in (*mine, *theirs)]
    assert store.get_events("default", all_ids) == list(mine)
    assert store.get_events(second_tenant, all_ids) == list(theirs)
    assert [e.subject for e in store.state_snapshot(second_tenant, "", 10)] == ["alice", "carol"]


# Snapshots and reader offsets ------------------------------------------------------------


@pytest.mark.parametrize("page_size", [1, 2, 3, 50])
def test_state_snapshot_pages_by_subject(
    store: SqlStore, new_event: NewEventFactory, second_tenant: str, page_size: int
) -> None:
    """Paging by subject never loses a purpose, even when a page ends inside a subject's
    purposes (a row limit did: `subject > last` then skipped the rest of that subject)."""
    purposes_of = {f"s{i:02d}": [f"p{j}" for j in range(1 + i % 4)] for i in range(7)}
    for subject, purposes in purposes_of.items():
        store.append("default", [new_event(subject, p) for p in purposes])
        store.append("default", [new_event(subject, purposes[0], Action.WITHDRAWN)])
    store.append(second_tenant, [new_event("s03", "zz", tenant=second_tenant)])

    pages: list[list[RecordedEvent]] = []
    after = ""
    while page := store.state_snapshot("default", after, page_size):
        pages.append(page)
        after = page[-1].subject
        assert len(pages) <= len(purposes_of), "paging must end"
    rows = [e for page in pages for e in page]
    assert [(e.subject, e.purpose) for e in rows] == [
        (s, p) for s, ps in purposes_of.items() for p in ps
    ]
    for page in pages:
        assert len({e.subject for e in page}) <= page_size
    expected = {
        (e.subject, e.purpose): e for s in purposes_of for e in store.subject_state("default", s)
    }
    assert {(e.subject, e.purpose): e for e in rows} == expected
    assert all(e.action is Action.WITHDRAWN for e in rows if e.purpose == "p0")


def test_reader_offsets(store: SqlStore) -> None:
    assert store.get_offset("relay") == 0
    store.set_offset("relay", 5)
    store.set_offset("integrator", 2)
    assert store.get_offset("relay") == 5
    store.set_offset("relay", 9)
    assert store.get_offset("relay") == 9
    assert store.get_offset("integrator") == 2
    assert store.get_offset("other") == 0
