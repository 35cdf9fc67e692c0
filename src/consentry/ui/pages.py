"""Server-rendered pages: the preference center and the demo site (Jinja2, no JavaScript needed).

The preference center shows a person every purpose of the tenant with its notice text and
version, their current decision and their own history, and lets them change any choice. Giving
and withdrawing are the same gesture (two radio buttons of equal weight, one Save button; or the
"Allow all" / "Withdraw all" buttons side by side): GDPR Art. 7(3).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from consentry.domain.decide import Reason
from consentry.domain.errors import ConflictError
from consentry.domain.events import Action, RecordedEvent, Source
from consentry.domain.notices import Notice, content_hash
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.domain.regimes import Regime, regime_for
from consentry.services import Services
from consentry.storage.collection import CollectionStore, SettingsKind
from consentry.ui import banner as ui


@lru_cache(maxsize=1)
def environment() -> Environment:
    return Environment(
        loader=PackageLoader("consentry.ui", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


REASON_TEXT: Mapping[Reason, str] = {
    Reason.GRANTED: "Allowed: you agreed",
    Reason.NOT_GIVEN: "Not allowed: you have not agreed",
    Reason.REFUSED: "Not allowed: you refused",
    Reason.WITHDRAWN: "Not allowed: you withdrew your consent",
    Reason.EXPIRED: "Not allowed: your consent expired",
    Reason.RECONSENT_REQUIRED: "Not allowed: the notice changed, please choose again",
    Reason.OBJECTED: "Not allowed: you objected",
    Reason.OPTED_OUT: "Not allowed: you opted out",
    Reason.GPC_OPT_OUT: "Not allowed: your Global Privacy Control signal opted you out",
    Reason.NOT_OPTED_OUT: "Allowed until you opt out",
    Reason.LEGITIMATE_INTEREST: "Allowed (legitimate interest) until you object",
    Reason.CONTRACT: "Always active: needed for our contract with you",
    Reason.LEGAL_OBLIGATION: "Always active: required by law",
    Reason.REQUIRED: "Always active: strictly necessary",
    Reason.GUARDIAN_REQUIRED: "Not allowed: a parent or guardian must agree",
    Reason.UNAVAILABLE: "Unknown at the moment",
}

ACTION_TEXT: Mapping[Action, str] = {
    Action.GIVEN: "Allowed",
    Action.REFUSED: "Refused",
    Action.WITHDRAWN: "Withdrew consent",
    Action.OBJECTED: "Objected",
    Action.OPTED_OUT: "Opted out",
    Action.OPTED_IN: "Opted in",
}

SOURCE_TEXT: Mapping[Source, str] = {
    Source.BANNER: "cookie banner",
    Source.PREFERENCE_CENTER: "preference center",
    Source.API: "our systems",
    Source.IMPORT: "import",
    Source.COMMAND: "our systems",
    Source.GPC: "Global Privacy Control",
    Source.TCF: "consent banner (TCF)",
    Source.GPP: "consent banner (GPP)",
}


@dataclass(frozen=True, slots=True)
class PurposeView:
    purpose: Purpose
    permitted: bool
    status: str
    choosable: bool
    allow_label: str
    deny_label: str
    notice: Notice | None
    valid_until: str | None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    when: str
    purpose: str
    action: str
    source: str
    notice: str


def csrf_token(session_value: str) -> str:
    """Bound to the page's own cookie: a site that cannot read the cookie cannot forge a form."""
    return hmac.new(b"consentry-preferences", session_value.encode(), hashlib.sha256).hexdigest()[
        :32
    ]


