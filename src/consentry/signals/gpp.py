"""IAB Global Privacy Platform (GPP) string: header plus the tcfeuv2, uspv1 and usnat sections.

A GPP string is ``header~section~section...``. The header lists the section ids present with a
Fibonacci-coded range, and the sections follow in ascending id order. Sections this module does
not model (state sections, tcfcav1, ...) are kept verbatim, so a string can be decoded,
inspected and re-encoded without losing them.

Section models use the IAB field names (``SaleOptOut``, ``Gpc``...) as attribute names: they
are the names the GPP CMP API's ``getField`` uses and what the reference library emits, so
values can be compared with other GPP tooling without a translation table.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from consentry.signals import tcf
from consentry.signals.bits import BitError, BitReader, BitWriter, base64url_to_bits
from consentry.signals.bits import bits_to_base64url as _to_base64url

__all__ = [
    "SECTION_NAMES",
    "TCFEUV2_ID",
    "USNAT_ID",
    "USPV1_ID",
    "GPPString",
    "GPPStringError",
    "Padding",
    "UsNat",
    "UspV1",
    "decode",
    "decode_usnat",
    "encode",
    "encode_usnat",
    "fibonacci_decode",
    "fibonacci_encode",
    "section_ids",
]

HEADER_TYPE = 3
HEADER_VERSION = 1
TCFEUV2_ID = 2
USPV1_ID = 6
USNAT_ID = 7
_GPC_SUBSECTION = 1

#: Section ids registered in ``Sections/Section Information.md``.
SECTION_NAMES: Mapping[int, str] = MappingProxyType(
    {
        1: "tcfeuv1",
        2: "tcfeuv2",
        3: "gpp header",
        4: "signal integrity",
        5: "tcfcav1",
        6: "uspv1",
        7: "usnat",
        8: "usca",
        9: "usva",
        10: "usco",
        11: "usut",
        12: "usct",
        13: "usfl",
        14: "usmt",
        15: "usor",
        16: "ustx",
        17: "usde",
        18: "usia",
        19: "usne",
        20: "usnh",
        21: "usnj",
        22: "ustn",
        23: "usmn",
        24: "usmd",
        25: "usin",
        26: "usky",
        27: "usri",
    }
)
_MODELLED = frozenset({TCFEUV2_ID, USPV1_ID, USNAT_ID})


class GPPStringError(ValueError):
    """A GPP string (or a model about to be encoded) is malformed; the message names the part."""


class Padding(enum.Enum):
    """How many zero bits to append before base64; decoders must accept both."""

    REFERENCE = 8  # @iabgpp/cmpapi: whole bytes, then whole characters ("DBABLA")
    MINIMAL = 6  # spec text: whole characters only ("DBABL")


# --------------------------------------------------------------------------- Fibonacci coding


def _fibs_upto(limit: int) -> list[int]:
    fibs = [1, 2]
    while fibs[-1] <= limit:
        fibs.append(fibs[-1] + fibs[-2])
    return fibs


def fibonacci_encode(value: int) -> str:
    """Zeckendorf code, smallest term first, closed by an extra 1 (so "11" ends every number).

    Exposed because GPP ranges are built from it and the spec's examples test it directly.
    """
    if value < 1:
        raise GPPStringError(f"Fibonacci coding needs a positive integer, got {value}")
    fibs = _fibs_upto(value)
    bits = ["0"] * len(fibs)
    remaining = value
    for index in range(len(fibs) - 1, -1, -1):
        if fibs[index] <= remaining:
            bits[index] = "1"
            remaining -= fibs[index]
    return "".join(bits).rstrip("0") + "1"


def fibonacci_decode(bits: str) -> int:
    """Inverse of :func:`fibonacci_encode` for one complete code word (ending in "11")."""
    if len(bits) < 2 or not bits.endswith("11") or "11" in bits[:-1]:
        raise GPPStringError(f"not a Fibonacci code word: {bits!r}")
    fibs = _fibs_upto(1 << len(bits))
    return sum(fibs[index] for index, bit in enumerate(bits[:-1]) if bit == "1")


def _read_fibonacci(reader: BitReader, field: str) -> int:
    bits = ""
    while not bits.endswith("11"):
        bits += reader.read_bits(1, field)
    return fibonacci_decode(bits)


def _write_fibonacci_range(writer: BitWriter, ids: tuple[int, ...]) -> None:
    groups: list[tuple[int, int]] = []
    for item in ids:
        if groups and groups[-1][1] + 1 == item:
            groups[-1] = (groups[-1][0], item)
        else:
            groups.append((item, item))
    writer.write_int(len(groups), 12, "section count")
    offset = 0
    for start, end in groups:
        writer.write_bool(start != end)
        writer.write_bits(fibonacci_encode(start - offset))
        if start != end:
            writer.write_bits(fibonacci_encode(end - start))
        offset = end


def _read_fibonacci_range(reader: BitReader, field: str) -> tuple[int, ...]:
    ids: list[int] = []
    offset = 0
    for _ in range(reader.read_int(12, f"{field} count")):
        is_group = reader.read_bool(field)
        start = offset + _read_fibonacci(reader, field)
        end = start + _read_fibonacci(reader, field) if is_group else start
        ids.extend(range(start, end + 1))
        offset = end
    return tuple(ids)


# --------------------------------------------------------------------------- uspv1


_USP_VALUE = re.compile(r"[YN-]")


@dataclass(frozen=True, slots=True, kw_only=True)
class UspV1:
    """The legacy CCPA string ("1YNN"): version, notice given, opted out of sale, LSPA covered.

    Each flag is ``"Y"``, ``"N"`` or ``"-"`` (not applicable).
    """

    Version: int = 1
    Notice: str = "-"
    OptOutSale: str = "-"
    LspaCovered: str = "-"

    def __post_init__(self) -> None:
        if self.Version != 1:
            raise GPPStringError(f"uspv1: unsupported version {self.Version}")
        for name in ("Notice", "OptOutSale", "LspaCovered"):
            value = getattr(self, name)
            if not isinstance(value, str) or not _USP_VALUE.fullmatch(value):
                raise GPPStringError(f"uspv1: {name} must be 'Y', 'N' or '-', got {value!r}")

    def __str__(self) -> str:
        return f"{self.Version}{self.Notice}{self.OptOutSale}{self.LspaCovered}"

    @classmethod
    def parse(cls, text: str) -> UspV1:
        """Read the 4-character form carried as-is (not base64) in GPP section 6."""
        if len(text) != 4 or not text[0].isdigit():
            raise GPPStringError(f"uspv1: expected 4 characters like '1YNN', got {text!r}")
        return cls(
            Version=int(text[0]),
            Notice=text[1].upper(),
            OptOutSale=text[2].upper(),
            LspaCovered=text[3].upper(),
        )


# --------------------------------------------------------------------------- usnat

_USNAT_INTS_HEAD = (
    "SharingNotice",
    "SaleOptOutNotice",
    "SharingOptOutNotice",
    "TargetedAdvertisingOptOutNotice",
    "SensitiveDataProcessingOptOutNotice",
    "SensitiveDataLimitUseNotice",
    "SaleOptOut",
    "SharingOptOut",
    "TargetedAdvertisingOptOut",
)
_USNAT_INTS_TAIL = (
    "PersonalDataConsents",
    "MspaCoveredTransaction",
    "MspaOptOutOptionMode",
    "MspaServiceProviderMode",
)
# version -> (SensitiveDataProcessing length, KnownChildSensitiveDataConsents length)
_USNAT_LIST_LENGTHS: Mapping[int, tuple[int, int]] = MappingProxyType({1: (12, 2), 2: (16, 3)})


@dataclass(frozen=True, slots=True, kw_only=True)
class UsNat:
    """The US National (MSPA) section, version 1 or 2, including the optional GPC sub-section.

    Two-bit values follow the spec: notices 0 = not applicable, 1 = yes, 2 = no; opt-outs
    0 = not applicable, 1 = opted out, 2 = did not opt out; per-category consents 0 = not
    applicable, 1 = no consent, 2 = consent; MspaCoveredTransaction 1 = yes, 2 = no. Empty
    lists stand for "all not applicable" at the version's length (16/3 for v2, 12/2 for v1).
    """

    Version: int = 2
    SharingNotice: int = 0
    SaleOptOutNotice: int = 0
    SharingOptOutNotice: int = 0
    TargetedAdvertisingOptOutNotice: int = 0
    SensitiveDataProcessingOptOutNotice: int = 0
    SensitiveDataLimitUseNotice: int = 0
    SaleOptOut: int = 0
    SharingOptOut: int = 0
    TargetedAdvertisingOptOut: int = 0
    SensitiveDataProcessing: tuple[int, ...] = ()
    KnownChildSensitiveDataConsents: tuple[int, ...] = ()
    PersonalDataConsents: int = 0
    MspaCoveredTransaction: int
    MspaOptOutOptionMode: int = 0
    MspaServiceProviderMode: int = 0
    GpcSegmentIncluded: bool = True
    Gpc: bool = False

    def __post_init__(self) -> None:
        lengths = _USNAT_LIST_LENGTHS.get(self.Version)
        if lengths is None:
            raise GPPStringError(f"usnat: unsupported section version {self.Version}")
        for name, length in zip(
            ("SensitiveDataProcessing", "KnownChildSensitiveDataConsents"), lengths, strict=True
        ):
            values = tuple(getattr(self, name)) or (0,) * length
            if len(values) != length:
                raise GPPStringError(
                    f"usnat v{self.Version}: {name} must have {length} entries, got {len(values)}"
                )
            object.__setattr__(self, name, values)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UsNat:
        """Build from the JSON field names used by the reference library and the test vectors."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise GPPStringError(f"usnat: unknown field(s): {', '.join(unknown)}")
        try:
            return cls(**dict(data))
        except TypeError as exc:
            raise GPPStringError(f"usnat: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view with the IAB field names."""
        return {
            f.name: list(value) if isinstance(value, tuple) else value
            for f in fields(self)
            for value in [getattr(self, f.name)]
        }


def _usnat_problems(section: UsNat) -> list[str]:
    problems: list[str] = []
    for name in (*_USNAT_INTS_HEAD, *_USNAT_INTS_TAIL):
        value = getattr(section, name)
        if not 0 <= value <= 2:
            problems.append(f"{name}={value} (allowed 0-2)")
    for name in ("SensitiveDataProcessing", "KnownChildSensitiveDataConsents"):
        values = getattr(section, name)
        if any(not 0 <= value <= 2 for value in values):
            problems.append(f"{name}={list(values)} (entries allowed 0-2)")
    if section.MspaCoveredTransaction == 0:
        problems.append("MspaCoveredTransaction=0 (must be 1 = yes or 2 = no)")
    return problems


def encode_usnat(
    section: UsNat, *, strict: bool = True, padding: Padding = Padding.REFERENCE
) -> str:
    """Encode one usnat section body (core plus GPC sub-section), e.g. for ``__gpp getSection``.

    ``strict`` refuses the value 3 (undefined in every usnat field) and an MSPA-covered flag of
    0, which the spec forbids; structural limits are always enforced.
    """
    if strict:
        problems = _usnat_problems(section)
        if problems:
            raise GPPStringError("usnat: invalid values: " + "; ".join(problems))
    if section.Gpc and not section.GpcSegmentIncluded:
        raise GPPStringError("usnat: Gpc is true but GpcSegmentIncluded is false")
    writer = BitWriter()
    try:
        writer.write_int(section.Version, 6, "usnat.Version")
        for name in _USNAT_INTS_HEAD:
            writer.write_int(getattr(section, name), 2, f"usnat.{name}")
        for name in ("SensitiveDataProcessing", "KnownChildSensitiveDataConsents"):
            for value in getattr(section, name):
                writer.write_int(value, 2, f"usnat.{name}")
        for name in _USNAT_INTS_TAIL:
            writer.write_int(getattr(section, name), 2, f"usnat.{name}")
    except BitError as exc:
        raise GPPStringError(str(exc)) from exc
    parts = [_to_base64url(writer.to_bits(), padding.value)]
    if section.GpcSegmentIncluded:
        gpc = BitWriter()
        gpc.write_int(_GPC_SUBSECTION, 2, "usnat.SubsectionType")
        gpc.write_bool(section.Gpc)
        parts.append(_to_base64url(gpc.to_bits(), padding.value))
    return ".".join(parts)


def decode_usnat(text: str, *, strict: bool = True) -> UsNat:
    """Decode one usnat section body; v1 (12/2 categories) and v2 (16/3) are both read.

    ``strict`` rejects undefined values and unknown sub-sections; lenient mode keeps the values
    and skips unknown sub-sections so recorded strings stay readable.
    """
    subsections = text.split(".")
    if any(not part for part in subsections):
        raise GPPStringError("usnat: empty sub-section")
    try:
        reader = BitReader(base64url_to_bits(subsections[0]))
        values: dict[str, Any] = {"Version": reader.read_int(6, "usnat.Version")}
        lengths = _USNAT_LIST_LENGTHS.get(values["Version"])
        if lengths is None:
            raise GPPStringError(f"usnat: unsupported section version {values['Version']}")
        for name in _USNAT_INTS_HEAD:
            values[name] = reader.read_int(2, f"usnat.{name}")
        for name, length in zip(
            ("SensitiveDataProcessing", "KnownChildSensitiveDataConsents"), lengths, strict=True
        ):
            values[name] = tuple(reader.read_int(2, f"usnat.{name}") for _ in range(length))
        for name in _USNAT_INTS_TAIL:
            values[name] = reader.read_int(2, f"usnat.{name}")
        values["GpcSegmentIncluded"] = False
        for part in subsections[1:]:
            sub = BitReader(base64url_to_bits(part))
            sub_type = sub.read_int(2, "usnat.SubsectionType")
            if sub_type == _GPC_SUBSECTION:
                values["GpcSegmentIncluded"] = True
                values["Gpc"] = sub.read_bool("usnat.Gpc")
            elif strict:
                raise GPPStringError(f"usnat: unknown sub-section type {sub_type}")
    except BitError as exc:
        raise GPPStringError(f"usnat: {exc}") from exc
    section = UsNat(**values)
    if strict:
        problems = _usnat_problems(section)
        if problems:
            raise GPPStringError("usnat: invalid values: " + "; ".join(problems))
    return section


# --------------------------------------------------------------------------- GPP string


@dataclass(frozen=True, slots=True, kw_only=True)
class GPPString:
    """A decoded GPP string: the modelled sections plus any others kept verbatim.

    ``other_sections`` holds ``(section_id, encoded_text)`` pairs for sections without a model
    here; they are re-emitted unchanged by :func:`encode`.
    """

    tcfeuv2: tcf.TCModel | None = None
    uspv1: UspV1 | None = None
    usnat: UsNat | None = None
    other_sections: tuple[tuple[int, str], ...] = ()

    def __post_init__(self) -> None:
        others = tuple(sorted((int(sid), text) for sid, text in self.other_sections))
        ids = [sid for sid, _ in others]
        if len(set(ids)) != len(ids):
            raise GPPStringError(f"other_sections repeats a section id: {ids}")
        clash = sorted((set(ids) & _MODELLED) | {sid for sid in ids if sid < 1 or sid == 3})
        if clash:
            raise GPPStringError(
                f"other_sections may not hold ids {clash}: use the typed fields for 2/6/7, "
                "and 3 is the header itself"
            )
        object.__setattr__(self, "other_sections", others)

    @property
    def section_ids(self) -> tuple[int, ...]:
        """The ids listed in the header, ascending: what ``gpp_sid`` must repeat."""
        ids = {sid for sid, _ in self.other_sections}
        for sid, section in (
            (TCFEUV2_ID, self.tcfeuv2),
            (USPV1_ID, self.uspv1),
            (USNAT_ID, self.usnat),
        ):
            if section is not None:
                ids.add(sid)
        return tuple(sorted(ids))

    def section_names(self) -> tuple[str, ...]:
        """Names like ``usnat`` for the ids present, as the CMP API's ``sectionList`` shows."""
        return tuple(SECTION_NAMES.get(sid, str(sid)) for sid in self.section_ids)


def _encode_header(ids: tuple[int, ...], padding: Padding) -> str:
    writer = BitWriter()
    writer.write_int(HEADER_TYPE, 6, "header.Type")
    writer.write_int(HEADER_VERSION, 6, "header.Version")
    _write_fibonacci_range(writer, ids)
    return _to_base64url(writer.to_bits(), padding.value)


def encode(gpp: GPPString, *, strict: bool = True, padding: Padding = Padding.REFERENCE) -> str:
    """Serialise sections in ascending id order behind a header that lists them.

    ``strict`` applies the TCF and usnat validity rules to those sections. ``padding`` picks
    the reference library's byte padding or the spec's minimal form; both decode the same.
    """
    ids = gpp.section_ids
    if not ids:
        raise GPPStringError("a GPP string needs at least one section")
    others = dict(gpp.other_sections)
    parts = [_encode_header(ids, padding)]
    for sid in ids:
        if sid == TCFEUV2_ID and gpp.tcfeuv2 is not None:
            try:
                parts.append(tcf.encode(gpp.tcfeuv2, strict=strict))
            except tcf.TCStringError as exc:
                raise GPPStringError(f"section tcfeuv2: {exc}") from exc
        elif sid == USPV1_ID and gpp.uspv1 is not None:
            parts.append(str(gpp.uspv1))
        elif sid == USNAT_ID and gpp.usnat is not None:
            parts.append(encode_usnat(gpp.usnat, strict=strict, padding=padding))
        else:
            parts.append(others[sid])
    return "~".join(parts)


def _decode_header(text: str) -> tuple[int, ...]:
    try:
        reader = BitReader(base64url_to_bits(text))
        header_type = reader.read_int(6, "header.Type")
        if header_type != HEADER_TYPE:
            hint = " (this looks like a bare TC string: use tcf.decode)" if text[0] == "C" else ""
            raise GPPStringError(f"header type is {header_type}, expected {HEADER_TYPE}{hint}")
        version = reader.read_int(6, "header.Version")
        if version != HEADER_VERSION:
            raise GPPStringError(f"unsupported GPP version {version}, expected {HEADER_VERSION}")
        return _read_fibonacci_range(reader, "header.SectionIds")
    except BitError as exc:
        raise GPPStringError(f"header: {exc}") from exc


def section_ids(gpp_string: str) -> tuple[int, ...]:
    """Read only the header, e.g. to check a ``gpp_sid`` URL parameter against the string."""
    if not isinstance(gpp_string, str) or not gpp_string.strip():
        raise GPPStringError("empty GPP string")
    header = gpp_string.strip().split("~", 1)[0]
    if not header:
        raise GPPStringError("empty GPP header")
    return _decode_header(header)


def decode(gpp_string: str, *, strict: bool = True) -> GPPString:
    """Parse a GPP string; both padding forms are accepted.

    ``strict`` is passed to the TCF decoder (TCF 2.2/2.3 rules) and the usnat decoder
    (undefined values); with ``strict=False`` older or sloppy strings are still read as evidence.
    Errors inside a section are reported as :class:`GPPStringError` naming the section, with
    the underlying :class:`~consentry.signals.tcf.TCStringError` chained for TCF problems.
    """
    if not isinstance(gpp_string, str) or not gpp_string.strip():
        raise GPPStringError("empty GPP string")
    header, *sections = gpp_string.strip().split("~")
    if not header:
        raise GPPStringError("empty GPP header")
    ids = _decode_header(header)
    if len(ids) != len(sections):
        raise GPPStringError(
            f"header lists {len(ids)} section(s) {list(ids)} but {len(sections)} follow"
        )
    values: dict[str, Any] = {}
    others: list[tuple[int, str]] = []
    for sid, text in zip(ids, sections, strict=True):
        if not text:
            raise GPPStringError(f"section {sid} is empty")
        if sid == TCFEUV2_ID:
            try:
                values["tcfeuv2"] = tcf.decode(text, strict=strict)
            except tcf.TCStringError as exc:
                raise GPPStringError(f"section tcfeuv2: {exc}") from exc
        elif sid == USPV1_ID:
            values["uspv1"] = UspV1.parse(text)
        elif sid == USNAT_ID:
            values["usnat"] = decode_usnat(text, strict=strict)
        elif sid == 3:
            raise GPPStringError("section id 3 is the header and cannot appear as a section")
        else:
            others.append((sid, text))
    return GPPString(**values, other_sections=tuple(others))
