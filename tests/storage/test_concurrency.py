"""Invariant 3 under load: many writers (threads, and separate processes), one tailing reader.

Afterwards the log must hold every event exactly once at positions 1..N, each request's events
contiguous, subject versions 1..k per subject in position order and recorded_at non-decreasing;
and a reader that tailed the log while the writers ran must never have seen position p+1 before
p. Each test is bounded to a few seconds.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import pairwise

from consentry.domain.events import Action, NewEvent, RecordedEvent
from consentry.domain.history import latest_per_purpose
from consentry.storage import SqlStore, open_store
from consentry.storage.base import AppendResult

NewEventFactory = Callable[..., NewEvent]

SUBJECTS = ["s1", "s2", "s3", "s4", "s5"]
PURPOSES = ["ads", "email", "analytics"]
ACTIONS = [Action.GIVEN, Action.REFUSED, Action.WITHDRAWN]
DEADLINE_S = 30.0


@dataclass
class Tail:
    """A reader that follows the log with events_after() and records any gap it observes."""

    store: SqlStore
    seen: list[RecordedEvent] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> Tail:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        try:
            self._follow()
        except Exception as exc:  # reported by finish(), in the test's thread
            self.gaps.append(f"the reader failed: {exc!r}")

    def _follow(self) -> None:
        last = 0
        while True:
            stopping = self.stop.is_set()  # read BEFORE the page: a final pass after the stop
            page = self.store.events_after(last, 64)
            for offset, event in enumerate(page, start=1):
                if event.position != last + offset:
                    self.gaps.append(f"after {last} the reader saw {event.position}")
            self.seen.extend(page)
            if page:
                last = page[-1].position
            elif stopping:
                return
            else:
                time.sleep(0.001)

    def finish(self) -> list[RecordedEvent]:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(DEADLINE_S)
        assert not self.thread.is_alive(), "the reader did not catch up"
        assert self.gaps == [], self.gaps
        return self.seen


def random_batch(rng: random.Random, new_event: NewEventFactory) -> list[NewEvent]:
    return [
        new_event(rng.choice(SUBJECTS), rng.choice(PURPOSES), rng.choice(ACTIONS))
        for _ in range(rng.randint(1, 3))
    ]


def check_log(store: SqlStore, requests: Iterable[list[tuple[uuid.UUID, int]]]) -> None:
    """The log after concurrent writers: complete, gapless, ordered, one version per subject."""
    requests = list(requests)
    expected = {event_id: position for req in requests for event_id, position in req}
    log = store.events_after(0, 100_000)
    n = len(log)
    assert n == len(expected), "every appended event is in the log, once"
    assert [e.position for e in log] == list(range(1, n + 1)), "positions 1..N, no gap"
    assert store.head() == n
    assert {e.event_id: e.position for e in log} == expected, "no event lost or moved"
    for req in requests:
        positions = [p for _, p in req]
        assert positions == list(range(positions[0], positions[0] + len(positions))), (
            "one request's events are contiguous"
        )
    assert all(a.recorded_at <= b.recorded_at for a, b in pairwise(log)), "recorded_at order"
    by_subject: dict[str, list[RecordedEvent]] = defaultdict(list)
    for e in log:
        by_subject[e.subject].append(e)
    for subject, events in by_subject.items():
        assert [e.subject_version for e in events] == list(range(1, len(events) + 1)), subject
        state = {e.purpose: e for e in store.subject_state("default", subject)}
        assert state == latest_per_purpose(events), subject


def test_concurrent_threads_keep_the_log_gapless(
    store: SqlStore, new_event: NewEventFactory
) -> None:
    writers, appends = 8, 50
    barrier = threading.Barrier(writers)

    def write(seed: int) -> list[list[tuple[uuid.UUID, int]]]:
        rng = random.Random(seed)
        barrier.wait(DEADLINE_S)
        done = []
        for _ in range(appends):
            result = store.append("default", random_batch(rng, new_event))
            done.append([(e.event_id, e.position) for e in result.events])
        return done

    tail = Tail(store).start()
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(writers) as pool:
            futures = [pool.submit(write, i) for i in range(writers)]
            results = [r for f in futures for r in f.result()]
    finally:
        tail.stop.set()
    seen = tail.finish()
    assert time.monotonic() - started < DEADLINE_S

    assert len(results) == writers * appends
    check_log(store, results)
    assert seen == store.events_after(0, 100_000), "the reader saw the whole log, in order"


WORKER = """
import json, random, sys, uuid
from datetime import UTC, datetime, timedelta
from consentry.domain.events import Action, Evidence, NewEvent, Source
from consentry.domain.purposes import LegalBasis
from consentry.storage import open_store

