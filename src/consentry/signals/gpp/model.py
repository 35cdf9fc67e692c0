"""The table-driven section model every GPP section is an instance of (see fields.py for the
field kinds a section version is made of)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar, Self

from consentry.signals.gpp.encoding import GPPStringError
from consentry.signals.gpp.fields import Kind, RangeEntry

__all__ = ["Section"]


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
