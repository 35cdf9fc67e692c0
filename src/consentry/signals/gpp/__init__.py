"""IAB Global Privacy Platform (GPP) strings: every section @iabgpp/cmpapi supports.

``header~section~section...``. The package splits by concept:

- :mod:`.encoding` — Fibonacci integers and ranges, optimized ranges, datetimes, the error type;
- :mod:`.fields` — field kinds and the table-driven section model (:class:`Section`);
- :mod:`.header` — the header (type 3, version 1, section ids);
- :mod:`.us` and :mod:`.us_states` — usnat and every US state section;
- :mod:`.tcfeu` (tcfeuv2, via :mod:`consentry.signals.tcf`), :mod:`.tcfca` (tcfcav1),
  :mod:`.uspv1`;
- :mod:`.registry` — section id -> model, decoder, encoder; :mod:`.codec` — whole strings.

Section models use the IAB field names (``SaleOptOut``, ``Gpc``...) as attribute names: they
are the names the GPP CMP API's ``getField`` uses and what the reference library emits, so
values can be compared with other GPP tooling without a translation table.
"""

from __future__ import annotations

from consentry.signals.gpp.codec import (
    GPPString,
    decode,
    decode_section,
    encode,
    encode_section,
    section_ids,
)
from consentry.signals.gpp.encoding import (
    GPPStringError,
    Padding,
    fibonacci_decode,
    fibonacci_encode,
)
from consentry.signals.gpp.fields import RangeEntry
from consentry.signals.gpp.model import Section
from consentry.signals.gpp.registry import (
    SECTION_NAMES,
    SECTIONS,
    SECTIONS_BY_ID,
    SECTIONS_BY_NAME,
    SectionType,
)
from consentry.signals.gpp.tcfca import TcfCaV1
from consentry.signals.gpp.tcfeu import tcfeuv2_fields, tcfeuv2_from_fields
from consentry.signals.gpp.us import SubSection, UsSection, decode_us, encode_us
from consentry.signals.gpp.us_states import (
    US_SECTIONS,
    UsCa,
    UsCo,
    UsCt,
    UsDe,
    UsFl,
    UsIa,
    UsIn,
    UsKy,
    UsMd,
    UsMn,
    UsMt,
    UsNat,
    UsNe,
    UsNh,
    UsNj,
    UsOr,
    UsRi,
    UsTn,
    UsTx,
    UsUt,
    UsVa,
)
from consentry.signals.gpp.uspv1 import UspV1

__all__ = [
    "SECTIONS",
    "SECTIONS_BY_ID",
    "SECTIONS_BY_NAME",
    "SECTION_NAMES",
    "TCFEUV2_ID",
    "USNAT_ID",
    "USPV1_ID",
    "US_SECTIONS",
    "GPPString",
    "GPPStringError",
    "Padding",
    "RangeEntry",
    "Section",
    "SectionType",
    "SubSection",
    "TcfCaV1",
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
    "UsSection",
    "UsTn",
    "UsTx",
    "UsUt",
    "UsVa",
    "UspV1",
    "decode",
    "decode_section",
    "decode_us",
    "decode_usnat",
    "encode",
    "encode_section",
    "encode_us",
    "encode_usnat",
    "fibonacci_decode",
    "fibonacci_encode",
    "section_ids",
    "tcfeuv2_fields",
    "tcfeuv2_from_fields",
]

TCFEUV2_ID = 2
USPV1_ID = UspV1.ID
USNAT_ID = UsNat.ID


def decode_usnat(text: str, *, strict: bool = True) -> UsNat:
    """One usnat section body (kept for callers of the single-section codec)."""
    return decode_us(UsNat, text, strict=strict)


def encode_usnat(
    section: UsNat, *, strict: bool = True, padding: Padding = Padding.REFERENCE
) -> str:
    """One usnat section body, core plus GPC sub-section."""
    return encode_us(section, strict=strict, padding=padding)
