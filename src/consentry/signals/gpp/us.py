"""The US sections: usnat and every state section, one table-driven model and codec.

Every US section is a core sub-section of 2-bit flags (a 6-bit version first) plus at most one
optional sub-section: the GPC sub-section (a 2-bit type, 1, then the ``Gpc`` flag) in most, or
the sensitive-data consent sub-section (the ``SensitiveDataProcessing`` list, no type bits) in
Indiana, Kentucky and Rhode Island. ``GpcSegmentIncluded`` /
``SensitiveDataConsentSegmentIncluded`` say whether it is written, as in the reference library.
The sections themselves are declared in :mod:`consentry.signals.gpp.us_states`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from consentry.signals.bits import BitError, BitReader, BitWriter, base64url_to_bits
from consentry.signals.bits import bits_to_base64url as _to_base64url
from consentry.signals.gpp.encoding import GPPStringError, Padding
from consentry.signals.gpp.fields import (
    Bool,
    Int,
    IntList,
    Kind,
    read_segment,
    write_segment,
)
from consentry.signals.gpp.model import Section

__all__ = ["SubSection", "UsSection", "decode_us", "encode_us", "us_layout"]

_GPC_TYPE = 1
_COVERED = "MspaCoveredTransaction"


class SubSection(enum.Enum):
    """The optional second sub-section a US section may carry."""

    GPC = ("GpcSegmentIncluded", "Gpc")
    SENSITIVE_DATA = ("SensitiveDataConsentSegmentIncluded", "SensitiveDataProcessing")

    @property
    def flag(self) -> str:
        return self.value[0]

    @property
    def field(self) -> str:
        return self.value[1]


def us_layout(core: str, sub: SubSection | None, *, sensitive: int = 8) -> Mapping[str, Kind]:
    """Field kinds from a compact spec: names in bit order, ``Name*N`` for a list of N 2-bit
    values; the first name is the 6-bit version. ``sensitive`` is the length of the
    sensitive-data sub-section's list."""
    names = core.split()
    kinds: dict[str, Kind] = {names[0]: Int(6, allowed=None)}
    for token in names[1:]:
        name, _, count = token.partition("*")
        if count:
            kinds[name] = IntList(int(count))
        elif name == _COVERED:
            kinds[name] = Int(allowed=range(1, 3), default=1)
        else:
            kinds[name] = Int()
    if sub is SubSection.GPC:
        kinds.update({sub.flag: Bool(True), sub.field: Bool(False)})
    elif sub is SubSection.SENSITIVE_DATA:
        kinds.update({sub.flag: Bool(True), sub.field: IntList(sensitive)})
    return kinds


class UsSection(Section):
    """A US section. Opt-outs are 0 = not applicable, 1 = opted out, 2 = did not opt out;
    notices 0 / 1 = yes / 2 = no; per-category consents 0 / 1 = no consent / 2 = consent;
    ``MspaCoveredTransaction`` 1 = yes, 2 = no (required: it has no neutral value)."""

    __slots__ = ()
    #: ISO 3166-2 code of the state whose law the section speaks for ("US" for usnat).
    JURISDICTION: ClassVar[str]
    SUBSECTION: ClassVar[SubSection | None] = SubSection.GPC
    REQUIRED = frozenset({_COVERED})

    @classmethod
    def core_names(cls, version: int) -> tuple[str, ...]:
        sub = cls.SUBSECTION.value if cls.SUBSECTION else ()
        return tuple(name for name in cls.kinds(version) if name not in sub)


S = TypeVar("S", bound=UsSection)


def decode_us(cls: type[S], text: str, *, strict: bool = True) -> S:
    """Decode one section body. ``strict`` refuses undefined values and unknown sub-sections;
    lenient mode keeps the values and skips unknown sub-sections, so recorded strings stay
    readable."""
    parts = text.split(".")
    if any(not part for part in parts):
        raise GPPStringError(f"{cls.NAME}: empty sub-section")
    sub = cls.SUBSECTION
    values: dict[str, Any] = {}
    try:
        reader = BitReader(base64url_to_bits(parts[0]))
        version = reader.read_int(6, f"{cls.NAME}.{cls.VERSION_FIELD}")
        kinds = cls.kinds(version)
        values[cls.VERSION_FIELD] = version
        read_segment(reader, cls.core_names(version)[1:], kinds, values)
        if sub is not None:
            values[sub.flag] = False
        extra = parts[1:]
        if sub is SubSection.SENSITIVE_DATA and extra:
            values[sub.flag] = True
            read_segment(BitReader(base64url_to_bits(extra[0])), (sub.field,), kinds, values)
            extra = extra[1:]
            if extra and strict:
                raise GPPStringError(f"{cls.NAME}: unexpected sub-section {extra[0]!r}")
        elif extra:
            for part in extra:
                sub_reader = BitReader(base64url_to_bits(part))
                sub_type = sub_reader.read_int(2, f"{cls.NAME}.SubsectionType")
                if sub is SubSection.GPC and sub_type == _GPC_TYPE:
                    values[sub.flag] = True
                    values[sub.field] = sub_reader.read_bool(f"{cls.NAME}.{sub.field}")
                elif strict:
                    raise GPPStringError(f"{cls.NAME}: unknown sub-section type {sub_type}")
    except BitError as exc:
        raise GPPStringError(f"{cls.NAME}: {exc}") from exc
    section = cls(**values)
    if strict:
        section.check()
    return section


def encode_us(
    section: UsSection, *, strict: bool = True, padding: Padding = Padding.REFERENCE
) -> str:
    """Encode one section body (core plus the optional sub-section), e.g. for ``getSection``.

    ``strict`` refuses values the specification leaves undefined (3 in a 2-bit flag, an
    MSPA-covered flag of 0); structural limits are always enforced, and a sub-section that is
    switched off must not hold values that would be lost.
    """
    if strict:
        section.check()
    cls = type(section)
    version = getattr(section, cls.VERSION_FIELD)
    kinds = cls.kinds(version)
    values = section.values
    parts = [_to_base64url(write_segment(cls.core_names(version), kinds, values), padding.value)]
    sub = cls.SUBSECTION
    if sub is not None:
        value = getattr(section, sub.field)
        if getattr(section, sub.flag):
            if sub is SubSection.GPC:
                writer = BitWriter()
                writer.write_int(_GPC_TYPE, 2, "SubsectionType")
                writer.write_bool(value)
                bits = writer.to_bits()
            else:
                bits = write_segment((sub.field,), kinds, values)
            parts.append(_to_base64url(bits, padding.value))
        elif value != kinds[sub.field].default:
            raise GPPStringError(
                f"{cls.NAME}: {sub.field} is set but {sub.flag} is false, so it would be lost"
            )
    return ".".join(parts)
