"""Field kinds: what every field of every GPP section is, in bits and in values.

A section version is an ordered mapping ``field name -> kind``; a segment is a tuple of field
names read or written in order. A kind knows its bits (``read``/``write``), how to normalise a
value given to a constructor (``normalise``: lists become tuples, structural errors raise) and
which values the specification allows (``problem``, checked in strict mode only, so recorded
strings with out-of-range values stay readable as evidence).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from consentry.signals.bits import BitError, BitReader, BitWriter
from consentry.signals.gpp import encoding as enc
from consentry.signals.gpp.encoding import GPPStringError

__all__ = [
    "Bitfield",
    "Bool",
    "Datetime",
    "FlexBitfield",
    "Int",
    "IntList",
    "Kind",
    "Letters",
    "OptimizedRange",
    "RangeArray",
    "RangeEntry",
    "read_segment",
    "write_segment",
]

Values = Mapping[str, Any]


class Kind(Protocol):
    """How one field is carried in bits and what values it may hold."""

    @property
    def default(self) -> Any: ...

    def normalise(self, value: Any, name: str, values: Values) -> Any: ...

    def problem(self, value: Any) -> str | None: ...

    def read(self, reader: BitReader, name: str, values: Values) -> Any: ...

    def write(self, writer: BitWriter, value: Any, name: str, values: Values) -> None: ...


def _int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise GPPStringError(f"{name} must be an integer, got {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Int:
    """Int(width); ``allowed`` is the spec's value range (2-bit flags: 0-2, MSPA covered: 1-2)."""

    width: int = 2
    allowed: range | None = range(3)
    default: int = 0

    def normalise(self, value: Any, name: str, values: Values) -> int:
        return _int(value, name)

    def problem(self, value: int) -> str | None:
        if self.allowed is None or value in self.allowed:
            return None
        return f"{value} (allowed {self.allowed.start}-{self.allowed.stop - 1})"

    def read(self, reader: BitReader, name: str, values: Values) -> int:
        return reader.read_int(self.width, name)

    def write(self, writer: BitWriter, value: int, name: str, values: Values) -> None:
        writer.write_int(value, self.width, name)


@dataclass(frozen=True, slots=True)
class IntList:
    """N fixed-width integers (the per-category consents); empty stands for all zero."""

    length: int
    width: int = 2

    @property
    def default(self) -> tuple[int, ...]:
        return (0,) * self.length

    def normalise(self, value: Any, name: str, values: Values) -> tuple[int, ...]:
        items = tuple(_int(v, name) for v in value) or self.default
        if len(items) != self.length:
            raise GPPStringError(f"{name} must have {self.length} entries, got {len(items)}")
        return items

    def problem(self, value: tuple[int, ...]) -> str | None:
        return None if all(0 <= v <= 2 for v in value) else f"{list(value)} (entries 0-2)"

    def read(self, reader: BitReader, name: str, values: Values) -> tuple[int, ...]:
        return tuple(reader.read_int(self.width, name) for _ in range(self.length))

    def write(self, writer: BitWriter, value: tuple[int, ...], name: str, values: Values) -> None:
        for item in value:
            writer.write_int(item, self.width, name)


@dataclass(frozen=True, slots=True)
class Bool:
    default: bool = False

    def normalise(self, value: Any, name: str, values: Values) -> bool:
        if not isinstance(value, bool):
            raise GPPStringError(f"{name} must be true or false, got {value!r}")
        return value

    def problem(self, value: bool) -> str | None:
        return None

    def read(self, reader: BitReader, name: str, values: Values) -> bool:
        return reader.read_bool(name)

    def write(self, writer: BitWriter, value: bool, name: str, values: Values) -> None:
        writer.write_bool(value)


@dataclass(frozen=True, slots=True)
class Datetime:
    """A required timestamp: stored to the decisecond, the string's resolution."""

    default: None = None

    def normalise(self, value: Any, name: str, values: Values) -> datetime:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise GPPStringError(f"{name}: {exc}") from exc
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise GPPStringError(f"{name} must be a timezone-aware datetime, got {value!r}")
        writer = BitWriter()
        enc.write_datetime(writer, value, name)
        return enc.read_datetime(BitReader(writer.to_bits()), name)

    def problem(self, value: datetime) -> str | None:
        return None

    def read(self, reader: BitReader, name: str, values: Values) -> datetime:
        return enc.read_datetime(reader, name)

    def write(self, writer: BitWriter, value: datetime, name: str, values: Values) -> None:
        enc.write_datetime(writer, value, name)


@dataclass(frozen=True, slots=True)
class Letters:
    length: int = 2
    default: str = "EN"

    def normalise(self, value: Any, name: str, values: Values) -> str:
        if not isinstance(value, str):
            raise GPPStringError(f"{name} must be a string, got {value!r}")
        enc.write_letters(BitWriter(), value, self.length, name)
        return value.strip()

    def problem(self, value: str) -> str | None:
        ok = len(value) == self.length and all("A" <= c <= "Z" for c in value)
        return None if ok else f"{value!r} ({self.length} letters A-Z)"

    def read(self, reader: BitReader, name: str, values: Values) -> str:
        return enc.read_letters(reader, self.length, name)

    def write(self, writer: BitWriter, value: str, name: str, values: Values) -> None:
        enc.write_letters(writer, value, self.length, name)


def _bools(value: Any, length: int, name: str) -> tuple[bool, ...]:
    items = tuple(value)
    if any(not isinstance(v, bool) for v in items):
        raise GPPStringError(f"{name} must be a list of true/false")
    if len(items) > length:
        raise GPPStringError(f"{name} has {len(items)} entries, at most {length} allowed")
    return items + (False,) * (length - len(items))


