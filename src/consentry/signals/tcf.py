"""IAB TCF v2.3 TC string: the model, its encoder and decoder, and the 2.2/2.3 validity rules.

A TC string is ``core[.segment]...``: the core segment first (it has no segment-type field; its
first six bits are the version, 2), then the Disclosed Vendors segment (mandatory since v2.3)
and optionally the Publisher TC segment, each carrying a 3-bit segment type. The bit layout has
not changed since v2.0, so strings from any 2.x CMP decode here; what changed is which field
values and segments make a string valid, which :func:`validate` and ``strict`` decoding enforce.

The model's field names are the snake_case names of the IAB reference library
(``@iabtechlabtcf/core``), so a decoded model can be compared with that library's output.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from consentry.signals.bits import BitError, BitReader, BitWriter, base64url_to_bits
from consentry.signals.bits import bits_to_base64url as _to_base64url
from consentry.signals.gvl import GlobalVendorList

__all__ = [
    "LI_FORBIDDEN_PURPOSES",
    "MIN_POLICY_VERSION",
    "ConsentSummary",
    "PublisherRestriction",
    "RestrictionType",
    "SegmentType",
    "TCModel",
    "TCStringError",
    "VendorEncoding",
    "consent_summary",
    "day_timestamp",
    "decode",
    "encode",
    "segment_types",
    "validate",
]

#: Policy version 4 arrived with TCF 2.2; strings with a lower one are invalid since 2023-09-30.
MIN_POLICY_VERSION = 4
#: Purpose 1 was never allowed under legitimate interest; 3-6 lost it in TCF 2.2.
LI_FORBIDDEN_PURPOSES: frozenset[int] = frozenset({1, 3, 4, 5, 6})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DECISECOND = timedelta(milliseconds=100)
_PAD_BITS = 24  # reference Base64Url encoder: least common multiple of 6 and 8
_MAX_VENDOR_ID = (1 << 16) - 1
_MAX_RANGE_ENTRIES = (1 << 12) - 1
_NUM_PURPOSES = 24
_NUM_SPECIAL_FEATURES = 12
_MAX_CUSTOM_PURPOSES = (1 << 6) - 1
_CORE_VERSION = 2


class TCStringError(ValueError):
    """A TC string (or a model about to be encoded) is malformed or breaks a TCF rule."""


class SegmentType(enum.IntEnum):
    """The 3-bit type that starts every segment after the core."""

    CORE = 0
    DISCLOSED_VENDORS = 1
    ALLOWED_VENDORS = 2  # out-of-band/global scope, deprecated since 2021: skipped on decode
    PUBLISHER_TC = 3


class RestrictionType(enum.IntEnum):
    """What a publisher restriction imposes on the listed vendors for one purpose."""

    NOT_ALLOWED = 0
    REQUIRE_CONSENT = 1
    REQUIRE_LEGITIMATE_INTEREST = 2
    UNDEFINED = 3


class VendorEncoding(enum.Enum):
    """How vendor sections are written; AUTO picks the shorter, as the spec asks encoders to."""

    AUTO = "auto"
    AUTO_TIE_RANGE = "auto_tie_range"  # equal lengths go to the range, as @iabgpp/cmpapi does
    BIT_FIELD = "bit_field"
    RANGE = "range"


def _id_tuple(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted({int(value) for value in values}))


@dataclass(frozen=True, slots=True)
class PublisherRestriction:
    """One (purpose, restriction type) pair and the vendors it applies to."""

    purpose_id: int
    restriction_type: RestrictionType
    vendor_ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "restriction_type", RestrictionType(self.restriction_type))
        object.__setattr__(self, "vendor_ids", _id_tuple(self.vendor_ids))


_ID_FIELDS = (
    "special_feature_opt_ins",
    "purpose_consents",
    "purpose_legitimate_interests",
    "vendor_consents",
    "vendor_legitimate_interests",
    "vendors_disclosed",
    "publisher_consents",
    "publisher_legitimate_interests",
    "publisher_custom_consents",
    "publisher_custom_legitimate_interests",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TCModel:
    """Everything a TC string carries, as plain values.

    Id collections are sorted tuples of the ids whose bit is set (any iterable is accepted and
    normalised), so two models are equal exactly when they encode the same consent. Datetimes
    must be timezone-aware; they are stored to the decisecond, the string's resolution.
    """

    version: int = _CORE_VERSION
    created: datetime
    last_updated: datetime
    cmp_id: int
    cmp_version: int
    consent_screen: int = 0
    consent_language: str = "EN"
    vendor_list_version: int
    policy_version: int = 5
    is_service_specific: bool = True
    use_non_standard_texts: bool = False
    special_feature_opt_ins: tuple[int, ...] = ()
    purpose_consents: tuple[int, ...] = ()
    purpose_legitimate_interests: tuple[int, ...] = ()
    purpose_one_treatment: bool = False
    publisher_country_code: str = "AA"
    vendor_consents: tuple[int, ...] = ()
    vendor_legitimate_interests: tuple[int, ...] = ()
    publisher_restrictions: tuple[PublisherRestriction, ...] = ()
    vendors_disclosed: tuple[int, ...] = ()
    publisher_consents: tuple[int, ...] = ()
    publisher_legitimate_interests: tuple[int, ...] = ()
    num_custom_purposes: int = 0
    publisher_custom_consents: tuple[int, ...] = ()
    publisher_custom_legitimate_interests: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        for name in _ID_FIELDS:
            object.__setattr__(self, name, _id_tuple(getattr(self, name)))
        for name in ("created", "last_updated"):
            value = getattr(self, name)
            if not isinstance(value, datetime):
                raise TCStringError(f"{name} must be a datetime, got {value!r}")
            if value.tzinfo is None:
                raise TCStringError(f"{name} must be timezone-aware (TC strings are UTC)")
            object.__setattr__(self, name, _from_deciseconds(_to_deciseconds(value)))
        object.__setattr__(self, "consent_language", self.consent_language.upper())
        object.__setattr__(self, "publisher_country_code", self.publisher_country_code.upper())
        restrictions = sorted(
            self.publisher_restrictions, key=lambda r: (r.purpose_id, r.restriction_type)
        )
        object.__setattr__(self, "publisher_restrictions", tuple(restrictions))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TCModel:
        """Build a model from JSON-shaped data (ISO timestamps, lists) such as the test vectors.

        Unknown keys are rejected so a misspelt field cannot silently encode as "no consent".
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise TCStringError(f"unknown TCModel field(s): {', '.join(unknown)}")
        values: dict[str, Any] = dict(data)
        for name in ("created", "last_updated"):
            if isinstance(values.get(name), str):
                values[name] = _parse_timestamp(values[name], name)
        if "publisher_restrictions" in values:
            values["publisher_restrictions"] = tuple(
                item
                if isinstance(item, PublisherRestriction)
                else PublisherRestriction(
                    purpose_id=item["purpose_id"],
                    restriction_type=RestrictionType(item["restriction_type"]),
                    vendor_ids=tuple(item.get("vendor_ids", ())),
                )
                for item in values["publisher_restrictions"]
            )
        try:
            return cls(**values)
        except TypeError as exc:  # a missing required field
            raise TCStringError(str(exc)) from exc

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view using the reference library's field names and timestamp format."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                out[f.name] = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
                    f"{value.microsecond // 1000:03d}Z"
                )
            elif f.name == "publisher_restrictions":
                out[f.name] = [
                    {
                        "purpose_id": r.purpose_id,
                        "restriction_type": int(r.restriction_type),
                        "vendor_ids": list(r.vendor_ids),
                    }
                    for r in value
                ]
            elif isinstance(value, tuple):
                out[f.name] = list(value)
            else:
                out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class ConsentSummary:
    """The purpose-level signals of a TC string, for mapping onto a tenant's own purposes."""

    purposes_consented: frozenset[int]
    purposes_legitimate_interest: frozenset[int]
    special_features_opted_in: frozenset[int]
    publisher_purposes_consented: frozenset[int]
    publisher_purposes_legitimate_interest: frozenset[int]
    custom_purposes_consented: frozenset[int]
    custom_purposes_legitimate_interest: frozenset[int]


