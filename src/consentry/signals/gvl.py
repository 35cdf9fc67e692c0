"""The IAB Global Vendor List (GVL v3 JSON), read from a file or an already-parsed dict.

Consentry never fetches the GVL at run time: the list must be fetched server-side, cached per
``Cache-Control`` and pinned per TC string (a string names the ``vendorListVersion`` it was built
against), so an operator downloads it and hands us the JSON. Only the fields the codecs and the
purpose mapping need are modelled; everything else in the file is ignored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "Declaration",
    "GVLError",
    "GlobalVendorList",
    "Stack",
    "Vendor",
    "from_dict",
    "load",
]


class GVLError(ValueError):
    """The vendor list JSON is not a usable GVL; the message names the offending field."""


@dataclass(frozen=True, slots=True)
class Declaration:
    """A purpose, special purpose, feature or special feature: all share this shape in the GVL."""

    id: int
    name: str
    description: str = ""
    illustrations: tuple[str, ...] = ()
    consentable: bool = True
    right_to_object: bool = True


@dataclass(frozen=True, slots=True)
class Stack:
    """A pre-defined grouping of purposes and special features shown as one choice."""

    id: int
    name: str
    description: str = ""
    purposes: frozenset[int] = frozenset()
    special_features: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Vendor:
    """One registered vendor and the legal bases it declares per purpose."""

    id: int
    name: str
    purposes: frozenset[int] = frozenset()
    leg_int_purposes: frozenset[int] = frozenset()
    flexible_purposes: frozenset[int] = frozenset()
    special_purposes: frozenset[int] = frozenset()
    features: frozenset[int] = frozenset()
    special_features: frozenset[int] = frozenset()
    deleted_date: datetime | None = None
    uses_cookies: bool | None = None
    cookie_max_age_seconds: int | None = None
    uses_non_cookie_access: bool | None = None

    def is_active(self, at: datetime | None = None) -> bool:
        """Strings must not carry signals for vendors deleted before the moment considered."""
        if self.deleted_date is None:
            return True
        return self.deleted_date > (at or datetime.now(UTC))


def _frozen_map(items: dict[int, Any]) -> Mapping[int, Any]:
    return MappingProxyType(dict(sorted(items.items())))


@dataclass(frozen=True, slots=True)
class GlobalVendorList:
    """One version of the GVL, immutable so it can be shared between requests."""

    vendor_list_version: int
    tcf_policy_version: int
    gvl_specification_version: int = 3
    last_updated: datetime | None = None
    purposes: Mapping[int, Declaration] = field(default_factory=lambda: _frozen_map({}))
    special_purposes: Mapping[int, Declaration] = field(default_factory=lambda: _frozen_map({}))
    features: Mapping[int, Declaration] = field(default_factory=lambda: _frozen_map({}))
    special_features: Mapping[int, Declaration] = field(default_factory=lambda: _frozen_map({}))
    stacks: Mapping[int, Stack] = field(default_factory=lambda: _frozen_map({}))
    vendors: Mapping[int, Vendor] = field(default_factory=lambda: _frozen_map({}))

    def active_vendor_ids(self, at: datetime | None = None) -> frozenset[int]:
        """Deleted vendors stay in the list for history; consent may only be stored for the rest."""
        return frozenset(vid for vid, vendor in self.vendors.items() if vendor.is_active(at))


# --------------------------------------------------------------------------- parsing helpers


def _require(obj: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in obj:
        raise GVLError(f"{where}: missing required field {key!r}")
    return obj[key]


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GVLError(f"{where}: expected an integer, got {value!r}")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise GVLError(f"{where}: expected a string, got {value!r}")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise GVLError(f"{where}: expected true/false, got {value!r}")
    return value


def _opt_bool(obj: Mapping[str, Any], key: str, where: str) -> bool | None:
    value = obj.get(key)
    return None if value is None else _bool(value, f"{where}.{key}")


def _ids(obj: Mapping[str, Any], key: str, where: str) -> frozenset[int]:
    value = obj.get(key, [])
    if not isinstance(value, list):
        raise GVLError(f"{where}.{key}: expected a list of ids, got {value!r}")
    return frozenset(_int(item, f"{where}.{key}[]") for item in value)


def _datetime(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    text = _str(value, where)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise GVLError(f"{where}: not an ISO 8601 timestamp: {text!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _keyed(data: Mapping[str, Any], key: str, required: bool) -> dict[int, Mapping[str, Any]]:
    """GVL collections are objects keyed by the decimal id that each entry repeats as ``id``."""
    raw = data.get(key)
    if raw is None:
        if required:
            raise GVLError(f"missing required field {key!r}")
        return {}
    if not isinstance(raw, Mapping):
        raise GVLError(f"{key}: expected an object keyed by id, got {type(raw).__name__}")
    out: dict[int, Mapping[str, Any]] = {}
    for str_id, entry in raw.items():
        where = f"{key}[{str_id!r}]"
        if not isinstance(entry, Mapping):
            raise GVLError(f"{where}: expected an object")
        entry_id = _int(_require(entry, "id", where), f"{where}.id")
        if str(entry_id) != str(str_id):
            raise GVLError(f"{where}: key does not match id {entry_id}")
        out[entry_id] = entry
    return out


def _declarations(data: Mapping[str, Any], key: str, required: bool) -> Mapping[int, Declaration]:
    items: dict[int, Declaration] = {}
    for item_id, entry in _keyed(data, key, required).items():
        where = f"{key}[{item_id}]"
        illustrations = entry.get("illustrations", [])
        if not isinstance(illustrations, list):
            raise GVLError(f"{where}.illustrations: expected a list of strings")
        items[item_id] = Declaration(
            id=item_id,
            name=_str(_require(entry, "name", where), f"{where}.name"),
            description=_str(entry.get("description", ""), f"{where}.description"),
            illustrations=tuple(_str(text, f"{where}.illustrations[]") for text in illustrations),
            consentable=_bool(entry.get("consentable", True), f"{where}.consentable"),
            right_to_object=_bool(entry.get("rightToObject", True), f"{where}.rightToObject"),
        )
    return _frozen_map(items)


def _stacks(data: Mapping[str, Any]) -> Mapping[int, Stack]:
    stacks: dict[int, Stack] = {}
    for stack_id, entry in _keyed(data, "stacks", required=False).items():
        where = f"stacks[{stack_id}]"
        stacks[stack_id] = Stack(
            id=stack_id,
            name=_str(_require(entry, "name", where), f"{where}.name"),
            description=_str(entry.get("description", ""), f"{where}.description"),
            purposes=_ids(entry, "purposes", where),
            special_features=_ids(entry, "specialFeatures", where),
        )
    return _frozen_map(stacks)


def _vendors(data: Mapping[str, Any]) -> Mapping[int, Vendor]:
    vendors: dict[int, Vendor] = {}
    for vendor_id, entry in _keyed(data, "vendors", required=True).items():
        where = f"vendors[{vendor_id}]"
        purposes = _ids(entry, "purposes", where)
        leg_int = _ids(entry, "legIntPurposes", where)
        both = purposes & leg_int
        if both:
            raise GVLError(
                f"{where}: purposes {sorted(both)} are declared under both consent and "
                "legitimate interest"
            )
        max_age = entry.get("cookieMaxAgeSeconds")
        vendors[vendor_id] = Vendor(
            id=vendor_id,
            name=_str(_require(entry, "name", where), f"{where}.name"),
            purposes=purposes,
            leg_int_purposes=leg_int,
            flexible_purposes=_ids(entry, "flexiblePurposes", where),
            special_purposes=_ids(entry, "specialPurposes", where),
            features=_ids(entry, "features", where),
            special_features=_ids(entry, "specialFeatures", where),
            deleted_date=_datetime(entry.get("deletedDate"), f"{where}.deletedDate"),
            uses_cookies=_opt_bool(entry, "usesCookies", where),
            cookie_max_age_seconds=(
                None if max_age is None else _int(max_age, f"{where}.cookieMaxAgeSeconds")
            ),
            uses_non_cookie_access=_opt_bool(entry, "usesNonCookieAccess", where),
        )
    return _frozen_map(vendors)


def from_dict(data: Mapping[str, Any]) -> GlobalVendorList:
    """Build the model from parsed JSON, so callers can cache or ship the list however they like.

    Raises :class:`GVLError` naming the first malformed field: a half-read vendor list would
    silently drop vendors from consent decisions, which is worse than refusing it.
    """
    if not isinstance(data, Mapping):
        raise GVLError(f"GVL must be a JSON object, got {type(data).__name__}")
    return GlobalVendorList(
        gvl_specification_version=_int(
            data.get("gvlSpecificationVersion", 3), "gvlSpecificationVersion"
        ),
        vendor_list_version=_int(_require(data, "vendorListVersion", "GVL"), "vendorListVersion"),
        tcf_policy_version=_int(_require(data, "tcfPolicyVersion", "GVL"), "tcfPolicyVersion"),
        last_updated=_datetime(data.get("lastUpdated"), "lastUpdated"),
        purposes=_declarations(data, "purposes", required=True),
        special_purposes=_declarations(data, "specialPurposes", required=False),
        features=_declarations(data, "features", required=False),
        special_features=_declarations(data, "specialFeatures", required=True),
        stacks=_stacks(data),
        vendors=_vendors(data),
    )


def load(path: str | os.PathLike[str]) -> GlobalVendorList:
    """Read a vendor-list JSON file that the operator downloaded and pinned."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GVLError(f"{file}: not valid JSON ({exc})") from exc
    return from_dict(data)
