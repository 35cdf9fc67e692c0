"""The outbox relay: every committed event, in position order, to the broker, at least once.

The log is the outbox. The relay reads events after its saved position, publishes them keyed by
tenant and subject, waits for every delivery report, and only then saves the new position. A
crash at any point therefore re-publishes (duplicates, which consumers recognise) and never
skips. One relay per database is active; others wait as hot standbys behind a lease.

A broker can also lose messages it acknowledged (an unclean leader election, a topic deleted and
re-created, a test broker restarted with memory storage). The relay notices when a partition
hands out an offset it already acknowledged for an earlier message, and publishes again from the
first position that may have been lost; see `_check_truncation`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import orjson

from consentry.config import Settings
from consentry.domain.events import parse_time
from consentry.propagation.envelope import CONTENT_TYPE, envelope, message_key
from consentry.propagation.lag import LagMetrics, LagMonitor, observe_many
from consentry.propagation.publisher import (
    Delivery,
    Message,
    PendingBatch,
    PipelinedPublisher,
    Publisher,
    PublishError,
)
from consentry.storage.base import StoreUnavailableError
from consentry.storage.propagation import (
    AppendWaiter,
    Lease,
    LocalWaiter,
    OutboxEvent,
    outbox_after,
)
from consentry.storage.sql import SqlStore

log = logging.getLogger("consentry.propagation.relay")

HEADERS = (("content-type", f"{CONTENT_TYPE}; charset=UTF-8".encode()),)
#: Batches remembered to locate lost messages: (first position, partition, min, max offset).
JOURNAL_ENTRIES = 200_000
LEASE_CHECK_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 5.0


def relay_name(topic: str) -> str:
    """The relay's row in reader_offsets: one position per topic it feeds."""
    return f"relay:{topic}"


