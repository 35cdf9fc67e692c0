"""How far behind the log the stream runs: histograms, and an alert threshold.

Two delays matter to a person who withdraws: commit to publish (the relay) and commit to apply
(each consumer). Both are measured from the event's `recorded_at`, the commit time the log
stamped, so they include every queue in between; across machines they also include clock skew.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from consentry.storage.base import ConsentStore

log = logging.getLogger("consentry.propagation.lag")

#: From a millisecond to a minute: the target is p99 <= 100 ms, an outage is counted in seconds.
LAG_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
WARN_EVERY_SECONDS = 60.0


class LagMetrics:
    """The Prometheus series of propagation, in a registry of their own unless one is given
    (the API's, when the relay runs inside `serve`), so that several relays or consumers in one
    process (tests, benchmarks) never collide in the global registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.commit_to_publish = Histogram(
            "consentry_propagation_commit_to_publish_seconds",
            "From an event's commit (recorded_at) to the broker's acknowledgement",
            registry=self.registry,
            buckets=LAG_BUCKETS,
        )
        self.commit_to_apply = Histogram(
            "consentry_propagation_commit_to_apply_seconds",
            "From an event's commit (recorded_at) to a consumer having applied it",
            ["group"],
            registry=self.registry,
            buckets=LAG_BUCKETS,
        )
        self.published = Counter(
            "consentry_relay_published_events_total",
            "Events the relay published (re-publications after a failure included)",
            registry=self.registry,
        )
        self.relay_position = Gauge(
            "consentry_relay_position",
            "The last log position the relay saved as delivered (read at each scrape)",
            registry=self.registry,
        )
        self.relay_backlog = Gauge(
            "consentry_relay_backlog_seconds",
            "Age of the oldest committed event not yet acknowledged by the broker (0 = none;"
            " read from the log at each scrape)",
            registry=self.registry,
        )
        self.relay_failures = Counter(
            "consentry_relay_failures_total",
            "Rounds the relay could not publish (the broker unreachable, a timeout)",
            registry=self.registry,
        )
        self.applied = Counter(
            "consentry_consumer_applied_events_total",
            "Events a consumer applied to its state (duplicates excluded)",
            ["group"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "consentry_consumer_duplicate_events_total",
            "Deliveries a consumer recognised as already applied",
            ["group"],
            registry=self.registry,
        )
        self.dead_lettered = Counter(
            "consentry_dead_lettered_total",
            "Messages sent to the dead-letter topic, by consumer group",
            ["group"],
            registry=self.registry,
        )

    def watch_relay(self, store: ConsentStore, relay_name: str) -> None:
        """Read the relay's position and backlog from the database at each scrape.

        What the relay last observed is stale exactly when it matters: while a batch waits for
        the broker (a whole delivery timeout in an outage), after a restart (nothing observed
        yet), or when the relay is dead. The log and the saved position tell the truth from any
        process, as /readyz reads them; a scrape costs two indexed reads. If the database cannot
        be read either, the gauges say NaN (unknown), not a reassuring 0.
        """
        self.relay_position.set_function(_or_nan(lambda: store.get_offset(relay_name)))
        self.relay_backlog.set_function(_or_nan(lambda: relay_backlog_seconds(store, relay_name)))


def _or_nan(read: Callable[[], float]) -> Callable[[], float]:
    def value() -> float:
        try:
            return float(read())
        except Exception:  # the database is down: unknown, and the scrape still answers
            log.debug("cannot read a relay gauge", exc_info=True)
            return math.nan

    return value


class LagMonitor:
    """Compares the current lag with the threshold: a warning in the log when it is crossed
    (repeated every minute while it lasts) and a flag /readyz reads."""

    def __init__(
        self,
        threshold_seconds: float,
        what: str,
        *,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger = log,
    ) -> None:
        self.threshold = threshold_seconds
        self.what = what
        self.clock = clock
        self.logger = logger
        self.current = 0.0
        self._exceeded = False
        self._warned_at = float("-inf")
        self._lock = threading.Lock()

    @property
    def exceeded(self) -> bool:
        return self._exceeded

    def observe(self, lag_seconds: float) -> None:
        """Record the lag now (0 when caught up)."""
        with self._lock:
            self.current = lag_seconds
            now = self.clock()
            if lag_seconds > self.threshold:
                if not self._exceeded or now - self._warned_at >= WARN_EVERY_SECONDS:
                    self.logger.warning(
                        "%s lag is %.1f s, above the threshold of %.1f s",
                        self.what,
                        lag_seconds,
                        self.threshold,
                    )
                    self._warned_at = now
                self._exceeded = True
            elif self._exceeded:
                self.logger.info("%s lag is back to %.3f s", self.what, lag_seconds)
                self._exceeded = False


def observe_many(histogram: Histogram, amount: float, count: int) -> None:
    """Observe `amount` `count` times at once: the events of one append share their commit time,
    and a relay round of thousands of them should not cost thousands of observe() calls.

    Uses the histogram's bucket counters (prometheus_client's layout); if that layout changes,
    falls back to the loop.
    """
    buckets = getattr(histogram, "_buckets", None)
    bounds = getattr(histogram, "_upper_bounds", None)
    total = getattr(histogram, "_sum", None)
    if buckets is None or bounds is None or total is None or len(buckets) != len(bounds):
        for _ in range(count):
            histogram.observe(amount)
        return
    total.inc(amount * count)
    for i, bound in enumerate(bounds):
        if amount <= bound:
            buckets[i].inc(count)
            return


def seconds_since(recorded_at: datetime, now: datetime | None = None) -> float:
    """Age of a commit, never negative (clocks of two machines may disagree slightly)."""
    return max(0.0, ((now or datetime.now(UTC)) - recorded_at).total_seconds())


def relay_backlog_seconds(store: ConsentStore, relay_name: str) -> float:
    """Age of the oldest event the relay has not yet published, read from the database.

    This is what /readyz reports, from any process: a relay that died or cannot reach the broker
    stops observing anything, but its backlog keeps ageing in the log.
    """
    pending = store.events_after(store.get_offset(relay_name), 1)
    return seconds_since(pending[0].recorded_at) if pending else 0.0
