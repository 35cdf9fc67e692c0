"""Bit-level reading and writing plus the URL-safe base64 used by IAB consent strings.

TCF and GPP strings are big-endian bit sequences (first field in the most significant bits) carried
in the RFC 4648 section 5 alphabet, six bits per character, without ``=`` padding. The two
standards differ only in how many zero bits the encoder appends before turning bits into
characters, so both codecs share this module and pass their own padding rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "ALPHABET",
    "BitError",
    "BitReader",
    "BitWriter",
    "base64url_to_bits",
    "bits_to_base64url",
]

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_INDEX = {char: value for value, char in enumerate(ALPHABET)}
_VALID = re.compile(r"[A-Za-z0-9\-_]+")


class BitError(ValueError):
    """A bit string could not be read or written (too short, bad character, value too wide)."""


class BitWriter:
    """Append-only big-endian bit buffer."""

    __slots__ = ("_bits",)

    def __init__(self) -> None:
        self._bits: list[str] = []

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self._bits)

    def write_int(self, value: int, width: int, field: str = "value") -> None:
        """Fixed-width fields overflow silently in a naive encoder; refuse instead of truncating."""
        if value < 0 or value >= 1 << width:
            raise BitError(f"{field}={value} does not fit in {width} bits (0..{(1 << width) - 1})")
        if width:
            self._bits.append(format(value, f"0{width}b"))

    def write_bool(self, value: bool) -> None:
        """Booleans are a single bit, 1 meaning true, in both TCF and GPP (reference libraries)."""
        self._bits.append("1" if value else "0")

    def write_bits(self, bits: str) -> None:
        """Lets callers splice in an already-built sub-sequence (e.g. a chosen vendor encoding)."""
        if bits.strip("01"):
            raise BitError("bit string may only contain '0' and '1'")
        self._bits.append(bits)

    def write_bitfield(self, ids: Iterable[int], width: int, field: str = "bitfield") -> None:
        """Bit i-1 set means id i is present: the layout of every TCF/GPP 'list of ids' bitfield."""
        field_bits = ["0"] * width
        for item in ids:
            if not 1 <= item <= width:
                raise BitError(f"{field}: id {item} is outside 1..{width}")
            field_bits[item - 1] = "1"
        self._bits.append("".join(field_bits))

    def to_bits(self) -> str:
        """The raw bit string, for length comparisons and for padding before base64."""
        return "".join(self._bits)


class BitReader:
    """Sequential reader over a bit string that names the field when it runs out of bits."""

    __slots__ = ("_bits", "_pos")

    def __init__(self, bits: str) -> None:
        self._bits = bits
        self._pos = 0

    @property
    def position(self) -> int:
        """Where the next read starts; codecs use it to report offsets in error messages."""
        return self._pos

    @property
    def remaining(self) -> int:
        """Bits left, so optional trailing fields can be detected."""
        return len(self._bits) - self._pos

    def _take(self, width: int, field: str) -> str:
        end = self._pos + width
        if end > len(self._bits):
            raise BitError(
                f"string too short: {field} needs {width} bits at offset {self._pos}, "
                f"only {len(self._bits) - self._pos} left"
            )
        chunk = self._bits[self._pos : end]
        self._pos = end
        return chunk

    def read_int(self, width: int, field: str = "value") -> int:
        """Fixed-width unsigned integer, most significant bit first."""
        if width == 0:
            return 0
        return int(self._take(width, field), 2)

    def read_bool(self, field: str = "flag") -> bool:
        """One bit, 1 meaning true."""
        return self._take(1, field) == "1"

    def read_bitfield(self, width: int, field: str = "bitfield") -> tuple[int, ...]:
        """Ids (1-based) whose bit is set, ascending."""
        chunk = self._take(width, field)
        return tuple(index + 1 for index, bit in enumerate(chunk) if bit == "1")

    def read_bits(self, width: int, field: str = "bits") -> str:
        """Raw bits for formats (like Fibonacci codes) that are parsed bit by bit."""
        return self._take(width, field)


def bits_to_base64url(bits: str, pad_to: int) -> str:
    """Encode bits after zero-padding to a multiple of ``pad_to``.

    The reference encoders differ only here: TCF pads to 24 bits (whole bytes and whole
    characters), GPP to whole bytes then whole characters. Passing the rule keeps both
    byte-compatible with what the IAB libraries emit.
    """
    if pad_to <= 0:
        raise BitError("pad_to must be positive")
    if bits.strip("01"):
        raise BitError("bit string may only contain '0' and '1'")
    remainder = len(bits) % pad_to
    if remainder:
        bits += "0" * (pad_to - remainder)
    remainder = len(bits) % 6
    if remainder:
        bits += "0" * (6 - remainder)
    return "".join(ALPHABET[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


def base64url_to_bits(text: str) -> str:
    """Expand each character to six bits; trailing pad bits are left for field-driven parsing.

    Only the URL-safe alphabet is accepted, as in the reference decoders: a ``+``, ``/`` or ``=``
    means the string was mangled (e.g. re-encoded with standard base64) and would decode to
    different consent, so it is rejected rather than guessed at.
    """
    if not _VALID.fullmatch(text):
        bad = sorted({char for char in text if char not in _INDEX})
        if not text:
            raise BitError("empty segment")
        raise BitError(f"invalid character(s) {''.join(bad)!r}: only A-Z a-z 0-9 - _ are allowed")
    return "".join(format(_INDEX[char], "06b") for char in text)