def consent_summary(model: TCModel) -> ConsentSummary:
    """Reduce a TC string to "which purposes / special features did the user allow".

    Legitimate-interest bits for purposes 1 and 3-6 are dropped even when a lenient decode let
    them through: since TCF 2.2 they are not a lawful basis, so they must never grant anything.
    Publisher TC purposes are reported separately because the publisher (the tenant) is the
    party whose own processing they govern.
    """
    return ConsentSummary(
        purposes_consented=frozenset(model.purpose_consents),
        purposes_legitimate_interest=frozenset(model.purpose_legitimate_interests)
        - LI_FORBIDDEN_PURPOSES,
        special_features_opted_in=frozenset(model.special_feature_opt_ins),
        publisher_purposes_consented=frozenset(model.publisher_consents),
        publisher_purposes_legitimate_interest=frozenset(model.publisher_legitimate_interests),
        custom_purposes_consented=frozenset(model.publisher_custom_consents),
        custom_purposes_legitimate_interest=frozenset(model.publisher_custom_legitimate_interests),
    )


# --------------------------------------------------------------------------- timestamps


def _to_deciseconds(value: datetime) -> int:
    micros = (value - _EPOCH) // timedelta(microseconds=1)
    return (micros + 50_000) // 100_000  # Math.round(ms / 100) in the reference encoder


