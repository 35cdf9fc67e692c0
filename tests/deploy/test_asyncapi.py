"""docs/asyncapi.yaml: a valid AsyncAPI 3.0 document whose payloads are the project's schema.

- valid against the AsyncAPI 3.0.0 JSON Schema (tests/deploy/schemas/), every $ref resolving;
- the event payload IS the packaged envelope schema (referenced, not copied), and real envelopes
  validate against it as the document describes them;
- the command schemas say what the code accepts: same fields, same required ones, and the code
  and the schema agree on valid and invalid commands;
- topics, group and dead-letter headers are the ones the code uses;
- every example validates, and the code reads it.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest
from jsonschema import Draft7Validator, Draft202012Validator, FormatChecker
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from consentry.config import Settings
from consentry.domain.events import Action, Evidence, RecordedEvent, Source
from consentry.domain.purposes import LegalBasis
from consentry.propagation import consumer
from consentry.propagation.commands import (
    CommandEnvelope,
    InvalidCommand,
    WithdrawAllData,
    parse_command,
)
from consentry.propagation.envelope import encode, from_cloudevent
from consentry.recording.schema import ConsentBody, EventBody, EvidenceBody, NoticeRef
from tests.deploy.conftest import ROOT, load_mapping

DOC_PATH = ROOT / "docs" / "asyncapi.yaml"
DOC_URI = DOC_PATH.as_uri()
PACKAGED = resources.files("consentry.propagation").joinpath("consent-event.schema.json")
ASYNCAPI_SCHEMA = Path(__file__).parent / "schemas" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return load_mapping(DOC_PATH)


@pytest.fixture(scope="module")
def registry(doc: dict[str, Any]) -> Registry[Any]:
    """Resolves the document's references: inside it, and to files of this repository."""
    packaged = json.loads(PACKAGED.read_text(encoding="utf-8"))

    def retrieve(uri: str) -> Resource[Any]:
        if uri == packaged["$id"]:
            return DRAFT202012.create_resource(packaged)
        if uri.startswith("file://"):
            path = Path(uri.removeprefix("file://")).resolve()
            assert ROOT in path.parents, f"a reference leaves the repository: {uri}"
            return DRAFT202012.create_resource(json.loads(path.read_text(encoding="utf-8")))
        raise LookupError(f"no network lookups: {uri}")

    return Registry(retrieve=retrieve).with_resource(
        DOC_URI, DRAFT202012.create_resource(doc)
    )


def validator(registry: Registry[Any], pointer: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"{DOC_URI}#{pointer}"}, registry=registry, format_checker=FormatChecker()
    )


def errors(v: Draft202012Validator, instance: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.path))}: {e.message}" for e in v.iter_errors(instance)]


