"""Commands: validated and recorded exactly like API calls, at most once per command id, and
dead-lettered with the reason when invalid (on both backends; end to end through Kafka)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from consentry.config import Settings
from consentry.domain.decide import Signals
from consentry.domain.events import Action, Actor, Source
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.propagation import commands as commands_module
from consentry.propagation.commands import (
    CommandConsumer,
    CommandProcessor,
    InvalidCommand,
    command,
    command_event_id,
)
from consentry.propagation.consumer import H_ERROR, H_TOPIC, header, replay_dead_letters
from consentry.propagation.kafka import client_config
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.services import Services
from consentry.storage.propagation import get_processed_command
from tests.propagation.conftest import FAST_GROUP, Broker, kafka_settings

NOW = datetime.now(UTC).replace(microsecond=0)


def catalogue(services: Services) -> None:
    services.store.ensure_tenant("default")
    for p in (
        Purpose("email", "Email", LegalBasis.CONSENT),
        Purpose("analytics", "Analytics", LegalBasis.CONSENT, lifetime_days=365),
        Purpose("sale", "Sale of data", LegalBasis.CONSENT, opt_out_category=OptOutCategory.SALE),
        Purpose("fraud", "Fraud prevention", LegalBasis.LEGITIMATE_INTEREST),
        Purpose("billing", "Billing", LegalBasis.CONTRACT),
        Purpose("essential", "Essential cookies", LegalBasis.CONSENT, required=True),
    ):
        services.recorder.add_purpose("default", p)


@pytest.fixture
def services(db_url: str, tmp_path: Path) -> Iterator[Services]:
    s = Services.build(Settings(database_url=db_url, signing_keys_dir=tmp_path / "keys"))
    s.store.migrate()
    catalogue(s)
    yield s
    s.close()


@pytest.fixture
def processor(services: Services) -> CommandProcessor:
    return CommandProcessor(services.store, services.recorder, services.catalog)


def give(services: Services, subject: str, at: datetime | None = None, **choices: Action) -> None:
    services.recorder.record(
        "default",
        ConsentRequest(
            subject,
            Source.API,
            [EventRequest(p, a) for p, a in choices.items()],
            occurred_at=at or NOW - timedelta(hours=1),
        ),
    )


def wire(body: dict[str, Any]) -> bytes:
    return orjson.dumps(body)


def one(purpose: str, action: str, subject: str = "u") -> dict[str, Any]:
    """The body of a POST /v1/consents with one event."""
    return {"subject": subject, "events": [{"purpose": purpose, "action": action}]}


def test_withdraw_all_withdraws_what_rests_on_the_persons_will(
    services: Services, processor: CommandProcessor
) -> None:
    give(services, "u1", email=Action.GIVEN, analytics=Action.REFUSED, fraud=Action.GIVEN)
    give(services, "u1", billing=Action.GIVEN)
    cmd = command("withdraw_all", {"subject": "u1", "reason": "account closed"}, time=NOW)
    result = processor.process(wire(cmd))
    assert result.outcome == "recorded" and len(result.positions) == 2
    state = {e.purpose: e for e in services.store.subject_state("default", "u1")}
    assert state["email"].action is Action.WITHDRAWN  # given -> withdrawn
    assert state["sale"].action is Action.OPTED_OUT  # allowed by default in opt-out regimes
    assert state["analytics"].action is Action.REFUSED  # already negative: untouched
    assert state["fraud"].action is Action.GIVEN  # legitimate interest: only when asked
    assert state["billing"].action is Action.GIVEN  # a contract is not withdrawn
    assert "essential" not in state  # required: never withdrawn
    email = state["email"]
    assert email.evidence.source is Source.COMMAND and email.evidence.actor is Actor.SYSTEM
    assert email.occurred_at == NOW
    assert email.event_id == command_event_id("default", cmd["id"], "email")
    assert json.loads(email.evidence.raw_signal or "")["reason"] == "account closed"
    decision = services.decisions.check("default", "u1", "email", signals=Signals())
    assert not decision.permitted and decision.reason.value == "withdrawn"
    done = get_processed_command(services.store, "default", cmd["id"])
    assert done is not None and done.positions == result.positions


def test_withdraw_all_can_object_and_be_limited(
    services: Services, processor: CommandProcessor
) -> None:
    give(services, "u2", email=Action.GIVEN, fraud=Action.GIVEN)
    data = {
        "subject": "u2",
        "reason": "erasure request",
        "purposes": ["fraud"],
        "object_legitimate_interest": True,
        "actor": "subject",
    }
    result = processor.process(wire(command("withdraw_all", data)))
    assert result.outcome == "recorded"
    state = {e.purpose: e for e in services.store.subject_state("default", "u2")}
    assert state["fraud"].action is Action.OBJECTED
    assert state["fraud"].evidence.actor is Actor.SUBJECT
    assert state["email"].action is Action.GIVEN


def test_a_command_runs_at_most_once(services: Services, processor: CommandProcessor) -> None:
    give(services, "u3", email=Action.GIVEN)
    cmd = wire(command("withdraw_all", {"subject": "u3", "reason": "left"}))
    first = processor.process(cmd)
    head = services.store.head()
    back = datetime.now(UTC) + timedelta(seconds=1)
    give(services, "u3", back, email=Action.GIVEN)  # the person comes back and consents again
    again = processor.process(cmd)
    assert again.outcome == "duplicate" and again.positions == first.positions
    assert services.store.head() == head + 1  # only the new consent
    state = services.store.subject_state("default", "u3")
    assert [e.action for e in state if e.purpose == "email"] == [Action.GIVEN]


def test_a_crash_between_the_append_and_its_note_does_not_run_it_twice(
    services: Services, processor: CommandProcessor, monkeypatch: pytest.MonkeyPatch
) -> None:
    give(services, "u4", email=Action.GIVEN)
    record_cmd = wire(
        command(
            "record",
            {"subject": "u4", "events": [{"purpose": "analytics", "action": "given"}]},
        )
    )
    withdraw_cmd = wire(command("withdraw_all", {"subject": "u4", "reason": "left"}))
    real = commands_module.add_processed_command

    def crash(*args: Any) -> bool:
        raise RuntimeError("killed after the append")

    monkeypatch.setattr(commands_module, "add_processed_command", crash)
    for cmd in (record_cmd, withdraw_cmd):
        with pytest.raises(RuntimeError):
            processor.process(cmd)
    head = services.store.head()
    monkeypatch.setattr(commands_module, "add_processed_command", real)
    first = processor.process(record_cmd)
    second = processor.process(withdraw_cmd)
    assert services.store.head() == head, "a re-delivered command wrote again"
    assert first.positions and second.positions
    assert first.outcome == second.outcome == "duplicate"
    noted = get_processed_command(services.store, "default", orjson.loads(withdraw_cmd)["id"])
    assert noted is not None and noted.outcome == "recorded" and noted.positions


def test_record_is_validated_and_written_like_the_api(
    services: Services, processor: CommandProcessor
) -> None:
    body = {
        "subject": "u5",
        "jurisdiction": "DE",
        "events": [{"purpose": "email", "action": "given"}],
        "evidence": {"ip": "203.0.113.9"},
    }
    cmd = command("record", body, time=NOW - timedelta(minutes=5))
    result = processor.process(wire(cmd))
    event_id = command_event_id("default", cmd["id"], "email")
    (event,) = services.store.get_events("default", [event_id])
    assert result.positions == (event.position,)
    assert event.evidence.source is Source.COMMAND
    assert event.evidence.jurisdiction == "DE"
    assert event.occurred_at == NOW - timedelta(minutes=5)
    assert event.evidence.ip == "203.0.113.0"  # the evidence policy (truncated) applies
    explicit = command(
        "record",
        {**body, "source": "banner", "events": [{"purpose": "analytics", "action": "given"}]},
    )
    processor.process(wire(explicit))
    state = {e.purpose: e for e in services.store.subject_state("default", "u5")}
    assert state["analytics"].evidence.source is Source.BANNER
    assert state["analytics"].expires_at is not None  # lifetime_days, as via the API


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not JSON"),
        (b"[1, 2]", "JSON object"),
        ({"specversion": "1.0", "source": "/x", "type": "consentry.command.record"}, "id"),
        (command("delete_everything", {}), "type"),
        (command("withdraw_all", {"subject": "u"}), "reason"),
        (command("withdraw_all", {"subject": "u", "reason": "r", "extra": 1}), "extra"),
        (command("withdraw_all", {"subject": "u", "reason": "r", "purposes": ["sms"]}), "sms"),
        (command("withdraw_all", {"subject": "u", "reason": "r"}, tenant="nope"), "nope"),
        (command("record", one("sms", "given")), "sms"),
        (command("record", one("billing", "withdrawn")), "contract"),
        (command("record", {"subject": "u", "events": []}), "events"),
        (command("record", one("email", "given"), time=NOW + timedelta(days=1)), "future"),
    ],
)  # fmt: skip
def test_an_invalid_command_says_why(
    services: Services, processor: CommandProcessor, body: Any, reason: str
) -> None:
    raw = body if isinstance(body, bytes) else wire(body)
    head = services.store.head()
    with pytest.raises(InvalidCommand) as caught:
        processor.process(raw)
    assert reason in str(caught.value)
    assert services.store.head() == head
    if isinstance(body, dict) and "id" in body:
        # Not noted as processed: once the cause is fixed, a replay runs it.
        assert get_processed_command(services.store, body.get("tenant", ""), body["id"]) is None


@pytest.mark.kafka
def test_the_commands_topic_end_to_end(sqlite_url: str, broker: Broker, tmp_path: Path) -> None:
    settings = kafka_settings(sqlite_url, broker.bootstrap, tmp_path)
    services = Services.build(settings)
    services.store.migrate()
    catalogue(services)
    give(services, "leaver", email=Action.GIVEN, analytics=Action.GIVEN)
    processor = CommandProcessor(services.store, services.recorder, services.catalog)
    consumer = CommandConsumer.from_settings(settings, processor, **FAST_GROUP)
    withdraw = command("withdraw_all", {"subject": "leaver", "reason": "account closed"})
    sms = command("record", one("sms", "given", subject="x"))
    record_cmd = command("record", one("email", "given", subject="y"))
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for body in (withdraw, b"garbage", sms, record_cmd, withdraw):
        raw = body if isinstance(body, bytes) else wire(body)
        producer.produce(settings.kafka_commands_topic, key=b"k", value=raw)
    producer.flush(10)
    try:
        deadline = time.monotonic() + 30
        while consumer.loop.handled < 5 and time.monotonic() < deadline:
            consumer.poll(0.1)
        assert consumer.loop.handled == 5
        assert consumer.loop.dead_lettered == 2
        assert processor.outcomes == {"recorded": 2, "duplicate": 1}
        state = {e.purpose: e.action for e in services.store.subject_state("default", "leaver")}
        assert state["email"] is state["analytics"] is Action.WITHDRAWN
        letters = _read(broker.bootstrap, settings.kafka_dead_letter_topic, 2)
        assert {header(m, H_TOPIC) for m in letters} == {settings.kafka_commands_topic}
        errors = " | ".join(header(m, H_ERROR) or "" for m in letters)
        assert "not JSON" in errors and "unknown purpose 'sms'" in errors

        # The missing purpose is created; replaying the commands' letters records the command.
        services.recorder.add_purpose("default", Purpose("sms", "SMS", LegalBasis.CONSENT))
        report = replay_dead_letters(
            client_config(settings),
            settings.kafka_dead_letter_topic,
            only_topic=settings.kafka_commands_topic,
            idle_seconds=1.0,
        )
        assert report.replayed == 2
        deadline = time.monotonic() + 30
        while consumer.loop.handled < 7 and time.monotonic() < deadline:
            consumer.poll(0.1)
        assert processor.outcomes == {"recorded": 3, "duplicate": 1}
        assert consumer.loop.dead_lettered == 3  # the garbage, once more
        assert [e.purpose for e in services.store.subject_state("default", "x")] == ["sms"]
    finally:
        consumer.close()
        services.close()


def _read(bootstrap: str, topic: str, count: int) -> list[Any]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "inspect", "enable.auto.commit": False}
    )
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.assign([TopicPartition(topic, p, 0) for p in meta.partitions])
    out: list[Any] = []
    deadline = time.monotonic() + 10
    try:
        while len(out) < count and time.monotonic() < deadline:
            out.extend(m for m in consumer.consume(10, 0.2) if m.error() is None)
    finally:
        consumer.close()
    return out


def test_command_ids_are_stable_and_distinct() -> None:
    a = command_event_id("t", "c1", "email")
    assert a == command_event_id("t", "c1", "email")
    assert len({a, command_event_id("t", "c2", "email"), command_event_id("u", "c1", "email")}) == 3
    assert isinstance(a, uuid.UUID)


@pytest.mark.kafka
def test_replay_ends_while_commands_run_and_a_letter_stays_invalid(
    sqlite_url: str, broker: Broker, tmp_path: Path
) -> None:
    """Issue #13: `consentry dlq replay` next to `consentry commands`, with letters that are still
    invalid. Each replayed command is dead-lettered again at once; the replay must stop at the
    end it found when it started (each letter replayed once) instead of chasing the copies."""
    settings = kafka_settings(sqlite_url, broker.bootstrap, tmp_path, kafka_topic_partitions=2)
    services = Services.build(settings)
    services.store.migrate()
    catalogue(services)
    processor = CommandProcessor(services.store, services.recorder, services.catalog)
    consumer = CommandConsumer.from_settings(settings, processor, **FAST_GROUP)
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    invalid = [command("record", one("nope", "given", subject=f"s{i}")) for i in range(6)]
    for body in invalid:
        producer.produce(settings.kafka_commands_topic, key=body["id"].encode(), value=wire(body))
    producer.flush(10)
    outcome: dict[str, Any] = {}

    def replay() -> None:
        try:
            outcome["report"] = replay_dead_letters(
                {**client_config(settings), **FAST_GROUP},
                settings.kafka_dead_letter_topic,
                only_topic=settings.kafka_commands_topic,
                idle_seconds=5.0,
            )
        except Exception as exc:  # shown by the assertion below
            outcome["error"] = exc

    try:
        deadline = time.monotonic() + 30
        while consumer.loop.dead_lettered < 6 and time.monotonic() < deadline:
            consumer.poll(0.1)
        assert consumer.loop.dead_lettered == 6
        thread = threading.Thread(target=replay, daemon=True)
        thread.start()
        # `consentry commands` keeps running: every replayed command is dead-lettered again.
        deadline = time.monotonic() + 45
        while thread.is_alive() and time.monotonic() < deadline:
            consumer.poll(0.1)
        assert not thread.is_alive(), (
            f"the replay did not end: the dead-letter topic grew to"
            f" {consumer.loop.dead_lettered} letters"
        )
        assert "error" not in outcome, outcome
        report = outcome["report"]
        assert report.replayed == 6
        assert len({m["dead_letter"] for m in report.messages}) == 6  # each letter once
        # The copies dead-lettered again wait for the next run, which replays each once more.
        deadline = time.monotonic() + 30
        while consumer.loop.dead_lettered < 12 and time.monotonic() < deadline:
            consumer.poll(0.1)
        assert consumer.loop.dead_lettered == 12
        again = replay_dead_letters(
            {**client_config(settings), **FAST_GROUP},
            settings.kafka_dead_letter_topic,
            only_topic=settings.kafka_commands_topic,
        )
        assert again.replayed == 6
    finally:
        consumer.close()
        services.close()
