"""The JSON shapes of what can be recorded, shared by the API, the CLI and the commands topic.

Unknown fields are refused and types are strict where coercion would hide a client's bug (a
boolean sent as "yes", a version sent as "2"): a consent log must store what was meant.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from consentry.domain.events import Action, Actor, Source
from consentry.domain.notices import DEFAULT_GRACE_DAYS
from consentry.domain.purposes import LegalBasis, OptOutCategory
from consentry.recording.service import ConsentRequest, EventRequest

Subject = Annotated[StrictStr, Field(min_length=1, max_length=256)]
Identifier = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoticeRef(Strict):
    id: Identifier
    version: Annotated[StrictInt, Field(ge=1)]


class EvidenceBody(Strict):
    ip: StrictStr | None = None
    user_agent: Annotated[StrictStr, Field(max_length=2048)] | None = None


class EventBody(Strict):
    purpose: Identifier
    action: Action
    event_id: uuid.UUID | None = None


class ConsentBody(Strict):
    """POST /v1/consents: one subject's decisions on one or more purposes."""

    subject: Subject
    source: Source = Source.API
    jurisdiction: Annotated[StrictStr, Field(max_length=8)] | None = None
    notice: NoticeRef | None = None
    occurred_at: AwareDatetime | None = None
    evidence: EvidenceBody | None = None
    actor: Actor = Actor.SUBJECT
    events: Annotated[list[EventBody], Field(min_length=1)] | None = None
    # Signals in (issue 6): instead of events, a TC or GPP string whose implied events are
    # recorded for the tenant's mapped purposes (recording/signals_in.py).
    tc_string: Annotated[StrictStr, Field(min_length=1, max_length=20_000)] | None = None
    gpp_string: Annotated[StrictStr, Field(min_length=1, max_length=20_000)] | None = None

    @model_validator(mode="after")
    def _one_kind_of_input(self) -> ConsentBody:
        given = [n for n in ("events", "tc_string", "gpp_string") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of events, tc_string or gpp_string"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    def to_request(self, *, raw_signal: str | None = None) -> ConsentRequest:
        return ConsentRequest(
            subject=self.subject,
            source=self.source,
            events=[EventRequest(e.purpose, e.action, e.event_id) for e in self.events or ()],
            jurisdiction=self.jurisdiction,
            notice_id=self.notice.id if self.notice else None,
            notice_version=self.notice.version if self.notice else None,
            occurred_at=self.occurred_at,
            ip=self.evidence.ip if self.evidence else None,
            user_agent=self.evidence.user_agent if self.evidence else None,
            actor=self.actor,
            raw_signal=raw_signal,
        )


class PurposeBody(Strict):
    """POST /v1/purposes."""

    id: Identifier
    name: Annotated[StrictStr, Field(min_length=1, max_length=200)]
    description: Annotated[StrictStr, Field(max_length=10_000)] = ""
    legal_basis: LegalBasis
    required: StrictBool = False
    lifetime_days: Annotated[StrictInt, Field(ge=1, le=36_500)] | None = None
    opt_out_category: OptOutCategory | None = None


class NoticeBody(Strict):
    """POST /v1/notices: one new version of a notice."""

    id: Identifier
    version: Annotated[StrictInt, Field(ge=1)]
    text: Annotated[StrictStr, Field(min_length=1, max_length=200_000)]
    purposes: Annotated[list[Identifier], Field(min_length=1)]
    material: StrictBool = False
    grace_days: Annotated[StrictInt, Field(ge=0, le=3650)] = DEFAULT_GRACE_DAYS
    published_at: AwareDatetime | None = None


class CheckBody(Strict):
    subject: Subject
    purpose: Identifier


class DecisionsBody(Strict):
    """POST /v1/decisions: a batch of checks answered together."""

    checks: Annotated[list[CheckBody], Field(min_length=1)]
    min_token: StrictStr | StrictInt | None = None
    jurisdiction: Annotated[StrictStr, Field(max_length=8)] | None = None