def _from_deciseconds(value: int) -> datetime:
    return _EPOCH + value * _DECISECOND


def _parse_timestamp(text: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TCStringError(f"{name}: not an ISO 8601 timestamp: {text!r}") from exc
    if parsed.tzinfo is None:
        raise TCStringError(f"{name}: timestamp {text!r} has no timezone")
    return parsed


def day_timestamp(moment: datetime | None = None) -> datetime:
    """Midnight UTC of the given (or current) day.

    Since December 2021 CMPs must set Created and LastUpdated to the same day-level timestamp
    so the string cannot be used to fingerprint the moment of the user's choice.
    """
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


# --------------------------------------------------------------------------- validation


def _problems(model: TCModel, gvl: GlobalVendorList | None) -> list[str]:
    problems: list[str] = []
    if model.version != _CORE_VERSION:
        problems.append(f"version is {model.version}, only TCF v2 strings are supported")
    if model.policy_version < MIN_POLICY_VERSION:
        problems.append(
            f"policy_version is {model.policy_version}; TCF 2.2+ requires >= {MIN_POLICY_VERSION} "
            "(strings with a lower policy version are invalid since 2023-09-30)"
        )
    if not model.is_service_specific:
        problems.append("is_service_specific is 0; global-scope strings are no longer allowed")
    bad_li = sorted(set(model.purpose_legitimate_interests) & LI_FORBIDDEN_PURPOSES)
    if bad_li:
        problems.append(
            f"purpose_legitimate_interests contains purposes {bad_li}; legitimate interest is "
            "not allowed for purposes 1 and 3-6 since TCF 2.2"
        )
    seen: dict[tuple[int, int], int] = {}
    for restriction in model.publisher_restrictions:
        purpose = restriction.purpose_id
        rtype = restriction.restriction_type
        if rtype == RestrictionType.UNDEFINED:
            problems.append(f"publisher restriction on purpose {purpose} has undefined type 3")
        if (
            rtype == RestrictionType.REQUIRE_LEGITIMATE_INTEREST
            and purpose in LI_FORBIDDEN_PURPOSES
        ):
            problems.append(
                f"publisher restriction requires legitimate interest for purpose {purpose}, "
                "which may only be based on consent"
            )
        for vendor in restriction.vendor_ids:
            other = seen.setdefault((purpose, vendor), int(rtype))
            if other != int(rtype):
                problems.append(
                    f"vendor {vendor} has more than one restriction type for purpose {purpose}"
                )
    if gvl is not None:
        if model.vendor_list_version != gvl.vendor_list_version:
            problems.append(
                f"vendor_list_version is {model.vendor_list_version} but the GVL given is "
                f"version {gvl.vendor_list_version}"
            )
        if model.policy_version != gvl.tcf_policy_version:
            problems.append(
                f"policy_version is {model.policy_version} but the GVL declares "
                f"tcfPolicyVersion {gvl.tcf_policy_version}"
            )
        for name in ("vendor_consents", "vendor_legitimate_interests", "vendors_disclosed"):
            unknown = sorted(set(getattr(model, name)) - set(gvl.vendors))
            if unknown:
                shown = unknown[:10]
                more = f" (+{len(unknown) - 10} more)" if len(unknown) > 10 else ""
                problems.append(f"{name} names vendors not in the GVL: {shown}{more}")
    return problems


def validate(model: TCModel, gvl: GlobalVendorList | None = None) -> None:
    """Refuse a model that a TCF 2.2/2.3-conformant vendor would have to reject.

    Checks: version 2, policy version >= 4, IsServiceSpecific set, no legitimate interest for
    purposes 1 and 3-6, and coherent publisher restrictions. With a ``gvl`` it also checks the
    model was built against that list (version, policy version, known vendor ids). All problems
    are reported at once in one :class:`TCStringError`.
    """
    problems = _problems(model, gvl)
    if problems:
        raise TCStringError("invalid TC string: " + "; ".join(problems))


# --------------------------------------------------------------------------- vendor sections


def _runs(ids: tuple[int, ...]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for vendor_id in ids:
        if runs and runs[-1][1] + 1 == vendor_id:
            runs[-1] = (runs[-1][0], vendor_id)
        else:
            runs.append((vendor_id, vendor_id))
    return runs


def _range_bits(runs: list[tuple[int, int]]) -> int:
    return 12 + sum(17 if start == end else 33 for start, end in runs)


def _write_ranges(writer: BitWriter, runs: list[tuple[int, int]], field_name: str) -> None:
    if len(runs) > _MAX_RANGE_ENTRIES:
        raise TCStringError(f"{field_name}: {len(runs)} ranges exceed the 4095-entry limit")
    writer.write_int(len(runs), 12, f"{field_name}.NumEntries")
    for start, end in runs:
        writer.write_bool(start != end)
        writer.write_int(start, 16, f"{field_name}.StartOrOnlyVendorId")
        if start != end:
            writer.write_int(end, 16, f"{field_name}.EndVendorId")


def _check_vendor_ids(ids: tuple[int, ...], field_name: str) -> None:
    if ids and (ids[0] < 1 or ids[-1] > _MAX_VENDOR_ID):
        raise TCStringError(f"{field_name}: vendor ids must be within 1..{_MAX_VENDOR_ID}")


def _write_vendor_section(
    writer: BitWriter, ids: tuple[int, ...], encoding: VendorEncoding, field_name: str
) -> None:
    _check_vendor_ids(ids, field_name)
    max_id = ids[-1] if ids else 0
    runs = _runs(ids)
    range_fits = len(runs) <= _MAX_RANGE_ENTRIES
    if encoding is VendorEncoding.AUTO:
        use_range = range_fits and _range_bits(runs) < max_id
    elif encoding is VendorEncoding.AUTO_TIE_RANGE:
        use_range = range_fits and _range_bits(runs) <= max_id
    else:
        use_range = encoding is VendorEncoding.RANGE
    writer.write_int(max_id, 16, f"{field_name}.MaxVendorId")
    writer.write_bool(use_range)
    if use_range:
        _write_ranges(writer, runs, field_name)
    else:
        writer.write_bitfield(ids, max_id, field_name)


def _read_ranges(reader: BitReader, field_name: str) -> list[tuple[int, int]]:
    count = reader.read_int(12, f"{field_name}.NumEntries")
    runs: list[tuple[int, int]] = []
    for _ in range(count):
        is_range = reader.read_bool(f"{field_name}.IsARange")
        start = reader.read_int(16, f"{field_name}.StartOrOnlyVendorId")
        end = reader.read_int(16, f"{field_name}.EndVendorId") if is_range else start
        if start < 1 or end < start:
            raise TCStringError(f"{field_name}: invalid vendor range {start}-{end}")
        runs.append((start, end))
    return runs


#: What the publisher restrictions of one string may expand to, in vendor ids. A restriction can
#: name up to 65,535 ids in 33 bits, so without a bound a 20,000-character string would expand to
#: hundreds of millions of ids (a denial of service). Real strings stay far below: 11 purposes x 3
#: restriction types x every vendor of the Global Vendor List is under 50,000.
MAX_RESTRICTED_IDS = 200_000


def _expand_runs(runs: list[tuple[int, int]]) -> list[int]:
    """The distinct ids of possibly overlapping runs, ascending, in time linear in the ids."""
    ids: list[int] = []
    last = 0
    for start, end in sorted(runs):
        start = max(start, last + 1)
        if start <= end:
            ids.extend(range(start, end + 1))
            last = end
    return ids


def _read_vendor_section(reader: BitReader, field_name: str, strict: bool) -> tuple[int, ...]:
    max_id = reader.read_int(16, f"{field_name}.MaxVendorId")
    if not reader.read_bool(f"{field_name}.IsRangeEncoding"):
        return reader.read_bitfield(max_id, field_name)
    ids = _expand_runs(_read_ranges(reader, field_name))
    if strict and ids and max(ids) > max_id:
        raise TCStringError(
            f"{field_name}: range names vendor {max(ids)} above MaxVendorId {max_id}"
        )
    return _id_tuple(ids)


# --------------------------------------------------------------------------- letters


def _write_letters(writer: BitWriter, code: str, field_name: str) -> None:
    if len(code) != 2 or not all("A" <= char <= "Z" for char in code):
        raise TCStringError(f"{field_name} must be two letters A-Z, got {code!r}")
    for char in code:
        writer.write_int(ord(char) - ord("A"), 6, field_name)


def _read_letters(reader: BitReader, field_name: str) -> str:
    values = [reader.read_int(6, field_name), reader.read_int(6, field_name)]
    if any(value > 25 for value in values):
        raise TCStringError(f"{field_name}: letter values {values} are outside a-z (0-25)")
    return "".join(chr(ord("A") + value) for value in values)


# --------------------------------------------------------------------------- segments


def _encode_core(model: TCModel, encoding: VendorEncoding) -> str:
    w = BitWriter()
    w.write_int(model.version, 6, "version")
    w.write_int(_to_deciseconds(model.created), 36, "created")
    w.write_int(_to_deciseconds(model.last_updated), 36, "last_updated")
    w.write_int(model.cmp_id, 12, "cmp_id")
    w.write_int(model.cmp_version, 12, "cmp_version")
    w.write_int(model.consent_screen, 6, "consent_screen")
    _write_letters(w, model.consent_language, "consent_language")
    w.write_int(model.vendor_list_version, 12, "vendor_list_version")
    w.write_int(model.policy_version, 6, "policy_version")
    w.write_bool(model.is_service_specific)
    w.write_bool(model.use_non_standard_texts)
    w.write_bitfield(
        model.special_feature_opt_ins, _NUM_SPECIAL_FEATURES, "special_feature_opt_ins"
    )
    w.write_bitfield(model.purpose_consents, _NUM_PURPOSES, "purpose_consents")
    w.write_bitfield(
        model.purpose_legitimate_interests, _NUM_PURPOSES, "purpose_legitimate_interests"
    )
    w.write_bool(model.purpose_one_treatment)
    _write_letters(w, model.publisher_country_code, "publisher_country_code")
    _write_vendor_section(w, model.vendor_consents, encoding, "vendor_consents")
    _write_vendor_section(
        w, model.vendor_legitimate_interests, encoding, "vendor_legitimate_interests"
    )
    w.write_int(len(model.publisher_restrictions), 12, "NumPubRestrictions")
    for restriction in model.publisher_restrictions:
        name = f"publisher_restrictions[purpose {restriction.purpose_id}]"
        if not 1 <= restriction.purpose_id <= 63:
            raise TCStringError(f"{name}: purpose_id must be within 1..63")
        _check_vendor_ids(restriction.vendor_ids, name)
        w.write_int(restriction.purpose_id, 6, name)
        w.write_int(int(restriction.restriction_type), 2, name)
        _write_ranges(w, _runs(restriction.vendor_ids), name)
    return w.to_bits()


def _decode_core(reader: BitReader, strict: bool) -> dict[str, Any]:
    r = reader
    version = r.read_int(6, "version")
    if version != _CORE_VERSION:
        hint = " (TCF v1 strings start with 'B')" if version == 1 else ""
        raise TCStringError(f"unsupported TC string version {version}{hint}; expected 2")
    out: dict[str, Any] = {"version": version}
    out["created"] = _from_deciseconds(r.read_int(36, "created"))
    out["last_updated"] = _from_deciseconds(r.read_int(36, "last_updated"))
    out["cmp_id"] = r.read_int(12, "cmp_id")
    out["cmp_version"] = r.read_int(12, "cmp_version")
    out["consent_screen"] = r.read_int(6, "consent_screen")
    out["consent_language"] = _read_letters(r, "consent_language")
    out["vendor_list_version"] = r.read_int(12, "vendor_list_version")
    out["policy_version"] = r.read_int(6, "policy_version")
    out["is_service_specific"] = r.read_bool("is_service_specific")
    out["use_non_standard_texts"] = r.read_bool("use_non_standard_texts")
    out["special_feature_opt_ins"] = r.read_bitfield(
        _NUM_SPECIAL_FEATURES, "special_feature_opt_ins"
    )
    out["purpose_consents"] = r.read_bitfield(_NUM_PURPOSES, "purpose_consents")
    out["purpose_legitimate_interests"] = r.read_bitfield(
        _NUM_PURPOSES, "purpose_legitimate_interests"
    )
    out["purpose_one_treatment"] = r.read_bool("purpose_one_treatment")
    out["publisher_country_code"] = _read_letters(r, "publisher_country_code")
    out["vendor_consents"] = _read_vendor_section(r, "vendor_consents", strict)
    out["vendor_legitimate_interests"] = _read_vendor_section(
        r, "vendor_legitimate_interests", strict
    )
    restrictions: list[PublisherRestriction] = []
    restricted = 0
    for _ in range(r.read_int(12, "NumPubRestrictions")):
        purpose_id = r.read_int(6, "publisher_restrictions.PurposeId")
        rtype = RestrictionType(r.read_int(2, "publisher_restrictions.RestrictionType"))
        runs = _read_ranges(r, f"publisher_restrictions[purpose {purpose_id}]")
        restricted += sum(end - start + 1 for start, end in runs)
        if restricted > MAX_RESTRICTED_IDS:
            raise TCStringError(
                f"publisher_restrictions name more than {MAX_RESTRICTED_IDS} vendor ids in all;"
                " no real TC string does"
            )
        vendor_ids = _expand_runs(runs)
        restrictions.append(PublisherRestriction(purpose_id, rtype, tuple(vendor_ids)))
    out["publisher_restrictions"] = tuple(restrictions)
    return out


def _encode_disclosed(model: TCModel, encoding: VendorEncoding) -> str:
    w = BitWriter()
    w.write_int(SegmentType.DISCLOSED_VENDORS, 3, "SegmentType")
    _write_vendor_section(w, model.vendors_disclosed, encoding, "vendors_disclosed")
    return w.to_bits()


def _encode_publisher_tc(model: TCModel) -> str:
    n = model.num_custom_purposes
    if not 0 <= n <= _MAX_CUSTOM_PURPOSES:
        raise TCStringError(f"num_custom_purposes must be within 0..{_MAX_CUSTOM_PURPOSES}")
    w = BitWriter()
    w.write_int(SegmentType.PUBLISHER_TC, 3, "SegmentType")
    w.write_bitfield(model.publisher_consents, _NUM_PURPOSES, "publisher_consents")
    w.write_bitfield(
        model.publisher_legitimate_interests, _NUM_PURPOSES, "publisher_legitimate_interests"
    )
    w.write_int(n, 6, "num_custom_purposes")
    w.write_bitfield(model.publisher_custom_consents, n, "publisher_custom_consents")
    w.write_bitfield(
        model.publisher_custom_legitimate_interests, n, "publisher_custom_legitimate_interests"
    )
    return w.to_bits()


def _decode_publisher_tc(reader: BitReader) -> dict[str, Any]:
    r = reader
    out: dict[str, Any] = {}
    out["publisher_consents"] = r.read_bitfield(_NUM_PURPOSES, "publisher_consents")
    out["publisher_legitimate_interests"] = r.read_bitfield(
        _NUM_PURPOSES, "publisher_legitimate_interests"
    )
    n = r.read_int(6, "num_custom_purposes")
    out["num_custom_purposes"] = n
    out["publisher_custom_consents"] = r.read_bitfield(n, "publisher_custom_consents")
    out["publisher_custom_legitimate_interests"] = r.read_bitfield(
        n, "publisher_custom_legitimate_interests"
    )
    return out


# --------------------------------------------------------------------------- public codec


def encode(
    model: TCModel,
    *,
    strict: bool = True,
    include_publisher_tc: bool = True,
    vendor_encoding: VendorEncoding = VendorEncoding.AUTO,
    gvl: GlobalVendorList | None = None,
) -> str:
    """Serialise a model as ``core.disclosedVendors[.publisherTC]``, the v2.3 reference layout.

    The Disclosed Vendors segment is always written because v2.3 makes it mandatory. The
    Publisher TC segment is written by default (the reference encoder does too); with
    ``include_publisher_tc=False`` it is omitted, which is refused if the model carries
    publisher signals that would be lost. ``strict`` runs :func:`validate` first (pass a
    ``gvl`` to also check against it) so Consentry never emits a string vendors must discard.
    ``vendor_encoding`` forces bit-field or range encoding, for interoperability tests.
    """
    if strict:
        validate(model, gvl)
    try:
        segments = [
            _encode_core(model, vendor_encoding),
            _encode_disclosed(model, vendor_encoding),
        ]
        if include_publisher_tc:
            segments.append(_encode_publisher_tc(model))
        elif (
            model.publisher_consents
            or model.publisher_legitimate_interests
            or model.num_custom_purposes
        ):
            raise TCStringError(
                "include_publisher_tc=False would drop the model's publisher TC signals"
            )
    except BitError as exc:
        raise TCStringError(str(exc)) from exc
    return ".".join(_to_base64url(bits, _PAD_BITS) for bits in segments)


def _segments(tc_string: str) -> list[str]:
    if not isinstance(tc_string, str):
        raise TCStringError(f"TC string must be a str, got {type(tc_string).__name__}")
    text = tc_string.strip()
    if not text:
        raise TCStringError("empty TC string")
    parts = text.split(".")
    if any(not part for part in parts):
        raise TCStringError("empty segment in TC string (stray '.')")
    return parts


def segment_types(tc_string: str) -> tuple[SegmentType | int, ...]:
    """Which segments a string carries, in order, so evidence can record what was present.

    Unknown types (4-7) are returned as plain ints rather than rejected.
    """
    types: list[SegmentType | int] = []
    for index, part in enumerate(_segments(tc_string)):
        if index == 0:
            types.append(SegmentType.CORE)
            continue
        try:
            value = int(base64url_to_bits(part)[:3], 2)
        except BitError as exc:
            raise TCStringError(f"segment {index + 1}: {exc}") from exc
        try:
            types.append(SegmentType(value))
        except ValueError:
            types.append(value)
    return tuple(types)


def decode(tc_string: str, *, strict: bool = True) -> TCModel:
    """Parse a TC string into a :class:`TCModel`.

    With ``strict=True`` (the default) a string that breaks a TCF 2.2/2.3 rule (see
    :func:`validate`) or lacks the Disclosed Vendors segment raises :class:`TCStringError`, so
    it is never acted upon. ``strict=False`` still rejects strings that cannot be parsed but
    accepts rule violations and unknown segment types, so older strings can be read as evidence
    of what a user was shown. The deprecated AllowedVendors segment is always skipped.
    """
    parts = _segments(tc_string)
    values: dict[str, Any] = {}
    seen: set[int] = set()
    try:
        for index, part in enumerate(parts):
            reader = BitReader(base64url_to_bits(part))
            if index == 0:
                values.update(_decode_core(reader, strict))
                continue
            seg_type = reader.read_int(3, "SegmentType")
            if seg_type == SegmentType.CORE:
                raise TCStringError(f"segment {index + 1}: a second core segment")
            if seg_type in seen:
                raise TCStringError(f"segment {index + 1}: duplicate segment type {seg_type}")
            seen.add(seg_type)
            if seg_type == SegmentType.DISCLOSED_VENDORS:
                values["vendors_disclosed"] = _read_vendor_section(
                    reader, "vendors_disclosed", strict
                )
            elif seg_type == SegmentType.PUBLISHER_TC:
                values.update(_decode_publisher_tc(reader))
            elif seg_type == SegmentType.ALLOWED_VENDORS:
                continue
            elif strict:
                raise TCStringError(f"segment {index + 1}: unknown segment type {seg_type}")
    except BitError as exc:
        raise TCStringError(f"malformed TC string: {exc}") from exc
    model = TCModel(**values)
    if strict:
        problems = _problems(model, None)
        if SegmentType.DISCLOSED_VENDORS not in seen:
            problems.append("the Disclosed Vendors segment is missing; it is mandatory in TCF 2.3")
        if problems:
            raise TCStringError("invalid TC string: " + "; ".join(problems))
    return model