def csrf_ok(session_value: str, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(csrf_token(session_value), submitted)


def labels(purpose: Purpose, regime: Regime) -> tuple[str, str]:
    if purpose.legal_basis is LegalBasis.LEGITIMATE_INTEREST:
        return "Allow", "Object"
    if regime is Regime.OPT_OUT and purpose.opt_out_category is not None:
        return "Allow", "Opt out"
    return "Allow", "Don't allow"


def purpose_views(
    services: Services, tenant: str, subject: str, jurisdiction: str | None
) -> tuple[list[PurposeView], Regime]:
    states = services.decisions.state_as_of(tenant, subject, jurisdiction=jurisdiction)
    # The same versions the preference center records as evidence (ui/banner.py, load_site).
    latest = ui.latest_notices(services.catalog.get(tenant).notices, datetime.now(UTC))
    event_jurisdiction = next(
        (
            s.event.evidence.jurisdiction
            for s in sorted(
                (s for s in states if s.event is not None),
                key=lambda s: s.event.sort_key if s.event else (datetime.min, 0),
                reverse=True,
            )
            if s.event and s.event.evidence.jurisdiction
        ),
        None,
    )
    regime = regime_for(jurisdiction or event_jurisdiction, services.settings.default_regime)
    views = []
    for s in sorted(states, key=lambda s: (not s.purpose.required, s.purpose.id)):
        p = s.purpose
        allow, deny = labels(p, regime)
        until = s.decision.valid_until
        views.append(
            PurposeView(
                purpose=p,
                permitted=s.decision.permitted,
                status=REASON_TEXT.get(s.decision.reason, s.decision.reason.value),
                choosable=ui.is_choosable(p),
                allow_label=allow,
                deny_label=deny,
                notice=ui.notice_for(p.id, latest),
                valid_until=until.astimezone(UTC).strftime("%Y-%m-%d") if until else None,
            )
        )
    return views, regime


def history_rows(events: list[RecordedEvent], purposes: Mapping[str, Purpose]) -> list[HistoryRow]:
    rows = []
    for e in sorted(events, key=lambda e: e.sort_key, reverse=True):
        ev = e.evidence
        purpose = purposes.get(e.purpose)
        rows.append(
            HistoryRow(
                when=e.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                purpose=purpose.name if purpose else e.purpose,
                action=ACTION_TEXT.get(e.action, e.action.value),
                source=SOURCE_TEXT.get(ev.source, ev.source.value),
                notice=f"{ev.notice_id} v{ev.notice_version}" if ev.notice_id else "",
            )
        )
    return rows


def notice_digest(notice: Notice) -> str:
    return content_hash(notice.text)


# --------------------------------------------------------------------------- the demo

# The demo's own tenant: `serve --demo` on a real installation never touches another one.
DEMO_TENANT = "demo"

DEMO_PURPOSES: tuple[Purpose, ...] = (
    Purpose(
        "necessary",
        "Strictly necessary",
        LegalBasis.CONSENT,
        "Keeps the site secure and remembers your privacy choices. It cannot be switched off.",
        required=True,
    ),
    Purpose(
        "analytics",
        "Audience measurement",
        LegalBasis.CONSENT,
        "Counts visits and measures which pages are read, to improve the site.",
        lifetime_days=395,
    ),
    Purpose(
        "personalization",
        "Personalised content",
        LegalBasis.CONSENT,
        "Remembers your preferences to recommend articles you may like.",
    ),
    Purpose(
        "ads",
        "Personalised advertising",
        LegalBasis.CONSENT,
        "Builds a profile of your interests with our advertising partners to show you relevant"
        " ads, and measures their performance.",
        opt_out_category=OptOutCategory.TARGETED_ADVERTISING,
    ),
    Purpose(
        "data_sale",
        "Sale and sharing of personal information",
        LegalBasis.CONSENT,
        "Shares identifiers with partners who pay for them or use them for cross-context"
        " behavioural advertising.",
        opt_out_category=OptOutCategory.SALE,
    ),
)

DEMO_MAPPING: dict[str, Any] = {
    "purposes": {
        "necessary": {"consent_mode": ["functionality_storage", "security_storage"]},
        "analytics": {"tcf_purposes": [1, 8, 9], "consent_mode": ["analytics_storage"]},
        "personalization": {
            "tcf_purposes": [1, 5, 6],
            "consent_mode": ["personalization_storage"],
        },
        "ads": {
            "tcf_purposes": [1, 2, 3, 4, 7],
            "us_opt_out": ["sharing", "targeted_advertising"],
            "consent_mode": ["ad_storage", "ad_user_data", "ad_personalization"],
        },
        "data_sale": {"tcf_purposes": [1, 10], "us_opt_out": ["sale"], "consent_mode": []},
    }
}

DEMO_NOTICE_TEXT = (
    "Consentry demo shop (example.com) processes your data for the purposes listed below."
    " Strictly necessary storage keeps the site secure and remembers your choices. With your"
    " consent, we measure the audience, personalise content, personalise advertising with our"
    " partners, and share identifiers with partners. You can withdraw or change your consent at"
    " any time in the preference center; withdrawing does not affect what was done before."
    " Controller: Example Ltd, privacy@example.com."
)


def ensure_demo(services: Services, collection: CollectionStore, tenant: str) -> bool:
    """Set up the demo on `tenant` if it has no banner yet; True if anything was created.

    The demo sets up an EMPTY tenant (created if missing): demo purposes, a notice, a signal
    mapping and banner settings. It never changes a tenant that has data of its own: one with
    purposes or events (and no banner) is refused with a ConflictError saying so. A tenant
    whose banner is set up already (by an earlier visit) is left as it is.
    """
    if collection.latest(tenant, SettingsKind.BANNER) is not None:
        return False
    services.store.ensure_tenant(tenant)
    if services.catalog.purposes(tenant) or services.store.state_snapshot(tenant, "", 1):
        raise ConflictError(
            f"the demo sets up an empty tenant, and tenant {tenant!r} already has purposes or"
            " events: it was left as it is (the demo never changes a tenant that holds data)"
        )
    for p in DEMO_PURPOSES:
        services.recorder.add_purpose(tenant, p)
    services.recorder.add_notice(
        tenant,
        Notice(
            id="demo-privacy",
            version=1,
            text=DEMO_NOTICE_TEXT,
            purposes=tuple(p.id for p in DEMO_PURPOSES),
            published_at=services.recorder.clock(),
        ),
    )
    if collection.latest(tenant, SettingsKind.MAPPING) is None:
        collection.put(tenant, SettingsKind.MAPPING, DEMO_MAPPING)
    settings = ui.BannerSettings(allow_jurisdiction_override=True, privacy_url="/preferences")
    collection.put(tenant, SettingsKind.BANNER, settings.model_dump(mode="json"))
    return True
