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
from consentry.domain.inputs import check_jurisdiction, check_subject, check_text, check_time
from consentry.domain.notices import Notice
from consentry.domain.purposes import Purpose
from consentry.storage.base import AppendResult, ConsentStore
from consentry.storage.catalog import Catalog
from consentry.storage.sql import utcnow

MAX_USER_AGENT_LENGTH = 512
MAX_RAW_SIGNAL_LENGTH = 20_000

CommitListener = Callable[[str, AppendResult], None]


@dataclass(frozen=True, slots=True)
class EventRequest:
    """One decision of a request. `notice_id`/`notice_version` name the notice the person was
    shown for THIS purpose, when it is not the request's own (a banner or preference center
    whose purposes are covered by different notices sends one per purpose)."""

    purpose: str
    action: Action
    event_id: uuid.UUID | None = None
    notice_id: str | None = None
    notice_version: int | None = None


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
        for event in body["events"]:  # fields added later count only when set, so that a
            for name in ("notice_id", "notice_version"):  # key stored before keeps its hash
                if event[name] is None:
                    del event[name]
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
        subject = check_subject(request.subject)
        if not request.events:
            raise ValidationError("events must contain at least one event")
        if len(request.events) > self.settings.max_batch_events:
            raise ValidationError(
                f"a request carries at most {self.settings.max_batch_events} events, this one"
                f" has {len(request.events)}: split it"
            )
        now = self.clock()
        occurred_at = check_time(
            "occurred_at",
            request.occurred_at or now,
            now=now,
            skew_seconds=self.settings.max_clock_skew_seconds,
        )
        purposes = self.catalog.purposes(tenant)
        jurisdiction = (
            check_jurisdiction(request.jurisdiction) if request.jurisdiction is not None else None
        )
        if request.raw_signal is not None:
            check_text("raw_signal", request.raw_signal, max_length=MAX_RAW_SIGNAL_LENGTH)
        ip, user_agent = self._evidence_policy(request.ip, request.user_agent)
        default_notice = self._notice(
            tenant, request.notice_id, request.notice_version, occurred_at, "notice"
        )
        evidence: dict[Notice | None, Evidence] = {}
        seen: set[str] = set()
        out = []
        for index, item in enumerate(request.events):
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
            notice = default_notice
            if item.notice_id is not None or item.notice_version is not None:
                notice = self._notice(
                    tenant,
                    item.notice_id,
                    item.notice_version,
                    occurred_at,
                    f"events[{index}].notice",
                )
            if notice is not None and purpose.id not in notice.purposes:
                raise ValidationError(
                    f"notice {notice.id!r} version {notice.version} does not cover purpose"
                    f" {purpose.id!r}: the person was not told about it"
                )
            if notice not in evidence:
                evidence[notice] = Evidence(
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
            out.append(
                NewEvent(
                    event_id=item.event_id or uuid.uuid4(),
                    tenant=tenant,
                    subject=subject,
                    purpose=purpose.id,
                    action=item.action,
                    legal_basis=purpose.legal_basis,
                    occurred_at=occurred_at,
                    evidence=evidence[notice],
                    expires_at=_expiry(purpose, item.action, occurred_at),
                    occurred_at_given=request.occurred_at is not None,
                )
            )
        return out

    def _notice(
        self,
        tenant: str,
        notice_id: str | None,
        version: int | None,
        occurred_at: datetime,
        field: str,
    ) -> Notice | None:
        """The notice version a request names, shown no earlier than it was published."""
        if notice_id is None:
            if version is not None:
                raise ValidationError(f"{field}.version was given without {field}.id")
            return None
        versions = self.catalog.notices(tenant, notice_id)
        if not versions:  # published a moment ago through another worker?
            self.catalog.invalidate(tenant)
            versions = self.catalog.notices(tenant, notice_id)
        if not versions:
            raise NotFoundError(f"notice {notice_id!r} does not exist")
        if version is None:
            raise ValidationError(f"notice {notice_id!r}: give the version the person was shown")
        for notice in versions:
            if notice.version == version:
                if notice.published_at > occurred_at:
                    raise ValidationError(
                        f"notice {notice_id!r} version {version} was published at"
                        f" {format_time(notice.published_at)}, after occurred_at"
                        f" {format_time(occurred_at)}: the person cannot have been shown it"
                    )
                return notice
        raise ValidationError(
            f"notice {notice_id!r} has no version {version}; published"
            f" versions: {', '.join(str(n.version) for n in versions)}"
        )

    def _evidence_policy(
        self, ip: str | None, user_agent: str | None
    ) -> tuple[str | None, str | None]:
        policy = self.settings.evidence_policy
        if policy is EvidencePolicy.NONE:
            return None, None
        if ip is not None:
            check_text("evidence.ip", ip)
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
            check_text("evidence.user_agent", user_agent)
            user_agent = user_agent[:MAX_USER_AGENT_LENGTH]
        return ip, user_agent

    # Catalogue writes --------------------------------------------------------------------
    def add_purpose(self, tenant: str, purpose: Purpose) -> bool:
        purpose.check_input()
        created = self.store.add_purpose(tenant, purpose)
        self.catalog.invalidate(tenant)
        return created

    def add_notice(self, tenant: str, notice: Notice) -> bool:
        notice.check_input()
        now = self.clock()
        check_time(
            "published_at",
            notice.published_at,
            now=now,
            skew_seconds=self.settings.max_clock_skew_seconds,
        )
        purposes = self.catalog.purposes(tenant)
        missing = [p for p in notice.purposes if p not in purposes]
        if missing:
            raise ValidationError(
                f"notice {notice.id!r} covers unknown purposes: {', '.join(missing)}; create"
                " them first with POST /v1/purposes"
            )
        created = self.store.add_notice(tenant, notice)
        self.catalog.invalidate(tenant)
        return created


def _expiry(purpose: Purpose, action: Action, occurred_at: datetime) -> datetime | None:
    if purpose.lifetime_days is None or action not in (Action.GIVEN, Action.OPTED_IN):
        return None
    return occurred_at + timedelta(days=purpose.lifetime_days)
