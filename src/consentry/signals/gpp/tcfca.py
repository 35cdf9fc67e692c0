"""Section 5, tcfcav1: the TCF Canada string (express and implied consent, not legitimate
interest), in the GPP encoding: compressed base64 and Fibonacci-coded optimized ranges.

Segments: the core (its first bits are the version, 1), the publisher purposes segment (type 3,
always written) and the disclosed vendors segment (type 1, written when it lists a vendor).
Strings from encoders that predate the Fibonacci ranges (fixed 16-bit ranges, as in TCF EU)
are still read: as the reference library does, the Fibonacci reading is kept when it
re-encodes to the same bits, else the fixed one when that does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from consentry.signals.bits import BitError, BitReader, BitWriter, base64url_to_bits
from consentry.signals.bits import bits_to_base64url as _to_base64url
from consentry.signals.gpp.encoding import GPPStringError, Padding
from consentry.signals.gpp.fields import (
    Bitfield,
    Bool,
    Datetime,
    FlexBitfield,
    Int,
    Kind,
    Letters,
    OptimizedRange,
    RangeArray,
    read_segment,
    write_segment,
)
from consentry.signals.gpp.model import Section

__all__ = ["TcfCaV1", "decode_tcfca", "encode_tcfca"]

_CORE_TYPE, _DISCLOSED_TYPE, _PUBLISHER_TYPE = 0, 1, 3


def _core(fibonacci: bool) -> dict[str, Kind]:
    return {
        "Version": Int(6, allowed=None, default=1),
        "Created": Datetime(),
        "LastUpdated": Datetime(),
        "CmpId": Int(12, allowed=None),
        "CmpVersion": Int(12, allowed=None),
        "ConsentScreen": Int(6, allowed=None),
        "ConsentLanguage": Letters(2, "EN"),
        "VendorListVersion": Int(12, allowed=None),
        "TcfPolicyVersion": Int(6, allowed=None, default=2),
        "UseNonStandardStacks": Bool(),
        "SpecialFeatureExpressConsent": Bitfield(12),
        "PurposesExpressConsent": Bitfield(24),
        "PurposesImpliedConsent": Bitfield(24),
        "VendorExpressConsent": OptimizedRange(fibonacci),
        "VendorImpliedConsent": OptimizedRange(fibonacci),
        "PubRestrictions": RangeArray(fibonacci),
    }


_PUBLISHER: dict[str, Kind] = {
    "PubPurposesExpressConsent": Bitfield(24),
    "PubPurposesImpliedConsent": Bitfield(24),
    "NumCustomPurposes": Int(6, allowed=None),
    "CustomPurposesExpressConsent": FlexBitfield("NumCustomPurposes"),
    "CustomPurposesImpliedConsent": FlexBitfield("NumCustomPurposes"),
}
_CORE_NAMES = tuple(_core(True))
_PUBLISHER_NAMES = tuple(_PUBLISHER)
_OPTIONAL_TAIL = "PubRestrictions"  # absent in some older strings: read as none
_LEGACY: Mapping[str, Kind] = {**_core(False), "DisclosedVendors": OptimizedRange(False)}


class TcfCaV1(Section):
    """The fields of a tcfcav1 section by their specification names; bitfields are tuples of
    booleans (position i is purpose/feature i+1), vendor lists sorted ids, publisher
    restrictions :class:`~consentry.signals.gpp.fields.RangeEntry` items."""

    __slots__ = ()
    ID, NAME = 5, "tcfcav1"
    REQUIRED = frozenset({"Created", "LastUpdated"})
    VERSIONS = {1: {**_core(True), **_PUBLISHER, "DisclosedVendors": OptimizedRange(True)}}


def _read_core(bits: str, kinds: Mapping[str, Kind]) -> dict[str, Any]:
    reader = BitReader(bits)
    values: dict[str, Any] = {}
    read_segment(reader, _CORE_NAMES[:-1], kinds, values)
    values[_OPTIONAL_TAIL] = (
        ()
        if reader.remaining < 12
        else (kinds[_OPTIONAL_TAIL].read(reader, _OPTIONAL_TAIL, values))
    )
    return values


def _read_disclosed(bits: str, kinds: Mapping[str, Kind]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    read_segment(BitReader(bits[3:]), ("DisclosedVendors",), kinds, values)
    return values


Reader = Callable[[str, Mapping[str, Kind]], dict[str, Any]]


def _either(bits: str, names: tuple[str, ...], head: str, read: Reader) -> dict[str, Any]:
    """The Fibonacci reading if it re-encodes to these bits, else the legacy one if that does,
    else the Fibonacci reading (whose errors then surface)."""
    current = TcfCaV1.VERSIONS[1]
    for kinds in (current, _LEGACY):
        try:
            values = read(bits, kinds)
            if bits.startswith(head + write_segment(names, kinds, values)):
                return values
        except (BitError, GPPStringError):
            continue
    return read(bits, current)


def decode_tcfca(text: str, *, strict: bool = True) -> TcfCaV1:
    """Decode a tcfcav1 section; segments may come in any order after the core."""
    parts = text.split(".")
    if any(not part for part in parts):
        raise GPPStringError("tcfcav1: empty segment")
    values: dict[str, Any] = {}
    seen: set[int] = set()
    try:
        for part in parts:
            bits = base64url_to_bits(part)
            seg_type = BitReader(bits).read_int(3, "tcfcav1.SegmentType")
            if seg_type in seen and strict:
                raise GPPStringError(f"tcfcav1: segment type {seg_type} appears twice")
            seen.add(seg_type)
            if seg_type == _CORE_TYPE:
                values.update(_either(bits, _CORE_NAMES, "", _read_core))
            elif seg_type == _DISCLOSED_TYPE:
                values.update(_either(bits, ("DisclosedVendors",), "001", _read_disclosed))
            elif seg_type == _PUBLISHER_TYPE:
                read_segment(BitReader(bits[3:]), _PUBLISHER_NAMES, _PUBLISHER, values)
            else:
                raise GPPStringError(f"tcfcav1: unknown segment type {seg_type}")
    except BitError as exc:
        raise GPPStringError(f"tcfcav1: {exc}") from exc
    if _CORE_TYPE not in seen:
        raise GPPStringError("tcfcav1: the core segment is missing")
    section = TcfCaV1(**values)
    if strict:
        section.check()
    return section


def encode_tcfca(
    section: TcfCaV1, *, strict: bool = True, padding: Padding = Padding.REFERENCE
) -> str:
    """``core.publisherPurposes[.disclosedVendors]``, the reference library's layout."""
    if strict:
        section.check()
    kinds = TcfCaV1.VERSIONS[1]
    values = section.values
    segments = [write_segment(_CORE_NAMES, kinds, values)]
    head = BitWriter()
    head.write_int(_PUBLISHER_TYPE, 3, "tcfcav1.SegmentType")
    segments.append(head.to_bits() + write_segment(_PUBLISHER_NAMES, kinds, values))
    if section.DisclosedVendors:
        segments.append("001" + write_segment(("DisclosedVendors",), kinds, values))
    return ".".join(_to_base64url(bits, padding.value) for bits in segments)
