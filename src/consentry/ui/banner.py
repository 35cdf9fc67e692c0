"""The banner's server side: the tenant's banner settings, its public configuration, recording a
choice, and the consent state (Consent Mode, TC string, GPP string) that the cookie carries.

The HTTP routes are in api/banner.py; the script is ui/static/banner.js. Everything the page
needs to answer `__tcfapi`, `__gpp` and `gtag('consent', ...)` is computed here, from the
decisions of the tenant's purposes and its signal mapping, so that the browser only shows what
the server decided and recorded.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from consentry.domain.decide import Signals, decide
from consentry.domain.errors import NotFoundError, ValidationError
from consentry.domain.events import Action, RecordedEvent, Source
from consentry.domain.inputs import jurisdiction_code
from consentry.domain.notices import Notice
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.domain.regimes import Regime, regime_for
from consentry.recording.schema import Line
from consentry.recording.schema import Text as TextBody
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.recording.signals_in import SignalMapping, load_mapping
from consentry.services import Services
from consentry.signals import gpp, tcf
from consentry.signals.consent_mode import CONSENT_TYPES
from consentry.storage.base import AppendResult
from consentry.storage.collection import CollectionStore, SettingsKind
from consentry.tokens import (
    CONSENT,
    PREFERENCES,
    PREFERENCES_SESSION,
    SESSION,
    public_jwk,
    sign_token,
)

CONSENT_COOKIE = "consentry"
SESSION_COOKIE = "consentry_sid"
SUBJECT_PREFIX = "b_"

_POSITIVE = frozenset({Action.GIVEN, Action.OPTED_IN})


# --------------------------------------------------------------------------- settings


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Text = Annotated[TextBody, Field(min_length=1, max_length=2000)]


class BannerTexts(Strict):
    """Every word the banner shows; translate them here. Accept/Reject keep equal weight."""

    title: Text = "Your privacy choices"
    body: Text = (
        "We and our partners use cookies and similar technologies for the purposes below."
        " Choose which you allow; you can change your mind at any time in the preference center."
    )
    opt_out_title: Text = "Do Not Sell or Share My Personal Information"
    opt_out_body: Text = (
        "We sell or share personal information and use it for targeted advertising unless you opt"
        " out. Turn off what you do not want, or reject all."
    )
    accept_all: Text = "Accept all"
    reject_all: Text = "Reject all"
    save: Text = "Save choices"
    always_active: Text = "Always active"
    details: Text = "Details"
    gpc_honoured: Text = "Opt-Out Request Honored"
    gpc_note: Text = (
        "Your browser sent a Global Privacy Control signal: we treat it as an opt-out of sale,"
        " sharing and targeted advertising."
    )
    manage: Text = "Privacy choices"
    preferences: Text = "Preference center"
    privacy_policy: Text = "Privacy policy"
    saved: Text = "Your choices were saved."
    error: Text = "Your choice could not be saved. Please try again."


class TcfSettings(Strict):
    """What the TC strings the banner makes say about the CMP and the publisher.

    cmp_id 0 means "not a registered CMP": vendors reject such strings; set the id IAB Europe
    registered for you before relying on the TC string outside your own tags.
    """

    cmp_id: Annotated[StrictInt, Field(ge=0, le=4095)] = 0
    cmp_version: Annotated[StrictInt, Field(ge=0, le=4095)] = 1
    vendor_list_version: Annotated[StrictInt, Field(ge=0, le=4095)] = 0
    policy_version: Annotated[StrictInt, Field(ge=4, le=63)] = 5
    publisher_country_code: Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{2}$")] = "AA"
    consent_language: Annotated[StrictStr, Field(pattern=r"^[A-Za-z]{2}$")] = "EN"
    vendors: list[Annotated[StrictInt, Field(ge=1, le=65535)]] = Field(default_factory=list)


class BannerSettings(Strict):
    """PUT /v1/banner: enables the public banner endpoints for the tenant and styles them."""

    allowed_origins: list[Annotated[StrictStr, Field(pattern=r"^https?://[^/\s]+$")]] = Field(
        default_factory=list,
        description="Origins of sites that embed the banner (CORS); the server's own is implied.",
    )
    cookie_domain: Annotated[Line, Field(max_length=253)] | None = Field(
        None, description="Domain attribute of the cookies, e.g. example.com for all subdomains."
    )
    cookie_days: Annotated[StrictInt, Field(ge=1, le=395)] = Field(
        180, description="Lifetime of the choice (CNIL: 6 months; TCF: re-ask within 13 months)."
    )
    purposes: list[StrictStr] | None = Field(
        None,
        description="Purposes the banner lists, in order; default: every purpose except"
        " contract and legal obligation ones.",
    )
    notice_id: Line | None = Field(
        None,
        description="The notice whose latest version the banner stands for (evidence);"
        " default: the newest notice covering every purpose the banner lets people choose."
        " A purpose it does not cover is recorded with the newest notice that covers it.",
    )
    allow_jurisdiction_override: StrictBool = Field(
        False,
        description="Let the page choose the jurisdiction (data-jurisdiction); for demos only.",
    )
    privacy_url: Annotated[Line, Field(max_length=2000)] | None = None
    texts: BannerTexts = Field(default_factory=BannerTexts)
    tcf: TcfSettings = Field(default_factory=TcfSettings)


# --------------------------------------------------------------------------- a tenant's site


@dataclass(frozen=True, slots=True)
class Site:
    """Everything the banner of one tenant needs, read once per request."""

    tenant: str
    settings: BannerSettings
    settings_version: int
    mapping: SignalMapping
    purposes: dict[str, Purpose]
    shown: tuple[Purpose, ...]
    notice: Notice | None
    notices: Mapping[str, Notice] = field(default_factory=dict)
    """The notice version shown for each purpose (the evidence its events carry): the site's
    notice where it covers the purpose, else the newest notice that does."""

    @property
    def choosable(self) -> tuple[Purpose, ...]:
        return tuple(p for p in self.shown if is_choosable(p))

    @property
    def version(self) -> str:
        """Changes whenever what the person is asked changes (settings, mapping, purposes,
        notice), so that a stored choice can tell it was made on an older banner."""
        asked: list[Any] = [
            self.settings_version,
            self.mapping.version,
            [p.id for p in self.shown],
            [self.notice.id, self.notice.version] if self.notice else None,
        ]
        others = sorted(
            (pid, n.id, n.version) for pid, n in self.notices.items() if n != self.notice
        )
        if others:  # only then: a site whose one notice covers everything keeps its version
            asked.append(others)
        material = json.dumps(asked)
        return hashlib.sha256(material.encode()).hexdigest()[:16]


def is_choosable(purpose: Purpose) -> bool:
    return not purpose.required and purpose.legal_basis in (
        LegalBasis.CONSENT,
        LegalBasis.LEGITIMATE_INTEREST,
    )


def load_site(
    services: Services, collection: CollectionStore, tenant: str, *, for_banner: bool = True
) -> Site:
    """The tenant's banner; NotFoundError when the tenant has not enabled it (PUT /v1/banner).

    With `for_banner=False` (the preference center) every purpose is shown, and a tenant
    without banner settings gets the defaults.
    """
    doc = collection.latest(tenant, SettingsKind.BANNER)
    if doc is None and for_banner:
        raise NotFoundError(
            f"no banner for site {tenant!r}: enable it with PUT /v1/banner for that tenant"
        )
    settings = BannerSettings.model_validate(doc.body) if doc else BannerSettings()
    purposes = services.catalog.purposes(tenant)
    if not for_banner:
        shown = tuple(sorted(purposes.values(), key=lambda p: (not p.required, p.id)))
    elif settings.purposes is not None:
        shown = tuple(purposes[p] for p in settings.purposes if p in purposes)
    else:
        shown = tuple(
            p
            for p in sorted(purposes.values(), key=lambda p: (not p.required, p.id))
            if p.legal_basis not in (LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION)
        )
    latest = latest_notices(services.catalog.get(tenant).notices, datetime.now(UTC))
    notice = _notice(latest, settings, [p.id for p in shown if is_choosable(p)])
    return Site(
        tenant=tenant,
        settings=settings,
        settings_version=doc.version if doc else 0,
        mapping=load_mapping(collection, tenant),
        purposes=purposes,
        shown=shown,
        notice=notice,
        notices=notices_by_purpose(shown, notice if for_banner else None, latest),
    )


def latest_notices(notices: Sequence[Notice], now: datetime) -> list[Notice]:
    """The latest version of each notice published by `now` (one published later cannot have
    been shown yet: the recorder refuses a notice published after the consent)."""
    latest: dict[str, Notice] = {}
    for n in notices:
        if n.published_at <= now and (n.id not in latest or n.version > latest[n.id].version):
            latest[n.id] = n
    return list(latest.values())


def _notice(
    latest: Sequence[Notice], settings: BannerSettings, choosable: Sequence[str]
) -> Notice | None:
    if settings.notice_id is not None:
        return next((n for n in latest if n.id == settings.notice_id), None)
    covering = [n for n in latest if set(choosable) <= set(n.purposes)]
    return max(covering, key=lambda n: n.published_at, default=None)


def notice_for(purpose: str, notices: Sequence[Notice]) -> Notice | None:
    """The latest version of the newest notice that covers `purpose`."""
    covering = [n for n in notices if purpose in n.purposes]
    return max(covering, key=lambda n: (n.published_at, n.version), default=None)


def notices_by_purpose(
    shown: Sequence[Purpose], main: Notice | None, latest: Sequence[Notice]
) -> dict[str, Notice]:
    """Each shown purpose's notice: `main` where it covers the purpose, else notice_for()."""
    out = {}
    for p in shown:
        found = main if main is not None and p.id in main.purposes else notice_for(p.id, latest)
        if found is not None:
            out[p.id] = found
    return out


