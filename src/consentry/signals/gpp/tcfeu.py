"""Section 2, tcfeuv2: a TC string (consentry.signals.tcf), plus the GPP field-name view.

The section body is byte-for-byte a TC string, so the TCF codec reads and writes it; the one
difference is the encoder's choice between a vendor bitfield and a range of equal length,
which @iabgpp/cmpapi gives to the range (tcf.VendorEncoding.AUTO_TIE_RANGE). The GPP CMP API
names the fields differently from the TCF library (``PurposeConsents`` as 24 booleans rather
than ``purpose_consents`` as ids): :func:`tcfeuv2_fields` and :func:`tcfeuv2_from_fields`
translate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from consentry.signals import tcf
from consentry.signals.gpp.encoding import GPPStringError, Padding
from consentry.signals.gpp.fields import Bitfield, RangeEntry

__all__ = ["decode_tcfeu", "encode_tcfeu", "tcfeuv2_fields", "tcfeuv2_from_fields"]

# GPP field name -> (TCModel attribute, bitfield width or None for a plain value / id list)
_FIELDS: Mapping[str, tuple[str, int | None]] = {
    "Version": ("version", None),
    "Created": ("created", None),
    "LastUpdated": ("last_updated", None),
    "CmpId": ("cmp_id", None),
    "CmpVersion": ("cmp_version", None),
    "ConsentScreen": ("consent_screen", None),
    "ConsentLanguage": ("consent_language", None),
    "VendorListVersion": ("vendor_list_version", None),
    "PolicyVersion": ("policy_version", None),
    "IsServiceSpecific": ("is_service_specific", None),
    "UseNonStandardStacks": ("use_non_standard_texts", None),
    "SpecialFeatureOptins": ("special_feature_opt_ins", 12),
    "PurposeConsents": ("purpose_consents", 24),
    "PurposeLegitimateInterests": ("purpose_legitimate_interests", 24),
    "PurposeOneTreatment": ("purpose_one_treatment", None),
    "PublisherCountryCode": ("publisher_country_code", None),
    "VendorConsents": ("vendor_consents", None),
    "VendorLegitimateInterests": ("vendor_legitimate_interests", None),
    "PublisherConsents": ("publisher_consents", 24),
    "PublisherLegitimateInterests": ("publisher_legitimate_interests", 24),
    "NumCustomPurposes": ("num_custom_purposes", None),
    "PublisherCustomConsents": ("publisher_custom_consents", 0),
    "PublisherCustomLegitimateInterests": ("publisher_custom_legitimate_interests", 0),
    "VendorsDisclosed": ("vendors_disclosed", None),
}
#: Fields the reference library shows that carry no consent (segment type constants, and the
#: deprecated VendorsAllowed segment, which the TCF codec skips).
CONSTANT_FIELDS: Mapping[str, Any] = {
    "PublisherPurposesSegmentType": 3,
    "VendorsAllowedSegmentType": 2,
    "VendorsDisclosedSegmentType": 1,
    "VendorsAllowed": [],
}


def decode_tcfeu(text: str, *, strict: bool = True) -> tcf.TCModel:
    try:
        return tcf.decode(text, strict=strict)
    except tcf.TCStringError as exc:
        raise GPPStringError(f"tcfeuv2: {exc}") from exc


def encode_tcfeu(
    model: tcf.TCModel, *, strict: bool = True, padding: Padding = Padding.REFERENCE
) -> str:
    """TC strings keep their own 24-bit padding inside GPP, whatever ``padding`` says."""
    try:
        return tcf.encode(model, strict=strict, vendor_encoding=tcf.VendorEncoding.AUTO_TIE_RANGE)
    except tcf.TCStringError as exc:
        raise GPPStringError(f"tcfeuv2: {exc}") from exc


def _bools(ids: Iterable[int], width: int) -> list[bool]:
    chosen = set(ids)
    return [index + 1 in chosen for index in range(width)]


def tcfeuv2_fields(model: tcf.TCModel) -> dict[str, Any]:
    """The ``getSection('tcfeuv2')`` view of a model, with the GPP field names."""
    out: dict[str, Any] = {}
    for name, (attr, width) in _FIELDS.items():
        value = getattr(model, attr)
        if width is not None:
            out[name] = _bools(value, width or model.num_custom_purposes)
        elif isinstance(value, tuple):
            out[name] = list(value)
        else:
            out[name] = value
    as_json = model.to_dict()
    out["Created"], out["LastUpdated"] = as_json["created"], as_json["last_updated"]
    out["PublisherRestrictions"] = [
        RangeEntry(r.purpose_id, int(r.restriction_type), r.vendor_ids).to_dict()
        for r in model.publisher_restrictions
    ]
    return out


def tcfeuv2_from_fields(data: Mapping[str, Any]) -> tcf.TCModel:
    """Build a model from ``getSection``-shaped fields (constant fields are ignored)."""
    unknown = sorted(set(data) - set(_FIELDS) - set(CONSTANT_FIELDS) - {"PublisherRestrictions"})
    if unknown:
        raise GPPStringError(f"tcfeuv2: unknown field(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, (attr, width) in _FIELDS.items():
        if name not in data:
            continue
        value = data[name]
        if width is not None:
            flags = Bitfield(len(value)).normalise(value, name, {})
            value = tuple(index + 1 for index, flag in enumerate(flags) if flag)
        values[attr] = value
    values["publisher_restrictions"] = tuple(
        tcf.PublisherRestriction(int(r["key"]), tcf.RestrictionType(int(r["type"])), r["ids"])
        for r in data.get("PublisherRestrictions", ())
    )
    try:
        return tcf.TCModel.from_dict(values)
    except (tcf.TCStringError, KeyError, TypeError, ValueError) as exc:
        raise GPPStringError(f"tcfeuv2: {exc}") from exc
