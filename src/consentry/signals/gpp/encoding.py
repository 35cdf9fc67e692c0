"""The GPP data types below the field level: Fibonacci integers and ranges, fixed and optimized
ranges, arrays of ranges, datetimes and letters, plus the codec's one error type.

These are the encodings of the GPP core specification ("Section Encoding"); every section module
builds on them, so a section is a list of field kinds rather than hand-written bit twiddling.
Every reader raises :class:`GPPStringError` (never a bare ``BitError``), and every id collection
is capped at :data:`MAX_ID` so a crafted range cannot make a short string expand into millions
of ids.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta

from consentry.signals.bits import BitError, BitReader, BitWriter

__all__ = [
    "MAX_ID",
    "GPPStringError",
    "Padding",
    "fibonacci_decode",
    "fibonacci_encode",
    "read_datetime",
    "read_fibonacci_range",
    "read_fixed_range",
    "read_letters",
    "read_optimized_range",
    "write_datetime",
    "write_fibonacci_range",
    "write_fixed_range",
    "write_letters",
    "write_optimized_range",
]

#: Largest id a range may name: vendor ids and section ids are 16-bit in every GPP section.
MAX_ID = (1 << 16) - 1
_MAX_GROUPS = (1 << 12) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class GPPStringError(ValueError):
    """A GPP string (or a model about to be encoded) is malformed; the message names the part."""


class Padding(enum.Enum):
    """How many zero bits to append before base64; decoders must accept both."""

    REFERENCE = 8  # @iabgpp/cmpapi: whole bytes, then whole characters ("DBABLA")
    MINIMAL = 6  # spec text: whole characters only ("DBABL")


# --------------------------------------------------------------------------- Fibonacci


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
    if len(bits) < 2 or not bits.endswith("11") or "11" in bits[:-1] or bits.strip("01"):
        raise GPPStringError(f"not a Fibonacci code word: {bits!r}")
    fibs = _fibs_upto(1 << len(bits))
    return sum(fibs[index] for index, bit in enumerate(bits[:-1]) if bit == "1")


def _read_fibonacci(reader: BitReader, field: str) -> int:
    bits = ""
    while not bits.endswith("11"):
        bits += reader.read_bits(1, field)
        if len(bits) > 32:  # F(32) > MAX_ID: no id or offset in a GPP string is that large
            raise GPPStringError(f"{field}: Fibonacci code longer than 32 bits")
    return fibonacci_decode(bits)


def _groups(ids: tuple[int, ...], field: str) -> list[tuple[int, int]]:
    groups: list[tuple[int, int]] = []
    for item in ids:
        if not 1 <= item <= MAX_ID:
            raise GPPStringError(f"{field}: id {item} is outside 1..{MAX_ID}")
        if groups and groups[-1][1] + 1 == item:
            groups[-1] = (groups[-1][0], item)
        else:
            groups.append((item, item))
    if len(groups) > _MAX_GROUPS:
        raise GPPStringError(f"{field}: {len(groups)} ranges exceed the {_MAX_GROUPS} limit")
    return groups


def write_fibonacci_range(writer: BitWriter, ids: tuple[int, ...], field: str) -> None:
    """Range(Fibonacci): Int(12) count, then per group a flag, the offset from the previous
    group's end and, for a group, its length; ``ids`` must be sorted and unique."""
    groups = _groups(ids, field)
    writer.write_int(len(groups), 12, f"{field} count")
    offset = 0
    for start, end in groups:
        writer.write_bool(start != end)
        writer.write_bits(fibonacci_encode(start - offset))
        if start != end:
            writer.write_bits(fibonacci_encode(end - start))
        offset = end


def read_fibonacci_range(reader: BitReader, field: str) -> tuple[int, ...]:
    """Offsets are positive, so the ids come out strictly ascending and at most MAX_ID of them."""
    ids: list[int] = []
    offset = 0
    for _ in range(reader.read_int(12, f"{field} count")):
        is_group = reader.read_bool(field)
        start = offset + _read_fibonacci(reader, field)
        end = start + _read_fibonacci(reader, field) if is_group else start
        if end > MAX_ID:
            raise GPPStringError(f"{field}: id {end} is above {MAX_ID}")
        ids.extend(range(start, end + 1))
        offset = end
    return tuple(ids)


