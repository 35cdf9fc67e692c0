"""Signals in: turn a TC string or a GPP string into events for the tenant's own purposes.

A certified CMP (or our own banner) speaks IAB: TCF purposes 1-11, special features, US opt-out
flags. A tenant's purposes are its own ("analytics", "ads"). The per-tenant *signal mapping* says
which IAB signals each purpose rests on, and which Google Consent Mode types it stands behind:

    {"purposes": {
        "ads":       {"tcf_purposes": [1, 2, 3, 4], "us_opt_out": ["sale", "sharing",
                      "targeted_advertising"], "consent_mode": ["ad_storage", "ad_user_data",
                      "ad_personalization"]},
        "analytics": {"tcf_purposes": [1, 7, 8, 9], "consent_mode": ["analytics_storage"]}}}

Rules (docs/collection.md explains them with examples):
- TCF, consent-based purpose: given when the string consents to *every* TCF purpose, special
  feature and publisher purpose it is mapped to; otherwise refused (withdrawn if it was given).
- TCF, legitimate-interest purpose: objected when a mapped purpose's LI bit is off; a set bit
  lifts an earlier objection (given) and records nothing otherwise.
- US (GPP usnat, any state section, or uspv1 for sale): a purpose is mapped to the categories
  in `us_opt_out` (sale, sharing, targeted_advertising, sensitive_data, known_child), or by
  default to its own `opt_out_category`. Which US section applies: recording/gpp_signals.py.
  Opted out when any mapped category is opted out (for a per-category list: any entry) or the
  section's GPC flag is set (sale, sharing, targeted advertising); opted in when every mapped
  category is "did not opt out"; nothing when a category is "not applicable". A consent purpose
  without an opt_out_category records refused/withdrawn on an opt-out and nothing otherwise
  (not opting out is not consent).
- A GPP string's tcfeuv2 section follows the TCF rules; tcfcav1 too, express or implied consent
  counting as consent (Canada has no legitimate-interest basis: LI purposes are left alone).
The raw string is kept as the events' evidence (`raw_signal`) with source `tcf` or `gpp`; when
only US sections spoke and one section applied, the request's jurisdiction defaults to that
section's (usca: US-CA, usnat: US), so the evidence says which law the string was read under.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from consentry.domain.errors import ValidationError
from consentry.domain.events import Action, RecordedEvent, Source
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.recording.gpp_signals import (
    GPC_SIGNALS,
    UsSignal,
    applicable_us_sections,
    negative,
    section_flags,
    tcfca_summary,
    us_events,
    uspv1_flags,
)
from consentry.recording.schema import ConsentBody
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.signals import gpp, tcf
from consentry.signals.consent_mode import CONSENT_TYPES
from consentry.storage.base import ConsentStore
from consentry.storage.catalog import Catalog
from consentry.storage.collection import CollectionStore, SettingsKind

TCF_PURPOSE_IDS = range(1, 25)
TCF_SPECIAL_FEATURE_IDS = range(1, 13)
MAX_TC_STRING = 20_000


@dataclass(frozen=True, slots=True)
class PurposeMapping:
    """What one tenant purpose rests on in the IAB signals and stands behind in Consent Mode."""

    purpose: str
    tcf_purposes: tuple[int, ...] = ()
    tcf_special_features: tuple[int, ...] = ()
    tcf_publisher_purposes: tuple[int, ...] = ()
    us_opt_out: tuple[UsSignal, ...] = ()
    consent_mode: tuple[str, ...] = ()

    @property
    def maps_tcf(self) -> bool:
        return bool(self.tcf_purposes or self.tcf_special_features or self.tcf_publisher_purposes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tcf_purposes": list(self.tcf_purposes),
            "tcf_special_features": list(self.tcf_special_features),
            "tcf_publisher_purposes": list(self.tcf_publisher_purposes),
            "us_opt_out": [c.value for c in self.us_opt_out],
            "consent_mode": list(self.consent_mode),
        }


@dataclass(frozen=True, slots=True)
class SignalMapping:
    """A tenant's mapping; `version` 0 means none was ever set."""

    purposes: tuple[PurposeMapping, ...] = ()
    version: int = 0
    _index: dict[str, PurposeMapping] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._index.update({m.purpose: m for m in self.purposes})

    def get(self, purpose: str) -> PurposeMapping | None:
        return self._index.get(purpose)

    def to_dict(self) -> dict[str, Any]:
        return {"purposes": {m.purpose: m.to_dict() for m in self.purposes}}

    @classmethod
    def from_dict(cls, body: Mapping[str, Any], version: int = 0) -> SignalMapping:
        """Read the stored/API form; shape errors raise ValidationError naming the field."""
        raw = body.get("purposes", {})
        if not isinstance(raw, Mapping):
            raise ValidationError("purposes must be an object {purpose id: mapping}")
        out = []
        for pid, entry in sorted(raw.items()):
            if not isinstance(entry, Mapping):
                raise ValidationError(f"purposes.{pid} must be an object")
            unknown = set(entry) - set(PurposeMapping.__dataclass_fields__) - {"purpose"}
            if unknown:
                raise ValidationError(
                    f"purposes.{pid}: unknown field(s) {', '.join(sorted(unknown))}; known:"
                    " tcf_purposes, tcf_special_features, tcf_publisher_purposes, us_opt_out,"
                    " consent_mode"
                )
            try:
                categories = tuple(UsSignal(c) for c in _items(entry, "us_opt_out", pid))
            except ValueError as exc:
                raise ValidationError(
                    f"purposes.{pid}.us_opt_out: {exc}; use {', '.join(UsSignal)}"
                ) from None
            out.append(
                PurposeMapping(
                    purpose=str(pid),
                    tcf_purposes=_ids(entry, "tcf_purposes", pid, TCF_PURPOSE_IDS),
                    tcf_special_features=_ids(
                        entry, "tcf_special_features", pid, TCF_SPECIAL_FEATURE_IDS
                    ),
                    tcf_publisher_purposes=_ids(
                        entry, "tcf_publisher_purposes", pid, TCF_PURPOSE_IDS
                    ),
                    us_opt_out=tuple(dict.fromkeys(categories)),
                    consent_mode=_consent_types(entry, pid),
                )
            )
        return cls(tuple(out), version)

    def validate(self, purposes: Mapping[str, Purpose]) -> None:
        """Refuse a mapping that names unknown purposes or could record meaningless events."""
        problems = []
        for m in self.purposes:
            purpose = purposes.get(m.purpose)
            if purpose is None:
                known = ", ".join(sorted(purposes)) or "none yet"
                problems.append(f"{m.purpose}: no such purpose (known: {known})")
                continue
            fixed = purpose.required or purpose.legal_basis in (
                LegalBasis.CONTRACT,
                LegalBasis.LEGAL_OBLIGATION,
            )
            if fixed and (m.maps_tcf or m.us_opt_out):
                problems.append(
                    f"{m.purpose}: a {'required' if purpose.required else purpose.legal_basis}"
                    " purpose cannot be refused, so it can only be mapped to consent_mode types"
                )
            if purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
                bad = sorted(set(m.tcf_purposes) & tcf.LI_FORBIDDEN_PURPOSES)
                if bad:
                    problems.append(
                        f"{m.purpose}: legitimate interest is not allowed for TCF purposes {bad}"
                        " (TCF 2.2+); map them to a consent-based purpose"
                    )
                if m.tcf_special_features:
                    problems.append(
                        f"{m.purpose}: special features need opt-in consent, not legitimate"
                        " interest"
                    )
                if m.us_opt_out:
                    problems.append(f"{m.purpose}: US opt-out categories apply to consent purposes")
        if problems:
            raise ValidationError("invalid signal mapping: " + "; ".join(problems))

    def us_signals(self, purpose: Purpose) -> tuple[UsSignal, ...]:
        """The US categories a purpose answers to: mapped ones, else its own category."""
        m = self.get(purpose.id)
        if m is not None and m.us_opt_out:
            return m.us_opt_out
        if purpose.opt_out_category is not None and purpose.legal_basis is LegalBasis.CONSENT:
            return (UsSignal(purpose.opt_out_category.value),)
        return ()

    def us_categories(self, purpose: Purpose) -> tuple[OptOutCategory, ...]:
        """The opt-out categories (sale, sharing, targeted advertising) among them: what a
        banner shows as US toggles and what GPC turns off."""
        return tuple(OptOutCategory(s.value) for s in self.us_signals(purpose) if s in GPC_SIGNALS)


