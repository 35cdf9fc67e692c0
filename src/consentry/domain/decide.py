"""decide(): the answer to "may we process this person's data for this purpose, now?".

A pure function of the purpose, the latest event for (subject, purpose), the regime, the time,
the material notice changes and the request's signals. The server, the in-process replica and the
consumers all call this one function, so they cannot disagree. Every answer names its reason and
the position of the event behind it (invariant 6); the absence of an event denies consent-based
purposes in opt-in regimes (invariant 5).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from consentry.domain.events import Action, Actor, RecordedEvent, Source
from consentry.domain.notices import MaterialChange
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.domain.regimes import Regime, consent_age


class Reason(StrEnum):
    GRANTED = "granted"
    NOT_GIVEN = "not_given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    RECONSENT_REQUIRED = "reconsent_required"
    OBJECTED = "objected"
    OPTED_OUT = "opted_out"
    GPC_OPT_OUT = "gpc_opt_out"
    NOT_OPTED_OUT = "not_opted_out"
    LEGITIMATE_INTEREST = "legitimate_interest"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    REQUIRED = "required"
    GUARDIAN_REQUIRED = "guardian_required"
    UNAVAILABLE = "unavailable"


RECONSENT_PENDING = "reconsent_pending"
"""Restriction: a material notice change awaits re-consent; the old consent stands until then."""

US_MINOR_OPT_IN_AGE = 16
"""CPRA: selling or sharing the data of a consumer under 16 needs their (or a parent's) opt-in."""


@dataclass(frozen=True, slots=True)
class StateEntry:
    """The latest event of one (subject, purpose): all that deciding needs of it."""

    position: int
    action: Action
    occurred_at: datetime
    recorded_at: datetime
    source: Source
    actor: Actor
    jurisdiction: str | None
    notice_id: str | None
    notice_version: int | None

    @classmethod
    def of(cls, event: RecordedEvent) -> StateEntry:
        e = event.evidence
        return cls(
            position=event.position,
            action=event.action,
            occurred_at=event.occurred_at,
            recorded_at=event.recorded_at,
            source=e.source,
            actor=e.actor,
            jurisdiction=e.jurisdiction,
            notice_id=e.notice_id,
            notice_version=e.notice_version,
        )


@dataclass(frozen=True, slots=True)
class Signals:
    """What the request itself says about the person: GPC, age, where they are."""

    gpc: bool = False
    age: int | None = None
    jurisdiction: str | None = None


NO_SIGNALS = Signals()


@dataclass(frozen=True, slots=True)
class Decision:
    subject: str
    purpose: str
    permitted: bool
    reason: Reason
    basis: LegalBasis | None
    position: int | None
    notice_version: int | None
    decided_at: datetime
    valid_until: datetime | None = None
    restrictions: tuple[str, ...] = ()


def unavailable(subject: str, purpose: str, now: datetime) -> Decision:
    """The answer when deciding failed: never permitted by accident (invariant 5)."""
    return Decision(subject, purpose, False, Reason.UNAVAILABLE, None, None, None, now)


_DENIALS = {
    Action.REFUSED: Reason.REFUSED,
    Action.WITHDRAWN: Reason.WITHDRAWN,
    Action.OBJECTED: Reason.OBJECTED,
    Action.OPTED_OUT: Reason.OPTED_OUT,
}


def decide(
    subject: str,
    purpose: Purpose,
    entry: StateEntry | None,
    *,
    now: datetime,
    regime: Regime,
    changes: tuple[MaterialChange, ...] = (),
    signals: Signals = NO_SIGNALS,
) -> Decision:
    """Decide one (subject, purpose) at `now`; see the module docstring for the guarantees."""
    basis = purpose.legal_basis
    position = entry.position if entry else None
    notice_version = entry.notice_version if entry else None

    def answer(
        permitted: bool,
        reason: Reason,
        valid_until: datetime | None = None,
        restrictions: tuple[str, ...] = (),
    ) -> Decision:
        return Decision(
            subject,
            purpose.id,
            permitted,
            reason,
            basis,
            position,
            notice_version,
            now,
            valid_until,
            restrictions,
        )

    if basis is LegalBasis.CONTRACT:
        return answer(True, Reason.CONTRACT)
    if basis is LegalBasis.LEGAL_OBLIGATION:
        return answer(True, Reason.LEGAL_OBLIGATION)
    if basis is LegalBasis.LEGITIMATE_INTEREST:
        if entry is not None and entry.action is Action.OBJECTED:
            return answer(False, Reason.OBJECTED)
        return answer(True, Reason.LEGITIMATE_INTEREST)
    if purpose.required:
        return answer(True, Reason.REQUIRED)

    minor = signals.age is not None and signals.age < consent_age(signals.jurisdiction)
    opt_out_default = (
        regime is Regime.OPT_OUT
        and purpose.opt_out_category is not None
        and not (signals.age is not None and signals.age < US_MINOR_OPT_IN_AGE)
    )
    if opt_out_default and signals.gpc:
        return answer(False, Reason.GPC_OPT_OUT)

    if entry is None:
        if opt_out_default:
            return answer(True, Reason.NOT_OPTED_OUT)
        return answer(False, Reason.NOT_GIVEN)

    denial = _DENIALS.get(entry.action)
    if denial is not None:
        if entry.source is Source.GPC and denial is Reason.OPTED_OUT:
            denial = Reason.GPC_OPT_OUT
        return answer(False, denial)

    # given or opted_in from here on.
    if minor and entry.actor is not Actor.GUARDIAN:
        return answer(False, Reason.GUARDIAN_REQUIRED)

    valid_until: datetime | None = None
    if purpose.lifetime_days is not None:
        valid_until = entry.occurred_at + timedelta(days=purpose.lifetime_days)
        if now >= valid_until:
            return answer(False, Reason.EXPIRED)

    restrictions: tuple[str, ...] = ()
    for change in changes:
        if change.published_at > now or _covers(entry, change):
            continue
        if now >= change.grace_until:
            return answer(False, Reason.RECONSENT_REQUIRED)
        restrictions = (RECONSENT_PENDING,)
        if valid_until is None or change.grace_until < valid_until:
            valid_until = change.grace_until
    return answer(True, Reason.GRANTED, valid_until, restrictions)


def _covers(entry: StateEntry, change: MaterialChange) -> bool:
    """Whether the consent in `entry` was given knowing the material change.

    Same notice: by version. Otherwise (another notice, or none recorded): by legal time.
    """
    if entry.notice_id == change.notice_id and entry.notice_version is not None:
        return entry.notice_version >= change.version
    return entry.occurred_at >= change.published_at
