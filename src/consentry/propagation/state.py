"""A consumer's local copy of consent state, kept by DESIGN.md's rule whatever the delivery order.

Delivery is at least once and only ordered per partition, and a relay that restarts publishes
some events again. A consumer therefore applies each event by invariant 4 (the greatest
occurred_at decides, ties by position) and recognises duplicates by event id and by
(tenant, subject, subject_version): applying a history shuffled and repeated gives exactly the
state of applying it once in order (tests/propagation/test_state_properties.py checks this).

Two implementations: MemoryState (a dict; rebuilt from the topic on restart) and SqliteState (a
file; a restarted consumer resumes from its committed offset with its state intact).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from consentry.domain.events import RecordedEvent
from consentry.domain.history import supersedes
from consentry.propagation.envelope import event_from_data

Key = tuple[str, str, str]
SubjectKey = tuple[str, str]
RECENT_IDS = 100_000


@dataclass(frozen=True, slots=True)
class Change:
    """A new event (never a duplicate) as a consumer receives it.

    `decides` is whether it now decides its purpose; a late event with an older legal time is
    kept in history and does not (so a handler should act on `decides`, e.g. stop emailing on a
    deciding withdrawal). `previous` is what decided the purpose before.
    """

    event: RecordedEvent
    previous: RecordedEvent | None
    decides: bool


@dataclass(slots=True)
class VersionSet:
    """Which subject_versions of one subject were applied: all up to `watermark`, plus `extra`.

    Per partition, Kafka keeps a subject's events in order, so `extra` stays empty or small and
    the set costs two integers per subject however long the history.
    """

    watermark: int = 0
    extra: set[int] = field(default_factory=set)

    def __contains__(self, version: int) -> bool:
        return version <= self.watermark or version in self.extra

    def add(self, version: int) -> None:
        if version in self:
            return
        self.extra.add(version)
        while self.watermark + 1 in self.extra:
            self.watermark += 1
            self.extra.discard(self.watermark)


class LocalState(Protocol):
    """Where a consumer keeps what it applied; the consumer commits offsets only after flush().

    preview() and commit() are split so that a handler can run between them: if the handler
    fails, nothing is stored and the message goes to the dead-letter topic; delivered again
    later (dlq replay), it is applied then, and the rule makes the late arrival harmless.

    A state that is not `durable` starts empty in a new process, so its consumer reads its
    partitions from the beginning instead of from the group's committed offsets (which would
    skip the history the empty state never saw).
    """

    durable: bool

    def preview(self, event: RecordedEvent) -> Change | None:
        """What applying `event` would change, or None for a duplicate."""
        ...

    def commit(self, change: Change) -> None:
        """Apply a previewed change."""
        ...

    def flush(self) -> None:
        """Make committed changes durable (before the consumer commits its offsets)."""
        ...

    def current(self, tenant: str, subject: str, purpose: str) -> RecordedEvent | None:
        """The event that decides (tenant, subject, purpose) in this state."""
        ...

    def snapshot(self) -> dict[Key, RecordedEvent]:
        """Every deciding event, to compare states or rebuild a cache."""
        ...

    def close(self) -> None: ...


class _RecentIds:
    """The last N (tenant, event id) seen: a second, cheap duplicate check that needs no
    version. Keyed by tenant too: event ids are unique per tenant (migration 0005)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[object, None] = OrderedDict()

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._ids

    def add(self, event_id: object) -> None:
        self._ids[event_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)


