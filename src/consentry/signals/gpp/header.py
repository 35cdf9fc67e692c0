"""The GPP header: type 3, version 1, and the ids of the sections that follow (a Fibonacci
range, ascending)."""

from __future__ import annotations

from consentry.signals.bits import BitError, BitReader, BitWriter, base64url_to_bits
from consentry.signals.bits import bits_to_base64url as _to_base64url
from consentry.signals.gpp.encoding import (
    GPPStringError,
    Padding,
    read_fibonacci_range,
    write_fibonacci_range,
)

__all__ = ["HEADER_ID", "HEADER_TYPE", "HEADER_VERSION", "decode_header", "encode_header"]

HEADER_TYPE = 3
HEADER_ID = HEADER_TYPE  # the header's own section id
HEADER_VERSION = 1


def encode_header(ids: tuple[int, ...], padding: Padding) -> str:
    writer = BitWriter()
    writer.write_int(HEADER_TYPE, 6, "header.Type")
    writer.write_int(HEADER_VERSION, 6, "header.Version")
    write_fibonacci_range(writer, ids, "header.SectionIds")
    return _to_base64url(writer.to_bits(), padding.value)


def decode_header(text: str) -> tuple[int, ...]:
    """The section ids the header lists; a bare TC string (``C...``) is pointed to tcf."""
    try:
        reader = BitReader(base64url_to_bits(text))
        header_type = reader.read_int(6, "header.Type")
        if header_type != HEADER_TYPE:
            hint = " (this looks like a bare TC string: use tcf.decode)" if text[0] == "C" else ""
            raise GPPStringError(f"header type is {header_type}, expected {HEADER_TYPE}{hint}")
        version = reader.read_int(6, "header.Version")
        if version != HEADER_VERSION:
            raise GPPStringError(f"unsupported GPP version {version}, expected {HEADER_VERSION}")
        return read_fibonacci_range(reader, "header.SectionIds")
    except BitError as exc:
        raise GPPStringError(f"header: {exc}") from exc