# --------------------------------------------------------------------------- regime, GPC


def resolve_jurisdiction(header_value: str | None, override: str | None, site: Site) -> str | None:
    """From the trusted request header; the page's own choice only where the tenant allows it."""
    value = header_value
    if override and site.settings.allow_jurisdiction_override:
        value = override
    if not value:
        return None
    return jurisdiction_code(value)  # ASCII ISO 3166 only; anything else counts as unknown


def gpc_locked(site: Site, purpose: Purpose, gpc: bool) -> bool:
    """A GPC signal opts out of sale, sharing and targeted advertising: those toggles stay off."""
    return gpc and not purpose.required and bool(site.mapping.us_categories(purpose))


# --------------------------------------------------------------------------- the state


@dataclass(frozen=True, slots=True)
class ConsentState:
    """What the cookie says and what the page answers from."""

    permitted: dict[str, bool]
    regime: Regime
    jurisdiction: str | None
    gpc: bool
    consent_mode: dict[str, str]
    tc_string: str | None
    tcd: dict[str, Any] | None
    gpp_string: str
    usnat: dict[str, Any] | None

    def claims(self, site: Site, *, position: int | None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "typ": CONSENT,
            "tnt": site.tenant,
            "reg": self.regime.value,
            "jur": self.jurisdiction,
            "p": self.permitted,
            "cm": self.consent_mode,
            "gpp": self.gpp_string,
            "gpc": self.gpc,
            "cv": site.version,
        }
        if position is not None:
            out["pos"] = position
        if self.tc_string is not None:
            out["tcf"] = self.tc_string
            out["tcd"] = self.tcd
        if self.usnat is not None:
            out["usn"] = self.usnat
        return out


