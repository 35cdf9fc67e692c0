"""A whole GPP string: the model of every section it carries, and its decoder and encoder.

``header~section~section...``: the header lists the section ids and the sections follow in
ascending id order. Each supported section decodes into its model (one attribute per section
name); a section id the codec does not know is never an error: it is kept verbatim in
``unknown_sections``, reported to the caller, and written back unchanged by :func:`encode`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

from consentry.signals import tcf
from consentry.signals.gpp.encoding import GPPStringError, Padding
from consentry.signals.gpp.header import HEADER_ID, decode_header, encode_header
from consentry.signals.gpp.registry import SECTION_NAMES, SECTIONS, SECTIONS_BY_ID, SectionType
from consentry.signals.gpp.tcfca import TcfCaV1
from consentry.signals.gpp.us import UsSection
from consentry.signals.gpp.us_states import (
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

__all__ = ["GPPString", "decode", "decode_section", "encode", "encode_section", "section_ids"]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class GPPString:
    """A decoded GPP string: one optional model per supported section, plus the sections the
    codec does not know as ``(section_id, text)`` pairs."""

    tcfeuv2: tcf.TCModel | None = None
    tcfcav1: TcfCaV1 | None = None
    uspv1: UspV1 | None = None
    usnat: UsNat | None = None
    usca: UsCa | None = None
    usva: UsVa | None = None
    usco: UsCo | None = None
    usut: UsUt | None = None
    usct: UsCt | None = None
    usfl: UsFl | None = None
    usmt: UsMt | None = None
    usor: UsOr | None = None
    ustx: UsTx | None = None
    usde: UsDe | None = None
    usia: UsIa | None = None
    usne: UsNe | None = None
    usnh: UsNh | None = None
    usnj: UsNj | None = None
    ustn: UsTn | None = None
    usmn: UsMn | None = None
    usmd: UsMd | None = None
    usin: UsIn | None = None
    usky: UsKy | None = None
    usri: UsRi | None = None
    unknown_sections: tuple[tuple[int, str], ...] = ()

    def __post_init__(self) -> None:
        for row in SECTIONS:
            value = getattr(self, row.name)
            if value is not None and not isinstance(value, row.model):
                raise GPPStringError(
                    f"{row.name} must be a {row.model.__name__}, got {type(value).__name__}"
                )
        unknown = tuple(sorted((int(sid), text) for sid, text in self.unknown_sections))
        ids = [sid for sid, _ in unknown]
        if len(set(ids)) != len(ids):
            raise GPPStringError(f"unknown_sections repeats a section id: {ids}")
        clash = sorted(sid for sid in ids if sid in SECTIONS_BY_ID or sid < 1 or sid == HEADER_ID)
        if clash:
            raise GPPStringError(
                f"unknown_sections may not hold ids {clash}: supported sections have their own"
                " attribute, and 3 is the header itself"
            )
        for sid, text in unknown:
            if not isinstance(text, str) or not text or "~" in text:
                raise GPPStringError(f"unknown section {sid}: {text!r} is not a section body")
        object.__setattr__(self, "unknown_sections", unknown)

    def __repr__(self) -> str:
        present = [f"{row.name}={model!r}" for row, model in self.sections()]
        if self.unknown_sections:
            present.append(f"unknown_sections={self.unknown_sections!r}")
        return f"GPPString({', '.join(present)})"

    def sections(self) -> Iterator[tuple[SectionType, Any]]:
        """The supported sections present, with their registry rows, in id order."""
        for row in SECTIONS:
            value = getattr(self, row.name)
            if value is not None:
                yield row, value

    def us_sections(self) -> tuple[UsSection, ...]:
        """The US sections present: usnat first, then the states by id."""
        return tuple(value for _, value in self.sections() if isinstance(value, UsSection))

    @property
    def section_ids(self) -> tuple[int, ...]:
        """The ids listed in the header, ascending: what ``gpp_sid`` must repeat."""
        ids = {row.id for row, _ in self.sections()} | {sid for sid, _ in self.unknown_sections}
        return tuple(sorted(ids))

    def section_names(self) -> tuple[str, ...]:
        """Names like ``usnat`` for the ids present, as the CMP API's ``sectionList`` shows."""
        return tuple(SECTION_NAMES.get(sid, str(sid)) for sid in self.section_ids)

    @property
    def unknown_section_ids(self) -> tuple[int, ...]:
        return tuple(sid for sid, _ in self.unknown_sections)


