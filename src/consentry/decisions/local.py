"""The server's read path: an in-process cache (L1), then Redis, then the database.

Why an in-process level on the server too: a check must cost microseconds, and a batch of a
hundred must not cost a hundred queries (DESIGN.md, Performance stance).

Why no cached state older than the log is ever answered (invariant 5). The rule is one
inequality: a cached state (an L1 view, or a Redis entry) carries the log head read BEFORE its
state was read, its position `p`, so it reflects every commit up to `p`. It may answer a request
that synced to head `h` only if

    floor(subject) <= p <= h

where floor(subject) is the highest position this process KNOWS the subject was written at, and
every floor is at least this process's horizon (the head of its first sync). The proof:
- Every commit at or below `p` is in the state, by construction.
- Every commit in (horizon, h] is known to this process: its own writes raise the floor before
  they are acknowledged (a Recorder listener), and `sync()` reads every event committed by any
  other process (workers, the CLI, the commands consumer) since the last sync, in log order, and
  raises their subjects' floors. So a write to the subject above `p` would have put the floor
  above `p`.
- Commits at or below the horizon are below `p`, because `p >= floor >= horizon`.
- `p <= h`: a state from beyond the log this process reads (another database's, a log restored
  from a backup) is not this log's.
Nothing in the proof depends on Redis having received an invalidation. The cases that broke
the old design, which trusted Redis entries no process had invalidated, are therefore covered:
invalidations pending in a process that died (a Redis hang, then a restart), a Redis restarted
from an old snapshot or failed over to a lagging replica, an evicted floor, a second process
that never saw the write, a process with the L1 turned off. A distrusted entry is a miss: the
state is read from the database and the fill overwrites the entry (tests/decisions/
test_coherence.py reproduces each). Invalidating Redis on commit is still done, so that other
processes find fresh entries rather than refused ones; it is an optimisation, not the proof.

The price is the horizon: a process that starts distrusts every entry older than its start and
refills them (one database read per subject, once), and `sync()` reads the events other
processes commit (it did so for the L1 already; it now does so whenever Redis is on).
`sync_interval` > 0 trades exactness for one head read per interval: other processes' writes
may then be answered up to that long after they are acknowledged (never this process's own).
If `sync()` cannot account for the events between two heads, it distrusts everything below the
new head (the L1 after a sync failure never answers from what it could not check).

Decisions are cached per (subject, purpose) for the common case (no request signals) until the
earliest of: a change to the subject, a catalogue reload, the decision's valid_until, the next
notice publication or grace end that concerns the purpose, and `max_decision_age`. A cached
Decision keeps the decided_at of its computation (the HTTP path splices the request's time into
the body); it is the answer for every moment up to its deadline.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from consentry.decisions.cache import Entries, RedisStateCache, entries_of
from consentry.domain.decide import NO_SIGNALS, Decision, Signals, StateEntry, decide
from consentry.domain.notices import MaterialChange
from consentry.domain.purposes import Purpose
from consentry.domain.regimes import Regime
from consentry.storage.base import AppendResult, ConsentStore
from consentry.storage.catalog import TenantCatalog

SYNC_BATCH = 10_000


def infer_jurisdiction(entry: StateEntry | None, entries: Entries) -> str | None:
    """Where the person is: from the event behind this purpose, else their most recent event."""
    if entry is not None and entry.jurisdiction:
        return entry.jurisdiction
    latest = max(
        (e for e in entries.values() if e.jurisdiction),
        key=lambda e: (e.occurred_at, e.position),
        default=None,
    )
    return latest.jurisdiction if latest else None


@dataclass(slots=True)
class Answer:
    """A decision and, once some transport asked for it, its serialized body."""

    decision: Decision
    deadline: datetime | None = None
    catalog: object = None
    body: tuple[bytes, bytes] | None = None


@dataclass(slots=True)
class SubjectView:
    position: int
    entries: Entries
    answers: dict[str, Answer] = field(default_factory=dict)


def decision_deadline(
    decision: Decision, changes: Sequence[MaterialChange], now: datetime, max_age: timedelta
) -> datetime:
    """Until when a decision computed at `now` stays the answer, absent a new event."""
    deadline = now + max_age
    if decision.valid_until is not None and decision.valid_until < deadline:
        deadline = decision.valid_until
    for change in changes:
        for moment in (change.published_at, change.grace_until):
            if now < moment < deadline:
                deadline = moment
    return deadline


class StateReader:
    """Loads subjects' state through the levels and decides, caching where it is safe."""

    def __init__(
        self,
        store: ConsentStore,
        regime_for: Callable[[str | None], Regime],
        *,
        local: bool = True,
        redis: RedisStateCache | None = None,
        max_subjects: int = 100_000,
        sync_interval: float = 0.0,
        max_decision_age: float = 60.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.regime_for = regime_for
        self.local = local
        self.redis = redis
        # Learn every write from the log when anything is cached (the L1, or Redis entries).
        self.follows = local or redis is not None
        self.max_subjects = max_subjects
        self.sync_interval = sync_interval
        self.max_decision_age = timedelta(seconds=max_decision_age)
        self.monotonic = monotonic
        self._views: dict[tuple[str, str], SubjectView] = {}
        self._floors: dict[tuple[str, str], int] = {}
        self._floor_all = -1
        self._synced = -1
        self._synced_at = float("-inf")
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._catalogs: dict[str, tuple[TenantCatalog, object]] = {}
        self.distrusted = 0  # Redis entries refused as possibly older than the log

    # Coherence ---------------------------------------------------------------------------
    def sync(self) -> int:
        """Apply every commit since the last sync (from any process); return the head read."""
        if self.sync_interval and self.monotonic() - self._synced_at < self.sync_interval:
            return self._synced
        head = self.store.head()
        if head > self._synced:
            with self._sync_lock:
                if head > self._synced:
                    self._catch_up(head)
        self._synced_at = self.monotonic()
        return head

    def _catch_up(self, head: int) -> None:
        if self._synced < 0:
            # The horizon: what was written before this process started is unknown to it, and
            # the invalidations of those writes may never have reached Redis (a process that
            # died with them pending, a Redis restored from an old snapshot). Distrust every
            # state cached below the head.
            if self.redis is not None:
                self.redis.bind(self.store.installation_id())
            self.clear(floor=head)
            self._synced = head
            return
        if not self.follows:
            self._synced = head
            return
        after = self._synced
        while after < head:
            events = self.store.events_after(after, SYNC_BATCH)
            if not events:
                # The head promised commits that could not be read: nothing below it is proven.
                self.clear(floor=head)
                break
            with self._lock:
                for e in events:
                    self._invalidate_locked((e.tenant, e.subject), e.position)
            after = events[-1].position
            if len(events) < SYNC_BATCH:
                break
            if head - after > 5 * SYNC_BATCH:  # far behind: cheaper to distrust everything
                self.clear(floor=head)
                break
        self._synced = max(self._synced, head)

    def _invalidate_locked(self, key: tuple[str, str], position: int) -> None:
        self._views.pop(key, None)
        if position <= self._floor_all:
            return
        floors = self._floors
        # Re-inserted at the end, so the dict stays (roughly) in write order, oldest first.
        floors[key] = max(position, floors.pop(key, -1))
        if len(floors) > self.max_subjects:
            # Forget the oldest half, raising the common floor to the highest of them: safe
            # (a higher floor only distrusts more) and it keeps recent fills usable.
            oldest = list(itertools.islice(floors, len(floors) // 2))
            self._floor_all = max(self._floor_all, *(floors.pop(k) for k in oldest))

    def invalidate(self, tenant: str, subjects: dict[str, int]) -> None:
        """A write committed: raise its subjects' floors and drop them here and in Redis, before
        the write is acknowledged."""
        if self.follows:
            with self._lock:
                for subject, position in subjects.items():
                    self._invalidate_locked((tenant, subject), position)
        if self.redis is not None:
            self.redis.invalidate(tenant, subjects)

    def on_commit(self, tenant: str, result: AppendResult) -> None:
        """Recorder listener: runs after the commit, before the caller answers."""
        subjects: dict[str, int] = {}
        for e in result.events:
            subjects[e.subject] = max(e.position, subjects.get(e.subject, -1))
        self.invalidate(tenant, subjects)

    def clear(self, floor: int | None = None) -> None:
        """Drop the L1; with `floor`, distrust every cached state below it as well.

        Floors above the new common floor are kept: a write this process learned must never
        be forgotten while a state older than it could still be cached somewhere.
        """
        with self._lock:
            self._views.clear()
            if floor is not None and floor > self._floor_all:
                self._floor_all = floor
                self._floors = {k: v for k, v in self._floors.items() if v > floor}

    def _floor(self, key: tuple[str, str]) -> int:
        return max(self._floors.get(key, -1), self._floor_all)

    def _fill(self, tenant: str, subject: str, position: int, entries: Entries) -> SubjectView:
        view = SubjectView(position, entries)
        if not self.local:
            return view
        key = (tenant, subject)
        with self._lock:
            if position < self._floor(key):
                # A write committed after this read began: the answer is still a linearizable
                # one for this request, but it must not outlive it.
                return view
            current = self._views.get(key)
            if current is not None and current.position >= position:
                return current
            if len(self._views) >= self.max_subjects:
                del self._views[next(iter(self._views))]  # the oldest fill goes first
            self._views[key] = view
        return view

    def catalog_version(self, tenant: str, catalog: TenantCatalog) -> object:
        """A token that changes when the tenant's purposes or notices do, not on every reload.

        The catalogue is reloaded every few seconds (storage/catalog.py); comparing the reload
        with the previous one once, here, keeps cached answers alive across identical reloads.
        """
        seen = self._catalogs.get(tenant)
        if seen is not None:
            if seen[0] is catalog:
                return seen[1]
            if seen[0].purposes == catalog.purposes and seen[0].notices == catalog.notices:
                self._catalogs[tenant] = (catalog, seen[1])
                return seen[1]
        version = object()
        self._catalogs[tenant] = (catalog, version)
        return version

    # Reading -------------------------------------------------------------------------------
    def views(self, tenant: str, subjects: Sequence[str], head: int) -> dict[str, SubjectView]:
        """The state of each subject, at least as fresh as `head` (read by sync() before)."""
        out: dict[str, SubjectView] = {}
        missing: list[str] = []
        views = self._views
        for subject in subjects:
            if subject in out:
                continue
            view = views.get((tenant, subject)) if self.local else None
            if view is None:
                missing.append(subject)
            else:
                out[subject] = view
        if not missing:
            return out
        if self.redis is not None:
            for subject, (position, entries) in self.redis.get_many(tenant, missing).items():
                # The rule of the module docstring: proven not older than the log, or a miss.
                if self._floor((tenant, subject)) <= position <= head:
                    out[subject] = self._fill(tenant, subject, position, entries)
                else:
                    self.distrusted += 1
            missing = [s for s in missing if s not in out]
        if not missing:
            return out
        # The head was read before these state reads: every commit up to it is in them.
        loaded = [(s, entries_of(self.store.subject_state(tenant, s))) for s in missing]
        for subject, entries in loaded:
            out[subject] = self._fill(tenant, subject, head, entries)
        if self.redis is not None:
            self.redis.fill_many(tenant, [(s, head, e) for s, e in loaded])
        return out

    def answer(
        self,
        view: SubjectView,
        subject: str,
        purpose: Purpose,
        catalog: TenantCatalog,
        now: datetime,
        signals: Signals = NO_SIGNALS,
        version: object = None,
    ) -> Answer:
        """The answer for one purpose; `version` from catalog_version() (default: identity)."""
        if version is None:
            version = catalog
        cacheable = signals is NO_SIGNALS or signals == NO_SIGNALS
        if cacheable:
            hit = view.answers.get(purpose.id)
            if (
                hit is not None
                and hit.catalog is version
                and hit.deadline is not None
                and hit.decision.decided_at <= now < hit.deadline
            ):
                return hit
        entries = view.entries
        entry = entries.get(purpose.id)
        changes = catalog.changes.get(purpose.id, ())
        jurisdiction = signals.jurisdiction or infer_jurisdiction(entry, entries)
        decision = decide(
            subject,
            purpose,
            entry,
            now=now,
            regime=self.regime_for(jurisdiction),
            changes=changes,
            signals=signals,
        )
        if not cacheable:
            return Answer(decision)
        answer = Answer(
            decision, decision_deadline(decision, changes, now, self.max_decision_age), version
        )
        view.answers[purpose.id] = answer
        return answer

    def stats(self) -> dict[str, object]:
        out: dict[str, object] = {
            "subjects": len(self._views),
            "synced": self._synced,
            "horizon_floor": self._floor_all,
            "distrusted": self.distrusted,
        }
        if self.redis is not None:
            out["redis"] = self.redis.stats()
        return out
