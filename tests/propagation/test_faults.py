"""Faults, on loopback and bounded in time: the broker killed during a burst of writes, and the
relay killed in the middle of a batch. After each, every event arrives, the consumer's state is
the database's, and no subject's events were applied out of order.

(A poison message and a consumer restart are in test_consumer.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consentry.domain.events import Action, Actor, Evidence, NewEvent, Source
from consentry.domain.purposes import LegalBasis
from consentry.keys import create_key
from consentry.propagation.kafka import client_config, ensure_topics
from consentry.propagation.relay import Relay, relay_name
from consentry.storage.base import Role
from tests.propagation.conftest import (
    Broker,
    Collected,
    expected_state,
    kafka_settings,
    make_consumer,
    prepared_services,
    running,
    state_ids,
)

pytestmark = pytest.mark.kafka


def assert_in_order(seen: Collected) -> None:
    """Zero reordering: each subject's events were first applied in subject_version order."""
    for subject, versions in seen.applied_versions().items():
        assert versions == sorted(versions), f"{subject} applied out of order: {versions}"


def test_the_broker_dies_during_a_burst_and_every_event_arrives(
    sqlite_url: str, own_broker: Broker, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from consentry.api.app import create_app

    settings = kafka_settings(
        sqlite_url, own_broker.bootstrap, tmp_path, relay_delivery_timeout_seconds=1.5
    )
    services = prepared_services(settings)
    key = create_key(services.store, "default", Role.COLLECTOR).key
    ensure_topics(client_config(settings), [settings.kafka_events_topic], partitions=3)
    relay = Relay.from_settings(settings, services.store)
    services.recorder.listeners.append(lambda tenant, result: relay.wake())
    consumer, seen = make_consumer(settings)
    statuses: list[int] = []
    timeline: dict[str, float] = {}
    try:
        with (
            TestClient(create_app(settings, services)) as client,
            running(relay.run),
            running(consumer.run),
        ):
            client.headers["Authorization"] = f"Bearer {key}"
            started = time.monotonic()
            i = 0
            while (elapsed := time.monotonic() - started) < timeline.get("restarted", 3) + 2:
                if elapsed > 1.0 and "killed" not in timeline and relay.position > 0:
                    own_broker.kill()  # it had acknowledged messages: they die with it
                    timeline["killed"] = elapsed
                if elapsed > timeline.get("killed", 10) + 1.5 and "restarted" not in timeline:
                    own_broker.start()
                    timeline["restarted"] = elapsed
                action = "given" if i % 3 else "withdrawn"
                body = {
                    "subject": f"user-{i % 25}",
                    "events": [{"purpose": "email", "action": action}],
                }
                statuses.append(client.post("/v1/consents", json=body).status_code)
                i += 1
                time.sleep(0.005)
            assert "restarted" in timeline, timeline
            # The API kept accepting while the broker was away.
            assert statuses and set(statuses) == {201}, set(statuses)
            written = services.store.head()
            want = expected_state(services.store)
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                if state_ids(consumer.state.snapshot()) == want:
                    break
                time.sleep(0.1)
        assert state_ids(consumer.state.snapshot()) == want, "the consumer never caught up"
        applied = {c.event.position for c in seen.changes}
        assert applied == set(range(1, written + 1)), "events were lost"
        assert relay.rewinds >= 1, "the relay did not notice the broker lost its messages"
        assert_in_order(seen)
    finally:
        consumer.close()
        services.close()


def _fill(services: Any, count: int, subjects: int = 500) -> None:
    """`count` events straight into the log, 1000 per transaction."""
    now = datetime.now(UTC)
    for start in range(0, count, 1000):
        batch = [
            NewEvent(
                event_id=uuid.uuid4(),
                tenant="default",
                subject=f"user-{(start + i) % subjects}",
                purpose="email",
                action=Action.GIVEN if (start + i) % 4 else Action.WITHDRAWN,
                legal_basis=LegalBasis.CONSENT,
                occurred_at=now,
                evidence=Evidence(Source.IMPORT, Actor.SYSTEM),
            )
            for i in range(min(1000, count - start))
        ]
        services.store.append("default", batch)


def _relay_process(settings: Any, *extra: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CONSENTRY_DATABASE_URL": settings.database_url,
        "CONSENTRY_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "CONSENTRY_KAFKA_EVENTS_TOPIC": settings.kafka_events_topic,
        "CONSENTRY_KAFKA_TOPIC_PARTITIONS": "3",
        "CONSENTRY_RELAY_BATCH_SIZE": "2000",
        "CONSENTRY_RELAY_POLL_INTERVAL_SECONDS": "0.05",
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from consentry.cli import main; main()", "relay", *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def test_a_relay_killed_mid_batch_is_replaced_and_nothing_is_lost(
    db_url: str, broker: Broker, tmp_path: Path
) -> None:
    settings = kafka_settings(db_url, broker.bootstrap, tmp_path)
    services = prepared_services(settings)
    total = 20_000
    _fill(services, total)
    ensure_topics(client_config(settings), [settings.kafka_events_topic], partitions=3)
    name = relay_name(settings.kafka_events_topic)
    consumer, seen = make_consumer(settings)
    relay: subprocess.Popen[bytes] | None = None
    killed_at: tuple[int, int] | None = None
    try:
        with running(consumer.run):
            deadline = time.monotonic() + 60
            while killed_at is None and time.monotonic() < deadline:
                relay = _relay_process(settings)
                while time.monotonic() < deadline and relay.poll() is None:
                    saved = services.store.get_offset(name)
                    with seen.lock:
                        furthest = max((c.event.position for c in seen.changes), default=0)
                    if saved >= total:
                        # It got through everything before it was caught (a fast machine):
                        # give it more to do, and try again.
                        _fill(services, 20_000)
                        total += 20_000
                        continue
                    if furthest > saved:
                        # Delivered (a consumer has it), maybe not yet saved: kill -9.
                        os.killpg(relay.pid, signal.SIGKILL)
                        relay.wait(10)
                        saved = services.store.get_offset(name)
                        if furthest > saved:  # it had not saved in between: mid-batch
                            killed_at = (saved, furthest)
                        break
                    time.sleep(0.001)
            assert killed_at is not None, "could not catch the relay mid-batch"
            assert services.store.get_offset(name) == killed_at[0] < total
            # What the consumer already has beyond the saved position is published again by
            # the replacement: each is a duplicate. (Not every position up to the furthest one:
            # the 3 partitions are delivered independently, and the killed producer's
            # unacknowledged batches of another partition were lost, not duplicated.)
            with seen.lock:
                again = {c.event.position for c in seen.changes if c.event.position > killed_at[0]}
            assert killed_at[1] in again

            replacement = _relay_process(settings, "--once")
            assert replacement.wait(60) == 0
            assert services.store.get_offset(name) == total
            want = expected_state(services.store)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and state_ids(consumer.state.snapshot()) != want:
                time.sleep(0.05)
        assert state_ids(consumer.state.snapshot()) == want
        assert {c.event.position for c in seen.changes} == set(range(1, total + 1))
        group = consumer.applier.group
        duplicates = consumer.applier.metrics.duplicates.labels(group)._value.get()
        assert duplicates >= len(again), "what was delivered before the kill was not sent again?"
        assert_in_order(seen)
    finally:
        if relay is not None and relay.poll() is None:
            os.killpg(relay.pid, signal.SIGKILL)
            relay.wait(10)
        consumer.close()
        services.close()


def test_no_relay_process_is_left_behind() -> None:
    """The relay subprocesses above were all reaped (a leftover would keep publishing)."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    mine = [
        line
        for line in out.splitlines()
        if "consentry.cli import main" in line and f" {os.getpid()} " in f" {line} "
    ]
    assert not mine, mine