def consent_mode_of(mapping: SignalMapping, permitted: Mapping[str, bool]) -> dict[str, str]:
    """A type is granted when it is mapped and every purpose mapped to it is permitted."""
    out = {}
    for t in CONSENT_TYPES:
        behind = [m.purpose for m in mapping.purposes if t in m.consent_mode]
        ok = bool(behind) and all(permitted.get(p, False) for p in behind)
        out[t] = "granted" if ok else "denied"
    return out


def tc_model_of(site: Site, permitted: Mapping[str, bool], now: datetime) -> tcf.TCModel:
    """The TC string of a choice. A TCF purpose is signalled when *any* permitted purpose needs
    it (so that the string, posted back, implies the same choices); vendors are the configured
    ones, with consent when any purpose has it."""
    pc: set[int] = set()
    pl: set[int] = set()
    sf: set[int] = set()
    ppc: set[int] = set()
    ppl: set[int] = set()
    for m in site.mapping.purposes:
        purpose = site.purposes.get(m.purpose)
        if purpose is None or not permitted.get(m.purpose, False):
            continue
        if purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
            pl |= set(m.tcf_purposes) - tcf.LI_FORBIDDEN_PURPOSES
            ppl |= set(m.tcf_publisher_purposes)
        elif purpose.legal_basis is LegalBasis.CONSENT and not purpose.required:
            pc |= set(m.tcf_purposes)
            sf |= set(m.tcf_special_features)
            ppc |= set(m.tcf_publisher_purposes)
    t = site.settings.tcf
    vendors = tuple(sorted(set(t.vendors)))
    day = tcf.day_timestamp(now)
    return tcf.TCModel(
        created=day,
        last_updated=day,
        cmp_id=t.cmp_id,
        cmp_version=t.cmp_version,
        consent_screen=1,
        consent_language=t.consent_language,
        vendor_list_version=t.vendor_list_version,
        policy_version=t.policy_version,
        publisher_country_code=t.publisher_country_code,
        special_feature_opt_ins=tuple(sf),
        purpose_consents=tuple(pc),
        purpose_legitimate_interests=tuple(pl),
        vendor_consents=vendors if pc else (),
        vendor_legitimate_interests=vendors if pl else (),
        vendors_disclosed=vendors,
        publisher_consents=tuple(ppc),
        publisher_legitimate_interests=tuple(ppl),
    )


