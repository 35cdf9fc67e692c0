"""The table of US sections, as the IAB specifications (and @iabgpp/cmpapi 3.2.0) lay them out.

One class per section: its id, name, the jurisdiction whose law it speaks for, and its field
layout (see :func:`~consentry.signals.gpp.us.us_layout`: names in bit order, ``*N`` for a list
of N 2-bit values). Field names are the specification's. A new state section is one more class
here and one line in the registry.
"""

from __future__ import annotations

from consentry.signals.gpp.us import SubSection, UsSection, us_layout

__all__ = [
    "US_SECTIONS",
    "UsCa",
    "UsCo",
    "UsCt",
    "UsDe",
    "UsFl",
    "UsIa",
    "UsIn",
    "UsKy",
    "UsMd",
    "UsMn",
    "UsMt",
    "UsNat",
    "UsNe",
    "UsNh",
    "UsNj",
    "UsOr",
    "UsRi",
    "UsTn",
    "UsTx",
    "UsUt",
    "UsVa",
]

GPC = SubSection.GPC
SENSITIVE = SubSection.SENSITIVE_DATA
_MSPA = "MspaCoveredTransaction MspaOptOutOptionMode MspaServiceProviderMode"
_NOTICES = "ProcessingNotice SaleOptOutNotice TargetedAdvertisingOptOutNotice"
_OPT_OUTS = "SaleOptOut TargetedAdvertisingOptOut"
# The 2025 sections put the MSPA fields first and the sensitive data in a sub-section.
_MSPA_FIRST = f"MspaVersion MspaCoveredTransaction MspaMode {_NOTICES} {_OPT_OUTS}"
_USNAT_HEAD = (
    "Version SharingNotice SaleOptOutNotice SharingOptOutNotice TargetedAdvertisingOptOutNotice"
    " SensitiveDataProcessingOptOutNotice SensitiveDataLimitUseNotice SaleOptOut SharingOptOut"
    " TargetedAdvertisingOptOut"
)


def _state(sensitive: int, children: int) -> str:
    """The common layout of the 2024 state sections (FL, MT, OR, TX, DE, NE, NH, NJ, TN, MN);
    ``children`` 0 means one 2-bit value rather than a list."""
    child = "KnownChildSensitiveDataConsents" + (f"*{children}" if children else "")
    return (
        f"Version {_NOTICES} {_OPT_OUTS} SensitiveDataProcessing*{sensitive} {child}"
        f" AdditionalDataProcessingConsent {_MSPA}"
    )


class UsNat(UsSection):
    """US National (MSPA, every state): v1 has 12 sensitive categories and 2 child-consent
    entries, v2 (October 2024) 16 and 3."""

    __slots__ = ()
    ID, NAME, JURISDICTION = 7, "usnat", "US"
    VERSIONS = {
        version: us_layout(
            f"{_USNAT_HEAD} SensitiveDataProcessing*{sensitive}"
            f" KnownChildSensitiveDataConsents*{children} PersonalDataConsents {_MSPA}",
            GPC,
        )
        for version, sensitive, children in ((1, 12, 2), (2, 16, 3))
    }


