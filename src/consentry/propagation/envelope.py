"""The envelope of every event on every transport: CloudEvents 1.0, JSON structured mode.

`type` says what happened (consentry.consent.withdrawn), `id` is the event id (consumers
deduplicate by it), `subject` the person, `time` the legal time (occurred_at). The event itself,
with its position and subject_version, is `data`. Kafka, the HTTP change feed and server-sent
events carry exactly this, so one consumer library reads them all.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from consentry.domain.events import (
    Action,
    Actor,
    Evidence,
    RecordedEvent,
    Source,
    parse_time,
)
from consentry.domain.purposes import LegalBasis

SPEC_VERSION = "1.0"
TYPE_PREFIX = "consentry.consent."
DATA_SCHEMA = "https://consentry.dev/schemas/consent-event/v1.json"
CONTENT_TYPE = "application/cloudevents+json"


class EnvelopeError(ValueError):
    """A message that is not a Consentry CloudEvent; the reason says which field is wrong."""


def event_type(action: Action) -> str:
    return TYPE_PREFIX + action.value


def to_cloudevent(event: RecordedEvent, source: str = "/consentry") -> dict[str, Any]:
    """The CloudEvent of a committed event; `source` names the Consentry installation."""
    return envelope(event.to_dict(), source)


def envelope(data: Mapping[str, Any], source: str = "/consentry") -> dict[str, Any]:
    """The CloudEvent around an event's `data` (RecordedEvent.to_dict()): the one place the
    envelope is built, for the domain object and for the relay's rows alike."""
    return {
        "specversion": SPEC_VERSION,
        "type": TYPE_PREFIX + data["action"],
        "source": f"{source}/tenants/{data['tenant']}",
        "id": data["event_id"],
        "subject": data["subject"],
        "time": data["occurred_at"],
        "datacontenttype": "application/json",
        "dataschema": DATA_SCHEMA,
        "data": data,
    }


def from_cloudevent(envelope: Mapping[str, Any]) -> RecordedEvent:
    """Read a CloudEvent back into the event it carries; raise EnvelopeError if malformed."""
    try:
        if envelope.get("specversion") != SPEC_VERSION:
            raise EnvelopeError(f"specversion must be {SPEC_VERSION!r}")
        kind = envelope["type"]
        if not isinstance(kind, str) or not kind.startswith(TYPE_PREFIX):
            raise EnvelopeError(f"type {kind!r} is not a consentry.consent.* type")
        event = event_from_data(envelope["data"])
    except EnvelopeError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise EnvelopeError(f"malformed consent CloudEvent: {exc!r}") from exc
    if envelope.get("id") != str(event.event_id):
        raise EnvelopeError("the envelope id differs from data.event_id")
    if kind != event_type(event.action):
        raise EnvelopeError("the envelope type differs from data.action")
    return event


def event_from_data(d: Mapping[str, Any]) -> RecordedEvent:
    """The event of a CloudEvent's `data` (the names of RecordedEvent.to_dict()).

    A malformed body raises KeyError, TypeError, ValueError or AttributeError, which
    from_cloudevent turns into EnvelopeError.
    """
    return RecordedEvent(
        position=int(d["position"]),
        subject_version=int(d["subject_version"]),
        recorded_at=parse_time(d["recorded_at"]),
        event_id=uuid.UUID(d["event_id"]),
        tenant=str(d["tenant"]),
        subject=str(d["subject"]),
        purpose=str(d["purpose"]),
        action=Action(d["action"]),
        legal_basis=LegalBasis(d["legal_basis"]),
        occurred_at=parse_time(d["occurred_at"]),
        evidence=Evidence(
            source=Source(d["source"]),
            actor=Actor(d["actor"]),
            jurisdiction=d.get("jurisdiction"),
            notice_id=d.get("notice_id"),
            notice_version=d.get("notice_version"),
            notice_hash=d.get("notice_hash"),
            ip=d.get("ip"),
            user_agent=d.get("user_agent"),
            raw_signal=d.get("raw_signal"),
        ),
        expires_at=parse_time(d["expires_at"]) if d.get("expires_at") else None,
    )


# Bytes on the wire (Kafka values, change-feed lines) ----------------------------------------------
def encode(event: RecordedEvent, source: str = "/consentry") -> bytes:
    """The CloudEvent of `event` as compact UTF-8 JSON: what the relay publishes."""
    return orjson.dumps(to_cloudevent(event, source))


def decode(data: bytes | str) -> RecordedEvent:
    """The event carried by a JSON CloudEvent; EnvelopeError for anything else (poison)."""
    try:
        envelope = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"not JSON: {exc}") from exc
    if not isinstance(envelope, dict):
        raise EnvelopeError("a CloudEvent is a JSON object")
    return from_cloudevent(envelope)


def message_key(tenant: str, subject: str) -> bytes:
    """The Kafka key `<tenant>/<subject>`: one subject's events share a partition, in order.

    Only partitioning reads the key; consumers take tenant and subject from the envelope.
    """
    return f"{tenant}/{subject}".encode()
