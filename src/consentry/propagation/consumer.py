"""The consumer library: subscribe to the events topic and keep a local state, safely.

    state = SqliteState("consents.db")
    consumer = EventConsumer.from_settings(settings, group="email-platform", state=state,
                                           handler=on_change)
    consumer.run(stop_event)

What it guarantees, and how:
- every event is applied by DESIGN.md's rule (state.py): the order of delivery does not matter,
  and duplicates (a relay that restarted, a replay) are recognised by event id and
  subject_version, so the handler sees each event once per state;
- offsets are committed only after the batch's events are applied and the state flushed: a
  consumer that crashes resumes from its committed offset and loses nothing;
- a message that cannot be decoded, or whose handler raises, goes to the dead-letter topic with
  the error and its original topic, partition and offset in headers, and later messages still
  flow; `consentry dlq replay` (replay_dead_letters) delivers it again once the cause is fixed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from consentry.config import Settings
from consentry.domain.events import RecordedEvent, format_time
from consentry.propagation.envelope import EnvelopeError, decode, from_cloudevent
from consentry.propagation.lag import LagMetrics, LagMonitor, seconds_since
from consentry.propagation.state import Change, LocalState

log = logging.getLogger("consentry.propagation.consumer")

# Dead-letter headers (the original key, value and headers are kept as they were).
H_ERROR = "consentry-dlq-error"
H_ERROR_TYPE = "consentry-dlq-error-type"
H_TOPIC = "consentry-dlq-topic"
H_PARTITION = "consentry-dlq-partition"
H_OFFSET = "consentry-dlq-offset"
H_GROUP = "consentry-dlq-group"
H_AT = "consentry-dlq-at"
H_REPLAYED_FROM = "consentry-replayed-from"
DLQ_PREFIX = "consentry-dlq-"
MAX_ERROR_LENGTH = 4000

Handler = Callable[[Change], None]


class Retry(Exception):
    """A transient failure (the database is down): the message is delivered again after a pause,
    never dead-lettered."""


class Applier:
    """Applies events to a LocalState, calling the handler for each new one: the part of the
    consumer that does not depend on the transport (Kafka, the HTTP change feed, a replay)."""

    def __init__(
        self,
        state: LocalState,
        handler: Handler | None = None,
        *,
        metrics: LagMetrics | None = None,
        monitor: LagMonitor | None = None,
        group: str = "local",
    ) -> None:
        self.state = state
        self.handler = handler
        self.metrics = metrics or LagMetrics()
        self.monitor = monitor
        self.group = group
        self._apply_lag = self.metrics.commit_to_apply.labels(group)
        self._applied = self.metrics.applied.labels(group)
        self._duplicates = self.metrics.duplicates.labels(group)

    def apply(self, event: RecordedEvent) -> Change | None:
        """Apply one event; None if it was a duplicate. A handler error propagates and nothing
        of the event is stored."""
        change = self.state.preview(event)
        if change is None:
            self._duplicates.inc()
            return None
        if self.handler is not None:
            self.handler(change)
        self.state.commit(change)
        lag = seconds_since(event.recorded_at)
        self._apply_lag.observe(lag)
        self._applied.inc()
        if self.monitor is not None:
            self.monitor.observe(lag)
        return change

    def apply_envelope(self, envelope: bytes | str | Mapping[str, Any]) -> Change | None:
        """Apply a CloudEvent (bytes, text or a parsed object); EnvelopeError if it is none."""
        if isinstance(envelope, Mapping):
            return self.apply(from_cloudevent(envelope))
        return self.apply(decode(envelope))


# Kafka ------------------------------------------------------------------------------------------
def where(message: Any) -> tuple[str, int, int]:
    """(topic, partition, offset) of a consumed message."""
    return (str(message.topic()), int(message.partition()), int(message.offset()))


def headers_of(message: Any) -> list[tuple[str, bytes]]:
    """A consumed message's headers as (name, bytes) pairs, in order."""
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(str(k), v.encode() if isinstance(v, str) else (v or b"")) for k, v in pairs]


