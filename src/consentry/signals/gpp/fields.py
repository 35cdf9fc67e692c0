"""Field kinds and the table-driven section model that every GPP section is built from.

A section version is an ordered mapping ``field name -> kind``; a segment is a tuple of field
names read or written in order. A kind knows its bits (``read``/``write``), how to normalise a
value given to a constructor (``normalise``: lists become tuples, structural errors raise) and
which values the specification allows (``problem``, checked in strict mode only, so recorded
strings with out-of-range values stay readable as evidence).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, Self

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
    "Section",
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
                entry = RangeEntry(_int(item.get("key"), name), _int(item.get("type"), name),
                                   tuple(item.get("ids", ())))
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


# --------------------------------------------------------------------------- the model


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        return text + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, RangeEntry):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_json(v) for v in value]
    return value


class Section:
    """A decoded section: its fields by the names the specification (and ``getField``) uses.

    Subclasses declare ``ID``, ``NAME``, ``VERSION_FIELD`` and ``VERSIONS`` (version -> ordered
    field kinds, sub-section fields included); values are read as attributes
    (``section.SaleOptOut``). Instances are immutable and compare by value. ``REQUIRED`` fields
    have no default: a missing MSPA-covered flag or timestamp must not encode as a guess.
    """

    ID: ClassVar[int]
    NAME: ClassVar[str]
    VERSION_FIELD: ClassVar[str] = "Version"
    VERSIONS: ClassVar[Mapping[int, Mapping[str, Kind]]]
    REQUIRED: ClassVar[frozenset[str]] = frozenset()

    __slots__ = ("_values",)
    _values: Mapping[str, Any]

    def __init__(self, **values: Any) -> None:
        version = values.setdefault(self.VERSION_FIELD, max(self.VERSIONS))
        kinds = self.kinds(version)
        unknown = sorted(set(values) - set(kinds))
        if unknown:
            raise GPPStringError(f"{self.NAME}: unknown field(s): {', '.join(unknown)}")
        missing = sorted(self.REQUIRED - set(values))
        if missing:
            raise GPPStringError(f"{self.NAME}: missing required field(s): {', '.join(missing)}")
        out: dict[str, Any] = {}
        for name, kind in kinds.items():
            raw = values.get(name, kind.default)
            out[name] = kind.normalise(raw, f"{self.NAME}.{name}", out)
        object.__setattr__(self, "_values", MappingProxyType(out))

    @classmethod
    def kinds(cls, version: Any) -> Mapping[str, Kind]:
        """The field kinds of one version; an unknown version cannot be laid out at all."""
        found = cls.VERSIONS.get(version) if isinstance(version, int) else None
        if found is None:
            raise GPPStringError(f"{cls.NAME}: unsupported section version {version!r}")
        return found

    def __getattr__(self, name: str) -> Any:
        if name == "_values":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{self.NAME} has no field {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use replace()")

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Section)
        return dict(self._values) == dict(other._values)

    def __hash__(self) -> int:
        return hash((type(self), tuple(self._values.items())))

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self._values.items())
        return f"{type(self).__name__}({body})"

    @property
    def values(self) -> Mapping[str, Any]:
        """Every field by name, in bit order (read-only)."""
        return self._values

    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed (the model is immutable)."""
        return type(self)(**{**self._values, **changes})

    def problems(self) -> list[str]:
        """Values the specification does not allow (strict mode refuses them)."""
        kinds = self.kinds(self._values[self.VERSION_FIELD])
        found = []
        for name, kind in kinds.items():
            problem = kind.problem(self._values[name])
            if problem is not None:
                found.append(f"{name}={problem}")
        return found

    def check(self) -> None:
        """Raise :class:`GPPStringError` listing every disallowed value."""
        problems = self.problems()
        if problems:
            raise GPPStringError(f"{self.NAME}: invalid values: " + "; ".join(problems))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Build from ``getSection``-shaped JSON (the field names, lists, ISO timestamps)."""
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view with the specification's field names."""
        return {name: _json(value) for name, value in self._values.items()}
