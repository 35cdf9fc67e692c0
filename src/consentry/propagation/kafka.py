"""Kafka through confluent-kafka (librdkafka): the relay's publisher, client settings, topics.

The producer is idempotent with acks=all: a retried send cannot duplicate or reorder messages
within a partition, and a message counts as delivered only once every in-sync replica has it.
Those two settings are forced here, whatever CONSENTRY_KAFKA_CLIENT_CONFIG says.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from functools import partial
from typing import Any

from consentry.config import Settings
from consentry.propagation.publisher import Delivery, Message, PublishError

log = logging.getLogger("consentry.propagation.kafka")

#: Settings the relay cannot run without (ordering per key, no loss on a leader change).
PRODUCER_GUARANTEES: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
}


#: Producer settings an admin client would warn about.
PRODUCER_ONLY = frozenset(
    {
        "enable.idempotence",
        "acks",
        "linger.ms",
        "compression.type",
        "message.timeout.ms",
        "queue.buffering.max.messages",
        "queue.buffering.max.ms",
        "batch.size",
        "batch.num.messages",
        "retries",
        "max.in.flight.requests.per.connection",
        "delivery.timeout.ms",
        "request.required.acks",
    }
)


def quiet_logger() -> logging.Logger:
    """A logger that drops librdkafka's lines, for short-lived clients whose failure reaches the
    caller as the exception they raise (one line per failed connection attempt adds nothing)."""
    quiet = logging.getLogger("consentry.propagation.kafka.quiet")
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
    return quiet


def client_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """The librdkafka settings every client of this installation shares (brokers, security)."""
    if not settings.kafka_bootstrap_servers:
        raise ValueError(
            "Kafka is not configured: set CONSENTRY_KAFKA_BOOTSTRAP_SERVERS (host:port,...)"
        )
    config: dict[str, Any] = {"bootstrap.servers": settings.kafka_bootstrap_servers}
    config.update(settings.kafka_client_config)
    config.update(extra)
    return config


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """The relay's producer: idempotent, acks=all, a short linger to batch a busy log."""
    config = {
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.timeout.ms": int(settings.relay_delivery_timeout_seconds * 1000),
        "queue.buffering.max.messages": max(100_000, 2 * settings.relay_batch_size),
    }
    config.update(client_config(settings, **extra))
    config.update(PRODUCER_GUARANTEES)
    return config


def consumer_config(settings: Settings, group: str, **extra: Any) -> dict[str, Any]:
    """A consumer that commits only what it applied: no auto-commit, no auto offset store, and
    a new group starts from the beginning (a consent consumer must see the whole history)."""
    config: dict[str, Any] = {
        "group.id": group,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
    }
    config.update(client_config(settings, **extra))
    return config


def ensure_topics(
    config: dict[str, Any],
    topics: Sequence[str],
    *,
    partitions: int,
    replication_factor: int = -1,
    timeout: float = 5.0,
) -> list[str]:
    """Create the topics that do not exist yet; return those created.

    `config` is a plain client configuration (client_config), not a producer's or consumer's.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    quiet: dict[str, Any] = {"logger": quiet_logger()}
    admin = AdminClient({**quiet, **config})
    existing = set(admin.list_topics(timeout=timeout).topics)
    wanted = [t for t in dict.fromkeys(topics) if t not in existing]
    if not wanted:
        return []
    futures = admin.create_topics(
        [NewTopic(t, partitions, replication_factor) for t in wanted], operation_timeout=timeout
    )
    created = []
    for topic, future in futures.items():
        try:
            future.result(timeout)
            created.append(topic)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    if created:
        log.info("created Kafka topics %s", ", ".join(created))
    return created


class KafkaPublisher:
    """A Publisher on one confluent-kafka Producer.

    A publisher that failed is closed and replaced by the relay rather than reused: after a broker
    restart, librdkafka's idempotent producer can keep retrying with a producer id the new broker
    does not know (measured with the test broker), and only a new producer gets a new id.
    """

    def __init__(self, config: dict[str, Any], *, timeout: float | None = None) -> None:
        from confluent_kafka import Producer

        self.config = dict(config)
        self.timeout = (
            timeout if timeout is not None else int(config.get("message.timeout.ms", 30_000)) / 1000
        )
        self._producer = Producer(self.config)

    def publish(self, messages: Sequence[Message]) -> list[Delivery]:
        return self.send(messages).wait()

    def send(self, messages: Sequence[Message]) -> _KafkaBatch:
        """Hand a batch to librdkafka and return at once; `wait()` collects its deliveries.

        The relay sends the next batch before waiting for this one, so reading the log and
        encoding overlap the broker's round trip (messages of one key stay in order: one
        idempotent producer)."""
        batch = _KafkaBatch(self._producer, len(messages), self.timeout)
        producer = self._producer
        report = batch.report
        for index, m in enumerate(messages):
            while True:
                try:
                    producer.produce(
                        m.topic,
                        value=m.value,
                        key=m.key,
                        headers=list(m.headers) if m.headers else None,
                        on_delivery=partial(report, index),
                    )
                    break
                except BufferError:
                    producer.poll(0.05)  # the local queue is full: let deliveries drain it
        producer.poll(0)
        return batch

    def end_offsets(self, topic: str, partitions: Sequence[int]) -> dict[int, int]:
        from confluent_kafka import KafkaError, KafkaException, TopicPartition
        from confluent_kafka.admin import AdminClient
        from confluent_kafka.admin._listoffsets import OffsetSpec

        admin = AdminClient({k: v for k, v in self.config.items() if k not in PRODUCER_ONLY})
        futures = admin.list_offsets(
            {TopicPartition(topic, p): OffsetSpec.latest() for p in partitions},  # type: ignore[no-untyped-call]
            request_timeout=self.timeout,
        )
        ends: dict[int, int] = {}
        for tp, future in futures.items():
            try:
                ends[tp.partition] = int(future.result(self.timeout).offset)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise
        return ends

    def close(self) -> None:
        producer = self._producer
        try:
            producer.purge()
            producer.flush(0)
        except Exception:  # closing a broken producer must not hide the original error
            log.debug("ignored error while closing the producer", exc_info=True)


class _KafkaBatch:
    """The delivery reports of one sent batch."""

    def __init__(self, producer: Any, size: int, timeout: float) -> None:
        self.producer = producer
        self.results: list[Delivery | None] = [None] * size
        self.pending = size
        self.errors: list[str] = []
        self.deadline = time.monotonic() + timeout + 1.0

    def report(self, index: int, err: Any, msg: Any) -> None:
        self.pending -= 1
        if err is None:
            self.results[index] = Delivery(msg.partition(), msg.offset())
        else:
            self.errors.append(str(err))

    def wait(self) -> list[Delivery]:
        """Block until every message of the batch has a delivery report (or the timeout)."""
        while self.pending > 0 and time.monotonic() < self.deadline:
            self.producer.poll(min(0.05, max(0.0, self.deadline - time.monotonic())))
        if self.pending or self.errors:
            reason = (
                self.errors[0]
                if self.errors
                else f"{self.pending} messages not acknowledged in time"
            )
            raise PublishError(reason, self.results)
        return [r for r in self.results if r is not None]