url, seed, appends = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
subjects, purposes = json.loads(sys.argv[4]), json.loads(sys.argv[5])
rng = random.Random(seed)
store = open_store(url)
sys.stdin.readline()  # start together
out = []
for i in range(appends):
    batch = [
        NewEvent(uuid.uuid4(), "default", rng.choice(subjects), rng.choice(purposes),
                 rng.choice([Action.GIVEN, Action.WITHDRAWN]), LegalBasis.CONSENT,
                 datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 50)),
                 Evidence(Source.API))
        for _ in range(rng.randint(1, 3))
    ]
    out.append([[str(e.event_id), e.position] for e in store.append("default", batch).events])
store.close()
print(json.dumps(out))
"""


def test_concurrent_processes_keep_the_log_gapless(store: SqlStore, db_url: str) -> None:
    """Separate processes, each with its own store (SQLite: its own connection to the file and
    its own in-process lock; PostgreSQL: its own pool), and a reader tailing in this one."""
    processes, appends = 3, 40
    args = [json.dumps(SUBJECTS), json.dumps(PURPOSES)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, str(seed), str(appends), *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(processes)
    ]
    tail = Tail(store).start()
    results: list[list[tuple[uuid.UUID, int]]] = []
    try:
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        for w in workers:
            out, err = w.communicate(timeout=DEADLINE_S)
            assert w.returncode == 0, err
            results += [[(uuid.UUID(i), p) for i, p in req] for req in json.loads(out)]
    finally:
        tail.stop.set()
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    seen = tail.finish()

    assert len(results) == processes * appends
    check_log(store, results)
    assert seen == store.events_after(0, 100_000)


def test_concurrent_retries_of_one_request_write_it_once(
    store: SqlStore, new_event: NewEventFactory
) -> None:
    """The same request sent by 8 threads at once (same event ids, or same idempotency key):
    exactly one writes, every other answer is a replay of that one result."""
    by_ids = [new_event("alice", "ads"), new_event("bob", "ads")]
    threads = 8
    barrier = threading.Barrier(threads)

    def send(i: int) -> tuple[AppendResult, AppendResult]:
        barrier.wait(DEADLINE_S)
        a = store.append("default", by_ids)
        b = store.append(
            "default", [new_event("carol")], idempotency_key="retry", request_hash="same"
        )
        return a, b

    with ThreadPoolExecutor(threads) as pool:
        answers = list(pool.map(send, range(threads)))
    for pick in (0, 1):
        results = [pair[pick] for pair in answers]
        assert sum(not r.replayed for r in results) == 1
        assert len({r.events for r in results}) == 1
    check_log(store, [[(e.event_id, e.position) for e in answers[0][i].events] for i in (0, 1)])


def test_two_stores_on_one_database_share_the_order(
    store: SqlStore, db_url: str, new_event: NewEventFactory
) -> None:
    """Two store objects (as two server workers would have) interleave without gaps."""
    other = open_store(db_url)
    try:
        stores = [store, other]
        barrier = threading.Barrier(2)

        def write(i: int) -> list[list[tuple[uuid.UUID, int]]]:
            rng = random.Random(100 + i)
            barrier.wait(DEADLINE_S)
            done = []
            for _ in range(40):
                result = stores[i].append("default", random_batch(rng, new_event))
                done.append([(e.event_id, e.position) for e in result.events])
            return done

        with ThreadPoolExecutor(2) as pool:
            results = [r for f in [pool.submit(write, i) for i in (0, 1)] for r in f.result()]
        check_log(store, results)
        assert other.events_after(0, 100_000) == store.events_after(0, 100_000)
    finally:
        other.close()