def _items(entry: Mapping[str, Any], name: str, pid: str) -> list[Any]:
    value = entry.get(name, [])
    if not isinstance(value, list):
        raise ValidationError(f"purposes.{pid}.{name} must be a list")
    return value


def _ids(entry: Mapping[str, Any], name: str, pid: str, allowed: range) -> tuple[int, ...]:
    values = _items(entry, name, pid)
    for v in values:
        if not isinstance(v, int) or isinstance(v, bool) or v not in allowed:
            raise ValidationError(
                f"purposes.{pid}.{name}: {v!r} is not an id in {allowed.start}-{allowed.stop - 1}"
            )
    return tuple(sorted(set(values)))


def _consent_types(entry: Mapping[str, Any], pid: str) -> tuple[str, ...]:
    values = _items(entry, "consent_mode", pid)
    for v in values:
        if v not in CONSENT_TYPES:
            raise ValidationError(
                f"purposes.{pid}.consent_mode: {v!r} is not a Consent Mode type; use"
                f" {', '.join(CONSENT_TYPES)}"
            )
    return tuple(t for t in CONSENT_TYPES if t in values)


# --------------------------------------------------------------------------- implied events

_POSITIVE = frozenset({Action.GIVEN, Action.OPTED_IN})
_negative = negative


def tcf_events(
    summary: tcf.ConsentSummary,
    mapping: SignalMapping,
    purposes: Mapping[str, Purpose],
    state: Mapping[str, RecordedEvent],
    *,
    legitimate_interest: bool = True,
) -> list[EventRequest]:
    """The events a TC string implies for the mapped purposes (rules in the module docstring);
    ``legitimate_interest=False`` leaves LI purposes alone (TCF Canada has no LI signals)."""
    out = []
    for m in mapping.purposes:
        purpose = purposes.get(m.purpose)
        if purpose is None or not m.maps_tcf or purpose.required:
            continue
        if purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST and not legitimate_interest:
            continue
        current = state.get(purpose.id)
        if purpose.legal_basis is LegalBasis.CONSENT:
            ok = (
                set(m.tcf_purposes) <= summary.purposes_consented
                and set(m.tcf_special_features) <= summary.special_features_opted_in
                and set(m.tcf_publisher_purposes) <= summary.publisher_purposes_consented
            )
            out.append(EventRequest(purpose.id, Action.GIVEN if ok else _negative(current)))
        elif purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
            ok = set(m.tcf_purposes) <= summary.purposes_legitimate_interest and set(
                m.tcf_publisher_purposes
            ) <= (summary.publisher_purposes_legitimate_interest)
            if not ok:
                out.append(EventRequest(purpose.id, Action.OBJECTED))
            elif current is not None and current.action is Action.OBJECTED:
                out.append(EventRequest(purpose.id, Action.GIVEN))
    return out


