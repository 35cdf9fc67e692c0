"""Google Consent Mode v2: the seven consent types and the ``gtag('consent', ...)`` parameters.

Google tags read consent only from these calls: a ``default`` before any ``config``/``event``
command on every page, and an ``update`` after the user chooses. Since March 2024 EEA traffic
without ``ad_user_data``/``ad_personalization`` loses ad features, so the model makes the v2
types first-class and refuses any value other than ``'granted'``/``'denied'``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Literal, get_args

__all__ = [
    "CONSENT_TYPES",
    "ConsentCommand",
    "ConsentModeState",
    "ConsentValue",
    "GtagConsentParams",
    "gtag_consent_params",
]

ConsentValue = Literal["granted", "denied"]
ConsentCommand = Literal["default", "update"]
GtagConsentParams = dict[str, str | int | list[str]]

CONSENT_TYPES: tuple[str, ...] = (
    "ad_storage",
    "analytics_storage",
    "ad_user_data",
    "ad_personalization",
    "functionality_storage",
    "personalization_storage",
    "security_storage",
)
_VALUES = frozenset(get_args(ConsentValue))
_REGION = re.compile(r"[A-Z]{2}(-[A-Z0-9]{1,3})?")


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentModeState:
    """One value per consent type; None leaves the type out of the call (unset / unchanged).

    Leaving a type out of an ``update`` keeps whatever the ``default`` set, which is how a CMP
    changes only the types a user touched.
    """

    ad_storage: ConsentValue | None = None
    analytics_storage: ConsentValue | None = None
    ad_user_data: ConsentValue | None = None
    ad_personalization: ConsentValue | None = None
    functionality_storage: ConsentValue | None = None
    personalization_storage: ConsentValue | None = None
    security_storage: ConsentValue | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and value not in _VALUES:
                raise ValueError(f"{f.name} must be 'granted' or 'denied', got {value!r}")

    @classmethod
    def uniform(cls, value: ConsentValue) -> ConsentModeState:
        """Every type set to the same value: the shape of "reject all" and "accept all"."""
        return cls(
            ad_storage=value,
            analytics_storage=value,
            ad_user_data=value,
            ad_personalization=value,
            functionality_storage=value,
            personalization_storage=value,
            security_storage=value,
        )

    @classmethod
    def all_denied(cls) -> ConsentModeState:
        """The privacy-safe default to send before the user has chosen."""
        return cls.uniform("denied")

    @classmethod
    def all_granted(cls) -> ConsentModeState:
        """What "accept all" maps to."""
        return cls.uniform("granted")

    def as_dict(self) -> dict[str, ConsentValue]:
        """Only the types that are set, in Google's documented order."""
        out: dict[str, ConsentValue] = {}
        for name in CONSENT_TYPES:
            value: ConsentValue | None = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


def gtag_consent_params(
    state: ConsentModeState,
    *,
    command: ConsentCommand = "default",
    wait_for_update: int | None = None,
    region: Sequence[str] | None = None,
) -> GtagConsentParams:
    """The third argument of ``gtag('consent', command, params)``, ready to JSON-serialise.

    ``wait_for_update`` (ms) lets tags wait for an asynchronously loaded CMP and ``region``
    (ISO 3166-1/-2 codes) scopes a default to visitors from those regions; Google only honours
    them on ``default``, so passing them with ``update`` is an error rather than a silent no-op.
    An ``update`` with no type set does nothing either, so it is refused too.
    """
    if command not in ("default", "update"):
        raise ValueError(f"command must be 'default' or 'update', got {command!r}")
    params: GtagConsentParams = dict(state.as_dict())
    if command == "update":
        if wait_for_update is not None or region is not None:
            raise ValueError("wait_for_update and region are only valid with command='default'")
        if not params:
            raise ValueError("an 'update' must set at least one consent type")
        return params
    if wait_for_update is not None:
        if wait_for_update < 0:
            raise ValueError("wait_for_update must be a non-negative number of milliseconds")
        params["wait_for_update"] = wait_for_update
    if region is not None:
        if isinstance(region, str):
            raise ValueError("region must be a list of codes, e.g. ['FR', 'US-CA']")
        codes = [code.upper() for code in region]
        bad = [code for code in codes if not _REGION.fullmatch(code)]
        if bad or not codes:
            raise ValueError(f"region must be ISO 3166-1/-2 codes like 'FR' or 'US-CA': {bad}")
        params["region"] = codes
    return params
