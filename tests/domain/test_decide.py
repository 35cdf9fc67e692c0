"""decide(): the pure function every decision goes through, tested by example and by property."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.decide import (
    RECONSENT_PENDING,
    Reason,
    Signals,
    StateEntry,
    decide,
    unavailable,
)
from consentry.domain.events import Action, Actor, Source
from consentry.domain.notices import MaterialChange
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.domain.regimes import Regime

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
EMAIL = Purpose("email", "Email", LegalBasis.CONSENT)
ADS = Purpose(
    "ads", "Ads", LegalBasis.CONSENT, opt_out_category=OptOutCategory.TARGETED_ADVERTISING
)


def entry(
    action: Action,
    *,
    at: datetime = NOW - timedelta(days=1),
    position: int = 7,
    source: Source = Source.BANNER,
    actor: Actor = Actor.SUBJECT,
    notice: tuple[str, int] | None = None,
) -> StateEntry:
    return StateEntry(
        position=position,
        action=action,
        occurred_at=at,
        recorded_at=at,
        source=source,
        actor=actor,
        jurisdiction=None,
        notice_id=notice[0] if notice else None,
        notice_version=notice[1] if notice else None,
    )


def test_no_event_denies_consent_purposes_in_opt_in() -> None:
    d = decide("s", EMAIL, None, now=NOW, regime=Regime.OPT_IN)
    assert (d.permitted, d.reason, d.position) == (False, Reason.NOT_GIVEN, None)


def test_given_permits_with_provenance() -> None:
    d = decide(
        "s", EMAIL, entry(Action.GIVEN, notice=("privacy", 3)), now=NOW, regime=Regime.OPT_IN
    )
    assert d.permitted and d.reason is Reason.GRANTED
    assert d.position == 7 and d.notice_version == 3 and d.basis is LegalBasis.CONSENT


def test_negative_actions_deny_with_their_reason() -> None:
    for action, reason in [
        (Action.REFUSED, Reason.REFUSED),
        (Action.WITHDRAWN, Reason.WITHDRAWN),
        (Action.OPTED_OUT, Reason.OPTED_OUT),
    ]:
        d = decide("s", EMAIL, entry(action), now=NOW, regime=Regime.OPT_IN)
        assert not d.permitted and d.reason is reason


def test_lifetime_expires_consent() -> None:
    purpose = Purpose("email", "Email", LegalBasis.CONSENT, lifetime_days=30)
    fresh = decide(
        "s",
        purpose,
        entry(Action.GIVEN, at=NOW - timedelta(days=29)),
        now=NOW,
        regime=Regime.OPT_IN,
    )
    assert fresh.permitted and fresh.valid_until == NOW + timedelta(days=1)
    old = decide(
        "s",
        purpose,
        entry(Action.GIVEN, at=NOW - timedelta(days=30)),
        now=NOW,
        regime=Regime.OPT_IN,
    )
    assert not old.permitted and old.reason is Reason.EXPIRED


def test_material_notice_change_pending_then_required() -> None:
    published = NOW - timedelta(days=10)
    change = MaterialChange("privacy", 2, published, published + timedelta(days=30))
    consent = entry(Action.GIVEN, at=NOW - timedelta(days=100), notice=("privacy", 1))
    pending = decide("s", EMAIL, consent, now=NOW, regime=Regime.OPT_IN, changes=(change,))
    assert pending.permitted and pending.reason is Reason.GRANTED
    assert pending.restrictions == (RECONSENT_PENDING,)
    assert pending.valid_until == change.grace_until
    later = NOW + timedelta(days=25)
    required = decide("s", EMAIL, consent, now=later, regime=Regime.OPT_IN, changes=(change,))
    assert not required.permitted and required.reason is Reason.RECONSENT_REQUIRED
    renewed = entry(Action.GIVEN, at=NOW - timedelta(days=1), notice=("privacy", 2))
    ok = decide("s", EMAIL, renewed, now=later, regime=Regime.OPT_IN, changes=(change,))
    assert ok.permitted and ok.restrictions == ()


def test_change_published_after_now_is_ignored_and_unrelated_notice_uses_time() -> None:
    future = MaterialChange("privacy", 2, NOW + timedelta(days=1), NOW + timedelta(days=31))
    consent = entry(Action.GIVEN, notice=("privacy", 1))
    assert decide("s", EMAIL, consent, now=NOW, regime=Regime.OPT_IN, changes=(future,)).permitted
    past = MaterialChange("cookies", 2, NOW - timedelta(days=60), NOW - timedelta(days=30))
    before = entry(Action.GIVEN, at=NOW - timedelta(days=90))
    after = entry(Action.GIVEN, at=NOW - timedelta(days=59))
    assert not decide("s", EMAIL, before, now=NOW, regime=Regime.OPT_IN, changes=(past,)).permitted
    assert decide("s", EMAIL, after, now=NOW, regime=Regime.OPT_IN, changes=(past,)).permitted


def test_opt_out_regime_allows_until_opted_out_and_gpc() -> None:
    assert decide("s", ADS, None, now=NOW, regime=Regime.OPT_OUT).reason is Reason.NOT_OPTED_OUT
    assert decide("s", ADS, None, now=NOW, regime=Regime.OPT_OUT).permitted
    out = decide("s", ADS, entry(Action.OPTED_OUT), now=NOW, regime=Regime.OPT_OUT)
    assert not out.permitted and out.reason is Reason.OPTED_OUT
    gpc_event = entry(Action.OPTED_OUT, source=Source.GPC)
    assert decide("s", ADS, gpc_event, now=NOW, regime=Regime.OPT_OUT).reason is Reason.GPC_OPT_OUT
    signal = decide("s", ADS, None, now=NOW, regime=Regime.OPT_OUT, signals=Signals(gpc=True))
    assert not signal.permitted and signal.reason is Reason.GPC_OPT_OUT
    # The same purpose in an opt-in regime still needs consent.
    assert not decide("s", ADS, None, now=NOW, regime=Regime.OPT_IN).permitted


def test_other_bases() -> None:
    li = Purpose("fraud", "Fraud", LegalBasis.LEGITIMATE_INTEREST)
    assert decide("s", li, None, now=NOW, regime=Regime.OPT_IN).reason is Reason.LEGITIMATE_INTEREST
    objected = decide("s", li, entry(Action.OBJECTED), now=NOW, regime=Regime.OPT_IN)
    assert not objected.permitted and objected.reason is Reason.OBJECTED
    contract = Purpose("billing", "Billing", LegalBasis.CONTRACT)
    assert decide("s", contract, None, now=NOW, regime=Regime.OPT_IN).reason is Reason.CONTRACT
    law = Purpose("tax", "Tax", LegalBasis.LEGAL_OBLIGATION)
    assert decide("s", law, None, now=NOW, regime=Regime.OPT_IN).reason is Reason.LEGAL_OBLIGATION
    required = Purpose("session", "Session", LegalBasis.CONSENT, required=True)
    assert decide("s", required, None, now=NOW, regime=Regime.OPT_IN).permitted


def test_children_need_a_guardian() -> None:
    child = Signals(age=12, jurisdiction="DE")
    by_child = decide("s", EMAIL, entry(Action.GIVEN), now=NOW, regime=Regime.OPT_IN, signals=child)
    assert not by_child.permitted and by_child.reason is Reason.GUARDIAN_REQUIRED
    by_guardian = decide(
        "s",
        EMAIL,
        entry(Action.GIVEN, actor=Actor.GUARDIAN),
        now=NOW,
        regime=Regime.OPT_IN,
        signals=child,
    )
    assert by_guardian.permitted
    # Under 16 in a US opt-out regime: sale/sharing needs an opt-in.
    teen = decide("s", ADS, None, now=NOW, regime=Regime.OPT_OUT, signals=Signals(age=15))
    assert not teen.permitted


def test_unavailable_is_never_permitted() -> None:
    d = unavailable("s", "email", NOW)
    assert not d.permitted and d.reason is Reason.UNAVAILABLE


purposes = st.builds(
    Purpose,
    id=st.sampled_from(["a", "b", "c"]),
    name=st.just("P"),
    legal_basis=st.sampled_from(list(LegalBasis)),
    required=st.booleans(),
    lifetime_days=st.none() | st.integers(1, 400),
).filter(lambda p: True)
entries = st.none() | st.builds(
    entry,
    st.sampled_from(list(Action)),
    at=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2027, 1, 1), timezones=st.just(UTC)
    ),
    position=st.integers(1, 10_000),
    source=st.sampled_from(list(Source)),
    actor=st.sampled_from(list(Actor)),
)
signals = st.builds(
    Signals,
    gpc=st.booleans(),
    age=st.none() | st.integers(0, 99),
    jurisdiction=st.sampled_from([None, "DE", "US-CA", "FR"]),
)


@given(purposes, entries, st.sampled_from(list(Regime)), signals)
def test_properties(purpose: Purpose, e: StateEntry | None, regime: Regime, sig: Signals) -> None:
    d = decide("s", purpose, e, now=NOW, regime=regime, signals=sig)
    # Provenance: every decision names the event behind it, or none when there is none.
    assert d.position == (e.position if e else None)
    assert d.decided_at == NOW and d.purpose == purpose.id
    if purpose.legal_basis is LegalBasis.CONSENT and not purpose.required:
        # Fail closed: consent purposes in opt-in regimes need a positive, current event.
        if regime is Regime.OPT_IN and d.permitted:
            assert e is not None and e.action in (Action.GIVEN, Action.OPTED_IN)
        # A negative latest action is never overridden.
        if e is not None and e.action in (Action.REFUSED, Action.WITHDRAWN, Action.OPTED_OUT):
            assert not d.permitted
    if d.permitted and d.valid_until is not None:
        assert d.valid_until > NOW
    if purpose.legal_basis in (LegalBasis.CONTRACT, LegalBasis.LEGAL_OBLIGATION):
        assert d.permitted
