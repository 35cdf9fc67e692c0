"""The relay reads rows, not domain objects (storage/propagation.py, outbox_after): what it
publishes must be byte for byte what encode(RecordedEvent) gives, on both backends."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.domain.events import Action, Actor, Evidence, NewEvent, Source
from consentry.domain.purposes import LegalBasis
from consentry.propagation.envelope import encode, envelope
from consentry.storage import SqlStore
from consentry.storage.propagation import outbox_after

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


@st.composite
def new_events(draw: st.DrawFn) -> NewEvent:
    occurred = datetime(1, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=draw(st.integers(0, 250_000_000_000_000_000))
    )
    return NewEvent(
        event_id=uuid.uuid4(),
        tenant="default",
        subject=draw(texts.filter(lambda s: bool(s) and "\x00" not in s)),
        purpose=draw(st.sampled_from(["email", "ads"])),
        action=draw(st.sampled_from(list(Action))),
        legal_basis=draw(st.sampled_from(list(LegalBasis))),
        occurred_at=occurred,
        evidence=Evidence(
            source=draw(st.sampled_from(list(Source))),
            actor=draw(st.sampled_from(list(Actor))),
            jurisdiction=draw(st.none() | st.just("DE")),
            notice_id=draw(st.none() | st.just("privacy")),
            notice_version=draw(st.none() | st.integers(1, 9)),
            user_agent=draw(st.none() | texts.filter(lambda s: "\x00" not in s)),
            raw_signal=draw(st.none() | st.just("CQeEcwAQeEcwA")),
        ),
        expires_at=draw(st.none() | st.just(occurred + timedelta(days=1))),
    )


@given(st.lists(new_events(), min_size=1, max_size=5))
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_the_rows_the_relay_reads_encode_like_the_events(
    store: SqlStore, events: list[NewEvent]
) -> None:
    head = store.head()
    store.append("default", events)
    recorded = store.events_after(head, 100)
    rows = outbox_after(store, head, 100)
    assert [r.position for r in rows] == [e.position for e in recorded]
    for row, event in zip(rows, recorded, strict=True):
        assert row.data == event.to_dict()
        assert orjson.dumps(envelope(row.data, "/x")) == encode(event, "/x")
        assert (row.tenant, row.subject) == (event.tenant, event.subject)


def test_edge_times_are_formatted_like_format_time(store: SqlStore) -> None:
    edges = [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1000, 1, 1, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 6, 30, 12, 0, 0, 500_000, tzinfo=UTC),
        datetime(9999, 12, 30, tzinfo=UTC),
    ]
    events = [
        NewEvent(uuid.uuid4(), "default", f"s{i}", "email", Action.GIVEN, LegalBasis.CONSENT,
                 t, Evidence(Source.API), expires_at=t)
        for i, t in enumerate(edges)
    ]  # fmt: skip
    head = store.head()
    store.append("default", events)
    rows = outbox_after(store, head, 10)
    for row, event in zip(rows, store.events_after(head, 10), strict=True):
        assert row.data == event.to_dict()
