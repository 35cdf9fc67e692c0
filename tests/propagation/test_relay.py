"""The relay against a real broker: order, keys, envelope, position saved only after delivery,
one active relay per database, and the wake-ups (NOTIFY on PostgreSQL, a commit in-process)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from consentry.domain.events import Action, Source
from consentry.propagation.envelope import decode, message_key
from consentry.propagation.kafka import KafkaPublisher, client_config, producer_config
from consentry.propagation.publisher import Delivery, Message, PublishError
from consentry.propagation.relay import Relay, relay_name
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.services import Services
from tests.propagation.conftest import (
    Broker,
    free_port,
    kafka_settings,
    prepared_services,
    running,
)

pytestmark = pytest.mark.kafka


def record(services: Services, subject: str, action: Action = Action.GIVEN, **kw: Any) -> int:
    result = services.recorder.record(
        "default",
        ConsentRequest(subject, Source.API, [EventRequest("email", action)], **kw),
    )
    return result.token


def read_topic(bootstrap: str, topic: str, count: int, timeout: float = 20.0) -> list[Any]:
    """Every message of a topic (assign, no group), in partition order."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "reader", "enable.auto.commit": False}
    )
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    out: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < count and time.monotonic() < deadline:
            out.extend(m for m in consumer.consume(500, 0.2) if m.error() is None)
    finally:
        consumer.close()
    return out


@pytest.fixture
def services(db_url: str, broker: Broker, tmp_path: Path) -> Any:
    s = prepared_services(kafka_settings(db_url, broker.bootstrap, tmp_path))
    yield s
    s.close()


def test_publishes_every_event_in_order_keyed_by_tenant_and_subject(
    services: Services, broker: Broker
) -> None:
    settings = services.settings
    base = datetime.now(UTC) - timedelta(hours=1)
    for i in range(60):
        action = Action.GIVEN if i % 3 else Action.WITHDRAWN
        record(services, f"s{i % 7}", action, occurred_at=base + timedelta(seconds=i))
    relay = Relay.from_settings(settings, services.store, batch_size=25)
    assert relay.drain() == 60
    assert services.store.get_offset(relay_name(settings.kafka_events_topic)) == 60

    messages = read_topic(broker.bootstrap, settings.kafka_events_topic, 60)
    assert len(messages) == 60
    per_subject_partition: dict[bytes, set[int]] = defaultdict(set)
    per_partition: dict[int, list[int]] = defaultdict(list)
    for m in messages:
        event = decode(m.value())
        assert m.key() == message_key(event.tenant, event.subject)
        assert dict(m.headers())["content-type"].startswith(b"application/cloudevents+json")
        per_subject_partition[m.key()].add(m.partition())
        per_partition[m.partition()].append(event.position)
    assert all(len(p) == 1 for p in per_subject_partition.values()), "a subject spans partitions"
    for positions in per_partition.values():
        assert positions == sorted(positions), "a partition is out of position order"
    assert sorted(p for ps in per_partition.values() for p in ps) == list(range(1, 61))


def test_position_is_saved_only_after_delivery(services: Services) -> None:
    settings = services.settings
    for i in range(5):
        record(services, f"s{i}")
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    config = producer_config(settings, **{"bootstrap.servers": dead, "message.timeout.ms": 800})
    relay = Relay(
        services.store,
        lambda: KafkaPublisher(config),
        topic=settings.kafka_events_topic,
    )
    with pytest.raises(PublishError):
        relay.step()
    assert services.store.get_offset(relay.name) == 0
    assert relay.metrics.relay_failures._value.get() == 1


def test_a_partial_batch_keeps_the_acknowledged_prefix(services: Services) -> None:
    """A publisher that fails after some deliveries: the prefix is saved, the rest retried."""
    for i in range(10):
        record(services, f"s{i}")

    class HalfPublisher:
        calls = 0

        def publish(self, messages: list[Message]) -> list[Delivery]:
            HalfPublisher.calls += 1
            if HalfPublisher.calls == 1:
                done: list[Delivery | None] = [Delivery(0, i) for i in range(4)]
                raise PublishError("broker went away", done + [None] * (len(messages) - 4))
            return [Delivery(0, 4 + i) for i in range(len(messages))]

        def end_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
            return {0: 4}  # it kept what it acknowledged

        def close(self) -> None:
            pass

    relay = Relay(services.store, HalfPublisher, topic="t")
    with pytest.raises(PublishError):
        relay.step()
    assert relay.position == 4
    assert relay.step() == 6
    assert relay.position == 10


