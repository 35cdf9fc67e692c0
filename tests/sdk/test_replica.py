"""The replica: bootstrap, follow the feed, the same answers as the server, freshness rules."""

from __future__ import annotations

import contextlib
import itertools
import queue
import sqlite3
import time
from pathlib import Path

from consentry.config import Settings
from consentry.domain.decide import Reason, Signals
from consentry.domain.regimes import Regime
from consentry.propagation.envelope import to_cloudevent
from consentry.sdk import Client, Replica
from consentry.services import Services
from consentry.storage.sqlite import sqlite_path
from tests.sdk.conftest import LiveServer, start_server


def wait_until(predicate: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.005)
    return False


def test_bootstraps_and_agrees_with_the_server(live: LiveServer) -> None:
    client = Client(live.url, live.key)
    actions = ["given", "refused", "withdrawn"]
    for i, (a, b) in enumerate(itertools.product(actions, actions)):
        client.record(f"user-{i}", {"email": a, "analytics": b}, jurisdiction="DE")
    client.record("cali", {"ads": "opted_out"}, jurisdiction="US-CA")
    with Replica(client=client, page_size=3) as replica:
        assert replica.position == 19 and replica.stats()["subjects"] == 10
        checks = [(f"user-{i}", p) for i in range(10) for p in ("email", "analytics", "ads")]
        checks += [("cali", "ads"), ("nobody", "email"), ("nobody", "ads")]
        server = client.check_many(checks)
        for (subject, purpose), expected in zip(checks, server, strict=True):
            mine = replica.check(subject, purpose)
            assert (mine.permitted, mine.reason, mine.position) == (
                expected.permitted,
                expected.reason,
                expected.position,
            ), (subject, purpose)
            assert replica.check(subject, purpose) is mine  # cached
    client.close()


def test_a_withdrawal_reaches_the_replica_through_the_feed(live: LiveServer) -> None:
    client = Client(live.url, live.key)
    client.record("w", {"email": "given"})
    with Replica(client=client, poll_wait=5) as replica:
        assert replica.check("w", "email").permitted
        written = client.record("w", {"email": "withdrawn"})
        started = time.monotonic()
        assert wait_until(lambda: not replica.check("w", "email").permitted, 3)
        assert time.monotonic() - started < 1.0  # long poll: woken by the commit
        assert replica.position >= written.token
        assert replica.check("w", "email").reason is Reason.WITHDRAWN
        assert replica.lag < 5
    client.close()


def test_a_token_ahead_waits_for_the_feed(live: LiveServer) -> None:
    client = Client(live.url, live.key)
    with Replica(client=client, poll_wait=5, token_wait=2) as replica:
        written = client.record("t", {"email": "given"})
        d = replica.check("t", "email", token=written.token)
        assert d.permitted and d.position == written.token
        # A token the log never reached: the replica asks the server, which refuses it.
        far = replica.check("t", "email", token=10**9)
        assert not far.permitted and far.reason is Reason.UNAVAILABLE
    client.close()


def test_signals_and_new_purposes(live: LiveServer) -> None:
    client = Client(live.url, live.key)
    with Replica(client=client, default_regime=Regime.OPT_IN) as replica:
        assert replica.check("s", "ads", signals=Signals(jurisdiction="US-CA")).permitted
        gpc = replica.check("s", "ads", signals=Signals(gpc=True, jurisdiction="US-CA"))
        assert not gpc.permitted and gpc.reason is Reason.GPC_OPT_OUT
        unknown = replica.check("s", "newsletter")
        assert not unknown.permitted and unknown.reason is Reason.UNAVAILABLE
        client.request(
            "POST", "/v1/purposes", json={"id": "newsletter", "name": "N", "legal_basis": "consent"}
        )
        assert wait_until(lambda: replica.check("s", "newsletter").reason is Reason.NOT_GIVEN)
    client.close()