@dataclass(frozen=True, slots=True)
class ImpliedEvents:
    """The events a string implies, and what of it was read: every section present, the US
    sections that applied, the section ids the codec does not know (kept in the raw string,
    reported, never acted on), and the jurisdiction the applied section speaks for."""

    events: list[EventRequest]
    sections: tuple[str, ...]
    applied: tuple[str, ...] = ()
    unknown_sections: tuple[int, ...] = ()
    jurisdiction: str | None = None

    def report(self) -> dict[str, Any]:
        """What the API answers about the string it read."""
        return {
            "sections": list(self.sections),
            "applied_us_sections": list(self.applied),
            "unknown_sections": list(self.unknown_sections),
        }


def events_from_tc_string(
    tc_string: str,
    mapping: SignalMapping,
    purposes: Mapping[str, Purpose],
    state: Mapping[str, RecordedEvent],
) -> ImpliedEvents:
    model = _decode_tc(tc_string, "tc_string")
    return ImpliedEvents(
        tcf_events(tcf.consent_summary(model), mapping, purposes, state), ("tcfeuv2",)
    )


def events_from_gpp_string(
    gpp_string: str,
    mapping: SignalMapping,
    purposes: Mapping[str, Purpose],
    state: Mapping[str, RecordedEvent],
    jurisdiction: str | None = None,
) -> ImpliedEvents:
    try:
        decoded = gpp.decode(gpp_string.strip())
    except gpp.GPPStringError as exc:
        raise ValidationError(f"gpp_string is not a valid GPP string: {exc}") from None
    tcf_found: list[EventRequest] = []
    if decoded.tcfeuv2 is not None:
        tcf_found += tcf_events(tcf.consent_summary(decoded.tcfeuv2), mapping, purposes, state)
    if decoded.tcfcav1 is not None:
        summary = tcfca_summary(decoded.tcfcav1)
        tcf_found += tcf_events(summary, mapping, purposes, state, legitimate_interest=False)
    applied = applicable_us_sections(decoded, jurisdiction)
    flags: dict[UsSignal, tuple[int, ...]] = {}
    for section in applied:
        for signal, values in section_flags(section).items():
            flags[signal] = flags.get(signal, ()) + values
    gpc = any(getattr(s, "Gpc", False) for s in applied)
    if not applied and decoded.uspv1 is not None:
        flags = uspv1_flags(decoded.uspv1)
    us_found = us_events(flags, gpc, mapping, purposes, state) if flags else []
    names = tuple(s.NAME for s in applied) or (("uspv1",) if flags else ())
    where = applied[0].JURISDICTION if len(applied) == 1 and us_found and not tcf_found else None
    return ImpliedEvents(
        _dedupe(tcf_found + us_found),
        decoded.section_names(),
        names,
        decoded.unknown_section_ids,
        where,
    )


