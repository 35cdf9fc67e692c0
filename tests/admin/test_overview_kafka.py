"""The overview of an installation with Kafka: relay backlog and dead letters, from the broker."""

from __future__ import annotations

from pathlib import Path

from confluent_kafka import Producer
from fastapi.testclient import TestClient

from consentry.api.app import create_app
from consentry.domain.events import Action, Source
from consentry.propagation.kafka import client_config, ensure_topics
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.storage.base import Role
from tests.admin.conftest import Console
from tests.propagation.conftest import Broker, broker, kafka_settings, prepared_services

__all__ = ["broker"]  # the session's test broker, a fixture


def test_backlog_and_dead_letters_are_shown(
    sqlite_url: str, broker: Broker, tmp_path: Path
) -> None:
    settings = kafka_settings(sqlite_url, broker.bootstrap, tmp_path)
    services = prepared_services(settings)
    services.recorder.record(
        "default", ConsentRequest("alice", Source.API, [EventRequest("email", Action.GIVEN)])
    )
    config = client_config(settings)
    ensure_topics(config, [settings.kafka_dead_letter_topic], partitions=1)
    producer = Producer(config)
    for n in range(2):
        producer.produce(settings.kafka_dead_letter_topic, value=f"letter {n}".encode())
        producer.flush(10)
    try:
        with TestClient(create_app(settings, services)) as client:
            console = Console(client, services)
            console.sign_in(console.key(Role.AUDITOR))
            text = console.page("/admin").text
    finally:
        services.close()
    assert "1 event(s) waiting for the relay" in text  # no relay ran
    assert '<p class="tile-value bad">2</p>' in text  # two dead letters wait
    assert "No Kafka" not in text
