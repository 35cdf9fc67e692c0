"""The table of GPP sections this codec reads and writes: one row per section id.

A row ties a section id and name to its model class, its decoder and encoder, and its
``getSection`` view. Ids registered by the IAB that no implementation supports (1 tcfeuv1,
4 signal integrity) are named in :data:`SECTION_NAMES` but have no row, so strings carrying
them decode with those sections reported as unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from types import MappingProxyType
from typing import Any

from consentry.signals import tcf
from consentry.signals.gpp.encoding import Padding
from consentry.signals.gpp.tcfca import TcfCaV1, decode_tcfca, encode_tcfca
from consentry.signals.gpp.tcfeu import (
    decode_tcfeu,
    encode_tcfeu,
    tcfeuv2_fields,
    tcfeuv2_from_fields,
)
from consentry.signals.gpp.us import UsSection, decode_us, encode_us
from consentry.signals.gpp.us_states import US_SECTIONS
from consentry.signals.gpp.uspv1 import UspV1

__all__ = ["SECTIONS", "SECTIONS_BY_ID", "SECTIONS_BY_NAME", "SECTION_NAMES", "SectionType"]


@dataclass(frozen=True, slots=True)
class SectionType:
    """What the codec knows of one section id."""

    id: int
    name: str
    model: type[Any]
    decode: Callable[..., Any]  # (text, *, strict) -> model
    encode: Callable[..., str]  # (model, *, strict, padding) -> section text
    fields: Callable[[Any], dict[str, Any]]  # model -> getSection view
    from_fields: Callable[[Mapping[str, Any]], Any]  # getSection view -> model
    #: The jurisdiction whose law a US section speaks for (usnat: "US"), else None.
    jurisdiction: str | None = None


def _uspv1_decode(text: str, *, strict: bool = True) -> UspV1:
    return UspV1.parse(text)


def _uspv1_encode(
    model: UspV1, *, strict: bool = True, padding: Padding = Padding.REFERENCE
) -> str:
    return str(model)


def _us_row(cls: type[UsSection]) -> SectionType:
    return SectionType(
        cls.ID,
        cls.NAME,
        cls,
        partial(decode_us, cls),
        encode_us,
        cls.to_dict,
        cls.from_dict,
        cls.JURISDICTION,
    )


#: Every supported section, in id order (the order sections take in a string).
SECTIONS: tuple[SectionType, ...] = (
    SectionType(
        2, "tcfeuv2", tcf.TCModel, decode_tcfeu, encode_tcfeu, tcfeuv2_fields, tcfeuv2_from_fields
    ),
    SectionType(
        5, "tcfcav1", TcfCaV1, decode_tcfca, encode_tcfca, TcfCaV1.to_dict, TcfCaV1.from_dict
    ),
    SectionType(
        6,
        "uspv1",
        UspV1,
        _uspv1_decode,
        _uspv1_encode,
        UspV1.to_dict,
        lambda data: UspV1(**dict(data)),
    ),
    *(_us_row(cls) for cls in US_SECTIONS),
)
SECTIONS_BY_ID: Mapping[int, SectionType] = MappingProxyType({s.id: s for s in SECTIONS})
SECTIONS_BY_NAME: Mapping[str, SectionType] = MappingProxyType({s.name: s for s in SECTIONS})

#: Section ids registered in the specification's ``Section Information.md``.
SECTION_NAMES: Mapping[int, str] = MappingProxyType(
    dict(
        sorted(
            {
                1: "tcfeuv1",
                3: "gpp header",
                4: "signal integrity",
                **{s.id: s.name for s in SECTIONS},
            }.items()
        )
    )
)
