"""Dead letters waiting (propagation/dead_letters.py), on the test broker."""

from __future__ import annotations

import uuid

from confluent_kafka import Producer

from consentry.propagation.consumer import replay_dead_letters
from consentry.propagation.dead_letters import dead_letters_waiting
from consentry.propagation.kafka import ensure_topics
from tests.propagation.conftest import Broker


def test_waiting_letters_are_those_not_yet_replayed(broker: Broker) -> None:
    config = {"bootstrap.servers": broker.bootstrap}
    topic = f"dlq-{uuid.uuid4().hex[:8]}"
    group = f"replay-{uuid.uuid4().hex[:6]}"
    assert dead_letters_waiting(config, topic, group=group) == 0  # no such topic yet
    ensure_topics(config, [topic], partitions=1)
    producer = Producer(config)
    for n in range(3):  # one batch each: the test broker's watermark counts batches' ends
        producer.produce(topic, value=f"letter {n}".encode())
        producer.flush(10)
    assert dead_letters_waiting(config, topic, group=group) == 3
    report = replay_dead_letters(config, topic, group=group, idle_seconds=1.0)
    assert report.skipped == 3  # letters without an origin: nothing to send them back to
    assert dead_letters_waiting(config, topic, group=group) == 0
    producer.produce(topic, value=b"one more")
    producer.flush(10)
    assert dead_letters_waiting(config, topic, group=group) == 1


def test_an_unreachable_broker_is_unknown() -> None:
    config = {"bootstrap.servers": "127.0.0.1:1", "socket.timeout.ms": 500}
    assert dead_letters_waiting(config, "dlq", timeout=0.5) is None
