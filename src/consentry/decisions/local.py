"""The server's read path: an in-process cache (L1), then Redis, then the database.

Why an in-process level on the server too: a check must cost microseconds, and a batch of a
hundred must not cost a hundred queries (DESIGN.md, Performance stance). Why it cannot serve a
stale answer once a write is acknowledged, whichever process wrote:

- A write through this process invalidates its subjects here before it is acknowledged (a
  Recorder listener), and raises a per-subject floor, as Redis does.
- Writes through any other process (another worker, the CLI, the commands consumer) are learned
  by `sync()`: every request first reads the log head (one indexed row; ~10 us on SQLite) and,
  when it moved, reads the events after the last position seen and drops their subjects. So an
  L1 entry is used only when every commit up to the current head has been applied to it.
  `sync_interval` > 0 trades that exactness for one head read per interval (bounded staleness
  for other processes' writes only; the default is 0, exact).
- A fill (from Redis or the database) carries the head read before its state was read and is
  refused below the subject's floor, so a slow reader cannot put an old state over a new one.

Decisions are cached per (subject, purpose) for the common case (no request signals) until the
earliest of: a change to the subject, a catalogue reload, the decision's valid_until, the next
notice publication or grace end that concerns the purpose, and `max_decision_age`. A cached
Decision keeps the decided_at of its computation (the HTTP path splices the request's time into
the body); it is the answer for every moment up to its deadline.
"""

from __future__ import annotations

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
        if self._synced < 0 or not self.local:
            self._synced = head
            return
        after = self._synced
        while after < head:
            events = self.store.events_after(after, SYNC_BATCH)
            if not events:
                break
            with self._lock:
                for e in events:
                    self._invalidate_locked((e.tenant, e.subject), e.position)
            after = events[-1].position
            if len(events) < SYNC_BATCH:
                break
            if head - after > 5 * SYNC_BATCH:  # far behind: cheaper to start over
                self.clear(floor=head)
                break
        self._synced = max(self._synced, head)

    def _invalidate_locked(self, key: tuple[str, str], position: int) -> None:
        self._views.pop(key, None)
        if position > self._floors.get(key, -1):
            self._floors[key] = position
        if len(self._floors) > self.max_subjects:
            self._floor_all = max(self._floor_all, *self._floors.values())
            self._floors.clear()

    def invalidate(self, tenant: str, subjects: dict[str, int]) -> None:
        """A write committed: drop the subjects here and in Redis before it is acknowledged."""
        if self.local:
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
        with self._lock:
            self._views.clear()
            self._floors.clear()
            if floor is not None:
                self._floor_all = max(self._floor_all, floor)

    def _floor(self, key: tuple[str, str]) -> int:
        return max(self._floors.get(key, -1), self._floor_all) if self.local else -1

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
                # Below a floor this process learned (its own write, or sync()), the entry
                # predates a write whose Redis invalidation may not have landed: a miss.
                if position >= self._floor((tenant, subject)):
                    out[subject] = self._fill(tenant, subject, position, entries)
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
        out: dict[str, object] = {"subjects": len(self._views), "synced": self._synced}
        if self.redis is not None:
            out["redis"] = self.redis.stats()
        return out