def dead_letter_headers(message: Any, error: BaseException, group: str) -> list[tuple[str, bytes]]:
    """The original headers plus why and where the message failed."""
    topic, partition, offset = where(message)
    kept = [(k, v) for k, v in headers_of(message) if not k.startswith(DLQ_PREFIX)]
    reason = str(error) or type(error).__name__
    return [
        *kept,
        (H_ERROR, reason[:MAX_ERROR_LENGTH].encode()),
        (H_ERROR_TYPE, type(error).__name__.encode()),
        (H_TOPIC, topic.encode()),
        (H_PARTITION, str(partition).encode()),
        (H_OFFSET, str(offset).encode()),
        (H_GROUP, group.encode()),
        (H_AT, format_time(datetime.now(UTC)).encode()),
    ]


def header(message: Any, name: str) -> str | None:
    """One header of a Kafka message as text (the last one if repeated)."""
    found = None
    for key, value in headers_of(message):
        if key == name:
            found = value.decode("utf-8", "replace")
    return found


class KafkaLoop:
    """Consume, handle one message at a time, dead-letter what cannot be handled, and commit
    offsets only once everything before them is done (handled, or safely in the dead-letter
    topic) and `before_commit` (the state's flush) has returned."""

    def __init__(
        self,
        config: dict[str, Any],
        topics: Sequence[str],
        handle: Callable[[Any], None],
        *,
        dead_letter_topic: str,
        before_commit: Callable[[], None] | None = None,
        batch_size: int = 500,
        metrics: LagMetrics | None = None,
        dead_letter_config: dict[str, Any] | None = None,
        from_beginning: bool = False,
    ) -> None:
        from confluent_kafka import Consumer

        self.config = dict(config)
        self.group = str(self.config["group.id"])
        self.topics = list(topics)
        self.handle = handle
        self.dead_letter_topic = dead_letter_topic
        self.before_commit = before_commit
        self.batch_size = batch_size
        self.metrics = metrics or LagMetrics()
        self._dlq_config = dead_letter_config or _dlq_producer_config(self.config)
        self._dlq: Any = None
        self.from_beginning = from_beginning
        self.consumer = Consumer(self.config, error_cb=self._on_error)
        self.consumer.subscribe(self.topics, on_assign=self._on_assign)
        self.handled = 0
        self.dead_lettered = 0

    @staticmethod
    def _on_error(error: Any) -> None:
        log.warning("Kafka: %s", error)

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        if self.from_beginning:
            from confluent_kafka import OFFSET_BEGINNING

            for tp in partitions:
                tp.offset = OFFSET_BEGINNING
            consumer.assign(partitions)

    def assigned(self) -> bool:
        return bool(self.consumer.assignment())

    def poll(self, timeout: float = 0.5) -> int:
        """Consume and handle one batch; the number of messages handled (dead letters included).

        Raises Retry after rewinding to the message that must be handled again.
        """
        from confluent_kafka import KafkaError

        # poll() returns as soon as one message is there; consume(n, timeout) would wait for n
        # or the whole timeout (measured: +100 ms at 1k events/s). Then take what is queued.
        first = self.consumer.poll(timeout)
        if first is None:
            return 0
        messages = [first]
        if self.batch_size > 1:
            messages.extend(self.consumer.consume(self.batch_size - 1, 0))
        next_offsets: dict[tuple[str, int], int] = {}
        first_offsets: dict[tuple[str, int], int] = {}
        pending_dlq = 0
        processed = 0
        retry: Retry | None = None
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("Kafka consumer: %s", error)
                continue
            topic, partition, offset = where(message)
            tp = (topic, partition)
            first_offsets.setdefault(tp, offset)
            if retry is not None:
                continue
            try:
                self.handle(message)
            except Retry as exc:
                retry = exc
                continue
            except Exception as exc:
                self._dead_letter(message, exc)
                pending_dlq += 1
            next_offsets[tp] = offset + 1
            processed += 1
        try:
            if pending_dlq:
                self._flush_dead_letters()
            if self.before_commit is not None:
                self.before_commit()
        except Exception:
            self._rewind(first_offsets)  # nothing of this batch is committed: all again later
            raise
        self._commit(next_offsets)
        self.handled += processed
        if retry is not None:
            self._rewind({tp: next_offsets.get(tp, off) for tp, off in first_offsets.items()})
            raise retry
        return processed

    def _dead_letter(self, message: Any, error: BaseException) -> None:
        from confluent_kafka import Producer

        log.warning("dead-lettering %s[%d]@%d: %s", *where(message), error)
        if self._dlq is None:
            self._dlq = Producer(self._dlq_config)
        self._dlq.produce(
            self.dead_letter_topic,
            value=message.value(),
            key=message.key(),
            headers=dead_letter_headers(message, error, self.group),
        )
        self.dead_lettered += 1
        self.metrics.dead_lettered.labels(self.group).inc()

    def _flush_dead_letters(self) -> None:
        timeout = int(self._dlq_config.get("message.timeout.ms", 30_000)) / 1000 + 1
        remaining = self._dlq.flush(timeout)
        if remaining:
            raise RuntimeError(f"{remaining} dead letters not acknowledged; will retry")

    def _commit(self, next_offsets: dict[tuple[str, int], int]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        if not next_offsets:
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in next_offsets.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            # A rebalance took the partition away: its new owner re-reads from the last commit
            # and the duplicates are recognised. Nothing is lost.
            log.warning("offset commit failed (%s); the messages will be delivered again", exc)

    def _rewind(self, offsets: dict[tuple[str, int], int]) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        for (topic, partition), offset in offsets.items():
            try:
                self.consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                log.warning("cannot rewind %s[%d] to %d: %s", topic, partition, offset, exc)

    def run(self, stop: threading.Event, *, poll_timeout: float = 0.2) -> None:
        """Consume until `stop` is set; back off on transient failures."""
        backoff = 0.0
        while not stop.is_set():
            try:
                self.poll(poll_timeout)
                backoff = 0.0
            except Retry as exc:
                backoff = min(5.0, max(0.1, backoff * 2))
                log.warning("%s: %s; retrying in %.1f s", self.group, exc, backoff)
                stop.wait(backoff)
            except Exception:
                backoff = min(5.0, max(0.1, backoff * 2))
                log.exception("%s: batch failed; retrying in %.1f s", self.group, backoff)
                stop.wait(backoff)

    def close(self) -> None:
        if self._dlq is not None:
            self._dlq.flush(5)
        self.consumer.close()


def _dlq_producer_config(consumer_config: dict[str, Any]) -> dict[str, Any]:
    consumer_only = {
        "group.id",
        "enable.auto.commit",
        "enable.auto.offset.store",
        "auto.offset.reset",
        "fetch.wait.max.ms",
        "session.timeout.ms",
        "heartbeat.interval.ms",
        "max.poll.interval.ms",
        "partition.assignment.strategy",
        "topic.metadata.refresh.interval.ms",
        "fetch.min.bytes",
        "enable.partition.eof",
    }
    config = {k: v for k, v in consumer_config.items() if k not in consumer_only}
    config.update({"enable.idempotence": True, "acks": "all", "linger.ms": 0})
    return config


class EventConsumer:
    """Applies the events topic to a LocalState through an Applier, on a KafkaLoop."""

    def __init__(
        self,
        config: dict[str, Any],
        *,
        topic: str,
        state: LocalState,
        handler: Handler | None = None,
        dead_letter_topic: str,
        metrics: LagMetrics | None = None,
        monitor: LagMonitor | None = None,
        batch_size: int = 500,
    ) -> None:
        self.metrics = metrics or LagMetrics()
        self.applier = Applier(
            state,
            handler,
            metrics=self.metrics,
            monitor=monitor,
            group=str(config["group.id"]),
        )
        self.loop = KafkaLoop(
            config,
            [topic],
            self._handle,
            dead_letter_topic=dead_letter_topic,
            before_commit=state.flush,
            batch_size=batch_size,
            metrics=self.metrics,
            from_beginning=not state.durable,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        group: str,
        state: LocalState,
        handler: Handler | None = None,
        metrics: LagMetrics | None = None,
        **config: Any,
    ) -> EventConsumer:
        """A consumer of this installation's events topic; `config` adds librdkafka settings."""
        from consentry.propagation.kafka import consumer_config

        return cls(
            consumer_config(settings, group, **config),
            topic=settings.kafka_events_topic,
            state=state,
            handler=handler,
            dead_letter_topic=settings.kafka_dead_letter_topic,
            metrics=metrics,
            monitor=LagMonitor(settings.propagation_lag_threshold_seconds, f"{group} apply"),
        )

    @property
    def state(self) -> LocalState:
        return self.applier.state

    def _handle(self, message: Any) -> None:
        value = message.value()
        if value is None:
            raise EnvelopeError("an empty message (tombstone) is not a consent event")
        self.applier.apply(decode(value))

    def poll(self, timeout: float = 0.5) -> int:
        return self.loop.poll(timeout)

    def run(self, stop: threading.Event) -> None:
        self.loop.run(stop)

    def close(self) -> None:
        self.loop.close()
        self.state.flush()


# Replay -----------------------------------------------------------------------------------------
@dataclass
class ReplayReport:
    replayed: int = 0
    skipped: int = 0
    by_topic: dict[str, int] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)