def _decode_tc(text: str, field_name: str) -> tcf.TCModel:
    if len(text) > MAX_TC_STRING:
        raise ValidationError(f"{field_name} is longer than {MAX_TC_STRING} characters")
    try:
        return tcf.decode(text.strip())
    except ValueError as exc:
        raise ValidationError(
            f"{field_name} is not a valid TCF v2.2/2.3 TC string: {exc}"
        ) from None


def _dedupe(events: Iterable[EventRequest]) -> list[EventRequest]:
    """One event per purpose: a TCF section and a US section may both speak of one purpose;
    the more protective answer wins (a negative action over a positive one)."""
    chosen: dict[str, EventRequest] = {}
    for e in events:
        prior = chosen.get(e.purpose)
        if prior is None or (prior.action in _POSITIVE and e.action not in _POSITIVE):
            chosen[e.purpose] = e
    return list(chosen.values())


def require_events(
    implied: ImpliedEvents, what: str, mapping: SignalMapping
) -> Sequence[EventRequest]:
    if implied.events:
        return implied.events
    if mapping.version == 0:
        raise ValidationError(
            f"the {what} implies no event: this tenant has no signal mapping yet; set one with"
            " PUT /v1/mappings"
        )
    unknown = (
        f"; section ids {list(implied.unknown_sections)} are not supported and were not read"
        if implied.unknown_sections
        else ""
    )
    raise ValidationError(
        f"the {what} (sections: {', '.join(implied.sections) or 'none'}) implies no event for"
        f" this tenant's mapped purposes; check GET /v1/mappings{unknown}"
    )


# --------------------------------------------------------------------------- the write path


def load_mapping(collection: CollectionStore, tenant: str) -> SignalMapping:
    """The tenant's current mapping (version 0 and empty when none was set)."""
    doc = collection.latest(tenant, SettingsKind.MAPPING)
    if doc is None:
        return SignalMapping()
    return SignalMapping.from_dict(doc.body, doc.version)


def signal_request(
    body: ConsentBody,
    *,
    tenant: str,
    collection: CollectionStore,
    catalog: Catalog,
    store: ConsentStore,
) -> ConsentRequest:
    """The ConsentRequest a POST /v1/consents with `tc_string` or `gpp_string` stands for."""
    request, _ = read_signal(
        body, tenant=tenant, collection=collection, catalog=catalog, store=store
    )
    return request


def read_signal(
    body: ConsentBody,
    *,
    tenant: str,
    collection: CollectionStore,
    catalog: Catalog,
    store: ConsentStore,
) -> tuple[ConsentRequest, ImpliedEvents]:
    """:func:`signal_request`, and what was read: the API reports the sections (and those it
    could not read) back to the caller."""
    mapping = load_mapping(collection, tenant)
    purposes = catalog.purposes(tenant)
    state = {e.purpose: e for e in store.subject_state(tenant, body.subject)}
    if body.tc_string is not None:
        implied = events_from_tc_string(body.tc_string, mapping, purposes, state)
        source, raw, what = Source.TCF, body.tc_string.strip(), "tc_string"
    elif body.gpp_string is not None:
        implied = events_from_gpp_string(
            body.gpp_string, mapping, purposes, state, body.jurisdiction
        )
        source, raw, what = Source.GPP, body.gpp_string.strip(), "gpp_string"
    else:
        raise ValidationError("give a tc_string or a gpp_string")
    events = require_events(implied, what, mapping)
    base = body.to_request(raw_signal=raw)
    where = base.jurisdiction or implied.jurisdiction
    return replace(base, source=source, events=list(events), jurisdiction=where), implied