class Relay:
    """Publishes the log to a topic; `run` leads or stands by, `step` is one round."""

    def __init__(
        self,
        store: SqlStore,
        publisher_factory: Callable[[], Publisher],
        *,
        topic: str,
        source: str = "/consentry",
        batch_size: int = 5000,
        poll_interval: float = 0.1,
        lease: Lease | None = None,
        waiter: AppendWaiter | None = None,
        metrics: LagMetrics | None = None,
        monitor: LagMonitor | None = None,
        prepare: Callable[[], object] | None = None,
        name: str | None = None,
    ) -> None:
        self.store = store
        self.publisher_factory = publisher_factory
        self.topic = topic
        self.source = source
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.lease = lease
        self.waiter = waiter or LocalWaiter()
        self.metrics = metrics or LagMetrics()
        self.monitor = monitor
        self.prepare = prepare
        self.name = name or relay_name(topic)
        self.metrics.watch_relay(store, self.name)  # true from the start (lag.py says why)
        self.leading = False
        self._publisher: Publisher | None = None
        self._position: int | None = None
        self._high: dict[int, int] = {}
        self._last_min: dict[int, int] = {}
        self._suspect_loss = False
        self._journal: deque[tuple[int, int, int, int]] = deque(maxlen=JOURNAL_ENTRIES)
        self._in_flight: deque[tuple[list[OutboxEvent], PendingBatch]] = deque()
        self.rewinds = 0

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        store: SqlStore,
        *,
        metrics: LagMetrics | None = None,
        **overrides: object,
    ) -> Relay:
        """The relay of an installation: its Kafka producer, lease, NOTIFY waiter and monitor."""
        from consentry.propagation.kafka import (
            KafkaPublisher,
            client_config,
            ensure_topics,
            producer_config,
        )
        from consentry.storage.propagation import append_waiter, relay_lease

        topic = settings.kafka_events_topic
        config = producer_config(settings)

        def prepare() -> object:
            if settings.kafka_create_topics:
                return ensure_topics(
                    client_config(settings),
                    [topic],
                    partitions=settings.kafka_topic_partitions,
                    replication_factor=settings.kafka_replication_factor,
                )
            return None

        name = relay_name(topic)
        kwargs: dict[str, object] = {
            "topic": topic,
            "source": settings.cloudevents_source,
            "batch_size": settings.relay_batch_size,
            "poll_interval": settings.relay_poll_interval_seconds,
            "lease": relay_lease(store, name),
            "waiter": append_waiter(store),
            "metrics": metrics,
            "monitor": LagMonitor(settings.propagation_lag_threshold_seconds, "commit-to-publish"),
            "prepare": prepare,
        }
        kwargs.update(overrides)
        return cls(store, lambda: KafkaPublisher(config), **kwargs)  # type: ignore[arg-type]

    # One round ---------------------------------------------------------------------------------
    @property
    def position(self) -> int:
        """The last position acknowledged by the broker and saved."""
        if self._position is None:
            self._position = self.store.get_offset(self.name)
        return self._position

    def step(self) -> int:
        """One round: read and send the next batch, then wait for the oldest batch in flight;
        return how many events were acknowledged (and their position saved).

        A full batch (more is probably waiting) is sent without waiting, so the next one is read
        and encoded while the broker acknowledges it: at most two batches are in flight, and
        positions are saved strictly in order. Raises PublishError (after saving the
        acknowledged prefix) or StoreUnavailableError.
        """
        read_from = self._in_flight[-1][0][-1].position if self._in_flight else self.position
        events = outbox_after(self.store, read_from, self.batch_size)
        if not events and not self._in_flight:
            self._observe_backlog(None)
            return 0
        full = False
        if events:
            if self._publisher is None and self._connect(events[0]):
                # Lost messages: start again from the (rewound) position.
                events = outbox_after(self.store, self.position, self.batch_size)
            publisher = self._publisher
            assert publisher is not None
            messages = [self._message(e) for e in events]
            if isinstance(publisher, PipelinedPublisher):
                self._in_flight.append((events, publisher.send(messages)))
                full = len(events) >= self.batch_size
            else:
                self._in_flight.append((events, _Sync(publisher, messages)))
        done = 0
        while self._in_flight and (len(self._in_flight) > 1 or not full):
            batch, pending = self._in_flight.popleft()
            try:
                deliveries = pending.wait()
            except PublishError as exc:
                self._failed(batch, exc)
                raise
            if self._delivered(batch, deliveries):
                self._in_flight.clear()  # sent after what was lost: they go again, in order
            done += len(batch)
            if full:
                break
        return done

    @property
    def busy(self) -> bool:
        """Batches are in flight (step() must be called again before idling)."""
        return bool(self._in_flight)

    def _connect(self, oldest: OutboxEvent) -> bool:
        """A new publisher; after a failure, probe for lost messages. True if it rewound."""
        rewind: int | None = None
        try:
            if self.prepare is not None:
                self.prepare()
            publisher = self._publisher = self.publisher_factory()
            if self._suspect_loss:
                rewind = self._probe(publisher)
        except Exception as exc:  # the broker is unreachable: a failed round like any other
            self._close_publisher()
            self.metrics.relay_failures.inc()
            self._observe_backlog(oldest)
            raise PublishError(f"cannot connect: {exc}", []) from exc
        self._suspect_loss = False
        if rewind is not None:
            self._save(rewind - 1)
            return True
        return False

    def _failed(self, batch: list[OutboxEvent], exc: PublishError) -> None:
        """Keep the acknowledged prefix, drop the producer and what was in flight after it."""
        self._in_flight.clear()
        self._close_publisher()
        self._suspect_loss = True
        done = 0
        for delivery in exc.delivered:
            if delivery is None:
                break
            done += 1
        if done:
            self._delivered(batch[:done], [d for d in exc.delivered[:done] if d])
        self.metrics.relay_failures.inc()
        self._observe_backlog(batch[done] if done < len(batch) else None)

    def _message(self, event: OutboxEvent) -> Message:
        return Message(
            self.topic,
            message_key(event.tenant, event.subject),
            orjson.dumps(envelope(event.data, self.source)),
            HEADERS,
        )

    def _save(self, position: int) -> None:
        self.store.set_offset(self.name, position)
        self._position = position

    def _delivered(self, events: Sequence[OutboxEvent], deliveries: Sequence[Delivery]) -> bool:
        """Save the position after acknowledged events; True if that showed lost messages."""
        now = datetime.now(UTC)
        commits: dict[str, int] = {}  # the events of one append share their recorded_at
        for event in events:
            commits[event.recorded_at] = commits.get(event.recorded_at, 0) + 1
        for recorded_at, count in commits.items():
            observe_many(self.metrics.commit_to_publish, _age(recorded_at, now), count)
        self.metrics.published.inc(len(events))
        rewind_to = self._check_truncation(events[0].position, deliveries)
        self._save(events[-1].position if rewind_to is None else rewind_to - 1)
        # A full round means more is waiting: its age is the backlog (one indexed read).
        full = len(events) >= self.batch_size
        pending = outbox_after(self.store, self.position, 1) if full else []
        self._observe_backlog(pending[0] if pending else None)
        return rewind_to is not None

    # Messages the broker lost ------------------------------------------------------------------
    # Offsets in a Kafka partition only grow, and a healthy partition's end offset never falls
    # below an offset it acknowledged. After a failure (the only time a loss is plausible), the
    # relay compares each partition's end offset with what it had delivered there, BEFORE
    # publishing anything: a shorter partition lost messages, and the relay publishes again from
    # the first position that put a message at or above the new end, so every subject's events
    # reach the partition again in order. The journal maps offsets to positions; a loss older
    # than the journal (or than this process) means publishing again from the beginning.
    # A loss the probe cannot see (the producer recovered by itself) is still caught when a
    # delivery lands at an offset already acknowledged: nothing is lost then either, though
    # the copies of that one batch arrive ahead of the older events published again.
    def _probe(self, publisher: Publisher) -> int | None:
        if not self._high:
            return None
        ends = publisher.end_offsets(self.topic, sorted(self._high))
        rewind: int | None = None
        for partition in sorted(self._high):
            end = ends.get(partition, 0)
            # `<=` the first offset of the last batch, not the last offset: some brokers (the
            # test broker) report the end of a partition as the start of its last batch + 1.
            if end <= self._last_min[partition]:
                start = self._lost(partition, end, f"ends at offset {end}")
                rewind = start if rewind is None else min(rewind, start)
        return rewind

    def _check_truncation(self, first_position: int, deliveries: Sequence[Delivery]) -> int | None:
        """The position to publish again from if a delivery shows a partition lost messages."""
        spans: dict[int, tuple[int, int]] = {}
        for d in deliveries:
            lo, hi = spans.get(d.partition, (d.offset, d.offset))
            spans[d.partition] = (min(lo, d.offset), max(hi, d.offset))
        rewind: int | None = None
        for partition, (lo, _hi) in spans.items():
            high = self._high.get(partition)
            if high is not None and lo <= high:
                start = self._lost(partition, lo, f"handed out offset {lo} again")
                rewind = start if rewind is None else min(rewind, start)
        for partition, (lo, hi) in spans.items():
            self._high[partition] = hi
            self._last_min[partition] = lo
            self._journal.append((first_position, partition, lo, hi))
        return rewind

    def _lost(self, partition: int, from_offset: int, what: str) -> int:
        """Forget what partition lost from `from_offset` on; the position to publish again from."""
        lost = [e for e in self._journal if e[1] == partition and e[3] >= from_offset]
        oldest = min((e[2] for e in self._journal if e[1] == partition), default=None)
        start = 1 if oldest is None or oldest > from_offset else min(e[0] for e in lost)
        log.error(
            "partition %d of %s %s, below the offset %d it had acknowledged: the broker lost"
            " acknowledged messages; publishing again from position %d",
            partition,
            self.topic,
            what,
            self._high.get(partition, -1),
            start,
        )
        self._journal = deque(
            (e for e in self._journal if not (e[1] == partition and e[3] >= from_offset)),
            maxlen=JOURNAL_ENTRIES,
        )
        if from_offset > 0:
            self._high[partition] = from_offset - 1
            self._last_min[partition] = min(self._last_min[partition], from_offset - 1)
        else:
            self._high.pop(partition, None)
            self._last_min.pop(partition, None)
        self.rewinds += 1
        return start

    def _observe_backlog(self, oldest_pending: OutboxEvent | None) -> None:
        age = (
            _age(oldest_pending.recorded_at, datetime.now(UTC))
            if oldest_pending is not None
            else 0.0
        )
        if self.monitor is not None:
            self.monitor.observe(age)

    def _close_publisher(self) -> None:
        self._in_flight.clear()
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None

    # The loop ----------------------------------------------------------------------------------
    def wake(self) -> None:
        """Tell the relay that events were committed (a Recorder listener in this process)."""
        self.waiter.wake()

    def drain(self, timeout: float = 30.0) -> int:
        """Publish until the log is exhausted (tests, `consentry relay --once`); the count."""
        total = 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            total += self.step()
            if not self.busy and self.store.head() <= self.position:
                return total
        raise TimeoutError(f"the relay did not catch up within {timeout} s")

    def run(self, stop: threading.Event) -> None:
        """Lead (or stand by until the lease is free) and publish until `stop` is set."""
        backoff = 0.0
        last_lease_check = 0.0
        try:
            while not stop.is_set():
                if not self._lead(stop):
                    continue
                now = time.monotonic()
                if self.lease is not None and now - last_lease_check >= LEASE_CHECK_SECONDS:
                    last_lease_check = now
                    if not self.lease.held():
                        log.warning("relay %s lost its lease; standing by", self.name)
                        self._step_down()
                        continue
                try:
                    published = self.step()
                    backoff = 0.0
                except (PublishError, StoreUnavailableError) as exc:
                    backoff = min(MAX_BACKOFF_SECONDS, max(0.1, backoff * 2))
                    log.warning("relay %s: %s; retrying in %.1f s", self.name, exc, backoff)
                    stop.wait(backoff)
                    continue
                except Exception:
                    # Never die silently: the log keeps growing and /readyz reports the backlog.
                    backoff = min(MAX_BACKOFF_SECONDS, max(0.1, backoff * 2))
                    log.exception("relay %s failed; retrying in %.1f s", self.name, backoff)
                    self._close_publisher()
                    stop.wait(backoff)
                    continue
                if published == 0 and not self.busy:
                    self._idle(stop)
        finally:
            self._step_down()
            self.waiter.close()

    def _idle(self, stop: threading.Event) -> None:
        """Wait for a wake-up or the poll interval, noticing `stop` within half a second."""
        deadline = time.monotonic() + self.poll_interval
        while not stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.waiter.wait(min(remaining, 0.5)):
                return

    def _lead(self, stop: threading.Event) -> bool:
        if self.leading:
            return True
        try:
            acquired = self.lease is None or self.lease.try_acquire()
        except StoreUnavailableError as exc:
            log.warning("relay %s cannot reach the database: %s", self.name, exc)
            acquired = False
        if not acquired:
            stop.wait(max(self.poll_interval, 0.5))
            return False
        self.leading = True
        self._position = None  # another relay may have moved it while we stood by
        self._high.clear()
        self._last_min.clear()
        self._journal.clear()
        log.info("relay %s leading from position %d", self.name, self.position)
        return True

    def _step_down(self) -> None:
        self._close_publisher()
        if self.leading and self.lease is not None:
            self.lease.release()
        self.leading = False


def _age(recorded_at: str, now: datetime) -> float:
    return max(0.0, (now - parse_time(recorded_at)).total_seconds())


class _Sync:
    """A publisher without send(): the batch is published (and waited for) at once."""

    def __init__(self, publisher: Publisher, messages: Sequence[Message]) -> None:
        self.deliveries: list[Delivery] = []
        self.error: PublishError | None = None
        try:
            self.deliveries = publisher.publish(messages)
        except PublishError as exc:
            self.error = exc

    def wait(self) -> list[Delivery]:
        if self.error is not None:
            raise self.error
        return self.deliveries
