"""The write path: validate a request against the catalogue, then append it in one transaction.

The API, the CLI, the commands topic and imports all record through `Recorder.record`, so a
consent is validated the same way whichever channel brought it, and nothing of an invalid request
is ever written.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from consentry.config import Settings
from consentry.domain.actions import validate_action
from consentry.domain.errors import NotFoundError, ValidationError
from consentry.domain.events import (
    Action,
    Actor,
    Evidence,
    EvidencePolicy,
    NewEvent,
    Source,
    format_time,
)
from consentry.domain.notices import Notice
from consentry.domain.purposes import Purpose
from consentry.domain.regimes import normalize_jurisdiction
from consentry.storage.base import AppendResult, ConsentStore
from consentry.storage.catalog import Catalog
from consentry.storage.sql import utcnow

MAX_SUBJECT_LENGTH = 256
MAX_USER_AGENT_LENGTH = 512

CommitListener = Callable[[str, AppendResult], None]


@dataclass(frozen=True, slots=True)
class EventRequest:
    purpose: str
    action: Action
    event_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """What a channel asks us to record for one subject, before validation."""

    subject: str
    source: Source
    events: Sequence[EventRequest]
    jurisdiction: str | None = None
    notice_id: str | None = None
    notice_version: int | None = None
    occurred_at: datetime | None = None
    ip: str | None = None
    user_agent: str | None = None
    actor: Actor = Actor.SUBJECT
    raw_signal: str | None = None

    def fingerprint(self) -> str:
        """A hash of the request's content, to tell a retry from a reuse of an idempotency key."""
        body = asdict(self)
        body["occurred_at"] = format_time(self.occurred_at) if self.occurred_at else None
        text = json.dumps(body, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Recorder:
    store: ConsentStore
    settings: Settings
    catalog: Catalog
    clock: Callable[[], datetime] = utcnow
    listeners: list[CommitListener] = field(default_factory=list)

    def record(
        self, tenant: str, request: ConsentRequest, *, idempotency_key: str | None = None
    ) -> AppendResult:
        """Validate and append; listeners run after the commit and before the caller answers."""
        events = self.validate(tenant, request)
        result = self.store.append(
            tenant,
            events,
            idempotency_key=idempotency_key,
            request_hash=request.fingerprint() if idempotency_key else None,
        )
        if not result.replayed:
            for listener in self.listeners:
                listener(tenant, result)
        return result

    def validate(self, tenant: str, request: ConsentRequest) -> list[NewEvent]:
        """Turn a request into events, or raise ValidationError saying what to fix."""
        subject = request.subject
        if not subject or not subject.strip():
            raise ValidationError("subject must be a non-empty string")
        if len(subject) > MAX_SUBJECT_LENGTH:
            raise ValidationError(f"subject is longer than {MAX_SUBJECT_LENGTH} characters")
        if not request.events:
            raise ValidationError("events must contain at least one event")
        if len(request.events) > self.settings.max_batch_events:
            raise ValidationError(
                f"a request carries at most {self.settings.max_batch_events} events, this one"
                f" has {len(request.events)}: split it"
            )
        now = self.clock()
        occurred_at = request.occurred_at or now
        skew = timedelta(seconds=self.settings.max_clock_skew_seconds)
        if occurred_at > now + skew:
            raise ValidationError(
                f"occurred_at {format_time(occurred_at)} is more than"
                f" {self.settings.max_clock_skew_seconds} s in the future; send the time the"
                " person acted, with its time zone"
            )
        purposes = self.catalog.purposes(tenant)
        notice = self._notice(tenant, request)
        jurisdiction = (
            normalize_jurisdiction(request.jurisdiction) if request.jurisdiction else None
        )
        if jurisdiction is not None and not _valid_jurisdiction(jurisdiction):
            raise ValidationError(
                f"jurisdiction {request.jurisdiction!r} is not an ISO 3166 code such as DE,"
                " US-CA or EU"
            )
        ip, user_agent = self._evidence_policy(request.ip, request.user_agent)
        evidence = Evidence(
            source=request.source,
            actor=request.actor,
            jurisdiction=jurisdiction,
            notice_id=notice.id if notice else None,
            notice_version=notice.version if notice else None,
            notice_hash=notice.content_hash if notice else None,
            ip=ip,
            user_agent=user_agent,
            raw_signal=request.raw_signal,
        )
        seen: set[str] = set()
        out = []
        for item in request.events:
            purpose = purposes.get(item.purpose) or self.catalog.purpose(tenant, item.purpose)
            if purpose is None:
                known = ", ".join(sorted(purposes)) or "none yet: create one with POST /v1/purposes"
                raise ValidationError(f"unknown purpose {item.purpose!r}; known purposes: {known}")
            if item.purpose in seen:
                raise ValidationError(
                    f"purpose {item.purpose!r} appears twice in one request; send one decision"
                    " per purpose"
                )
            seen.add(item.purpose)
            validate_action(purpose, item.action)
            if notice is not None and purpose.id not in notice.purposes:
                raise ValidationError(
                    f"notice {notice.id!r} version {notice.version} does not cover purpose"
                    f" {purpose.id!r}: the person was not told about it"
                )
            out.append(
                NewEvent(
                    event_id=item.event_id or uuid.uuid4(),
                    tenant=tenant,
                    subject=subject,
                    purpose=purpose.id,
                    action=item.action,
                    legal_basis=purpose.legal_basis,
                    occurred_at=occurred_at,
                    evidence=evidence,
                    expires_at=_expiry(purpose, item.action, occurred_at),
                )
            )
        return out

    def _notice(self, tenant: str, request: ConsentRequest) -> Notice | None:
        if request.notice_id is None:
            if request.notice_version is not None:
                raise ValidationError("notice.version was given without notice.id")
            return None
        versions = self.catalog.notices(tenant, request.notice_id)
        if not versions:
            raise NotFoundError(f"notice {request.notice_id!r} does not exist")
        if request.notice_version is None:
            raise ValidationError(
                f"notice {request.notice_id!r}: give the version the person was shown"
            )
        for notice in versions:
            if notice.version == request.notice_version:
                return notice
        raise ValidationError(
            f"notice {request.notice_id!r} has no version {request.notice_version}; published"
            f" versions: {', '.join(str(n.version) for n in versions)}"
        )

    def _evidence_policy(
        self, ip: str | None, user_agent: str | None
    ) -> tuple[str | None, str | None]:
        policy = self.settings.evidence_policy
        if policy is EvidencePolicy.NONE:
            return None, None
        if ip is not None:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError as exc:
                raise ValidationError(f"evidence.ip {ip!r} is not an IP address") from exc
            if policy is EvidencePolicy.TRUNCATED:
                prefix = 24 if address.version == 4 else 48
                ip = str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
            else:
                ip = str(address)
        if user_agent is not None:
            user_agent = user_agent[:MAX_USER_AGENT_LENGTH]
        return ip, user_agent

    # Catalogue writes --------------------------------------------------------------------
    def add_purpose(self, tenant: str, purpose: Purpose) -> bool:
        created = self.store.add_purpose(tenant, purpose)
        self.catalog.invalidate(tenant)
        return created

    def add_notice(self, tenant: str, notice: Notice) -> bool:
        purposes = self.catalog.purposes(tenant)
        missing = [p for p in notice.purposes if p not in purposes]
        if missing:
            raise ValidationError(
                f"notice {notice.id!r} covers unknown purposes: {', '.join(missing)}; create"
                " them first with POST /v1/purposes"
            )
        if notice.published_at > self.clock() + timedelta(
            seconds=self.settings.max_clock_skew_seconds
        ):
            raise ValidationError("published_at is in the future")
        created = self.store.add_notice(tenant, notice)
        self.catalog.invalidate(tenant)
        return created


def _expiry(purpose: Purpose, action: Action, occurred_at: datetime) -> datetime | None:
    if purpose.lifetime_days is None or action not in (Action.GIVEN, Action.OPTED_IN):
        return None
    return occurred_at + timedelta(days=purpose.lifetime_days)


def _valid_jurisdiction(code: str) -> bool:
    country, _, region = code.partition("-")
    if not (country.isalpha() and 2 <= len(country) <= 3):
        return False
    return not region or (region.isalnum() and 1 <= len(region) <= 3)
