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
from consentry.propagation.lag import LagMonitor, relay_backlog_seconds
from consentry.propagation.relay import relay_name
from consentry.services import Services
from consentry.storage.base import Role
from tests.propagation.conftest import (
    Broker,
    consume_until,
    expected_state,
    kafka_settings,
    make_consumer,
    prepared_services,
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