def _write_bools(writer: BitWriter, value: tuple[bool, ...]) -> None:
    for item in value:
        writer.write_bool(item)


@dataclass(frozen=True, slots=True)
class Bitfield:
    """Bitfield(n) as the reference library's getField shows it: n booleans."""

    length: int

    @property
    def default(self) -> tuple[bool, ...]:
        return (False,) * self.length

    def normalise(self, value: Any, name: str, values: Values) -> tuple[bool, ...]:
        return _bools(value, self.length, name)

    def problem(self, value: tuple[bool, ...]) -> str | None:
        return None

    def read(self, reader: BitReader, name: str, values: Values) -> tuple[bool, ...]:
        return tuple(bit == "1" for bit in reader.read_bits(self.length, name))

    def write(self, writer: BitWriter, value: tuple[bool, ...], name: str, values: Values) -> None:
        _write_bools(writer, value)


@dataclass(frozen=True, slots=True)
class FlexBitfield:
    """A bitfield whose width is another field's value (the custom purposes' count)."""

    count_field: str
    default: tuple[bool, ...] = ()

    def normalise(self, value: Any, name: str, values: Values) -> tuple[bool, ...]:
        return _bools(value, int(values[self.count_field]), name)

    def problem(self, value: tuple[bool, ...]) -> str | None:
        return None

    def read(self, reader: BitReader, name: str, values: Values) -> tuple[bool, ...]:
        width = int(values[self.count_field])
        return tuple(bit == "1" for bit in reader.read_bits(width, name))

    def write(self, writer: BitWriter, value: tuple[bool, ...], name: str, values: Values) -> None:
        _write_bools(writer, value)


def _ids(value: Any, name: str) -> tuple[int, ...]:
    items = sorted({_int(v, name) for v in value})
    if items and not 1 <= items[0] <= items[-1] <= enc.MAX_ID:
        raise GPPStringError(f"{name}: ids must be within 1..{enc.MAX_ID}")
    return tuple(items)


@dataclass(frozen=True, slots=True)
class OptimizedRange:
    """Sorted unique ids; ``fibonacci`` picks the GPP range coding over the TCF fixed one."""

    fibonacci: bool = True
    default: tuple[int, ...] = ()

    def normalise(self, value: Any, name: str, values: Values) -> tuple[int, ...]:
        return _ids(value, name)

    def problem(self, value: tuple[int, ...]) -> str | None:
        return None

    def read(self, reader: BitReader, name: str, values: Values) -> tuple[int, ...]:
        return enc.read_optimized_range(reader, name, fibonacci=self.fibonacci)

    def write(self, writer: BitWriter, value: tuple[int, ...], name: str, values: Values) -> None:
        enc.write_optimized_range(writer, value, name, fibonacci=self.fibonacci)


@dataclass(frozen=True, slots=True)
class RangeEntry:
    """One publisher restriction: purpose ``key``, restriction ``type``, the vendor ``ids``."""

    key: int
    type: int
    ids: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "type": self.type, "ids": list(self.ids)}


@dataclass(frozen=True, slots=True)
class RangeArray:
    """N-ArrayOfRanges(6, 2): Int(12) count, then key, type and an (optimized) range each."""

    fibonacci: bool = True
    default: tuple[RangeEntry, ...] = ()

    def normalise(self, value: Any, name: str, values: Values) -> tuple[RangeEntry, ...]:
        out = []
        for item in value:
            entry = item if isinstance(item, RangeEntry) else None
            if isinstance(item, Mapping):
                entry = RangeEntry(
                    _int(item.get("key"), name),
                    _int(item.get("type"), name),
                    tuple(item.get("ids", ())),
                )
            if entry is None:
                raise GPPStringError(f"{name} entries must be {{key, type, ids}}, got {item!r}")
            if not (0 <= entry.key < 64 and 0 <= entry.type < 4):
                raise GPPStringError(f"{name}: key {entry.key} / type {entry.type} do not fit")
            out.append(RangeEntry(entry.key, entry.type, _ids(entry.ids, name)))
        return tuple(out)

    def problem(self, value: tuple[RangeEntry, ...]) -> str | None:
        return None

    def read(self, reader: BitReader, name: str, values: Values) -> tuple[RangeEntry, ...]:
        out = []
        for _ in range(reader.read_int(12, f"{name} count")):
            key = reader.read_int(6, name)
            kind = reader.read_int(2, name)
            if self.fibonacci:
                ids = enc.read_optimized_range(reader, name, fibonacci=True)
            else:
                ids = enc.read_fixed_range(reader, name)
            out.append(RangeEntry(key, kind, ids))
        return tuple(out)

    def write(
        self, writer: BitWriter, value: tuple[RangeEntry, ...], name: str, values: Values
    ) -> None:
        writer.write_int(len(value), 12, f"{name} count")
        for entry in value:
            writer.write_int(entry.key, 6, name)
            writer.write_int(entry.type, 2, name)
            if self.fibonacci:
                enc.write_optimized_range(writer, entry.ids, name, fibonacci=True)
            else:
                enc.write_fixed_range(writer, entry.ids, name)


# --------------------------------------------------------------------------- segments


def read_segment(
    reader: BitReader, names: Iterable[str], kinds: Mapping[str, Kind], into: dict[str, Any]
) -> None:
    """Read ``names`` in order into ``into``; later kinds may depend on earlier values."""
    for name in names:
        into[name] = kinds[name].read(reader, name, into)


def write_segment(names: Iterable[str], kinds: Mapping[str, Kind], values: Values) -> str:
    """The bits of ``names`` in order (no padding)."""
    writer = BitWriter()
    try:
        for name in names:
            kinds[name].write(writer, values[name], name, values)
    except BitError as exc:
        raise GPPStringError(str(exc)) from exc
    return writer.to_bits()
