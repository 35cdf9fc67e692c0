"""The read path's caches: Redis floors (the stale-fill race), Redis down, L1 exactness."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from consentry.config import Settings
from consentry.decisions.cache import RedisStateCache, decode_entries, encode_entries, entries_of
from consentry.domain.decide import Reason
from consentry.domain.events import Action, Source
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.services import Services
from consentry.storage import SqlStore, open_store
from tests.decisions.conftest import PrivateRedis

pytestmark = pytest.mark.redis


def record(services: Services, subject: str, action: Action, purpose: str = "email") -> int:
    result = services.recorder.record(
        "default", ConsentRequest(subject, Source.API, [EventRequest(purpose, action)])
    )
    return result.token


@pytest.fixture
def cached(store: SqlStore, redis_url: str) -> Services:
    services = Services.build(Settings(database_url="sqlite:///u.db", redis_url=redis_url), store)
    services.recorder.add_purpose("default", Purpose("email", "Email", LegalBasis.CONSENT))
    services.decisions.active_reader.sync()  # the first sync names the keys (installation id)
    return services


def test_entries_round_trip_exactly(cached: Services) -> None:
    record(cached, "alice", Action.GIVEN)
    entries = entries_of(cached.store.subject_state("default", "alice"))
    assert decode_entries(encode_entries(entries)) == entries


def test_stale_fill_after_invalidation_is_refused(cached: Services) -> None:
    """Reader loads old state, writer commits and invalidates, reader fills: refused."""
    cache = cached.decisions.reader.redis  # type: ignore[union-attr]
    assert cache is not None
    record(cached, "alice", Action.GIVEN)
    # The slow reader: reads the head, then the state (granted)...
    head = cached.store.head()
    stale = entries_of(cached.store.subject_state("default", "alice"))
    assert stale["email"].action is Action.GIVEN
    # ...meanwhile a withdrawal commits; the recorder's listener invalidates before acking.
    token = record(cached, "alice", Action.WITHDRAWN)
    assert token > head
    # ...and only now the reader tries to fill the cache with what it read.
    assert cache.fill("default", "alice", head, stale) is False
    assert cache.get("default", "alice") is None
    assert cache.refused == 1
    # A reader that started after the write fills, and everyone sees the withdrawal.
    decision = cached.decisions.check("default", "alice", "email")
    assert decision.reason is Reason.WITHDRAWN
    found = cache.get("default", "alice")
    assert found is not None and found[0] >= token
    assert found[1]["email"].action is Action.WITHDRAWN


def test_fill_never_goes_backwards(cached: Services) -> None:
    cache = cached.decisions.reader.redis  # type: ignore[union-attr]
    assert cache is not None
    record(cached, "bob", Action.GIVEN)
    entries = entries_of(cached.store.subject_state("default", "bob"))
    assert cache.fill("default", "bob", 10, entries)
    assert not cache.fill("default", "bob", 9, {})  # an older read arriving late
    assert cache.get("default", "bob") == (10, entries)


def test_checks_are_served_from_redis_across_processes(
    cached: Services, store: SqlStore, redis_url: str
) -> None:
    """A second server (no shared memory) reads what the first put in Redis, and sees its
    writes because the writer invalidated Redis before answering."""
    other = Services.build(
        Settings(database_url="sqlite:///u.db", redis_url=redis_url, local_cache=False), store
    )
    record(cached, "carol", Action.GIVEN)
    assert cached.decisions.check("default", "carol", "email").permitted
    client = redis.Redis.from_url(redis_url)
    assert client.keys("consentry:*:state:*")
    assert other.decisions.check("default", "carol", "email").permitted
    assert other.decisions.reader.redis.hits >= 1  # type: ignore[union-attr]
    record(cached, "carol", Action.WITHDRAWN)
    assert other.decisions.check("default", "carol", "email").reason is Reason.WITHDRAWN


def test_redis_down_answers_from_the_database_then_recovers(
    store: SqlStore, private_redis: PrivateRedis
) -> None:
    services = Services.build(
        Settings(database_url="sqlite:///u.db", redis_url=private_redis.url, redis_retry_seconds=0),
        store,
    )
    services.recorder.add_purpose("default", Purpose("email", "Email", LegalBasis.CONSENT))
    record(services, "dave", Action.GIVEN)
    cache = services.decisions.reader.redis  # type: ignore[union-attr]
    assert cache is not None
    assert services.decisions.check("default", "dave", "email").permitted
    assert cache.get("default", "dave") is not None

    private_redis.stop()
    services.decisions.reader.clear()  # type: ignore[union-attr]  # force a read past L1
    assert services.decisions.check("default", "dave", "email").permitted  # from the database
    # A write while Redis is down: the invalidation is kept, not lost.
    record(services, "dave", Action.WITHDRAWN)
    assert cache.stats()["pending_invalidations"] == 1
    assert services.decisions.check("default", "dave", "email").reason is Reason.WITHDRAWN
    assert cache.errors >= 1

    # Redis comes back WITH the old entry (a partition, not a restart): simulate by restarting
    # and putting the pre-withdrawal state back under the old position.
    private_redis.start()
    old = cache.redis
    old.hset(cache.key("default", "dave"), mapping={"p": 1, "d": b"[]"})
    services.decisions.reader.clear()  # type: ignore[union-attr]
    # The pending invalidation is delivered before Redis is read again.
    assert services.decisions.check("default", "dave", "email").reason is Reason.WITHDRAWN
    assert cache.stats()["pending_invalidations"] == 0
    found = cache.get("default", "dave")
    assert found is None or found[1]["email"].action is Action.WITHDRAWN


def test_local_cache_sees_writes_from_another_process(tmp_path: Path) -> None:
    """Two servers on one SQLite file: a write through one is seen by the other's next check."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first_store = open_store(url)
    first_store.migrate()
    first_store.ensure_tenant("default")
    first = Services.build(Settings(database_url=url), first_store)
    second = Services.build(Settings(database_url=url), open_store(url))
    try:
        first.recorder.add_purpose("default", Purpose("email", "Email", LegalBasis.CONSENT))
        record(first, "erin", Action.GIVEN)
        assert second.decisions.check("default", "erin", "email").permitted
        assert second.decisions.check("default", "erin", "email").permitted  # from L1 now
        record(first, "erin", Action.WITHDRAWN)  # second's L1 is not told directly
        assert second.decisions.check("default", "erin", "email").reason is Reason.WITHDRAWN
    finally:
        first.close()
        second.close()


def test_local_cache_refuses_a_stale_fill(cached: Services) -> None:
    reader = cached.decisions.reader
    assert reader is not None
    record(cached, "fay", Action.GIVEN)
    head = reader.sync()
    stale = entries_of(cached.store.subject_state("default", "fay"))
    record(cached, "fay", Action.WITHDRAWN)  # invalidates L1 and raises fay's floor
    reader._fill("default", "fay", head, stale)
    assert ("default", "fay") not in reader._views
    assert cached.decisions.check("default", "fay", "email").reason is Reason.WITHDRAWN


def test_redis_cache_key_separates_tenants_and_subjects() -> None:
    cache = RedisStateCache("redis://127.0.0.1:1/0", installation="0123abcd")
    assert cache.key("a:b", "c") != cache.key("a", "b:c")
    assert cache.key("a", "b").startswith(b"consentry:0123abcd:state:")
    cache.close()