def refs(node: Any, at: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append((at, value))
            else:
                found += refs(value, f"{at}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += refs(value, f"{at}/{i}")
    return found


# --------------------------------------------------------------------------- the document


def test_it_is_a_valid_asyncapi_3_document(doc: dict[str, Any]) -> None:
    schema = json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8"))
    assert doc["asyncapi"] == "3.0.0"
    problems = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in Draft7Validator(schema).iter_errors(doc)
    ]
    assert not problems, problems[:5]


def test_every_reference_resolves(doc: dict[str, Any], registry: Registry[Any]) -> None:
    resolver = registry.resolver(base_uri=DOC_URI)
    found = refs(doc)
    assert len(found) > 20
    for where, ref in found:
        try:
            resolver.lookup(ref)
        except Exception as exc:
            raise AssertionError(f"{where}: $ref {ref!r} does not resolve: {exc}") from exc


def test_every_operation_names_a_channel_and_its_messages(doc: dict[str, Any]) -> None:
    assert set(doc["channels"]) == {"events", "commands", "deadLetters"}
    for name, operation in doc["operations"].items():
        channel = operation["channel"]["$ref"].removeprefix("#/channels/")
        assert channel in doc["channels"], name
        for message in operation["messages"]:
            assert message["$ref"].startswith(f"#/channels/{channel}/messages/"), name
    assert "Webhooks (issue 16, item 1) go here" in DOC_PATH.read_text(encoding="utf-8")


def test_topics_and_the_group_are_the_settings_defaults(doc: dict[str, Any]) -> None:
    defaults = Settings()
    topics = {
        "events": defaults.kafka_events_topic,
        "commands": defaults.kafka_commands_topic,
        "deadLetters": defaults.kafka_dead_letter_topic,
    }
    for channel, topic in topics.items():
        assert doc["channels"][channel]["address"] == topic
        binding = doc["channels"][channel]["bindings"]["kafka"]
        assert binding["topic"] == topic
        assert binding["partitions"] == defaults.kafka_topic_partitions
    group = doc["operations"]["executeCommands"]["bindings"]["kafka"]["groupId"]
    assert group["enum"] == [defaults.kafka_commands_group]


# --------------------------------------------------------------------------- events


def test_the_event_payload_is_the_packaged_schema(
    doc: dict[str, Any], registry: Registry[Any]
) -> None:
    payload = doc["components"]["messages"]["ConsentEvent"]["payload"]
    assert set(payload) == {"$ref"}, "the payload references the schema, it does not copy it"
    resolved = registry.resolver(base_uri=DOC_URI).lookup(payload["$ref"]).contents
    assert resolved == json.loads(PACKAGED.read_text(encoding="utf-8"))
    target = (DOC_PATH.parent / payload["$ref"]).resolve()
    assert target == Path(str(PACKAGED)).resolve(), "it must be the file the package ships"


def test_real_envelopes_validate_against_the_documented_payload(
    registry: Registry[Any],
) -> None:
    v = validator(registry, "/components/messages/ConsentEvent/payload")
    now = datetime.now(UTC)
    for action in Action:
        event = RecordedEvent(7, 3, now, uuid.uuid4(), "acme", "u-9", "ads", action,
                              LegalBasis.CONSENT, now, Evidence(Source.GPP))  # fmt: skip
        envelope = orjson.loads(encode(event, "/consentry"))
        assert not errors(v, envelope), errors(v, envelope)
    broken = orjson.loads(encode(event, "/consentry"))
    broken["data"]["position"] = 0
    assert errors(v, broken), "a position of 0 must not validate"


# --------------------------------------------------------------------------- commands

MODELS: dict[str, type[BaseModel]] = {
    "CommandEnvelope": CommandEnvelope,
    "WithdrawAllData": WithdrawAllData,
    "ConsentBody": ConsentBody,
    "EventBody": EventBody,
    "NoticeRef": NoticeRef,
    "EvidenceBody": EvidenceBody,
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_command_schemas_have_the_models_fields(doc: dict[str, Any], name: str) -> None:
    schema = doc["components"]["schemas"][name]
    model = MODELS[name]
    fields = model.model_fields
    assert set(schema["properties"]) == set(fields), f"{name}: fields differ from {model}"
    required = {n for n, f in fields.items() if f.is_required()}
    assert set(schema.get("required", [])) == required, f"{name}: required fields differ"
    forbids = model.model_config.get("extra") == "forbid"
    assert (schema.get("additionalProperties") is False) == forbids, name


VALID_COMMANDS = [
    {"specversion": "1.0", "id": "c-1", "source": "/crm", "type": "consentry.command.withdraw_all",
     "data": {"subject": "u-1", "reason": "closed", "purposes": ["email"], "actor": "subject",
              "occurred_at": "2026-03-01T10:00:00+01:00", "object_legitimate_interest": True}},
    {"specversion": "1.0", "id": "c-2", "source": "/shop", "tenant": "acme",
     "type": "consentry.command.record", "x-trace": "kept",
     "data": {"subject": "u-1", "source": "import", "notice": {"id": "privacy", "version": 2},
              "evidence": {"ip": "203.0.113.9", "user_agent": "curl"},
              "events": [{"purpose": "email", "action": "opted_out",
                          "event_id": "0f8e7c1e-5b1a-4f4c-9d7e-1a2b3c4d5e6f"}]}},
    {"specversion": "1.0", "id": "c-3", "source": "/cmp", "type": "consentry.command.record",
     "data": {"subject": "u-1", "gpp_string": "DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAA"}},
]  # fmt: skip

INVALID_COMMANDS = [
    {"specversion": "0.3", "id": "c", "source": "/x", "type": "consentry.command.record",
     "data": {"subject": "u", "events": [{"purpose": "p", "action": "given"}]}},
    {"specversion": "1.0", "id": "", "source": "/x", "type": "consentry.command.record",
     "data": {"subject": "u", "events": [{"purpose": "p", "action": "given"}]}},
    {"specversion": "1.0", "id": "c", "source": "/x", "type": "consentry.command.erase",
     "data": {"subject": "u"}},
    {"specversion": "1.0", "id": "c", "source": "/x", "type": "consentry.command.withdraw_all",
     "data": {"subject": "u"}},
    {"specversion": "1.0", "id": "c", "source": "/x", "type": "consentry.command.withdraw_all",
     "data": {"subject": "u", "reason": "r", "purposes": "email"}},
    {"specversion": "1.0", "id": "c", "source": "/x", "type": "consentry.command.withdraw_all",
     "data": {"subject": "u", "reason": "r", "why": "unknown field"}},
    {"specversion": "1.0", "id": "c", "source": "/x", "type": "consentry.command.record",
     "data": {"subject": "u", "events": [{"purpose": "p", "action": "maybe"}]}},
    {"specversion": "1.0", "id": "c", "source": "/x", "type": "consentry.command.record",
     "data": {"subject": "u", "events": []}},
    {"specversion": "1.0", "id": "c", "source": "/x", "type": "consentry.command.record",
     "data": {"subject": "u", "events": [{"purpose": "p", "action": "given"}],
              "tc_string": "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"}},
    {"specversion": "1.0", "id": "c", "source": "/x", "type": "consentry.command.record",
     "data": {"subject": "u"}},
    {"specversion": "1.0", "id": "c", "source": "/x", "type": "consentry.command.record",
     "data": {"subject": "u", "notice": {"id": "privacy", "version": 0},
              "events": [{"purpose": "p", "action": "given"}]}},
    {"specversion": "1.0", "id": "c", "source": "/x", "type": "consentry.command.record",
     "data": {"subject": "u" * 257, "events": [{"purpose": "p", "action": "given"}]}},
]  # fmt: skip


def code_accepts(command: dict[str, Any]) -> bool:
    """What `consentry commands` does with it before touching the database."""
    try:
        envelope = parse_command(orjson.dumps(command))
        model = WithdrawAllData if envelope.type.endswith("withdraw_all") else ConsentBody
        model.model_validate(envelope.data)
    except (InvalidCommand, PydanticValidationError):
        return False
    return True


def schema_accepts(registry: Registry[Any], command: dict[str, Any]) -> bool:
    kind = "WithdrawAllCommand" if command["type"].endswith("withdraw_all") else "RecordCommand"
    if command["type"] not in ("consentry.command.withdraw_all", "consentry.command.record"):
        kind = "CommandEnvelope"
    return not errors(validator(registry, f"/components/schemas/{kind}"), command)


@pytest.mark.parametrize("command", VALID_COMMANDS, ids=lambda c: c["id"])
def test_valid_commands_are_valid_for_both(
    registry: Registry[Any], command: dict[str, Any]
) -> None:
    assert code_accepts(command)
    assert schema_accepts(registry, command)


@pytest.mark.parametrize("command", INVALID_COMMANDS, ids=lambda c: json.dumps(c)[-60:])
def test_invalid_commands_are_invalid_for_both(
    registry: Registry[Any], command: dict[str, Any]
) -> None:
    assert not code_accepts(command), "the code accepts it"
    assert not schema_accepts(registry, command), "the AsyncAPI schema accepts it"


# --------------------------------------------------------------------------- examples, headers


def test_every_example_validates_and_the_code_reads_it(
    doc: dict[str, Any], registry: Registry[Any]
) -> None:
    messages = doc["components"]["messages"]
    checked = 0
    for name, message in messages.items():
        for example in message.get("examples", []):
            if "payload" in example and "$ref" in message.get("payload", {}):
                v = validator(registry, f"/components/messages/{name}/payload")
                assert not errors(v, example["payload"]), (name, errors(v, example["payload"]))
            if "headers" in example:
                v = validator(registry, f"/components/messages/{name}/headers")
                assert not errors(v, example["headers"]), (name, errors(v, example["headers"]))
            checked += 1
    assert checked == 4
    event = messages["ConsentEvent"]["examples"][0]["payload"]
    assert from_cloudevent(event).action is Action.WITHDRAWN
    for name in ("WithdrawAllCommand", "RecordCommand"):
        assert code_accepts(messages[name]["examples"][0]["payload"]), name
    letter = messages["DeadLetter"]["examples"][0]
    assert parse_command(orjson.dumps(letter["payload"])).id == "shop-5522"
    assert letter["headers"][consumer.H_TOPIC] == Settings().kafka_commands_topic


def test_the_dead_letter_headers_are_the_consumers(doc: dict[str, Any]) -> None:
    headers = doc["components"]["schemas"]["DeadLetterHeaders"]
    written = {
        consumer.H_ERROR,
        consumer.H_ERROR_TYPE,
        consumer.H_TOPIC,
        consumer.H_PARTITION,
        consumer.H_OFFSET,
        consumer.H_GROUP,
        consumer.H_AT,
    }
    assert set(headers["required"]) == written
    assert set(headers["properties"]) == written | {consumer.H_REPLAYED_FROM}
    assert all(h.startswith(consumer.DLQ_PREFIX) for h in written)