def usnat_of(site: Site, permitted: Mapping[str, bool], gpc: bool) -> gpp.UsNat:
    """usnat v2: per category, 0 when no purpose answers to it, 1 opted out, 2 did not."""
    flags: dict[OptOutCategory, int] = {}
    for category in OptOutCategory:
        behind = [p.id for p in site.purposes.values() if category in site.mapping.us_categories(p)]
        if not behind:
            flags[category] = 0
        elif gpc or not all(permitted.get(pid, False) for pid in behind):
            flags[category] = 1
        else:
            flags[category] = 2
    notice = {c: 1 if flags[c] else 0 for c in OptOutCategory}
    return gpp.UsNat(
        SharingNotice=1 if any(flags.values()) else 0,
        SaleOptOutNotice=notice[OptOutCategory.SALE],
        SharingOptOutNotice=notice[OptOutCategory.SHARING],
        TargetedAdvertisingOptOutNotice=notice[OptOutCategory.TARGETED_ADVERTISING],
        SaleOptOut=flags[OptOutCategory.SALE],
        SharingOptOut=flags[OptOutCategory.SHARING],
        TargetedAdvertisingOptOut=flags[OptOutCategory.TARGETED_ADVERTISING],
        MspaCoveredTransaction=2,
        GpcSegmentIncluded=True,
        Gpc=gpc,
    )


def build_state(
    site: Site,
    permitted: Mapping[str, bool],
    *,
    regime: Regime,
    jurisdiction: str | None,
    gpc: bool,
    now: datetime,
) -> ConsentState:
    shown = {p.id: bool(permitted.get(p.id, False)) for p in site.shown}
    cm = consent_mode_of(site.mapping, permitted)
    if regime is Regime.OPT_IN:
        model = tc_model_of(site, permitted, now)
        tc_string = tcf.encode(model)
        tcd: dict[str, Any] | None = {
            "pc": list(model.purpose_consents),
            "pl": list(model.purpose_legitimate_interests),
            "sf": list(model.special_feature_opt_ins),
            "vc": list(model.vendor_consents),
            "vl": list(model.vendor_legitimate_interests),
            "vd": list(model.vendors_disclosed),
            "ppc": list(model.publisher_consents),
            "ppl": list(model.publisher_legitimate_interests),
            "cmp": model.cmp_id,
            "cmpv": model.cmp_version,
            "vlv": model.vendor_list_version,
            "pv": model.policy_version,
            "cc": model.publisher_country_code,
        }
        gpp_string = gpp.encode(gpp.GPPString(tcfeuv2=model))
        usnat = None
    else:
        tc_string, tcd = None, None
        section = usnat_of(site, permitted, gpc)
        gpp_string = gpp.encode(gpp.GPPString(usnat=section))
        usnat = section.to_dict()
    return ConsentState(
        permitted=shown,
        regime=regime,
        jurisdiction=jurisdiction,
        gpc=gpc,
        consent_mode=cm,
        tc_string=tc_string,
        tcd=tcd,
        gpp_string=gpp_string,
        usnat=usnat,
    )


