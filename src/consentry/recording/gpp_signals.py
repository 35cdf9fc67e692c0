"""What a GPP string's sections say, for the mapping in signals_in: US categories and TCF Canada.

Each US section (usnat and the state sections) carries its own set of fields; this module
reads them into one vocabulary, :class:`UsSignal`, so a tenant maps a purpose once ("ads:
sale, targeted_advertising") and every section answers for it. It also decides which US
section applies to a request (docs/signals.md, "Which US section applies").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Protocol

from consentry.domain.events import Action, RecordedEvent
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.recording.service import EventRequest
from consentry.signals import gpp, tcf

__all__ = [
    "GPC_SIGNALS",
    "SECTION_FIELDS",
    "UsMapping",
    "UsSignal",
    "applicable_us_sections",
    "negative",
    "section_flags",
    "tcfca_summary",
    "us_events",
    "uspv1_flags",
    "verdict",
]


class UsSignal(StrEnum):
    """A US category a purpose can be mapped to: the three opt-out categories of
    :class:`~consentry.domain.purposes.OptOutCategory`, plus the sensitive-data and
    known-child categories the sections carry as per-category lists."""

    SALE = OptOutCategory.SALE.value
    SHARING = OptOutCategory.SHARING.value
    TARGETED_ADVERTISING = OptOutCategory.TARGETED_ADVERTISING.value
    SENSITIVE_DATA = "sensitive_data"
    KNOWN_CHILD = "known_child"


#: GPC is a "do not sell or share" signal: it opts out of these, not of sensitive data.
GPC_SIGNALS = frozenset({UsSignal.SALE, UsSignal.SHARING, UsSignal.TARGETED_ADVERTISING})

_DEFAULT_FIELDS: Mapping[UsSignal, tuple[str, ...]] = {
    UsSignal.SALE: ("SaleOptOut",),
    UsSignal.SHARING: ("SharingOptOut",),
    UsSignal.TARGETED_ADVERTISING: ("TargetedAdvertisingOptOut",),
    UsSignal.SENSITIVE_DATA: ("SensitiveDataProcessing",),
    UsSignal.KNOWN_CHILD: ("KnownChildSensitiveDataConsents",),
}
# California has no targeted-advertising field: CPRA's "sharing" is cross-context behavioural
# advertising, so its SharingOptOut answers for targeted advertising too.
_OVERRIDES: Mapping[str, Mapping[UsSignal, tuple[str, ...]]] = {
    "usca": {UsSignal.TARGETED_ADVERTISING: ("SharingOptOut",)},
}

#: Per US section: which of its fields answer for each category (a field it lacks is absent).
SECTION_FIELDS: Mapping[str, Mapping[UsSignal, tuple[str, ...]]] = {
    cls.NAME: {
        signal: tuple(
            f
            for f in {**_DEFAULT_FIELDS, **_OVERRIDES.get(cls.NAME, {})}[signal]
            if f in cls.kinds(max(cls.VERSIONS))
        )
        for signal in UsSignal
    }
    for cls in gpp.US_SECTIONS
}


def section_flags(section: gpp.UsSection) -> dict[UsSignal, tuple[int, ...]]:
    """Every value the section gives for each category (0 n/a, 1 opted out / no consent,
    2 did not opt out / consent); lists contribute one value per data category."""
    out: dict[UsSignal, tuple[int, ...]] = {}
    for signal, names in SECTION_FIELDS[section.NAME].items():
        values: list[int] = []
        for name in names:
            value = getattr(section, name)
            values.extend(value if isinstance(value, tuple) else (value,))
        out[signal] = tuple(values)
    return out


def uspv1_flags(section: gpp.UspV1) -> dict[UsSignal, tuple[int, ...]]:
    """The CCPA string says only whether the person opted out of sale."""
    return {UsSignal.SALE: ({"Y": 1, "N": 2}.get(section.OptOutSale, 0),)}


def verdict(values: Sequence[int]) -> int:
    """One category's answer: 1 if any value is 1, 2 if every applicable value is 2, else 0
    (not applicable, or an undefined value read leniently)."""
    if 1 in values:
        return 1
    applicable = [v for v in values if v != 0]
    return 2 if applicable and all(v == 2 for v in applicable) else 0


def applicable_us_sections(
    decoded: gpp.GPPString, jurisdiction: str | None
) -> tuple[gpp.UsSection, ...]:
    """The US sections whose answer counts: the state section of the request's jurisdiction
    when the string has it; else usnat; else every state section present (the most protective
    answer wins when they disagree)."""
    sections = decoded.us_sections()
    if jurisdiction:
        code = jurisdiction.upper()
        for section in sections:
            if code == section.JURISDICTION and section.NAME != "usnat":
                return (section,)
    if decoded.usnat is not None:
        return (decoded.usnat,)
    return sections


# --------------------------------------------------------------------------- implied events

_POSITIVE = frozenset({Action.GIVEN, Action.OPTED_IN})


def negative(current: RecordedEvent | None) -> Action:
    """Refused, or withdrawn when the person had consented before."""
    if current is not None and current.action in _POSITIVE:
        return Action.WITHDRAWN
    return Action.REFUSED


class UsMapping(Protocol):
    """The one thing US events need of a tenant's mapping."""

    def us_signals(self, purpose: Purpose) -> tuple[UsSignal, ...]: ...


def us_events(
    flags: Mapping[UsSignal, Sequence[int]],
    gpc: bool,
    mapping: UsMapping,
    purposes: Mapping[str, Purpose],
    state: Mapping[str, RecordedEvent],
) -> list[EventRequest]:
    """Events from US section values per category (0 n/a, 1 opted out, 2 did not opt out)."""
    out = []
    for purpose in sorted(purposes.values(), key=lambda p: p.id):
        if purpose.required or purpose.legal_basis is not LegalBasis.CONSENT:
            continue
        signals = mapping.us_signals(purpose)
        if not signals:
            continue
        verdicts = [verdict(flags.get(s, ())) for s in signals]
        if (gpc and any(s in GPC_SIGNALS for s in signals)) or 1 in verdicts:
            opted_out: bool | None = True
        elif all(v == 2 for v in verdicts):
            opted_out = False
        else:
            opted_out = None
        if opted_out is None:
            continue
        current = state.get(purpose.id)
        if purpose.opt_out_category is not None:
            out.append(EventRequest(purpose.id, Action.OPTED_OUT if opted_out else Action.OPTED_IN))
        elif opted_out:
            out.append(EventRequest(purpose.id, negative(current)))
    return out


def tcfca_summary(section: gpp.TcfCaV1) -> tcf.ConsentSummary:
    """TCF Canada as TCF signals: express or implied consent both count as consent."""

    def ids(*flags: tuple[bool, ...]) -> frozenset[int]:
        return frozenset(i + 1 for f in flags for i, on in enumerate(f) if on)

    s = section
    return tcf.ConsentSummary(
        purposes_consented=ids(s.PurposesExpressConsent, s.PurposesImpliedConsent),
        purposes_legitimate_interest=frozenset(),
        special_features_opted_in=ids(s.SpecialFeatureExpressConsent),
        publisher_purposes_consented=ids(s.PubPurposesExpressConsent, s.PubPurposesImpliedConsent),
        publisher_purposes_legitimate_interest=frozenset(),
        custom_purposes_consented=ids(
            s.CustomPurposesExpressConsent, s.CustomPurposesImpliedConsent
        ),
        custom_purposes_legitimate_interest=frozenset(),
    )
