"""Regimes: whether a jurisdiction asks for consent first (opt-in) or allows until opt-out.

GDPR-style laws deny consent purposes until the person agrees; the US state laws allow sale,
sharing and targeted advertising until the person opts out. The table maps jurisdiction codes
(ISO 3166-1 alpha-2 country, or country-subdivision such as US-CA) to a regime. A jurisdiction
not in the table falls back to the configured default, opt-in unless set otherwise, because
asking first is never unlawful where opting out would have sufficed, while the reverse can be.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class Regime(StrEnum):
    OPT_IN = "opt_in"
    OPT_OUT = "opt_out"


# EU and EEA members, the UK and Switzerland, and other GDPR-like consent-first laws.
_OPT_IN = (
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE"
    " IS LI NO GB CH BR"
).split()

DEFAULT_REGIMES: Mapping[str, Regime] = {
    **{code: Regime.OPT_IN for code in _OPT_IN},
    "EU": Regime.OPT_IN,
    "EEA": Regime.OPT_IN,
    "US": Regime.OPT_OUT,
}

# GDPR Art. 8(1) and national choices: the age under which a guardian must consent.
DIGITAL_CONSENT_AGE: Mapping[str, int] = {
    **dict.fromkeys("BE DK EE FI LV MT PT SE NO IS GB".split(), 13),
    **dict.fromkeys("AT BG CY IT LT ES".split(), 14),
    **dict.fromkeys("CZ FR GR SI".split(), 15),
    **dict.fromkeys("HR DE HU IE LU NL PL RO SK LI".split(), 16),
    "US": 13,  # COPPA
}
DEFAULT_DIGITAL_CONSENT_AGE = 16


def normalize_jurisdiction(code: str) -> str:
    """Upper-case and use '-' between country and subdivision, as ISO 3166-2 does."""
    return code.strip().upper().replace("_", "-")


def regime_for(
    jurisdiction: str | None,
    default: Regime = Regime.OPT_IN,
    table: Mapping[str, Regime] = DEFAULT_REGIMES,
) -> Regime:
    """The regime of a jurisdiction: exact code first, then its country, then the default."""
    if not jurisdiction:
        return default
    code = normalize_jurisdiction(jurisdiction)
    if code in table:
        return table[code]
    country = code.split("-", 1)[0]
    return table.get(country, default)


def consent_age(jurisdiction: str | None) -> int:
    """The age under which a guardian's consent is needed in `jurisdiction`."""
    if not jurisdiction:
        return DEFAULT_DIGITAL_CONSENT_AGE
    country = normalize_jurisdiction(jurisdiction).split("-", 1)[0]
    return DIGITAL_CONSENT_AGE.get(country, DEFAULT_DIGITAL_CONSENT_AGE)
