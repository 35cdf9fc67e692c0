"""The consent event: one immutable fact of what a person decided, with its evidence.

An event is first a `NewEvent` (what the caller asked us to record) and becomes a `RecordedEvent`
when the log commits it and gives it a position, a subject version and a recording time. Only
recorded events have canonical bytes, because the ledger hashes what was committed.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from consentry.domain.purposes import LegalBasis


class Action(StrEnum):
    """What the person did. opted_out / opted_in are the verbs of the US opt-out regimes."""

    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    OBJECTED = "objected"
    OPTED_OUT = "opted_out"
    OPTED_IN = "opted_in"


class Source(StrEnum):
    """The channel that captured the decision."""

    BANNER = "banner"
    PREFERENCE_CENTER = "preference_center"
    API = "api"
    IMPORT = "import"
    COMMAND = "command"
    GPC = "gpc"
    TCF = "tcf"
    GPP = "gpp"


class Actor(StrEnum):
    """Who expressed the decision: the person, someone for them, or the system (e.g. expiry)."""

    SUBJECT = "subject"
    GUARDIAN = "guardian"
    AGENT = "agent"
    SYSTEM = "system"


class EvidencePolicy(StrEnum):
    """How much of the IP address and user agent the log keeps."""

    FULL = "full"
    TRUNCATED = "truncated"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class Evidence:
    """What was shown and how the decision reached us: what a regulator asks to see."""

    source: Source
    actor: Actor = Actor.SUBJECT
    jurisdiction: str | None = None
    notice_id: str | None = None
    notice_version: int | None = None
    notice_hash: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    raw_signal: str | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event validated and ready to append; the log assigns position and times.

    `occurred_at_given` is False when the caller sent no occurred_at and the recorder used the
    time of the request: a retry of that request then cannot be told apart by its legal time,
    so `differences` does not compare it (nor the expiry it implies).
    """

    event_id: uuid.UUID
    tenant: str
    subject: str
    purpose: str
    action: Action
    legal_basis: LegalBasis
    occurred_at: datetime
    evidence: Evidence
    expires_at: datetime | None = None
    occurred_at_given: bool = field(default=True, compare=False)

    def differences(self, recorded: RecordedEvent) -> list[str]:
        """The fields (by their API names) in which `recorded`, the event already committed
        under this event_id, says something else than this one: every field of the event but
        those the log assigns (position, subject_version, recorded_at). Empty: a true retry."""
        mine, theirs = _content(self), _content(recorded)
        if not self.occurred_at_given:
            for name in ("occurred_at", "expires_at"):
                mine.pop(name)
                theirs.pop(name)
        return [name for name, value in mine.items() if theirs[name] != value]


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """An event as committed: immutable, ordered, and hashable into the ledger."""

    position: int
    subject_version: int
    recorded_at: datetime
    event_id: uuid.UUID
    tenant: str
    subject: str
    purpose: str
    action: Action
    legal_basis: LegalBasis
    occurred_at: datetime
    evidence: Evidence
    expires_at: datetime | None = None
    _canonical: bytes | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_new(
        cls, new: NewEvent, *, position: int, subject_version: int, recorded_at: datetime
    ) -> RecordedEvent:
        return cls(
            position=position,
            subject_version=subject_version,
            recorded_at=recorded_at,
            event_id=new.event_id,
            tenant=new.tenant,
            subject=new.subject,
            purpose=new.purpose,
            action=new.action,
            legal_basis=new.legal_basis,
            occurred_at=new.occurred_at,
            evidence=new.evidence,
            expires_at=new.expires_at,
        )

    @property
    def sort_key(self) -> tuple[datetime, int]:
        """Invariant 4: the latest decision is the greatest occurred_at, ties by position."""
        return (self.occurred_at, self.position)

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON types, under the names the API and the stream use."""
        e = self.evidence
        return {
            "event_id": str(self.event_id),
            "tenant": self.tenant,
            "subject": self.subject,
            "purpose": self.purpose,
            "action": self.action.value,
            "legal_basis": self.legal_basis.value,
            "occurred_at": format_time(self.occurred_at),
            "recorded_at": format_time(self.recorded_at),
            "position": self.position,
            "subject_version": self.subject_version,
            "source": e.source.value,
            "actor": e.actor.value,
            "jurisdiction": e.jurisdiction,
            "notice_id": e.notice_id,
            "notice_version": e.notice_version,
            "notice_hash": e.notice_hash,
            "ip": e.ip,
            "user_agent": e.user_agent,
            "raw_signal": e.raw_signal,
            "expires_at": format_time(self.expires_at) if self.expires_at else None,
        }

    def canonical_bytes(self) -> bytes:
        """One deterministic serialization, used for hashing, the ledger and receipts.

        JSON with sorted keys, no insignificant whitespace, UTF-8, timestamps in UTC with
        microseconds, and a format tag so that the form can evolve without ambiguity.
        """
        if self._canonical is None:
            body = {"v": 1, **self.to_dict()}
            data = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            object.__setattr__(self, "_canonical", data.encode("utf-8"))
        assert self._canonical is not None
        return self._canonical


def _content(e: NewEvent | RecordedEvent) -> dict[str, Any]:
    """What the person (or the channel) said, under the API's names: what a retry must repeat."""
    ev = e.evidence
    return {
        "tenant": e.tenant,
        "subject": e.subject,
        "purpose": e.purpose,
        "action": e.action,
        "legal_basis": e.legal_basis,
        "occurred_at": e.occurred_at,
        "source": ev.source,
        "actor": ev.actor,
        "jurisdiction": ev.jurisdiction,
        "notice_id": ev.notice_id,
        "notice_version": ev.notice_version,
        "notice_hash": ev.notice_hash,
        "ip": ev.ip,
        "user_agent": ev.user_agent,
        "raw_signal": ev.raw_signal,
        "expires_at": e.expires_at,
    }


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds: fixed width, so it sorts as text too."""
    v = value.astimezone(UTC)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d}T{v.hour:02d}:{v.minute:02d}:{v.second:02d}"
        f".{v.microsecond:06d}Z"
    )


def parse_time(value: str) -> datetime:
    """Parse RFC 3339 with a time zone; naive times are rejected because legal time needs one."""
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an RFC 3339 timestamp") from exc
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone; add Z or an offset such as +02:00")
    return parsed.astimezone(UTC)
