"""The JSON shapes of what can be recorded, shared by the API, the CLI and the commands topic.

Unknown fields are refused and types are strict where coercion would hide a client's bug (a
boolean sent as "yes", a version sent as "2", a time sent as the number 0): a consent log must
store what was meant. The value types below (Subject, Line, Text, Timestamp, Jurisdiction) apply
the domain's input rules (domain/inputs.py) at the boundary, so that an error names its field;
the recorder applies the same rules again for the channels that do not come through here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from consentry.domain.errors import ValidationError
from consentry.domain.events import Action, Actor, Source
from consentry.domain.inputs import (
    MAX_STORED_INT,
    MAX_SUBJECT_LENGTH,
    check_jurisdiction,
    check_subject,
    check_text,
    parse_timestamp,
)
from consentry.domain.notices import DEFAULT_GRACE_DAYS
from consentry.domain.purposes import LegalBasis, OptOutCategory
from consentry.recording.service import ConsentRequest, EventRequest


def rule(check: Callable[[Any], Any], *, keep: bool = False) -> AfterValidator:
    """A domain input rule as a pydantic validator: its ValidationError becomes the field's
    error. With `keep`, the value is kept as sent (the rule only checks it)."""

    def run(value: Any) -> Any:
        try:
            checked = check(value)
        except ValidationError as exc:
            raise ValueError(str(exc)) from None
        return value if keep else checked

    return AfterValidator(run)


def _timestamp(value: Any) -> Any:
    try:
        return parse_timestamp("time", value)
    except ValidationError as exc:
        raise ValueError(str(exc)) from None


#: A subject (docs/model.md, Subjects): 1-256 characters, NFC, no control or format characters.
Subject = Annotated[
    StrictStr, Field(min_length=1, max_length=MAX_SUBJECT_LENGTH), rule(check_subject)
]
#: One line of text: no control character (NUL included).
Line = Annotated[StrictStr, rule(lambda v: check_text("text", v))]
#: Text of several lines: tab and line breaks allowed, no other control character.
Text = Annotated[StrictStr, rule(lambda v: check_text("text", v, multiline=True))]
Identifier = Annotated[Line, Field(min_length=1, max_length=64)]
#: An RFC 3339 string with an offset; never a number (0 is not "1970").
Timestamp = Annotated[AwareDatetime, BeforeValidator(_timestamp)]
#: An ISO 3166 code in ASCII (DE, US-CA, EU), kept as sent (the recorder normalizes it).
Jurisdiction = Annotated[StrictStr, Field(max_length=8), rule(check_jurisdiction, keep=True)]
#: An integer every backend can store (PostgreSQL INTEGER).
Version = Annotated[StrictInt, Field(ge=1, le=MAX_STORED_INT)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoticeRef(Strict):
    id: Identifier
    version: Version


class EvidenceBody(Strict):
    ip: Annotated[Line, Field(max_length=64)] | None = None
    user_agent: Annotated[Line, Field(max_length=2048)] | None = None


class EventBody(Strict):
    purpose: Identifier
    action: Action
    event_id: uuid.UUID | None = None
    notice: NoticeRef | None = Field(
        None,
        description="The notice shown for this purpose, when it is not the request's `notice`.",
    )


class ConsentBody(Strict):
    """POST /v1/consents: one subject's decisions on one or more purposes."""

    subject: Subject
    source: Source = Source.API
    jurisdiction: Jurisdiction | None = None
    notice: NoticeRef | None = None
    occurred_at: Timestamp | None = None
    evidence: EvidenceBody | None = None
    actor: Actor = Actor.SUBJECT
    events: Annotated[list[EventBody], Field(min_length=1)] | None = None
    # Signals in (issue 6): instead of events, a TC or GPP string whose implied events are
    # recorded for the tenant's mapped purposes (recording/signals_in.py).
    tc_string: Annotated[Line, Field(min_length=1, max_length=20_000)] | None = None
    gpp_string: Annotated[Line, Field(min_length=1, max_length=20_000)] | None = None

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
            events=[
                EventRequest(
                    e.purpose,
                    e.action,
                    e.event_id,
                    notice_id=e.notice.id if e.notice else None,
                    notice_version=e.notice.version if e.notice else None,
                )
                for e in self.events or ()
            ],
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
    name: Annotated[Line, Field(min_length=1, max_length=200)]
    description: Annotated[Text, Field(max_length=10_000)] = ""
    legal_basis: LegalBasis
    required: StrictBool = False
    lifetime_days: Annotated[StrictInt, Field(ge=1, le=36_500)] | None = None
    opt_out_category: OptOutCategory | None = None


class NoticeBody(Strict):
    """POST /v1/notices: one new version of a notice."""

    id: Identifier
    version: Version
    text: Annotated[Text, Field(min_length=1, max_length=200_000)]
    purposes: Annotated[list[Identifier], Field(min_length=1)]
    material: StrictBool = False
    grace_days: Annotated[StrictInt, Field(ge=0, le=3650)] = DEFAULT_GRACE_DAYS
    published_at: Timestamp | None = None


class CheckBody(Strict):
    subject: Subject
    purpose: Identifier


class DecisionsBody(Strict):
    """POST /v1/decisions: a batch of checks answered together."""

    checks: Annotated[list[CheckBody], Field(min_length=1)]
    min_token: StrictStr | StrictInt | None = None
    jurisdiction: Annotated[StrictStr, Field(max_length=8)] | None = None