class MemoryState:
    """The state in dictionaries: the fastest, and what the property tests fold into. Not
    durable: its consumer re-reads the topic from the beginning at each start."""

    durable = False

    def __init__(self, remember_ids: int = RECENT_IDS) -> None:
        self._current: dict[Key, RecordedEvent] = {}
        self._versions: dict[SubjectKey, VersionSet] = {}
        self._recent = _RecentIds(remember_ids)
        self._lock = threading.Lock()

    def preview(self, event: RecordedEvent) -> Change | None:
        if (event.tenant, event.event_id) in self._recent:
            return None
        versions = self._versions.get((event.tenant, event.subject))
        if versions is not None and event.subject_version in versions:
            return None
        previous = self._current.get((event.tenant, event.subject, event.purpose))
        return Change(event, previous, supersedes(event, previous))

    def commit(self, change: Change) -> None:
        e = change.event
        with self._lock:
            self._recent.add((e.tenant, e.event_id))
            self._versions.setdefault((e.tenant, e.subject), VersionSet()).add(e.subject_version)
            key = (e.tenant, e.subject, e.purpose)
            if supersedes(e, self._current.get(key)):
                self._current[key] = e

    def flush(self) -> None:
        pass

    def current(self, tenant: str, subject: str, purpose: str) -> RecordedEvent | None:
        return self._current.get((tenant, subject, purpose))

    def snapshot(self) -> dict[Key, RecordedEvent]:
        with self._lock:
            return dict(self._current)

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS consent_state (
    tenant TEXT NOT NULL, subject TEXT NOT NULL, purpose TEXT NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (tenant, subject, purpose)
);
CREATE TABLE IF NOT EXISTS applied_versions (
    tenant TEXT NOT NULL, subject TEXT NOT NULL,
    watermark INTEGER NOT NULL, extra TEXT NOT NULL,
    PRIMARY KEY (tenant, subject)
);
"""


class SqliteState:
    """The state in a SQLite file of the consumer's own (not Consentry's database).

    Changes collect in memory and are written in one transaction by flush(), once per consumed
    batch, so a restart finds exactly the state that matches the committed offsets (or a little
    ahead of them, which the duplicate check absorbs). synchronous=FULL: the offsets are
    committed right after flush(), so a flushed batch must survive a power cut.
    """

    durable = True

    def __init__(self, path: str | Path, remember_ids: int = RECENT_IDS) -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = FULL")
        self._db.executescript(_SCHEMA)
        self._current: dict[Key, RecordedEvent | None] = {}
        self._versions: dict[SubjectKey, VersionSet] = {}
        self._dirty_current: set[Key] = set()
        self._dirty_versions: set[SubjectKey] = set()
        self._recent = _RecentIds(remember_ids)
        self._lock = threading.Lock()

    def _load_current(self, key: Key) -> RecordedEvent | None:
        if key not in self._current:
            row = self._db.execute(
                "SELECT event FROM consent_state WHERE tenant = ? AND subject = ? AND purpose = ?",
                key,
            ).fetchone()
            self._current[key] = event_from_data(json.loads(row[0])) if row else None
        return self._current[key]

    def _load_versions(self, key: SubjectKey) -> VersionSet:
        found = self._versions.get(key)
        if found is None:
            row = self._db.execute(
                "SELECT watermark, extra FROM applied_versions WHERE tenant = ? AND subject = ?",
                key,
            ).fetchone()
            found = VersionSet(int(row[0]), set(json.loads(row[1]))) if row else VersionSet()
            self._versions[key] = found
        return found

    def preview(self, event: RecordedEvent) -> Change | None:
        with self._lock:
            if (event.tenant, event.event_id) in self._recent:
                return None
            if event.subject_version in self._load_versions((event.tenant, event.subject)):
                return None
            previous = self._load_current((event.tenant, event.subject, event.purpose))
            return Change(event, previous, supersedes(event, previous))

    def commit(self, change: Change) -> None:
        e = change.event
        with self._lock:
            self._recent.add((e.tenant, e.event_id))
            skey = (e.tenant, e.subject)
            self._load_versions(skey).add(e.subject_version)
            self._dirty_versions.add(skey)
            key = (e.tenant, e.subject, e.purpose)
            if supersedes(e, self._load_current(key)):
                self._current[key] = e
                self._dirty_current.add(key)

    def flush(self) -> None:
        with self._lock:
            if not self._dirty_current and not self._dirty_versions:
                self._current.clear()
                self._versions.clear()
                return
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT INTO consent_state (tenant, subject, purpose, event)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (tenant, subject, purpose)"
                    " DO UPDATE SET event = excluded.event",
                    [
                        (*key, json.dumps(event.to_dict()))
                        for key in self._dirty_current
                        if (event := self._current[key]) is not None
                    ],
                )
                db.executemany(
                    "INSERT INTO applied_versions (tenant, subject, watermark, extra)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (tenant, subject)"
                    " DO UPDATE SET watermark = excluded.watermark, extra = excluded.extra",
                    [
                        (*key, v.watermark, json.dumps(sorted(v.extra)))
                        for key in self._dirty_versions
                        if (v := self._versions[key]) is not None
                    ],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            # The file is the truth now; the caches start empty so memory stays bounded.
            self._dirty_current.clear()
            self._dirty_versions.clear()
            self._current.clear()
            self._versions.clear()

    def current(self, tenant: str, subject: str, purpose: str) -> RecordedEvent | None:
        with self._lock:
            return self._load_current((tenant, subject, purpose))

    def snapshot(self) -> dict[Key, RecordedEvent]:
        self.flush()
        with self._lock:
            rows = self._db.execute(
                "SELECT tenant, subject, purpose, event FROM consent_state"
            ).fetchall()
        return {(r[0], r[1], r[2]): event_from_data(json.loads(r[3])) for r in rows}

    def close(self) -> None:
        self.flush()
        self._db.close()
