"""The storage contract: what every backend's ConsentStore does, run once per backend.

The invariants of DESIGN.md have their own module (test_invariants.py); this one covers the
protocol's behaviour: the log's reads, idempotent retries, the catalogue, keys, tenant isolation,
snapshots and reader offsets.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from consentry.domain.errors import ConflictError, NotFoundError, ValidationError
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
    for changed_event in (
        new_event("mallory", "ads", event_id=old.event_id),
        new_event("alice", "email", event_id=old.event_id),
        new_event("alice", "ads", Action.WITHDRAWN, event_id=old.event_id),
    ):
        with pytest.raises(ConflictError):
            store.append("default", [changed_event])
    assert tables_dump() == before


# Every field of an event but those the log assigns, each changed on its own (issue 10 #3: a
# reused event_id with another occurred_at, source, notice... was answered as a replay and the
# new content silently dropped).
CHANGED_CONTENT: dict[str, dict[str, Any]] = {
    "subject": {"subject": "mallory"},
    "purpose": {"purpose": "analytics"},
    "action": {"action": Action.REFUSED},
    "legal_basis": {"legal_basis": LegalBasis.LEGITIMATE_INTEREST},
    "occurred_at": {"occurred_at": datetime(2024, 7, 1, tzinfo=UTC)},
    "expires_at": {"expires_at": None},
    "source": {"evidence.source": Source.API},
    "actor": {"evidence.actor": Actor.SUBJECT},
    "jurisdiction": {"evidence.jurisdiction": "FR"},
    "notice_id": {"evidence.notice_id": "terms"},
    "notice_version": {"evidence.notice_version": 4},
    "notice_hash": {"evidence.notice_hash": "sha256:" + "cd" * 32},
    "ip": {"evidence.ip": "198.51.100.0"},
    "user_agent": {"evidence.user_agent": "curl/8"},
    "raw_signal": {"evidence.raw_signal": None},
}


def changed(event: NewEvent, changes: dict[str, Any]) -> NewEvent:
    top = {k: v for k, v in changes.items() if not k.startswith("evidence.")}
    evidence = {k.removeprefix("evidence."): v for k, v in changes.items() if k not in top}
    return dataclasses.replace(
        event, **top, evidence=dataclasses.replace(event.evidence, **evidence)
    )


def test_every_content_field_is_compared() -> None:
    """A field added to the event later must join the retry comparison (and this table)."""
    assigned = {"event_id", "tenant", "occurred_at_given"}
    fields = {f.name for f in dataclasses.fields(NewEvent)} - assigned - {"evidence"}
    fields |= {f.name for f in dataclasses.fields(Evidence)}
    assert fields == set(CHANGED_CONTENT)


@pytest.mark.parametrize("name", sorted(CHANGED_CONTENT))
def test_event_id_reused_with_one_field_changed_conflicts_naming_it(
    store: SqlStore, tables_dump: Dump, name: str
) -> None:
    first = full_event()
    other = full_event(subject="bob")
    store.append("default", [first, other])
    before = tables_dump()
    reuse = changed(first, CHANGED_CONTENT[name])
    with pytest.raises(ConflictError) as caught:
        store.append("default", [other, reuse])  # one true retry beside it
    assert name in str(caught.value)
    assert [d["field"] for d in caught.value.details] == [name]
    assert str(first.event_id) in caught.value.details[0]["message"]
    assert tables_dump() == before, "nothing of a conflicting request is written"


def test_identical_retry_is_a_replay_and_a_retry_without_occurred_at_too(
    store: SqlStore, tables_dump: Dump
) -> None:
    first = full_event()
    recorded = store.append("default", [first])
    before = tables_dump()
    assert store.append("default", [first]) == AppendResult(recorded.events, replayed=True)
    # The caller sent no occurred_at (the recorder used the time of each attempt): the
    # retry cannot differ by it, nor by the expiry it implies.
    later = dataclasses.replace(
        first,
        occurred_at=first.occurred_at + timedelta(seconds=3),
        expires_at=None,
        occurred_at_given=False,
    )
    assert store.append("default", [later]) == AppendResult(recorded.events, replayed=True)
    # ...but everything else still counts.
    with pytest.raises(ConflictError, match="user_agent"):
        store.append("default", [changed(later, {"evidence.user_agent": "other"})])
    assert tables_dump() == before


def test_event_id_used_by_another_tenant_is_a_fresh_id(
    store: SqlStore, new_event: NewEventFactory, second_tenant: str
) -> None:
    """Event ids are unique per tenant (issue 10 #16): another tenant's use of an id changes
    nothing in what this tenant is answered, so it cannot learn which ids are taken, and a
    tenant's write never depends on what another tenant recorded."""
    old = new_event("alice", "ads")
    (recorded,) = store.append("default", [old]).events
    # The other tenant's events: one reusing the id with other content, one with a fresh id.
    reuse = new_event("zed", "email", Action.REFUSED, tenant=second_tenant, event_id=old.event_id)
    fresh = new_event("zed", "email", Action.REFUSED, tenant=second_tenant)
    first = store.append(second_tenant, [reuse])
    second = store.append(second_tenant, [fresh])
    assert not first.replayed and not second.replayed
    assert first.events[0].event_id == old.event_id
    assert (first.events[0].tenant, first.events[0].subject) == (second_tenant, "zed")
    # A retry in the other tenant replays ITS event; other content conflicts naming only what
    # differs from ITS event (nothing of the first tenant's).
    assert store.append(second_tenant, [reuse]).events == first.events
    with pytest.raises(ConflictError) as caught:
        store.append(second_tenant, [dataclasses.replace(reuse, action=Action.GIVEN)])
    assert [d["field"] for d in caught.value.details] == ["action"]
    # Each tenant reads its own event under the id; the first tenant's is untouched.
    assert store.get_events("default", [old.event_id]) == [recorded]
    assert store.get_events(second_tenant, [old.event_id]) == list(first.events)
    assert store.subject_history("default", "alice") == [recorded]
    assert store.append("default", [old]).events == (recorded,)


def test_idempotency_key_replay_reads_its_own_tenants_events(
    store: SqlStore, new_event: NewEventFactory, second_tenant: str
) -> None:
    shared = uuid.uuid4()
    a = store.append("default", [new_event(event_id=shared)], idempotency_key="k", request_hash="h")
    event_b = new_event("bob", tenant=second_tenant, event_id=shared)
    b = store.append(second_tenant, [event_b], idempotency_key="k", request_hash="h")
    again = store.append(
        second_tenant, [new_event(tenant=second_tenant)], idempotency_key="k", request_hash="h"
    )
    assert again == AppendResult(b.events, replayed=True)
    assert again.events != a.events


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
    before = datetime.now(UTC)
    for n in published:
        assert store.add_notice("default", n)
    after = datetime.now(UTC)
    read = store.get_notices("default")
    assert [dataclasses.replace(n, recorded_at=None) for n in read] == published
    # The store stamps when it recorded each version (issue 10 #4: "as known at" reads it).
    stamps = [n.recorded_at for n in read]
    assert all(s is not None and before <= s <= after for s in stamps), stamps
    assert stamps == sorted(stamps)  # type: ignore[type-var]
    assert store.get_notices("default", "terms") == [read[0], read[2]]
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


def test_revoking_keys(store: SqlStore, second_tenant: str) -> None:
    """Revocation: effective from a time (earlier wins), logged, bumps the generation, scoped by
    tenant, and the last admin key in force is kept unless asked not to."""
    now = datetime.now(UTC)
    admin = ApiKey("k_admin", "default", Role.ADMIN, now)
    second = ApiKey("k_admin2", "default", Role.ADMIN, now)
    checker = ApiKey("k_check", "default", Role.CHECKER, now)
    other = ApiKey("k_other", second_tenant, Role.ADMIN, now)
    for key in (admin, second, checker, other):
        store.add_api_key(key, f"hash-{key.key_id}")
    assert store.api_key_generation() == 0
    with pytest.raises(NotFoundError):
        store.revoke_api_key("default", "k_other", now)  # another tenant's key
    with pytest.raises(NotFoundError):
        store.revoke_api_key("default", "nope", now)
    assert store.api_key_generation() == 0

    later = now + timedelta(hours=1)
    revoked = store.revoke_api_key("default", "k_check", later)  # a grace period
    assert revoked.revoked_at == later
    assert store.find_api_key("hash-k_check") == revoked
    first = store.api_key_generation()
    assert first > 0
    revoked = store.revoke_api_key("default", "k_check", now)  # earlier wins
    assert revoked.revoked_at == now and store.api_key_generation() > first
    generation = store.api_key_generation()
    assert store.revoke_api_key("default", "k_check", later).revoked_at == now  # never later
    assert store.api_key_generation() == generation, "no change, no new generation"

    store.revoke_api_key("default", "k_admin", now)
    with pytest.raises(ConflictError, match="last admin"):
        store.revoke_api_key("default", "k_admin2", now)
    assert store.find_api_key("hash-k_admin2") == second
    forced = store.revoke_api_key("default", "k_admin2", now, keep_an_admin=False)
    assert forced.revoked_at == now
    assert store.list_api_keys(second_tenant) == [other], "the other tenant is untouched"


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
