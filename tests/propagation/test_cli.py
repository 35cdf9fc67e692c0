"""The propagation commands: relay --once, dlq replay, and their errors without Kafka."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka import Producer
from typer.testing import CliRunner

from consentry.cli import app
from consentry.cli.exits import ExitCode
from consentry.domain.events import Action, Source
from consentry.propagation.consumer import H_ERROR, H_GROUP, H_OFFSET, H_PARTITION, H_TOPIC
from consentry.propagation.kafka import client_config, ensure_topics
from consentry.propagation.relay import relay_name
from consentry.recording.service import ConsentRequest, EventRequest
from tests.propagation.conftest import Broker, kafka_settings, prepared_services

runner = CliRunner()


def env_of(settings: object) -> dict[str, str]:
    s = settings.model_dump()  # type: ignore[attr-defined]
    return {
        "CONSENTRY_DATABASE_URL": s["database_url"],
        "CONSENTRY_KAFKA_BOOTSTRAP_SERVERS": s["kafka_bootstrap_servers"],
        "CONSENTRY_KAFKA_EVENTS_TOPIC": s["kafka_events_topic"],
        "CONSENTRY_KAFKA_DEAD_LETTER_TOPIC": s["kafka_dead_letter_topic"],
        "CONSENTRY_KAFKA_TOPIC_PARTITIONS": "3",
        "CONSENTRY_SIGNING_KEYS_DIR": str(s["signing_keys_dir"]),
    }


def test_without_kafka_the_commands_say_what_to_set(sqlite_url: str) -> None:
    for args in (["relay"], ["commands"], ["dlq", "replay"]):
        result = runner.invoke(
            app,
            [*args] if args[0] == "dlq" else [*args, "--database-url", sqlite_url],
            env={"CONSENTRY_KAFKA_BOOTSTRAP_SERVERS": ""},
        )
        assert result.exit_code == ExitCode.SETTINGS, result.output
        assert "CONSENTRY_KAFKA_BOOTSTRAP_SERVERS" in result.output


@pytest.mark.kafka
def test_relay_once_and_dlq_replay(sqlite_url: str, broker: Broker, tmp_path: Path) -> None:
    settings = kafka_settings(sqlite_url, broker.bootstrap, tmp_path)
    services = prepared_services(settings)
    try:
        for i in range(3):
            services.recorder.record(
                "default",
                ConsentRequest(f"u{i}", Source.API, [EventRequest("email", Action.GIVEN)]),
            )
        env = env_of(settings)
        result = runner.invoke(app, ["relay", "--once"], env=env)
        assert result.exit_code == 0, result.output
        assert "Published 3 events; position 3." in result.output
        assert services.store.get_offset(relay_name(settings.kafka_events_topic)) == 3

        dlq = settings.kafka_dead_letter_topic
        ensure_topics(client_config(settings), [dlq], partitions=1)
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        producer.produce(
            dlq,
            key=b"k",
            value=b"{}",
            headers=[
                (H_ERROR, b"boom"),
                (H_TOPIC, settings.kafka_events_topic.encode()),
                (H_PARTITION, b"0"),
                (H_OFFSET, b"7"),
                (H_GROUP, b"g"),
            ],
        )
        producer.flush(10)
        listed = runner.invoke(app, ["dlq", "replay", "--dry-run", "--json"], env=env)
        assert listed.exit_code == 0, listed.output
        body = json.loads(listed.output)
        assert body["dry_run"] and body["replayed"] == 1
        assert body["letters"][0]["error"] == "boom"
        replayed = runner.invoke(app, ["dlq", "replay"], env=env)
        assert replayed.exit_code == 0, replayed.output
        assert "Replayed 1 dead letters" in replayed.output
        again = runner.invoke(app, ["dlq", "replay", "--json"], env=env)
        assert json.loads(again.output)["replayed"] == 0
    finally:
        services.close()