def test_a_replica_cut_off_from_its_feed_stops_permitting(live: LiveServer) -> None:
    client = Client(live.url, live.key, retries=0)
    client.record("c", {"email": "given"})
    replica = Replica(client=client, poll_wait=0.2, max_lag=0.5, ask_server=False)
    try:
        assert replica.check("c", "email").permitted
        live.stop()
        assert wait_until(lambda: not replica.check("c", "email").permitted, 5)
        assert replica.check("c", "email").reason is Reason.UNAVAILABLE
        assert replica.lag > 0.5
    finally:
        replica.close()
        client.close()


def test_any_cloudevent_source_can_feed_it(live: LiveServer) -> None:
    """The hook for the Kafka consumer: an iterator of CloudEvents instead of the HTTP feed."""
    client = Client(live.url, live.key)
    client.record("k", {"email": "given"})
    history = live.services.store.subject_history("default", "k")
    later = client.record("k", {"email": "withdrawn"})
    events = [to_cloudevent(e) for e in live.services.store.events_after(0, 100, "default")]
    # Bootstrap sees the latest state; replaying older events out of order changes nothing.
    with Replica(client=client, source=iter(list(reversed(events))), max_lag=None) as replica:
        assert wait_until(lambda: replica.stats()["applied"] == len(events))
        assert replica.check("k", "email").reason is Reason.WITHDRAWN
        assert replica.position == later.token
    assert history
    client.close()


def test_an_event_of_another_partition_does_not_prove_a_token_reached(live: LiveServer) -> None:
    """Kafka orders one subject's events, not the topic's: event 3 (t) arriving before event 2
    (s's withdrawal) must not let a check of s with token 2 answer from memory."""
    client = Client(live.url, live.key)
    client.record("s", {"email": "given"})
    feed: queue.Queue[dict[str, object]] = queue.Queue()
    source = iter(feed.get, None)
    with Replica(
        client=client, source=source, max_lag=None, token_wait=0.05, ask_server=False
    ) as replica:
        withdrawal = client.record("s", {"email": "withdrawn"})
        other = client.record("t", {"email": "given"})
        assert other.token > withdrawal.token
        events = {e.subject: e for e in live.services.store.events_after(withdrawal.token - 1, 9)}
        feed.put(to_cloudevent(events["t"]))  # the other partition is faster
        assert wait_until(lambda: replica.stats()["applied"] == 1)
        stale = replica.check("s", "email", token=withdrawal.token)
        assert not stale.permitted and stale.reason is Reason.UNAVAILABLE, stale
        assert replica.check("t", "email", token=other.token).permitted  # t's own past: proven
        feed.put(to_cloudevent(events["s"]))
        assert wait_until(lambda: replica.stats()["applied"] == 2)
        assert replica.check("s", "email", token=withdrawal.token).reason is Reason.WITHDRAWN
        feed.put(None)
    client.close()


def test_a_log_that_went_backwards_is_bootstrapped_again(live: LiveServer, tmp_path: Path) -> None:
    """The server's database is restored from an older backup: the writes it then takes reuse
    positions the replica has passed, and must still reach it."""
    client = Client(live.url, live.key)
    client.record("s", {"email": "given"})
    backup = tmp_path / "backup.db"
    source_db = sqlite3.connect(sqlite_path(live.services.settings.database_url))
    with contextlib.closing(sqlite3.connect(backup)) as target:
        source_db.backup(target)
    source_db.close()
    client.record("t", {"email": "given"})
    client.record("u", {"email": "given"})
    replica = Replica(client=client, poll_wait=0.2)
    try:
        assert replica.position == 3 and replica.check("s", "email").permitted
        port = int(live.url.rsplit(":", 1)[1])
        live.stop()
        restored = Services.build(
            Settings(database_url=f"sqlite:///{backup}", min_token_wait_ms=200)
        )
        again = start_server(restored, port=port)
        try:
            withdrawal = client.record("s", {"email": "withdrawn"})
            assert withdrawal.token == 2  # a position the replica had already passed
            assert wait_until(lambda: replica.check("s", "email").reason is Reason.WITHDRAWN)
            assert replica.position >= withdrawal.token
        finally:
            again.stop()
            restored.close()
    finally:
        replica.close()
        client.close()