def default_permitted(
    site: Site, *, regime: Regime, jurisdiction: str | None, gpc: bool, now: datetime
) -> dict[str, bool]:
    """What decide() says before any choice (opt-out regimes allow until opt-out)."""
    signals = Signals(gpc=gpc, jurisdiction=jurisdiction)
    return {
        p.id: decide("", p, None, now=now, regime=regime, signals=signals).permitted
        and not gpc_locked(site, p, gpc)
        for p in site.purposes.values()
    }


def subject_permitted(
    services: Services, site: Site, subject: str, *, jurisdiction: str | None
) -> dict[str, bool]:
    """The subject's current decisions, as the decision service computes them."""
    states = services.decisions.state_as_of(site.tenant, subject, jurisdiction=jurisdiction)
    return {s.purpose.id: s.decision.permitted for s in states}


# --------------------------------------------------------------------------- public config


def public_config(
    services: Services,
    site: Site,
    *,
    jurisdiction: str | None,
    gpc: bool,
    api_base: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """GET /v1/banner/{site}/config: what the banner shows and its state before a choice."""
    now = now or datetime.now(UTC)
    regime = regime_for(jurisdiction, services.settings.default_regime)
    defaults = default_permitted(site, regime=regime, jurisdiction=jurisdiction, gpc=gpc, now=now)
    state = build_state(site, defaults, regime=regime, jurisdiction=jurisdiction, gpc=gpc, now=now)
    texts = site.settings.texts
    keyring = services.keyring
    verifier = keyring.signing_key(site.tenant).verifier
    return {
        "site": site.tenant,
        "version": site.version,
        "variant": regime.value,
        "jurisdiction": jurisdiction,
        "gpc": gpc,
        "title": texts.opt_out_title if regime is Regime.OPT_OUT else texts.title,
        "body": texts.opt_out_body if regime is Regime.OPT_OUT else texts.body,
        "texts": texts.model_dump(),
        "privacy_url": site.settings.privacy_url,
        "preferences_url": f"{api_base}/preferences",
        "notice": ({"id": site.notice.id, "version": site.notice.version} if site.notice else None),
        "purposes": [
            {
                "id": p.id,
                "notice": _notice_ref(site.notices.get(p.id)),
                "name": p.name,
                "description": p.description,
                "legal_basis": p.legal_basis.value,
                "required": p.required,
                "choosable": is_choosable(p),
                "default": defaults.get(p.id, False) or p.required,
                "gpc_locked": gpc_locked(site, p, gpc),
            }
            for p in site.shown
        ],
        "state": state.claims(site, position=None),
        "tcf": {"gdpr_applies": regime is Regime.OPT_IN, **site.settings.tcf.model_dump()},
        "token_key": verifier.to_string(),
        "token_jwk": public_jwk(verifier),
    }


def _notice_ref(notice: Notice | None) -> dict[str, Any] | None:
    return {"id": notice.id, "version": notice.version} if notice else None


# --------------------------------------------------------------------------- recording


def on_action(purpose: Purpose, regime: Regime, current: RecordedEvent | None) -> Action | None:
    """The event for "allowed" (None: nothing to record, e.g. legitimate interest never
    objected to)."""
    if purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        return Action.GIVEN if current is not None and current.action is Action.OBJECTED else None
    if regime is Regime.OPT_OUT and purpose.opt_out_category is not None:
        return Action.OPTED_IN
    return Action.GIVEN


def off_action(purpose: Purpose, regime: Regime, current: RecordedEvent | None) -> Action:
    """The event for "not allowed": objected, opted out, withdrawn (if given before) or refused."""
    if purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        return Action.OBJECTED
    if regime is Regime.OPT_OUT and purpose.opt_out_category is not None:
        return Action.OPTED_OUT
    if current is not None and current.action in _POSITIVE:
        return Action.WITHDRAWN
    return Action.REFUSED


@dataclass(frozen=True, slots=True)
class Recorded:
    results: tuple[AppendResult, ...]

    @property
    def position(self) -> int | None:
        tokens = [r.token for r in self.results if r.events]
        return max(tokens) if tokens else None

    @property
    def events(self) -> list[RecordedEvent]:
        return [e for r in self.results for e in r.events]


def record_choices(
    services: Services,
    site: Site,
    subject: str,
    choices: Mapping[str, bool],
    *,
    source: Source,
    regime: Regime,
    jurisdiction: str | None,
    gpc: bool,
    ip: str | None,
    user_agent: str | None,
    only_changes: bool = False,
) -> Recorded:
    """Record a person's choices: GPC-locked purposes as opt-outs with source `gpc`, the rest
    with `source`. Unknown or unchoosable purposes are refused; a purpose left out of
    `choices` records nothing. With `only_changes`, a choice equal to the current decision
    records nothing either (the preference center saves the whole form)."""
    shown = {p.id: p for p in site.shown}
    for pid in choices:
        purpose = shown.get(pid)
        if purpose is None:
            raise ValidationError(f"purpose {pid!r} is not offered by this banner")
        if not is_choosable(purpose):
            raise ValidationError(f"purpose {pid!r} is not a choice: it is always active")
    state = {e.purpose: e for e in services.store.subject_state(site.tenant, subject)}
    current_permitted = (
        subject_permitted(services, site, subject, jurisdiction=jurisdiction)
        if only_changes
        else {}
    )
    by_gpc: list[EventRequest] = []
    by_person: list[EventRequest] = []
    for pid, allowed in choices.items():
        purpose = shown[pid]
        current = state.get(pid)
        if gpc_locked(site, purpose, gpc):
            opt_out = off_action(purpose, regime, current)
            if current is not None and current.action is opt_out:
                continue  # already recorded; a GPC signal on every visit is not news
            by_gpc.append(_event(site, pid, opt_out))
            continue
        if only_changes and current_permitted.get(pid) == allowed:
            continue
        action = (
            on_action(purpose, regime, current) if allowed else off_action(purpose, regime, current)
        )
        if action is not None:
            by_person.append(_event(site, pid, action))
    results = []
    for events, src in ((by_gpc, Source.GPC), (by_person, source)):
        if not events:
            continue
        request = ConsentRequest(
            subject=subject,
            source=src,
            events=events,
            jurisdiction=jurisdiction,
            ip=ip,
            user_agent=user_agent,
            raw_signal="Sec-GPC: 1" if src is Source.GPC else None,
        )
        results.append(services.recorder.record(site.tenant, request))
    return Recorded(tuple(results))


def _event(site: Site, purpose: str, action: Action) -> EventRequest:
    """One choice, with the notice version shown for its purpose as its evidence."""
    notice = site.notices.get(purpose)
    return EventRequest(
        purpose,
        action,
        notice_id=notice.id if notice else None,
        notice_version=notice.version if notice else None,
    )


# --------------------------------------------------------------------------- tokens


def new_subject() -> str:
    """A pseudonymous subject for a browser: 128 random bits, nothing about the person."""
    return SUBJECT_PREFIX + secrets.token_urlsafe(16)


def consent_token(services: Services, site: Site, claims: Mapping[str, Any], days: int) -> str:
    now = int(time.time())
    body = {**claims, "iat": now, "exp": now + days * 86_400}
    return sign_token(services.keyring.signing_key(site.tenant), body)


def session_token(services: Services, tenant: str, subject: str, days: int) -> str:
    now = int(time.time())
    body = {"typ": SESSION, "tnt": tenant, "sub": subject, "iat": now, "exp": now + days * 86_400}
    return sign_token(services.keyring.signing_key(tenant), body)


def preference_link_token(services: Services, tenant: str, subject: str, hours: int) -> str:
    """A link's token; its `jti` lets the preference center take it only once (api/pages.py)."""
    now = int(time.time())
    body = {
        "typ": PREFERENCES,
        "tnt": tenant,
        "sub": subject,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "exp": now + hours * 3600,
    }
    return sign_token(services.keyring.signing_key(tenant), body)


def preference_session_token(services: Services, tenant: str, subject: str, seconds: int) -> str:
    """What the preference center's cookie holds once a link was exchanged for it."""
    now = int(time.time())
    body = {"typ": PREFERENCES_SESSION, "tnt": tenant, "sub": subject, "iat": now}
    return sign_token(services.keyring.signing_key(tenant), {**body, "exp": now + seconds})