def replay_dead_letters(
    config: dict[str, Any],
    dead_letter_topic: str,
    *,
    group: str = "consentry-dlq-replay",
    only_topic: str | None = None,
    limit: int | None = None,
    idle_seconds: float = 10.0,
    dry_run: bool = False,
) -> ReplayReport:
    """Deliver dead letters again to the topics they came from, once each.

    The replay has its own consumer group on the dead-letter topic, so each dead letter is
    replayed once and a later replay continues after it; with `only_topic`, the group is
    per-topic, so letters of other topics stay for their own replay. Re-delivered events are
    recognised as duplicates by every consumer that had applied them, and applied by the one that
    had failed; a re-delivered command runs (if it is now valid) at most once per command id.
    `dry_run` lists what would be replayed without sending or committing anything.

    A run replays the letters that were in the topic when it started, up to the end offsets
    read then: a letter that is still invalid comes back as a new letter (its consumer
    dead-letters the copy again), and that one waits for the next run, so a run always ends.
    `idle_seconds` only bounds a run whose remaining letters cannot be read (deleted by
    retention while it ran).
    """
    from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

    group_id = group if only_topic is None else f"{group}:{only_topic}"
    consumer = Consumer(
        {
            **config,
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = None if dry_run else Producer(_dlq_producer_config(config))
    report = ReplayReport()
    try:
        metadata = consumer.list_topics(dead_letter_topic, timeout=10)
        topic_meta = metadata.topics.get(dead_letter_topic)
        if topic_meta is None or topic_meta.error is not None or not topic_meta.partitions:
            return report
        partitions = [TopicPartition(dead_letter_topic, p) for p in topic_meta.partitions]
        committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
        # The end of each partition now, before anything is sent: letters after it (a copy of
        # a replayed letter, dead-lettered again) are not this run's.
        listed = {
            tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions
        }
        starts = {p: max(0, committed.get(p, 0)) for p in listed}
        remaining = {p for p, end in listed.items() if starts[p] < end}
        if not remaining:
            return report
        consumer.assign([TopicPartition(dead_letter_topic, p, starts[p]) for p in remaining])
        ends, pending = _fetched_ends(consumer, dead_letter_topic, listed, remaining)
        next_offsets: dict[int, int] = {}
        idle_since = time.monotonic()
        while remaining and (limit is None or report.replayed < limit):
            batch = pending or consumer.consume(100, 0.2)
            pending = []
            if not batch:
                if time.monotonic() - idle_since > idle_seconds:
                    log.warning(
                        "dead letters of partitions %s could not be read within %.0f s; the"
                        " next run continues with them",
                        sorted(remaining),
                        idle_seconds,
                    )
                    break
                continue
            idle_since = time.monotonic()
            for message in batch:
                error = message.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        log.warning("reading %s: %s", dead_letter_topic, error)
                    continue
                _, dlq_partition, dlq_offset = where(message)
                if dlq_partition not in remaining or dlq_offset >= ends[dlq_partition]:
                    continue  # after the end taken at the start: the next run's
                if limit is not None and report.replayed >= limit:
                    break
                next_offsets[dlq_partition] = dlq_offset + 1
                if dlq_offset + 1 >= ends[dlq_partition]:
                    remaining.discard(dlq_partition)
                    consumer.pause([TopicPartition(dead_letter_topic, dlq_partition)])
                target = header(message, H_TOPIC)
                if target is None or (only_topic is not None and target != only_topic):
                    report.skipped += 1
                    continue
                report.messages.append(
                    {
                        "topic": target,
                        "partition": header(message, H_PARTITION),
                        "offset": header(message, H_OFFSET),
                        "group": header(message, H_GROUP),
                        "error": header(message, H_ERROR),
                        "dead_letter": f"{dlq_partition}:{dlq_offset}",
                    }
                )
                report.replayed += 1
                report.by_topic[target] = report.by_topic.get(target, 0) + 1
                if producer is not None:
                    headers: list[tuple[str, str | bytes | None]] = [
                        (k, v)
                        for k, v in headers_of(message)
                        if not k.startswith(DLQ_PREFIX) and k != H_REPLAYED_FROM
                    ]
                    origin = f"{dead_letter_topic}:{dlq_partition}:{dlq_offset}"
                    headers.append((H_REPLAYED_FROM, origin.encode()))
                    producer.produce(
                        target, value=message.value(), key=message.key(), headers=headers
                    )
        if producer is not None:
            unsent = producer.flush(30)
            if unsent:
                raise RuntimeError(f"{unsent} replayed messages not acknowledged; not committed")
            if next_offsets:
                consumer.commit(
                    offsets=[
                        TopicPartition(dead_letter_topic, p, o) for p, o in next_offsets.items()
                    ],
                    asynchronous=False,
                )
        return report
    finally:
        consumer.close()


def _fetched_ends(
    consumer: Any, topic: str, listed: dict[int, int], partitions: set[int], timeout: float = 10.0
) -> tuple[dict[int, int], list[Any]]:
    """The end offsets of `partitions`, and the messages read while finding them.

    A broker's ListOffsets answer (`listed`) is the end; some brokers (the test broker) answer
    the start of the last batch + 1 instead, so the end is also taken from the high watermark
    of the first fetch, which every broker reports exactly. Nothing has been sent yet when it is
    taken, so no copy of this run's letters can be inside it.
    """
    from confluent_kafka import TopicPartition

    ends = dict(listed)
    known: set[int] = set()
    read: list[Any] = []
    deadline = time.monotonic() + timeout
    while known != partitions and time.monotonic() < deadline:
        read.extend(consumer.consume(100, 0.1))
        for p in partitions - known:
            high = consumer.get_watermark_offsets(TopicPartition(topic, p), cached=True)[1]
            if high >= 0:
                ends[p] = max(ends[p], high)
                known.add(p)
    return ends, read
