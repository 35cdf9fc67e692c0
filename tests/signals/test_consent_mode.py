"""Google Consent Mode v2: the seven types and the gtag('consent', ...) parameters."""

from __future__ import annotations

import json
from typing import Any

import pytest

from consentry.signals.consent_mode import (
    CONSENT_TYPES,
    ConsentModeState,
    gtag_consent_params,
)


def test_the_seven_v2_types() -> None:
    assert set(CONSENT_TYPES) == {
        "ad_storage",
        "analytics_storage",
        "ad_user_data",
        "ad_personalization",
        "functionality_storage",
        "personalization_storage",
        "security_storage",
    }
    assert set(ConsentModeState.__dataclass_fields__) == set(CONSENT_TYPES)


def test_all_denied_default_with_wait_and_region() -> None:
    params = gtag_consent_params(
        ConsentModeState.all_denied(), wait_for_update=500, region=["FR", "de", "US-CA"]
    )
    assert params == {
        **dict.fromkeys(CONSENT_TYPES, "denied"),
        "wait_for_update": 500,
        "region": ["FR", "DE", "US-CA"],
    }
    assert json.loads(json.dumps(params)) == params


def test_update_sends_only_the_types_set() -> None:
    state = ConsentModeState(ad_user_data="granted", ad_personalization="denied")
    assert gtag_consent_params(state, command="update") == {
        "ad_user_data": "granted",
        "ad_personalization": "denied",
    }


def test_all_granted_and_order() -> None:
    params = gtag_consent_params(ConsentModeState.all_granted(), command="update")
    assert list(params) == list(CONSENT_TYPES)
    assert set(params.values()) == {"granted"}
    assert ConsentModeState.uniform("granted") == ConsentModeState.all_granted()


def test_unset_default_is_empty() -> None:
    assert gtag_consent_params(ConsentModeState()) == {}


@pytest.mark.parametrize("value", ["GRANTED", "yes", True, 1, ""])
def test_only_granted_or_denied(value: Any) -> None:
    with pytest.raises(ValueError, match="ad_storage must be 'granted' or 'denied'"):
        ConsentModeState(ad_storage=value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"command": "update", "wait_for_update": 500}, "only valid with command='default'"),
        ({"command": "update", "region": ["FR"]}, "only valid with command='default'"),
        ({"command": "set"}, "command must be"),
        ({"wait_for_update": -1}, "non-negative"),
        ({"region": "FR"}, "list of codes"),
        ({"region": ["France"]}, "ISO 3166"),
        ({"region": []}, "ISO 3166"),
    ],
)
def test_parameter_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        gtag_consent_params(ConsentModeState.all_denied(), **kwargs)


def test_empty_update_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one consent type"):
        gtag_consent_params(ConsentModeState(), command="update")
