"""The commands topic: other services ask Consentry to record, as an API client would.

A command is a CloudEvent (JSON, structured mode) with an extension attribute `tenant`:

    {"specversion": "1.0", "id": "c-81f2", "source": "/crm", "tenant": "default",
     "type": "consentry.command.withdraw_all", "time": "2026-03-01T10:00:00Z",
     "data": {"subject": "u-123", "reason": "account closed"}}

    {"specversion": "1.0", "id": "c-81f3", "source": "/shop", "tenant": "default",
     "type": "consentry.command.record",
     "data": {<the body of POST /v1/consents>}}

Every command is validated and written through the Recorder, exactly as an API call, and runs at
most once per (tenant, command id): its events carry the idempotency key `command:<id>` and
event ids derived from the command id, in the append transaction itself, and the outcome is
kept in processed_commands. An invalid command is dead-lettered with the reason; a database
outage is retried, never dead-lettered.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
)
from pydantic import ValidationError as PydanticValidationError

from consentry.config import Settings
from consentry.domain.errors import ConflictError, DomainError, ValidationError
from consentry.domain.events import Action, Actor, RecordedEvent, Source, format_time
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.propagation.consumer import KafkaLoop, Retry
from consentry.propagation.lag import LagMetrics
from consentry.recording.schema import ConsentBody, Identifier, Line, Subject, Text, Timestamp
from consentry.recording.service import ConsentRequest, EventRequest, Recorder
from consentry.storage.base import AppendResult, StoreUnavailableError
from consentry.storage.catalog import Catalog
from consentry.storage.propagation import (
    ProcessedCommand,
    add_processed_command,
    get_processed_command,
)
from consentry.storage.sql import SqlStore

log = logging.getLogger("consentry.propagation.commands")

TYPE_PREFIX = "consentry.command."
WITHDRAW_ALL = TYPE_PREFIX + "withdraw_all"
RECORD = TYPE_PREFIX + "record"
#: Event ids of a command are uuid5(COMMAND_NAMESPACE, "<tenant>/<command id>/<purpose>").
COMMAND_NAMESPACE = uuid.UUID("5f0c6a52-3c1e-4d3f-9a57-0c0a8e6f2b11")
_POSITIVE = (Action.GIVEN, Action.OPTED_IN)


class InvalidCommand(DomainError):
    """The command cannot be executed as sent; the message says why (the dead letter's error)."""

    code = "invalid_command"


class CommandEnvelope(BaseModel):
    """The CloudEvents attributes a command must carry (other extension attributes are kept)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: Annotated[Line, Field(min_length=1, max_length=128)]
    source: Annotated[Line, Field(min_length=1, max_length=1000)]
    type: Literal["consentry.command.withdraw_all", "consentry.command.record"]
    tenant: Annotated[Line, Field(min_length=1, max_length=64)] = "default"
    time: Timestamp | None = None
    datacontenttype: StrictStr | None = None
    data: dict[str, Any]


class WithdrawAllData(BaseModel):
    """data of consentry.command.withdraw_all: stop everything that rests on the person's will."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: Subject
    reason: Annotated[Text, Field(min_length=1, max_length=500)]
    purposes: list[Identifier] | None = None
    occurred_at: Timestamp | None = None
    actor: Actor = Actor.SYSTEM
    object_legitimate_interest: StrictBool = False


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What a command did: `recorded` (positions), `nothing_to_do`, or `duplicate` (it had run)."""

    tenant: str
    command_id: str
    kind: str
    outcome: str
    positions: tuple[int, ...] = ()


def command_event_id(tenant: str, command_id: str, purpose: str) -> uuid.UUID:
    """The event id a command gives its event on `purpose`: the same on every re-delivery."""
    return uuid.uuid5(COMMAND_NAMESPACE, f"{tenant}/{command_id}/{purpose}")


def withdrawal_for(
    purpose: Purpose, current: Action | None, *, object_legitimate_interest: bool
) -> Action | None:
    """The action that withdraws `purpose` given its current deciding action, or None.

    Consent is withdrawn when given; an opt-out purpose (allowed by default in the US regimes)
    is opted out unless already negative; legitimate interest is objected to only when asked;
    contract, legal obligation and required purposes are not the person's to withdraw.
    """
    not_a_choice = (LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION)
    if purpose.required or purpose.legal_basis in not_a_choice:
        return None
    if purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        if object_legitimate_interest and current in (None, Action.GIVEN):
            return Action.OBJECTED
        return None
    if purpose.opt_out_category is not None:
        return Action.OPTED_OUT if current in (None, *_POSITIVE) else None
    return Action.WITHDRAWN if current in _POSITIVE else None


class CommandProcessor:
    """Validates and executes commands through the Recorder; transport-agnostic."""

    def __init__(self, store: SqlStore, recorder: Recorder, catalog: Catalog) -> None:
        self.store = store
        self.recorder = recorder
        self.catalog = catalog
        self.outcomes: dict[str, int] = {}

    def process(self, raw: bytes | str | None) -> CommandResult:
        """Execute one command. Raises InvalidCommand (dead-letter it) or StoreUnavailableError
        (try again later)."""
        envelope = parse_command(raw)
        tenant = envelope.tenant
        if not self.store.tenant_exists(tenant):
            raise InvalidCommand(f"tenant {tenant!r} does not exist")
        done = get_processed_command(self.store, tenant, envelope.id)
        if done is not None:
            return self._count(
                CommandResult(tenant, envelope.id, done.kind, "duplicate", done.positions)
            )
        kind = envelope.type.removeprefix(TYPE_PREFIX)
        try:
            if envelope.type == WITHDRAW_ALL:
                prior = self._prior_events(envelope)
                if prior:
                    # It ran, and its processor stopped before noting it: what it wrote then
                    # is the outcome (computed now, there would be nothing left to withdraw).
                    result: AppendResult | None = AppendResult(prior, replayed=True)
                else:
                    result = self._execute(envelope, self._withdraw_all(envelope))
            else:
                result = self._execute(envelope, self._record(envelope))
        except PydanticValidationError as exc:
            raise InvalidCommand(f"{kind}: {_pydantic_reason(exc)}") from exc
        except StoreUnavailableError:
            raise
        except DomainError as exc:
            if isinstance(exc, InvalidCommand):
                raise
            raise InvalidCommand(f"{kind}: {exc}") from exc
        if result is None:
            outcome = CommandResult(tenant, envelope.id, kind, "nothing_to_do")
        else:
            positions = tuple(e.position for e in result.events)
            outcome = CommandResult(
                tenant, envelope.id, kind, "duplicate" if result.replayed else "recorded", positions
            )
        add_processed_command(
            self.store,
            ProcessedCommand(
                tenant=tenant,
                command_id=envelope.id,
                kind=kind,
                outcome="recorded" if outcome.positions else outcome.outcome,
                positions=outcome.positions,
                processed_at=datetime.now(UTC),
            ),
        )
        return self._count(outcome)

    def _count(self, result: CommandResult) -> CommandResult:
        self.outcomes[result.outcome] = self.outcomes.get(result.outcome, 0) + 1
        return result

    def _prior_events(self, envelope: CommandEnvelope) -> tuple[RecordedEvent, ...]:
        purposes = self.catalog.purposes(envelope.tenant)
        ids = [command_event_id(envelope.tenant, envelope.id, p) for p in purposes]
        return tuple(self.store.get_events(envelope.tenant, ids))

    def _withdraw_all(self, envelope: CommandEnvelope) -> ConsentRequest | None:
        data = WithdrawAllData.model_validate(envelope.data)
        tenant = envelope.tenant
        purposes = self.catalog.purposes(tenant)
        wanted = data.purposes if data.purposes is not None else sorted(purposes)
        unknown = [p for p in wanted if p not in purposes]
        if unknown:
            raise ValidationError(f"unknown purposes: {', '.join(unknown)}")
        state = {e.purpose: e.action for e in self.store.subject_state(tenant, data.subject)}
        events = []
        for pid in wanted:
            action = withdrawal_for(
                purposes[pid],
                state.get(pid),
                object_legitimate_interest=data.object_legitimate_interest,
            )
            if action is not None:
                events.append(EventRequest(pid, action, command_event_id(tenant, envelope.id, pid)))
        if not events:
            return None
        evidence = {
            "command": envelope.id,
            "type": envelope.type,
            "source": envelope.source,
            "reason": data.reason,
        }
        return ConsentRequest(
            subject=data.subject,
            source=Source.COMMAND,
            events=events,
            occurred_at=data.occurred_at or envelope.time,
            actor=data.actor,
            raw_signal=json.dumps(evidence, sort_keys=True, separators=(",", ":")),
        )

    def _record(self, envelope: CommandEnvelope) -> ConsentRequest:
        body = ConsentBody.model_validate(envelope.data)
        tenant = envelope.tenant
        if getattr(body, "tc_string", None) is not None or getattr(body, "gpp_string", None):
            request = self._signal_request(body, tenant)
        else:
            request = body.to_request()
        events = [
            replace(e, event_id=e.event_id or command_event_id(tenant, envelope.id, e.purpose))
            for e in request.events
        ]
        changes: dict[str, Any] = {"events": events}
        if "source" not in body.model_fields_set and request.source is Source.API:
            changes["source"] = Source.COMMAND
        if "occurred_at" not in body.model_fields_set and envelope.time is not None:
            changes["occurred_at"] = envelope.time
        return replace(request, **changes)

    def _signal_request(self, body: ConsentBody, tenant: str) -> ConsentRequest:
        # The same reading of a TC or GPP string as POST /v1/consents (recording/signals_in.py).
        from consentry.recording.signals_in import signal_request
        from consentry.storage.collection import CollectionStore

        return signal_request(
            body,
            tenant=tenant,
            collection=CollectionStore(self.store),
            catalog=self.catalog,
            store=self.store,
        )

    def _execute(
        self, envelope: CommandEnvelope, request: ConsentRequest | None
    ) -> AppendResult | None:
        if request is None:
            return None
        try:
            return self.recorder.record(
                envelope.tenant, request, idempotency_key=f"command:{envelope.id}"
            )
        except ConflictError:
            # Executed before (by a processor that crashed before noting it, or concurrently),
            # with a request computed at another moment: its events are there under their ids.
            ids = [e.event_id for e in request.events if e.event_id is not None]
            found = self.store.get_events(envelope.tenant, ids)
            if found:
                return AppendResult(tuple(found), replayed=True)
            raise


def parse_command(raw: bytes | str | None) -> CommandEnvelope:
    """The command in a message, or InvalidCommand saying what is wrong with it."""
    if raw is None:
        raise InvalidCommand("an empty message is not a command")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidCommand(f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise InvalidCommand("a command is a JSON object (a CloudEvent)")
    try:
        return CommandEnvelope.model_validate(body)
    except PydanticValidationError as exc:
        raise InvalidCommand(f"not a Consentry command: {_pydantic_reason(exc)}") from exc


def _pydantic_reason(exc: PydanticValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "(body)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def command(
    kind: str,
    data: dict[str, Any],
    *,
    command_id: str | None = None,
    tenant: str = "default",
    source: str = "/consentry-cli",
    time: datetime | None = None,
) -> dict[str, Any]:
    """Build a command CloudEvent (tests, tools, the docs' examples)."""
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": command_id or str(uuid.uuid4()),
        "source": source,
        "type": TYPE_PREFIX + kind,
        "tenant": tenant,
        "datacontenttype": "application/json",
        "data": data,
    }
    if time is not None:
        body["time"] = format_time(time)
    return body


class CommandConsumer:
    """`consentry commands`: the commands topic through a CommandProcessor, on a KafkaLoop."""

    def __init__(
        self,
        config: dict[str, Any],
        processor: CommandProcessor,
        *,
        topic: str,
        dead_letter_topic: str,
        metrics: LagMetrics | None = None,
        batch_size: int = 100,
    ) -> None:
        self.processor = processor
        self.loop = KafkaLoop(
            config,
            [topic],
            self._handle,
            dead_letter_topic=dead_letter_topic,
            batch_size=batch_size,
            metrics=metrics,
        )

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        processor: CommandProcessor,
        *,
        metrics: LagMetrics | None = None,
        **config: Any,
    ) -> CommandConsumer:
        from consentry.propagation.kafka import client_config, consumer_config, ensure_topics

        if settings.kafka_create_topics:
            ensure_topics(
                client_config(settings),
                [settings.kafka_commands_topic, settings.kafka_dead_letter_topic],
                partitions=settings.kafka_topic_partitions,
                replication_factor=settings.kafka_replication_factor,
            )
        return cls(
            consumer_config(settings, settings.kafka_commands_group, **config),
            processor,
            topic=settings.kafka_commands_topic,
            dead_letter_topic=settings.kafka_dead_letter_topic,
            metrics=metrics,
        )

    def _handle(self, message: Any) -> None:
        try:
            result = self.processor.process(message.value())
        except StoreUnavailableError as exc:
            raise Retry(f"the database is unavailable: {exc}") from exc
        log.info(
            "command %s (%s) for %s: %s %s",
            result.command_id,
            result.kind,
            result.tenant,
            result.outcome,
            list(result.positions) or "",
        )

    def poll(self, timeout: float = 0.5) -> int:
        return self.loop.poll(timeout)

    def run(self, stop: threading.Event) -> None:
        self.loop.run(stop)

    def close(self) -> None:
        self.loop.close()