class UsCa(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 8, "usca", "US-CA"
    VERSIONS = {
        1: us_layout(
            "Version SaleOptOutNotice SharingOptOutNotice SensitiveDataLimitUseNotice SaleOptOut"
            " SharingOptOut SensitiveDataProcessing*9 KnownChildSensitiveDataConsents*2"
            f" PersonalDataConsents {_MSPA}",
            GPC,
        )
    }


class UsVa(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION, SUBSECTION = 9, "usva", "US-VA", None
    VERSIONS = {
        1: us_layout(
            "Version SharingNotice SaleOptOutNotice TargetedAdvertisingOptOutNotice"
            f" {_OPT_OUTS} SensitiveDataProcessing*8 KnownChildSensitiveDataConsents {_MSPA}",
            None,
        )
    }


class UsCo(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 10, "usco", "US-CO"
    VERSIONS = {
        1: us_layout(
            "Version SharingNotice SaleOptOutNotice TargetedAdvertisingOptOutNotice"
            f" {_OPT_OUTS} SensitiveDataProcessing*7 KnownChildSensitiveDataConsents {_MSPA}",
            GPC,
        )
    }


class UsUt(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION, SUBSECTION = 11, "usut", "US-UT", None
    VERSIONS = {
        1: us_layout(
            "Version SharingNotice SaleOptOutNotice TargetedAdvertisingOptOutNotice"
            f" SensitiveDataProcessingOptOutNotice {_OPT_OUTS} SensitiveDataProcessing*8"
            f" KnownChildSensitiveDataConsents {_MSPA}",
            None,
        )
    }


class UsCt(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 12, "usct", "US-CT"
    VERSIONS = {
        1: us_layout(
            "Version SharingNotice SaleOptOutNotice TargetedAdvertisingOptOutNotice"
            f" {_OPT_OUTS} SensitiveDataProcessing*8 KnownChildSensitiveDataConsents*3 {_MSPA}",
            GPC,
        )
    }


class UsFl(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION, SUBSECTION = 13, "usfl", "US-FL", None
    VERSIONS = {1: us_layout(_state(8, 3), None)}


class UsMt(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 14, "usmt", "US-MT"
    VERSIONS = {1: us_layout(_state(8, 3).replace("ProcessingNotice", "SharingNotice", 1), GPC)}


class UsOr(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 15, "usor", "US-OR"
    VERSIONS = {1: us_layout(_state(11, 3), GPC)}


class UsTx(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 16, "ustx", "US-TX"
    VERSIONS = {1: us_layout(_state(8, 0), GPC)}


class UsDe(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 17, "usde", "US-DE"
    VERSIONS = {1: us_layout(_state(9, 5), GPC)}


class UsIa(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 18, "usia", "US-IA"
    VERSIONS = {
        1: us_layout(
            f"Version {_NOTICES} SensitiveDataOptOutNotice {_OPT_OUTS} SensitiveDataProcessing*8"
            f" KnownChildSensitiveDataConsents {_MSPA}",
            GPC,
        )
    }


class UsNe(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 19, "usne", "US-NE"
    VERSIONS = {1: us_layout(_state(8, 0), GPC)}


class UsNh(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 20, "usnh", "US-NH"
    VERSIONS = {1: us_layout(_state(8, 3), GPC)}


class UsNj(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 21, "usnj", "US-NJ"
    VERSIONS = {1: us_layout(_state(10, 5), GPC)}


class UsTn(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 22, "ustn", "US-TN"
    VERSIONS = {1: us_layout(_state(8, 0), GPC)}


class UsMn(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION = 23, "usmn", "US-MN"
    VERSIONS = {1: us_layout(_state(8, 0), GPC)}


class UsMd(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION, VERSION_FIELD = 24, "usmd", "US-MD", "MspaVersion"
    VERSIONS = {1: us_layout(f"{_MSPA_FIRST} AdditionalDataProcessingConsent", GPC)}


class UsIn(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION, VERSION_FIELD = 25, "usin", "US-IN", "MspaVersion"
    SUBSECTION = SENSITIVE
    VERSIONS = {
        1: us_layout(
            f"{_MSPA_FIRST} KnownChildSensitiveDataConsents AdditionalDataProcessingConsent",
            SENSITIVE,
        )
    }


class UsKy(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION, VERSION_FIELD = 26, "usky", "US-KY", "MspaVersion"
    SUBSECTION = SENSITIVE
    VERSIONS = UsIn.VERSIONS


class UsRi(UsSection):
    __slots__ = ()
    ID, NAME, JURISDICTION, VERSION_FIELD = 27, "usri", "US-RI", "MspaVersion"
    SUBSECTION = SENSITIVE
    VERSIONS = UsIn.VERSIONS


#: Every US section, usnat first, then the states by section id.
US_SECTIONS: tuple[type[UsSection], ...] = (
    UsNat,
    UsCa,
    UsVa,
    UsCo,
    UsUt,
    UsCt,
    UsFl,
    UsMt,
    UsOr,
    UsTx,
    UsDe,
    UsIa,
    UsNe,
    UsNh,
    UsNj,
    UsTn,
    UsMn,
    UsMd,
    UsIn,
    UsKy,
    UsRi,
)
