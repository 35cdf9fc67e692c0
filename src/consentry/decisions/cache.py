"""Redis on the read path: a shared, read-through cache of each subject's state.

One Redis hash per (installation, tenant, subject) holds three fields:

- `d`: the subject's state entries (what decide() needs), serialized;
- `p`: the log position that state reflects: the log head read BEFORE the state was read, so
  every commit at or below `p` is in `d`;
- `f`: the floor: the highest position a writer has invalidated this subject at.

Keys are named after the installation (an id created in the database by `consentry migrate`,
storage `installation_id()`) and the tenant: two installations sharing one Redis never read each
other's entries, whatever their positions. The id is learned on the reader's first sync
(`bind`); until then the cache is bypassed and invalidations wait.

A Redis entry is never trusted on its own: the reader (decisions/local.py) uses it only when its
`p` is proven not older than the log, against the floors it learned from the log itself. What
Redis does here is keep that proof cheap to pass. The write path calls `invalidate()` after its
commit and before it acknowledges (a Recorder listener): it raises `f` to the write's position
and deletes `d`. A reader fills with `fill(position=head read before its state read)`. The fill
is a Lua script, atomic in Redis, that refuses a position below the floor or not above the
current `p`, so the race "reader loads old state, writer commits and invalidates, reader fills"
ends with the stale fill refused (tests/decisions/test_cache.py reproduces it).

When Redis fails, the cache steps aside for `retry_seconds` and the service reads the database
(fail closed means "answer from the source", never "answer from a guess"). Invalidations that
could not be delivered are kept and delivered first when Redis answers again; until they are,
this process does not read from Redis. They are lost if the process dies first, and Redis may
come back with old data (a restart from a snapshot, a failover, eviction): that is why the
reader proves every entry against the log rather than trusting the floors kept here. Keys carry
a TTL (`ttl_seconds`, refreshed on every invalidation); prefer `noeviction` (docs/enforcement.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import redis
from redis.exceptions import RedisError

from consentry.domain.decide import StateEntry
from consentry.domain.events import Action, Actor, RecordedEvent, Source

log = logging.getLogger("consentry.decisions.cache")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# KEYS[1] = subject key; ARGV = position, data, ttl ms. 1 = stored, 0 = refused as stale.
_FILL = """
local f = tonumber(redis.call('HGET', KEYS[1], 'f') or '-1')
local p = tonumber(redis.call('HGET', KEYS[1], 'p') or '-1')
local pos = tonumber(ARGV[1])
if pos < f or pos <= p then return 0 end
redis.call('HSET', KEYS[1], 'p', ARGV[1], 'd', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

# KEYS[1] = subject key; ARGV = position, ttl ms.
_INVALIDATE = """
local f = tonumber(redis.call('HGET', KEYS[1], 'f') or '-1')
if tonumber(ARGV[1]) > f then redis.call('HSET', KEYS[1], 'f', ARGV[1]) end
redis.call('HDEL', KEYS[1], 'p', 'd')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

Entries = dict[str, StateEntry]


def _us(value: datetime) -> int:
    return (value - _EPOCH) // timedelta(microseconds=1)


def _time(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def encode_entries(entries: Entries) -> bytes:
    """Compact, exact (integer microseconds) and stable across versions of this module."""
    return orjson.dumps(
        [
            [
                purpose,
                e.position,
                e.action.value,
                _us(e.occurred_at),
                _us(e.recorded_at),
                e.source.value,
                e.actor.value,
                e.jurisdiction,
                e.notice_id,
                e.notice_version,
            ]
            for purpose, e in entries.items()
        ]
    )


def decode_entries(data: bytes) -> Entries:
    out: Entries = {}
    for row in orjson.loads(data):
        purpose, position, action, occurred, recorded, source, actor, juris, nid, nver = row
        out[purpose] = StateEntry(
            position=position,
            action=Action(action),
            occurred_at=_time(occurred),
            recorded_at=_time(recorded),
            source=Source(source),
            actor=Actor(actor),
            jurisdiction=juris,
            notice_id=nid,
            notice_version=nver,
        )
    return out


def entries_of(events: Iterable[RecordedEvent]) -> Entries:
    return {e.purpose: StateEntry.of(e) for e in events}


class RedisStateCache:
    """The shared second level between the in-process cache and the database."""

    def __init__(
        self,
        url: str,
        *,
        installation: str | None = None,
        ttl_seconds: float = 3600.0,
        timeout_seconds: float = 0.25,
        retry_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        client: redis.Redis | None = None,
    ) -> None:
        self.url = url
        self.prefix: str | None = None
        self.ttl_ms = int(ttl_seconds * 1000)
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.redis = client or redis.Redis.from_url(
            url,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            health_check_interval=0,
        )
        self._fill = self.redis.register_script(_FILL)
        self._invalidate = self.redis.register_script(_INVALIDATE)
        self._down_until = 0.0
        self._pending: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.refused = 0
        self.errors = 0
        if installation is not None:
            self.bind(installation)

    def bind(self, installation: str) -> None:
        """Name every key after the installation whose database this process reads."""
        if not installation or ":" in installation:
            raise ValueError(f"not an installation id: {installation!r}")
        self.prefix = f"consentry:{installation}:state:"

    def key(self, tenant: str, subject: str) -> bytes:
        if self.prefix is None:
            raise RuntimeError("the Redis cache is not bound to an installation yet")
        # A length prefix keeps ("a:b", "c") and ("a", "b:c") apart.
        return f"{self.prefix}{len(tenant)}:{tenant}:{subject}".encode()

    @property
    def available(self) -> bool:
        """False while unbound, while Redis is failing or while undelivered invalidations
        wait: read the database."""
        if self.prefix is None or self.clock() < self._down_until:
            return False
        if self._pending:
            return self._flush_pending()
        return True

    def _failed(self, exc: Exception) -> None:
        self.errors += 1
        self._down_until = self.clock() + self.retry_seconds
        log.warning(
            "Redis unavailable, reading the database for %.1f s: %s", self.retry_seconds, exc
        )

    def _flush_pending(self) -> bool:
        with self._lock:
            pending = dict(self._pending)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for (tenant, subject), position in pending.items():
                self._invalidate(
                    keys=[self.key(tenant, subject)], args=[position, self.ttl_ms], client=pipe
                )
            pipe.execute()
        except RedisError as exc:
            self._failed(exc)
            return False
        with self._lock:
            for item, position in pending.items():
                if self._pending.get(item) == position:
                    del self._pending[item]
            return not self._pending

    def get_many(self, tenant: str, subjects: Sequence[str]) -> dict[str, tuple[int, Entries]]:
        """Cached (position, entries) of the subjects found; {} when Redis is unavailable."""
        if not subjects or not self.available:
            return {}
        try:
            pipe = self.redis.pipeline(transaction=False)
            for subject in subjects:
                pipe.hmget(self.key(tenant, subject), "p", "d")
            replies = pipe.execute()
        except RedisError as exc:
            self._failed(exc)
            return {}
        found: dict[str, tuple[int, Entries]] = {}
        for subject, (position, data) in zip(subjects, replies, strict=True):
            if position is None or data is None:
                self.misses += 1
                continue
            self.hits += 1
            found[subject] = (int(position), decode_entries(data))
        return found

    def get(self, tenant: str, subject: str) -> tuple[int, Entries] | None:
        return self.get_many(tenant, [subject]).get(subject)

    def fill_many(self, tenant: str, items: Sequence[tuple[str, int, Entries]]) -> list[bool]:
        """Store (subject, position, entries); False where the fill was refused as stale."""
        if not items or not self.available:
            return [False] * len(items)
        try:
            pipe = self.redis.pipeline(transaction=False)
            for subject, position, entries in items:
                self._fill(
                    keys=[self.key(tenant, subject)],
                    args=[position, encode_entries(entries), self.ttl_ms],
                    client=pipe,
                )
            replies = pipe.execute()
        except RedisError as exc:
            self._failed(exc)
            return [False] * len(items)
        stored = [bool(r) for r in replies]
        self.refused += stored.count(False)
        return stored

    def fill(self, tenant: str, subject: str, position: int, entries: Entries) -> bool:
        return self.fill_many(tenant, [(subject, position, entries)])[0]

    def invalidate(self, tenant: str, subjects: dict[str, int]) -> None:
        """Raise each subject's floor to its write's position and drop its entry.

        Never raises: an invalidation Redis could not take is kept, delivered before this
        process reads Redis again, and the cache is bypassed until then.
        """
        if not subjects:
            return
        if self.prefix is not None and self.clock() >= self._down_until:
            try:
                pipe = self.redis.pipeline(transaction=False)
                for subject, position in subjects.items():
                    self._invalidate(
                        keys=[self.key(tenant, subject)],
                        args=[position, self.ttl_ms],
                        client=pipe,
                    )
                pipe.execute()
                return
            except RedisError as exc:
                self._failed(exc)
        with self._lock:
            for subject, position in subjects.items():
                item = (tenant, subject)
                self._pending[item] = max(position, self._pending.get(item, -1))

    def stats(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "misses": self.misses,
            "refused": self.refused,
            "errors": self.errors,
            "pending_invalidations": len(self._pending),
        }

    def close(self) -> None:
        self.redis.close()