def test_a_lost_partition_is_published_again(services: Services) -> None:
    """A broker that hands out an offset twice lost messages: the relay rewinds to them."""
    for i in range(9):
        record(services, f"s{i}")
    offsets = iter([[Delivery(0, 0), Delivery(0, 1), Delivery(1, 0)], [Delivery(0, 2)] * 3])

    class Publisher:
        def publish(self, messages: list[Message]) -> list[Delivery]:
            try:
                return next(offsets)[: len(messages)]
            except StopIteration:
                # The broker restarted empty: partition 0 starts at offset 0 again.
                return [Delivery(0, i) for i in range(len(messages))]

        def end_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
            raise AssertionError("no failure, no probe")

        def close(self) -> None:
            pass

    relay = Relay(services.store, Publisher, topic="t", batch_size=3)
    assert relay.step() == 3 and relay.position == 3
    assert relay.step() == 3 and relay.position == 6
    relay.step()  # offsets 0..2 in partition 0 again: everything from position 1 is lost
    assert relay.rewinds == 1
    assert relay.position == 0
    assert services.store.get_offset(relay.name) == 0


def test_after_a_failure_a_shorter_partition_is_published_again_first(
    services: Services,
) -> None:
    """The probe: after a failed round, a partition that ends below what was delivered to it
    lost messages; the relay goes back BEFORE publishing, so each subject stays in order."""
    for i in range(6):
        record(services, f"s{i}")
    published: list[list[int]] = []

    class Publisher:
        fail = False
        ends: dict[int, int] = {}

        def publish(self, messages: list[Message]) -> list[Delivery]:
            positions = [decode(m.value).position for m in messages]
            if Publisher.fail:
                Publisher.fail = False
                raise PublishError("broker died", [None] * len(messages))
            published.append(positions)
            base = sum(len(p) for p in published[:-1]) if not Publisher.ends else 0
            return [Delivery(0, base + i) for i in range(len(messages))]

        def end_offsets(self, topic: str, partitions: list[int]) -> dict[int, int]:
            return Publisher.ends

        def close(self) -> None:
            pass

    relay = Relay(services.store, Publisher, topic="t", batch_size=3)
    assert relay.step() == 3 and relay.step() == 3 and relay.position == 6
    record(services, "late")
    Publisher.fail = True
    with pytest.raises(PublishError):
        relay.step()
    Publisher.ends = {}  # the broker came back empty
    relay.step()
    assert relay.rewinds == 1
    assert published[2] == [1, 2, 3], "the lost events must go first, in position order"
    relay.drain()
    assert relay.position == 7 and relay.rewinds == 1


def wait_for(condition: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return bool(condition())


def test_one_relay_leads_and_a_standby_takes_over(services: Services, broker: Broker) -> None:
    settings = services.settings
    first = Relay.from_settings(settings, services.store)
    second = Relay.from_settings(settings, services.store)
    record(services, "a")
    first_stop, second_stop = threading.Event(), threading.Event()
    first_thread = threading.Thread(target=first.run, args=(first_stop,), daemon=True)
    second_thread = threading.Thread(target=second.run, args=(second_stop,), daemon=True)
    first_thread.start()
    try:
        assert wait_for(lambda: first.leading)
        second_thread.start()
        assert wait_for(lambda: services.store.get_offset(first.name) == 1)
        time.sleep(0.6)  # the standby tried at least once
        assert first.leading and not second.leading
        # The leader goes away; its lease dies with it and the standby takes over.
        first_stop.set()
        first_thread.join(10)
        assert wait_for(lambda: second.leading)
        record(services, "b")
        assert wait_for(lambda: services.store.get_offset(second.name) == 2)
    finally:
        first_stop.set()
        second_stop.set()
        first_thread.join(10)
        if second_thread.is_alive() or second_thread.ident is not None:
            second_thread.join(10)
    assert not first_thread.is_alive() and not second_thread.is_alive()


def test_a_commit_wakes_the_relay(services: Services, broker: Broker) -> None:
    """PostgreSQL: the NOTIFY of the append transaction; SQLite: the Recorder's listener. The
    poll interval is an hour, so only the wake-up can deliver within the second."""
    settings = services.settings.model_copy(update={"relay_poll_interval_seconds": 3600.0})
    relay = Relay.from_settings(settings, services.store)
    if services.store.dialect == "sqlite":
        services.recorder.listeners.append(lambda tenant, result: relay.wake())
    record(services, "first")
    with running(relay.run):
        deadline = time.monotonic() + 10
        while relay.position < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert relay.position == 1
        time.sleep(0.2)  # the relay is now waiting
        started = time.monotonic()
        record(services, "second")
        while relay.position < 2 and time.monotonic() - started < 5:
            time.sleep(0.002)
        elapsed = time.monotonic() - started
    assert relay.position == 2
    assert elapsed < 1.0, f"woken after {elapsed:.3f} s"


def test_the_kafka_publisher_reports_offsets(broker: Broker, tmp_path: Path) -> None:
    settings = kafka_settings("sqlite:///unused.db", broker.bootstrap, tmp_path)
    from consentry.propagation.kafka import ensure_topics

    ensure_topics(client_config(settings), ["pub"], partitions=2)
    publisher = KafkaPublisher(producer_config(settings))
    try:
        deliveries = publisher.publish([Message("pub", b"k", f"v{i}".encode()) for i in range(10)])
    finally:
        publisher.close()
    assert len({d.partition for d in deliveries}) == 1
    assert [d.offset for d in deliveries] == sorted(d.offset for d in deliveries)
