"""The envelope's JSON Schema: valid, in step with the code, and satisfied by real events."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from consentry.domain.events import Action, Actor, Evidence, RecordedEvent, Source
from consentry.domain.purposes import LegalBasis
from consentry.propagation.envelope import (
    EnvelopeError,
    decode,
    encode,
    from_cloudevent,
    message_key,
    to_cloudevent,
)


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    text = (
        resources.files("consentry.propagation")
        .joinpath("consent-event.schema.json")
        .read_text(encoding="utf-8")
    )
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
optional = lambda s: st.none() | s  # noqa: E731


@st.composite
def events(draw: st.DrawFn) -> RecordedEvent:
    occurred = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(
        microseconds=draw(st.integers(0, 10**15))
    )
    return RecordedEvent(
        position=draw(st.integers(1, 2**62)),
        subject_version=draw(st.integers(1, 2**31)),
        recorded_at=occurred + timedelta(seconds=draw(st.integers(0, 10**6))),
        event_id=uuid.UUID(int=draw(st.integers(0, 2**128 - 1))),
        tenant=draw(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True)),
        subject=draw(texts.filter(bool)),
        purpose=draw(st.from_regex(r"[a-z0-9][a-z0-9_.:-]{0,20}", fullmatch=True)),
        action=draw(st.sampled_from(list(Action))),
        legal_basis=draw(st.sampled_from(list(LegalBasis))),
        occurred_at=occurred,
        evidence=Evidence(
            source=draw(st.sampled_from(list(Source))),
            actor=draw(st.sampled_from(list(Actor))),
            jurisdiction=draw(optional(st.sampled_from(["DE", "US-CA", "EU"]))),
            notice_id=draw(optional(texts)),
            notice_version=draw(optional(st.integers(1, 1000))),
            notice_hash=draw(optional(st.just("sha256:" + "0" * 64))),
            ip=draw(optional(st.just("203.0.113.0"))),
            user_agent=draw(optional(texts)),
            raw_signal=draw(optional(texts)),
        ),
        expires_at=draw(optional(st.just(occurred + timedelta(days=395)))),
    )


@given(events())
@settings(max_examples=200, deadline=None)
def test_every_envelope_satisfies_the_schema_and_round_trips(
    validator: Draft202012Validator, event: RecordedEvent
) -> None:
    wire = encode(event, "https://consent.example.com")
    envelope = orjson.loads(wire)
    errors = sorted(validator.iter_errors(envelope), key=str)
    assert not errors, errors[0].message
    assert envelope["id"] == str(event.event_id)
    assert envelope["subject"] == event.subject
    assert envelope["time"] == envelope["data"]["occurred_at"]
    assert decode(wire) == event


def test_the_schema_lists_what_the_code_knows(validator: Draft202012Validator) -> None:
    schema: dict[str, Any] = dict(validator.schema)
    data = schema["$defs"]["event"]["properties"]
    assert set(data["action"]["enum"]) == {a.value for a in Action}
    assert set(data["source"]["enum"]) == {s.value for s in Source}
    assert set(data["actor"]["enum"]) == {a.value for a in Actor}
    assert set(data["legal_basis"]["enum"]) == {b.value for b in LegalBasis}
    assert set(schema["properties"]["type"]["enum"]) == {f"consentry.consent.{a}" for a in Action}
    sample = RecordedEvent(
        position=1,
        subject_version=1,
        recorded_at=datetime.now(UTC),
        event_id=uuid.uuid4(),
        tenant="t",
        subject="s",
        purpose="p",
        action=Action.GIVEN,
        legal_basis=LegalBasis.CONSENT,
        occurred_at=datetime.now(UTC),
        evidence=Evidence(Source.API),
    )
    assert set(data) == set(sample.to_dict()), "the schema and RecordedEvent.to_dict() differ"
    assert set(schema["$defs"]["event"]["required"]) == set(sample.to_dict())
    assert to_cloudevent(sample)["dataschema"] == schema["$id"]


@pytest.mark.parametrize(
    "wire",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"specversion": "1.0", "type": "other.type", "data": {}}',
        b'{"specversion": "1.0", "type": "consentry.consent.given", "data": {"position": 1}}',
        b'{"specversion": "1.0", "type": "consentry.consent.given", "data": []}',
        b'{"specversion": "0.3", "type": "consentry.consent.given", "data": {}}',
    ],
)
def test_anything_else_is_an_envelope_error(wire: bytes) -> None:
    with pytest.raises(EnvelopeError):
        decode(wire)


def test_a_mismatched_id_or_type_is_refused() -> None:
    now = datetime.now(UTC)
    event = RecordedEvent(1, 1, now, uuid.uuid4(), "t", "s", "p", Action.GIVEN,
                          LegalBasis.CONSENT, now, Evidence(Source.API))  # fmt: skip
    envelope = to_cloudevent(event)
    with pytest.raises(EnvelopeError):
        from_cloudevent({**envelope, "id": str(uuid.uuid4())})
    with pytest.raises(EnvelopeError):
        from_cloudevent({**envelope, "type": "consentry.consent.withdrawn"})
    with pytest.raises(EnvelopeError):
        from_cloudevent({**envelope, "data": {**envelope["data"], "recorded_at": 5}})


def test_the_key_is_tenant_and_subject() -> None:
    assert message_key("acme", "u-1") == b"acme/u-1"
