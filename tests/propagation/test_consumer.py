"""The consumer library against a real broker: the state it reaches, dead letters and replay,
and a restart that resumes from the committed offset."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from consentry.domain.events import Action, Source
from consentry.propagation.consumer import (
    H_ERROR,
    H_GROUP,
    H_OFFSET,
    H_PARTITION,
    H_REPLAYED_FROM,
    H_TOPIC,
    header,
    replay_dead_letters,
)
from consentry.propagation.kafka import client_config, ensure_topics
from consentry.propagation.relay import Relay
from consentry.propagation.state import Change, SqliteState
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.services import Services
from tests.propagation.conftest import (
    Broker,
    consume_until,
    expected_state,
    kafka_settings,
    make_consumer,
    prepared_services,
    state_ids,
)

pytestmark = pytest.mark.kafka


@pytest.fixture
def services(sqlite_url: str, broker: Broker, tmp_path: Path) -> Iterator[Services]:
    s = prepared_services(kafka_settings(sqlite_url, broker.bootstrap, tmp_path))
    ensure_topics(
        client_config(s.settings),
        [s.settings.kafka_events_topic, s.settings.kafka_dead_letter_topic],
        partitions=3,
    )
    yield s
    s.close()


def write_history(services: Services, subjects: int, per_subject: int) -> None:
    """Events with legal times that go back and forth, so late events exist."""
    base = datetime.now(UTC) - timedelta(days=1)
    actions = [Action.GIVEN, Action.WITHDRAWN, Action.REFUSED]
    for round_ in range(per_subject):
        for s in range(subjects):
            minutes = (round_ * 7 + s * 3) % 11
            services.recorder.record(
                "default",
                ConsentRequest(
                    f"user-{s}",
                    Source.API,
                    [
                        EventRequest("email", actions[(round_ + s) % 3]),
                        EventRequest("ads", actions[(round_ + 2 * s) % 3]),
                    ],
                    occurred_at=base + timedelta(minutes=minutes),
                ),
            )


def read_all(bootstrap: str, topic: str, timeout: float = 5.0) -> list[Any]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "inspect", "enable.auto.commit": False}
    )
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    out: list[Any] = []
    idle = time.monotonic()
    try:
        while time.monotonic() - idle < timeout:
            batch = [m for m in consumer.consume(100, 0.2) if m.error() is None]
            if batch:
                out.extend(batch)
                idle = time.monotonic()
            elif out and time.monotonic() - idle > 1.0:
                break
    finally:
        consumer.close()
    return out


def test_the_consumer_reaches_the_databases_state(services: Services) -> None:
    write_history(services, subjects=12, per_subject=5)
    assert Relay.from_settings(services.settings, services.store).drain() == 120
    consumer, seen = make_consumer(services.settings)
    want = expected_state(services.store)
    try:
        consume_until(consumer, lambda: state_ids(consumer.state.snapshot()) == want)
    finally:
        consumer.close()
    assert len(seen.changes) == 120
    for versions in seen.applied_versions().values():
        assert versions == sorted(versions), "a subject's events were applied out of order"


def test_poison_and_failing_messages_are_dead_lettered_and_later_ones_flow(
    services: Services, broker: Broker, tmp_path: Path
) -> None:
    settings = services.settings
    topic = settings.kafka_events_topic
    write_history(services, subjects=3, per_subject=2)
    relay = Relay.from_settings(settings, services.store)
    relay.drain()
    # Poison in the middle of the topic: not JSON, a CloudEvent of another kind, a tombstone.
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for value in (b"\x00garbage", b'{"specversion": "1.0", "type": "other"}', None):
        producer.produce(topic, key=b"default/user-0", value=value)
    producer.flush(10)
    write_history(services, subjects=3, per_subject=2)  # later messages
    relay.drain()

    broken = {"user-1"}

    def handler(change: Change) -> None:
        if change.event.subject in broken:
            raise RuntimeError(f"cannot reach the email platform for {change.event.subject}")

    group = f"email-{uuid.uuid4().hex[:6]}"
    state = SqliteState(tmp_path / "email.db")
    consumer, _ = make_consumer(settings, group=group, handler=handler, state=state)
    want = {k: v for k, v in expected_state(services.store).items() if k[1] not in broken}
    try:
        consume_until(
            consumer,
            lambda: (
                state_ids(consumer.state.snapshot()) == want
                and consumer.loop.dead_lettered == 3 + 8
            ),
        )
    finally:
        consumer.close()
    letters = read_all(broker.bootstrap, settings.kafka_dead_letter_topic)
    assert len(letters) == 11
    reasons = [header(m, H_ERROR) or "" for m in letters]
    assert sum("not JSON" in r for r in reasons) == 1
    assert sum("tombstone" in r for r in reasons) == 1
    assert sum("cannot reach the email platform" in r for r in reasons) == 8
    for m in letters:
        assert header(m, H_TOPIC) == topic
        assert header(m, H_GROUP) == group
        assert header(m, H_PARTITION) is not None and header(m, H_OFFSET) is not None

    # The platform is back: replay the letters; the consumer (same group) applies what failed.
    broken.clear()
    report = replay_dead_letters(
        client_config(settings), settings.kafka_dead_letter_topic, idle_seconds=1.0
    )
    assert report.replayed == 11 and report.by_topic == {topic: 11}
    again = replay_dead_letters(
        client_config(settings), settings.kafka_dead_letter_topic, idle_seconds=0.5
    )
    assert again.replayed == 0, "a dead letter was replayed twice"
    consumer, _ = make_consumer(settings, group=group, handler=handler, state=state)
    try:
        consume_until(
            consumer,
            lambda: (
                state_ids(consumer.state.snapshot()) == expected_state(services.store)
                and consumer.loop.dead_lettered == 3
            ),  # the poison, dead-lettered once more
        )
    finally:
        consumer.close()
        state.close()
    replayed = [m for m in read_all(broker.bootstrap, topic) if header(m, H_REPLAYED_FROM)]
    assert len(replayed) == 11


def test_a_restarted_consumer_resumes_from_its_committed_offset(
    services: Services, tmp_path: Path
) -> None:
    settings = services.settings
    write_history(services, subjects=10, per_subject=3)
    relay = Relay.from_settings(settings, services.store)
    relay.drain()
    group = f"warehouse-{uuid.uuid4().hex[:6]}"
    path = tmp_path / "warehouse.db"
    first, seen_first = make_consumer(settings, group=group, state=SqliteState(path))
    try:
        consume_until(first, lambda: len(seen_first.changes) == 60)
    finally:
        first.close()  # commits, flushes, leaves the group
    first.state.close()

    write_history(services, subjects=10, per_subject=2)
    relay.drain()
    second, seen_second = make_consumer(settings, group=group, state=SqliteState(path))
    try:
        consume_until(
            second,
            lambda: state_ids(second.state.snapshot()) == expected_state(services.store),
        )
        time.sleep(0.5)
        second.poll(0.2)
    finally:
        second.close()
    second.state.close()
    # It read only what came after its committed offset: no re-delivery, no duplicate.
    assert len(seen_second.changes) == 40
    assert second.applier.metrics.duplicates.labels(group)._value.get() == 0


def test_a_memory_state_consumer_restarted_rebuilds_from_the_beginning(
    services: Services,
) -> None:
    """MemoryState starts empty in a new process: resuming from the group's committed offset
    would leave it without the history, so its consumer reads from the beginning instead."""
    settings = services.settings
    write_history(services, subjects=5, per_subject=2)
    Relay.from_settings(settings, services.store).drain()
    group = f"cache-{uuid.uuid4().hex[:6]}"
    want = expected_state(services.store)
    for _ in range(2):
        consumer, seen = make_consumer(settings, group=group)
        try:
            state = consumer.state
            consume_until(consumer, lambda s=state: state_ids(s.snapshot()) == want)
        finally:
            consumer.close()
        assert len(seen.changes) == 20
