"""Purposes, notices, actions, regimes, events and the bitemporal fold."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.actions import validate_action
from consentry.domain.errors import ValidationError
from consentry.domain.events import (
    Action,
    Evidence,
    RecordedEvent,
    Source,
    format_time,
    parse_time,
)
from consentry.domain.history import latest_per_purpose
from consentry.domain.notices import Notice, material_changes
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.domain.regimes import Regime, consent_age, regime_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def event(
    position: int,
    purpose: str,
    action: Action,
    occurred: datetime,
    recorded: datetime | None = None,
) -> RecordedEvent:
    return RecordedEvent(
        position=position,
        subject_version=position,
        recorded_at=recorded or occurred,
        event_id=uuid.UUID(int=position),
        tenant="t",
        subject="s",
        purpose=purpose,
        action=action,
        legal_basis=LegalBasis.CONSENT,
        occurred_at=occurred,
        evidence=Evidence(Source.API),
    )


def test_purpose_validation() -> None:
    with pytest.raises(ValidationError, match="lowercase"):
        Purpose("Bad Id", "x", LegalBasis.CONSENT)
    with pytest.raises(ValidationError, match="opt_out_category"):
        Purpose("ads", "x", LegalBasis.CONTRACT, opt_out_category=OptOutCategory.SALE)
    with pytest.raises(ValidationError, match="lifetime_days"):
        Purpose("x", "x", LegalBasis.CONSENT, lifetime_days=0)


@pytest.mark.parametrize(
    ("basis", "action", "message"),
    [
        (LegalBasis.CONTRACT, Action.WITHDRAWN, "contract"),
        (LegalBasis.LEGAL_OBLIGATION, Action.REFUSED, "legal_obligation"),
        (LegalBasis.LEGITIMATE_INTEREST, Action.WITHDRAWN, "objected"),
        (LegalBasis.CONSENT, Action.OBJECTED, "withdrawn"),
        (LegalBasis.CONSENT, Action.OPTED_OUT, "opt_out_category"),
    ],
)
def test_actions_the_basis_does_not_allow(basis: LegalBasis, action: Action, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_action(Purpose("p", "P", basis), action)


def test_required_purpose_cannot_be_withdrawn() -> None:
    required = Purpose("session", "Session", LegalBasis.CONSENT, required=True)
    with pytest.raises(ValidationError, match="required"):
        validate_action(required, Action.WITHDRAWN)
    validate_action(required, Action.GIVEN)


def test_regimes() -> None:
    assert regime_for("DE") is Regime.OPT_IN
    assert regime_for("us-ca") is Regime.OPT_OUT
    assert regime_for("US_VA") is Regime.OPT_OUT
    assert regime_for("ZZ") is Regime.OPT_IN
    assert regime_for("ZZ", default=Regime.OPT_OUT) is Regime.OPT_OUT
    assert regime_for(None) is Regime.OPT_IN
    assert consent_age("FR") == 15 and consent_age("DE") == 16 and consent_age("BE") == 13


def test_notice_hash_and_material_changes() -> None:
    n1 = Notice("privacy", 1, "v1", ("email",), T0)
    n2 = Notice(
        "privacy", 2, "v2", ("email", "ads"), T0 + timedelta(days=5), material=True, grace_days=10
    )
    assert n1.content_hash.startswith("sha256:") and n1.content_hash != n2.content_hash
    changes = material_changes([n1, n2], "ads")
    assert [(c.version, c.grace_until) for c in changes] == [(2, T0 + timedelta(days=15))]
    assert material_changes([n1, n2], "other") == ()
    with pytest.raises(ValidationError):
        Notice("privacy", 0, "x", ("email",), T0)
    with pytest.raises(ValidationError, match="time zone"):
        Notice("privacy", 1, "x", ("email",), datetime(2026, 1, 1))


def test_time_format_round_trips_and_requires_a_zone() -> None:
    t = datetime(2026, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)
    assert format_time(t) == "2026-03-04T05:06:07.890123Z"
    assert parse_time(format_time(t)) == t
    assert parse_time("2026-03-04T07:06:07.890123+02:00") == t
    with pytest.raises(ValueError, match="time zone"):
        parse_time("2026-03-04T05:06:07")
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_time("yesterday")


def test_canonical_bytes_are_deterministic_json() -> None:
    e = event(1, "email", Action.GIVEN, T0)
    data = e.canonical_bytes()
    assert data == event(1, "email", Action.GIVEN, T0).canonical_bytes()
    parsed = json.loads(data)
    assert parsed["v"] == 1 and parsed["occurred_at"] == "2026-01-01T00:00:00.000000Z"
    assert list(parsed) == sorted(parsed)
    assert event(1, "email", Action.REFUSED, T0).canonical_bytes() != data


def test_late_event_never_overrides_a_newer_decision() -> None:
    newer = event(1, "email", Action.WITHDRAWN, T0 + timedelta(hours=2))
    late = event(2, "email", Action.GIVEN, T0 + timedelta(hours=1))
    assert latest_per_purpose([newer, late])["email"] is newer


def test_bitemporal_queries() -> None:
    given_ = event(1, "email", Action.GIVEN, T0, recorded=T0)
    withdrawn = event(
        2, "email", Action.WITHDRAWN, T0 + timedelta(days=2), recorded=T0 + timedelta(days=10)
    )  # reported late
    history = [given_, withdrawn]
    assert latest_per_purpose(history)["email"] is withdrawn
    assert latest_per_purpose(history, as_of=T0 + timedelta(days=1))["email"] is given_
    # At day 5, the withdrawal had happened (valid time) but we did not know it yet.
    known = latest_per_purpose(
        history, as_of=T0 + timedelta(days=5), known_at=T0 + timedelta(days=5)
    )
    assert known["email"] is given_
    assert latest_per_purpose(history, as_of=T0 - timedelta(days=1)) == {}


@given(
    st.lists(st.tuples(st.integers(0, 50), st.sampled_from(list(Action))), min_size=1, max_size=30)
)
def test_fold_is_order_independent(items: list[tuple[int, Action]]) -> None:
    events = [event(i + 1, "p", a, T0 + timedelta(minutes=m)) for i, (m, a) in enumerate(items)]
    expected = max(events, key=lambda e: (e.occurred_at, e.position))
    assert latest_per_purpose(events)["p"] is expected
    assert latest_per_purpose(reversed(events))["p"] is expected
