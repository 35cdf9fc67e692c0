"""Lag: the histograms fill, the threshold logs a warning, and /readyz reports degraded (200)
while the oldest unpublished event is older than the threshold."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import generate_latest

from consentry.api.app import create_app
from consentry.cli.propagation import start_relay
from consentry.keys import create_key
from consentry.propagation.lag import LagMetrics, LagMonitor, relay_backlog_seconds
from consentry.propagation.relay import Relay, relay_name
from consentry.services import Services
from consentry.storage.base import Role
from tests.propagation.conftest import (
    Broker,
    consume_until,
    expected_state,
    kafka_settings,
    make_consumer,
    prepared_services,
    running,
    state_ids,
)


def test_the_monitor_warns_once_per_minute_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    monitor = LagMonitor(1.0, "commit-to-publish", clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="consentry.propagation.lag"):
        monitor.observe(0.5)
        assert not monitor.exceeded
        monitor.observe(3.0)
        now[0] = 30
        monitor.observe(4.0)
        assert monitor.exceeded
        now[0] = 61
        monitor.observe(5.0)
        monitor.observe(0.01)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, [r.getMessage() for r in warnings]
    assert "above the threshold of 1.0 s" in warnings[0].getMessage()
    assert not monitor.exceeded
    assert "back to" in caplog.records[-1].getMessage()


@pytest.fixture
def services(sqlite_url: str, tmp_path: Path) -> Iterator[Services]:
    settings = kafka_settings(
        sqlite_url, "127.0.0.1:9", tmp_path, propagation_lag_threshold_seconds=0.2
    )
    s = prepared_services(settings)
    yield s
    s.close()


def test_readyz_is_degraded_while_the_backlog_is_old(services: Services) -> None:
    key = create_key(services.store, "default", Role.COLLECTOR).key
    name = relay_name(services.settings.kafka_events_topic)
    with TestClient(create_app(services.settings, services)) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        body = client.get("/readyz").json()
        assert body == {
            "status": "ready",
            "checks": {"database": "ok", "schema": "ok", "propagation": "ok"},
        }
        r = client.post(
            "/v1/consents",
            json={"subject": "u", "events": [{"purpose": "email", "action": "given"}]},
        )
        assert r.status_code == 201
        time.sleep(0.3)  # no relay runs: the event ages past the threshold
        r = client.get("/readyz")
        assert r.status_code == 200, "lag degrades readiness, it does not fail it"
        assert r.json()["status"] == "degraded"
        assert r.json()["checks"]["propagation"].startswith("lagging")
        assert relay_backlog_seconds(services.store, name) > 0.2
        services.store.set_offset(name, services.store.head())  # as if it was published
        assert client.get("/readyz").json()["status"] == "ready"


def test_without_kafka_readyz_does_not_mention_propagation(sqlite_url: str, tmp_path: Path) -> None:
    from consentry.config import Settings

    s = Services.build(Settings(database_url=sqlite_url, signing_keys_dir=tmp_path / "k"))
    s.store.migrate()
    try:
        with TestClient(create_app(s.settings, s)) as client:
            assert "propagation" not in client.get("/readyz").json()["checks"]
    finally:
        s.close()


@pytest.mark.kafka
def test_serve_relays_and_both_histograms_fill(
    sqlite_url: str, broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The relay thread of `serve` (start_relay) publishes what the API records; the lag
    histograms count every event; a consumer over the threshold warns."""
    settings = kafka_settings(
        sqlite_url, broker.bootstrap, tmp_path, propagation_lag_threshold_seconds=0.000001
    )
    services = prepared_services(settings)
    key = create_key(services.store, "default", Role.COLLECTOR).key
    background = start_relay(settings, services)
    assert background is not None
    consumer, _ = make_consumer(settings)
    try:
        app = create_app(settings, services)
        app.state.metrics.registry.register(background.metrics.registry)  # as serve does
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {key}"
            for i in range(20):
                r = client.post(
                    "/v1/consents",
                    json={"subject": f"u{i}", "events": [{"purpose": "ads", "action": "given"}]},
                )
                assert r.status_code == 201
            with caplog.at_level(logging.WARNING, logger="consentry.propagation.lag"):
                consume_until(
                    consumer,
                    lambda: state_ids(consumer.state.snapshot()) == expected_state(services.store),
                )
            metrics = generate_latest(app.state.metrics.registry).decode()
        assert "consentry_propagation_commit_to_publish_seconds_count 20.0" in metrics
        group = consumer.applier.group
        applied = consumer.applier.metrics.commit_to_apply.labels(group)
        assert applied._sum.get() > 0  # every apply observed, from recorded_at
        assert any("apply lag" in r.getMessage() for r in caplog.records)
        assert background.relay.monitor is not None and not background.relay.monitor.exceeded
    finally:
        background.stop()
        consumer.close()
        services.close()
    assert not background.thread.is_alive()