assert {f.name for f in fields(GPPString)} == {r.name for r in SECTIONS} | {"unknown_sections"}


def encode_section(model: Any, *, strict: bool = True, padding: Padding = Padding.REFERENCE) -> str:
    """One section body (``__gpp('getSection')`` form) for any supported model."""
    for row in SECTIONS:
        if type(model) is row.model:
            text: str = row.encode(model, strict=strict, padding=padding)
            return text
    raise GPPStringError(f"not a GPP section model: {type(model).__name__}")


def decode_section(section_id: int, text: str, *, strict: bool = True) -> Any:
    """One section body by its id; an unsupported id is an error here (no string to keep)."""
    row = SECTIONS_BY_ID.get(section_id)
    if row is None:
        raise GPPStringError(f"section id {section_id} is not supported")
    return row.decode(text, strict=strict)


def encode(gpp: GPPString, *, strict: bool = True, padding: Padding = Padding.REFERENCE) -> str:
    """Serialise sections in ascending id order behind a header that lists them.

    ``strict`` applies each section's validity rules; ``padding`` picks the reference library's
    byte padding or the spec's minimal form; both decode the same.
    """
    ids = gpp.section_ids
    if not ids:
        raise GPPStringError("a GPP string needs at least one section")
    unknown = dict(gpp.unknown_sections)
    parts = [encode_header(ids, padding)]
    for sid in ids:
        row = SECTIONS_BY_ID.get(sid)
        if row is None:
            parts.append(unknown[sid])
        else:
            parts.append(row.encode(getattr(gpp, row.name), strict=strict, padding=padding))
    return "~".join(parts)


def section_ids(gpp_string: str) -> tuple[int, ...]:
    """Read only the header, e.g. to check a ``gpp_sid`` URL parameter against the string."""
    if not isinstance(gpp_string, str) or not gpp_string.strip():
        raise GPPStringError("empty GPP string")
    header = gpp_string.strip().split("~", 1)[0]
    if not header:
        raise GPPStringError("empty GPP header")
    return decode_header(header)


def decode(gpp_string: str, *, strict: bool = True) -> GPPString:
    """Parse a GPP string; both padding forms are accepted.

    ``strict`` is passed to every section decoder (TCF 2.2/2.3 rules, values the US sections
    leave undefined); with ``strict=False`` older or sloppy strings are still read as evidence.
    An error inside a section is a :class:`GPPStringError` naming the section (a TCF error is
    chained as ``__cause__``). Sections with ids the codec does not support are returned in
    ``unknown_sections``, never refused.
    """
    ids = section_ids(gpp_string)
    sections = gpp_string.strip().split("~")[1:]
    if len(ids) != len(sections):
        raise GPPStringError(
            f"header lists {len(ids)} section(s) {list(ids)} but {len(sections)} follow"
        )
    values: dict[str, Any] = {}
    unknown: list[tuple[int, str]] = []
    for sid, text in zip(ids, sections, strict=True):
        if not text:
            raise GPPStringError(f"section {sid} is empty")
        row = SECTIONS_BY_ID.get(sid)
        if sid == HEADER_ID:
            raise GPPStringError("section id 3 is the header and cannot appear as a section")
        if row is None:
            unknown.append((sid, text))
        else:
            values[row.name] = row.decode(text, strict=strict)
    return GPPString(**values, unknown_sections=tuple(unknown))
