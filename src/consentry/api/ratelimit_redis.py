"""The public limits in Redis: one set of buckets for every worker and server (CONSENTRY_REDIS_URL).

The same GCRA as api/ratelimit.py's LocalLimiter, in one Lua script, so that checking and taking
the tokens of all of a request's buckets is atomic, and on Redis's clock (TIME), so that servers
whose clocks differ agree. Keys expire when their bucket is full again.

When Redis fails (down, slow past CONSENTRY_REDIS_TIMEOUT_MS), the limiter uses the process's
own buckets for CONSENTRY_REDIS_RETRY_SECONDS, then tries Redis again: a documented middle way
between failing open (no limit while Redis is down: what an attacker would arrange) and failing
closed (the banner refuses every visitor because a cache is down).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis
from redis.exceptions import RedisError

from consentry.api.ratelimit import Bucket, LocalLimiter, Refusal

log = logging.getLogger("consentry.api.ratelimit")

PREFIX = "consentry:ratelimit:"

# KEYS: the buckets; ARGV: per bucket, its interval and tolerance (burst x interval) in us.
# Returns 0 when every bucket had a token (all taken), else 1-based index of the emptiest, and
# the microseconds it needs.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local new, worst, wait = {}, 0, 0
for i = 1, #KEYS do
  local interval, tolerance = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  new[i] = tat + interval
  local over = new[i] - now - tolerance
  if over > wait then worst, wait = i, over end
end
if worst > 0 then return {worst, wait} end
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], new[i], 'PX', math.floor((new[i] - now) / 1000) + 1)
end
return {0, 0}
"""


class RedisLimiter:
    """Buckets in Redis; the process's own (`fallback`) while Redis fails."""

    def __init__(
        self,
        client: Any,
        *,
        retry_seconds: float,
        fallback: LocalLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._script = client.register_script(_ACQUIRE)
        self._fallback = fallback or LocalLimiter()
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._down_until = 0.0
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, *, timeout_ms: int, retry_seconds: float) -> RedisLimiter:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_ms / 1000, socket_connect_timeout=timeout_ms / 1000
        )
        return cls(client, retry_seconds=retry_seconds)

    def acquire(self, buckets: Sequence[Bucket]) -> Refusal | None:
        if self._clock() < self._down_until:
            return self._fallback.acquire(buckets)
        args: list[int] = []
        for bucket in buckets:
            interval = round(1_000_000 / bucket.limit.per_second)
            args += [interval, interval * bucket.limit.burst]
        try:
            worst, wait = self._script(keys=[PREFIX + b.key for b in buckets], args=args)
        except RedisError as exc:
            with self._lock:
                if self._clock() >= self._down_until:
                    log.warning(
                        "rate limits: Redis failed (%s); this process counts alone for %.1f s",
                        type(exc).__name__,
                        self._retry_seconds,
                    )
                self._down_until = self._clock() + self._retry_seconds
            return self._fallback.acquire(buckets)
        if int(worst) == 0:
            return None
        return Refusal(int(wait) / 1_000_000, buckets[int(worst) - 1])

    def close(self) -> None:
        self._client.close()