def test_no_relay_in_serve_without_kafka(sqlite_url: str, tmp_path: Path) -> None:
    from consentry.config import Settings

    s = Services.build(Settings(database_url=sqlite_url, signing_keys_dir=tmp_path / "k"))
    try:
        assert start_relay(s.settings, s) is None
        off = s.settings.model_copy(
            update={"kafka_bootstrap_servers": "127.0.0.1:9", "relay_in_serve": False}
        )
        assert start_relay(off, s) is None
    finally:
        s.close()


def test_observe_many_equals_observing_each_time() -> None:
    from prometheus_client import CollectorRegistry, Histogram

    from consentry.propagation.lag import LAG_BUCKETS, observe_many

    one, many = (
        Histogram(name, "h", registry=CollectorRegistry(), buckets=LAG_BUCKETS)
        for name in ("a", "b")
    )
    for amount, count in ((0.003, 7), (0.2, 1), (100.0, 3), (0.0, 2)):
        for _ in range(count):
            one.observe(amount)
        observe_many(many, amount, count)
    samples = [
        [(s.name[1:], s.labels, s.value) for s in h.collect()[0].samples if "created" not in s.name]
        for h in (one, many)
    ]
    assert samples[0] == samples[1]


def _record(services: Services, subject: str) -> None:
    from consentry.domain.events import Action, Source
    from consentry.recording.service import ConsentRequest, EventRequest

    services.recorder.record(
        "default", ConsentRequest(subject, Source.API, [EventRequest("email", Action.GIVEN)])
    )


def _gauge(metrics: LagMetrics, name: str) -> float:
    value = metrics.registry.get_sample_value(name)
    assert value is not None, name
    return value


@pytest.mark.kafka
def test_relay_metrics_are_true_after_a_restart(
    db_url: str, broker: Broker, tmp_path: Path
) -> None:
    """Issue #14: a relay that restarts reports its saved position and the backlog before it
    publishes anything (it reported position 0 and backlog 0 until the next publish)."""
    services = prepared_services(kafka_settings(db_url, broker.bootstrap, tmp_path))
    try:
        for i in range(5):
            _record(services, f"s{i}")
        first = Relay.from_settings(services.settings, services.store)
        assert first.drain() == 5
        _record(services, "late")
        time.sleep(0.3)
        restarted = Relay.from_settings(services.settings, services.store, metrics=LagMetrics())
        assert _gauge(restarted.metrics, "consentry_relay_position") == 5
        assert _gauge(restarted.metrics, "consentry_relay_backlog_seconds") >= 0.3
        assert restarted.drain() == 1
        assert _gauge(restarted.metrics, "consentry_relay_position") == 6
        assert _gauge(restarted.metrics, "consentry_relay_backlog_seconds") == 0
    finally:
        services.close()


@pytest.mark.kafka
def test_relay_metrics_show_an_outage_from_its_first_second(
    sqlite_url: str, own_broker: Broker, tmp_path: Path
) -> None:
    """Issue #14: during the first delivery timeout of a broker outage, /metrics said backlog 0
    and failures 0 while /readyz already said lagging. The backlog must grow from the start, and
    a delivery not reported within its timeout counts as a failure."""
    timeout = 4.0
    settings = kafka_settings(
        sqlite_url,
        own_broker.bootstrap,
        tmp_path,
        relay_delivery_timeout_seconds=timeout,
        propagation_lag_threshold_seconds=0.5,
    )
    services = prepared_services(settings)
    try:
        relay = Relay.from_settings(settings, services.store)
        services.recorder.listeners.append(lambda tenant, result: relay.wake())
        with running(relay.run):
            _record(services, "before")
            deadline = time.monotonic() + 20
            while relay.position < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert relay.position == 1
            own_broker.kill()
            _record(services, "during")
            started = time.monotonic()
            time.sleep(1.5)  # well inside the first delivery timeout
            assert time.monotonic() - started < timeout, "the machine is too slow for this test"
            backlog = _gauge(relay.metrics, "consentry_relay_backlog_seconds")
            readyz_lag = relay_backlog_seconds(
                services.store, relay_name(settings.kafka_events_topic)
            )
            assert readyz_lag > settings.propagation_lag_threshold_seconds
            assert backlog >= 1.0, f"/metrics says backlog {backlog} while /readyz says lagging"
            assert _gauge(relay.metrics, "consentry_relay_position") == 1
            deadline = started + timeout + 10
            while time.monotonic() < deadline:
                if _gauge(relay.metrics, "consentry_relay_failures_total") >= 1:
                    break
                time.sleep(0.1)
            assert _gauge(relay.metrics, "consentry_relay_failures_total") >= 1
            elapsed = time.monotonic() - started
            assert elapsed < timeout + 5, f"the failure was counted after {elapsed:.1f} s"
            assert _gauge(relay.metrics, "consentry_relay_backlog_seconds") >= elapsed - 0.5
    finally:
        services.close()