def write_fixed_range(writer: BitWriter, ids: tuple[int, ...], field: str) -> None:
    """Range(Int): Int(12) count, per group a flag, Int(16) start and, for a group, Int(16) end."""
    groups = _groups(ids, field)
    writer.write_int(len(groups), 12, f"{field} count")
    for start, end in groups:
        writer.write_bool(start != end)
        writer.write_int(start, 16, field)
        if start != end:
            writer.write_int(end, 16, field)


def read_fixed_range(reader: BitReader, field: str) -> tuple[int, ...]:
    """Sorted unique ids. Fixed ranges may overlap, so the expansion is capped at MAX_ID ids:
    past that the ranges repeat themselves, which no encoder writes."""
    ids: set[int] = set()
    expanded = 0
    for _ in range(reader.read_int(12, f"{field} count")):
        is_group = reader.read_bool(field)
        start = reader.read_int(16, field)
        end = reader.read_int(16, field) if is_group else start
        expanded += max(end - start + 1, 0)
        if expanded > MAX_ID:
            raise GPPStringError(f"{field}: the ranges name more than {MAX_ID} ids")
        ids.update(range(start, end + 1))
    return tuple(sorted(ids))


def write_optimized_range(
    writer: BitWriter, ids: tuple[int, ...], field: str, *, fibonacci: bool
) -> None:
    """OptimizedRange: Int(16) max id, then a range or a bitfield, whichever is not longer (a
    tie goes to the range, as in the reference library)."""
    max_id = ids[-1] if ids else 0
    ranged = BitWriter()
    if fibonacci:
        write_fibonacci_range(ranged, ids, field)
    else:
        write_fixed_range(ranged, ids, field)
    use_range = len(ranged) <= max_id
    writer.write_int(max_id, 16, f"{field} max id")
    writer.write_bool(use_range)
    if use_range:
        writer.write_bits(ranged.to_bits())
    else:
        writer.write_bitfield(ids, max_id, field)


def read_optimized_range(reader: BitReader, field: str, *, fibonacci: bool) -> tuple[int, ...]:
    """The max id bounds a bitfield's width; a range is read whole, whatever max id says."""
    max_id = reader.read_int(16, f"{field} max id")
    if not reader.read_bool(field):
        return reader.read_bitfield(max_id, field)
    if fibonacci:
        return read_fibonacci_range(reader, field)
    return read_fixed_range(reader, field)


# --------------------------------------------------------------------------- datetime, letters


def write_datetime(writer: BitWriter, value: datetime, field: str) -> None:
    """Datetime: Int(36) deciseconds since the epoch, rounded as the reference library does."""
    if value.tzinfo is None:
        raise GPPStringError(f"{field} must be timezone-aware (GPP datetimes are UTC)")
    millis = (value - _EPOCH) // timedelta(milliseconds=1)
    try:
        writer.write_int((millis + 50) // 100, 36, field)
    except BitError as exc:
        raise GPPStringError(str(exc)) from exc


def read_datetime(reader: BitReader, field: str) -> datetime:
    """Decisecond resolution, UTC."""
    return _EPOCH + timedelta(milliseconds=100 * reader.read_int(36, field))


def write_letters(writer: BitWriter, text: str, length: int, field: str) -> None:
    """String(n): six bits per character (code - 65; a space, which pads, is 63)."""
    padded = text.ljust(length)
    if len(padded) != length:
        raise GPPStringError(f"{field}: {text!r} is longer than {length} characters")
    for char in padded:
        code = 63 if char == " " else ord(char) - 65
        if not 0 <= code <= 62:
            raise GPPStringError(f"{field}: {char!r} cannot be encoded (use A-Z)")
        writer.write_int(code, 6, field)


def read_letters(reader: BitReader, length: int, field: str) -> str:
    """Trailing and leading spaces are dropped, as by the reference decoder."""
    codes = [reader.read_int(6, field) for _ in range(length)]
    return "".join(" " if code == 63 else chr(code + 65) for code in codes).strip()
