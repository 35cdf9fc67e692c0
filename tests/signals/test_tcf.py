"""TC string codec: official vectors, the spec example, the TCF 2.2/2.3 rules, and properties."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.signals import gvl as gvl_mod
from consentry.signals import tcf
from consentry.signals.bits import BitWriter, base64url_to_bits, bits_to_base64url
from consentry.signals.tcf import (
    PublisherRestriction,
    RestrictionType,
    SegmentType,
    TCModel,
    TCStringError,
    VendorEncoding,
)
from tests.signals.vectors_path import vectors_file

TCF_VECTORS: list[dict[str, Any]] = json.loads(vectors_file("tcf_v2.json").read_text("utf-8"))
VECTOR_IDS = [f"v{i}-cmp{v['expected']['cmp_id']}" for i, v in enumerate(TCF_VECTORS)]

# standards.md section 1.7, produced with @iabtechlabtcf/core 1.5.21
SPEC_EXAMPLE = "CQeEcwAQeEcwAEsACBENCWFoALAAAEIAAAqIAFEBAAIgAAAA.IAFEBAAA.YAAAAAAAAAAA"
DAY = datetime(2026, 1, 15, tzinfo=UTC)


def _model(**overrides: Any) -> TCModel:
    values: dict[str, Any] = {
        "created": DAY,
        "last_updated": DAY,
        "cmp_id": 300,
        "cmp_version": 2,
        "consent_screen": 1,
        "vendor_list_version": 150,
        "publisher_country_code": "FR",
        "purpose_consents": (1, 3, 4),
        "purpose_legitimate_interests": (2, 7),
        "vendor_consents": (2, 10),
        "vendor_legitimate_interests": (2,),
        "vendors_disclosed": (2, 10),
        "special_feature_opt_ins": (1,),
    }
    values.update(overrides)
    return TCModel(**values)


def _check_fields(model: TCModel, expected: dict[str, Any]) -> None:
    actual = model.to_dict()
    wrong = {
        key: (actual.get(key), value) for key, value in expected.items() if actual.get(key) != value
    }
    assert not wrong, f"fields differ (actual, expected): {wrong}"


# --------------------------------------------------------------------------- official vectors


def test_vectors_present() -> None:
    assert len(TCF_VECTORS) >= 20


def test_model_has_every_vector_field_name() -> None:
    names = set(TCModel.__dataclass_fields__)
    for vector in TCF_VECTORS:
        assert set(vector["expected"]) <= names


@pytest.mark.parametrize("vector", TCF_VECTORS, ids=VECTOR_IDS)
def test_vector_decodes_to_every_expected_field(vector: dict[str, Any]) -> None:
    model = tcf.decode(vector["tc_string"])
    _check_fields(model, vector["expected"])
    for key, value in vector["expected"].items():  # attributes, not just the dict view
        attr = getattr(model, key)
        if isinstance(value, list):
            assert list(attr) == value
        elif key not in ("created", "last_updated"):
            assert attr == value


@pytest.mark.parametrize("vector", TCF_VECTORS, ids=VECTOR_IDS)
def test_encoding_expected_fields_decodes_back(vector: dict[str, Any]) -> None:
    model = TCModel.from_dict(vector["expected"])
    encoded = tcf.encode(model)
    assert tcf.segment_types(encoded) == (
        SegmentType.CORE,
        SegmentType.DISCLOSED_VENDORS,
        SegmentType.PUBLISHER_TC,
    )
    decoded = tcf.decode(encoded)
    _check_fields(decoded, vector["expected"])
    assert decoded == model


@pytest.mark.parametrize("vector", TCF_VECTORS, ids=VECTOR_IDS)
def test_encoding_matches_reference_bytes(vector: dict[str, Any]) -> None:
    """Not required by the spec, but it shows our encoding choice and padding match the IAB's."""
    assert tcf.encode(TCModel.from_dict(vector["expected"])) == vector["tc_string"]


# --------------------------------------------------------------------------- standards.md example


def test_spec_example_decodes() -> None:
    model = tcf.decode(SPEC_EXAMPLE)
    assert model.cmp_id == 300
    assert model.cmp_version == 2
    assert model.consent_screen == 1
    assert model.publisher_country_code == "FR"
    assert model.created == model.last_updated == DAY
    assert model.vendor_list_version == 150
    assert model.policy_version == 5
    assert model.purpose_consents == (1, 3, 4)
    assert model.purpose_legitimate_interests == (2, 7)  # 3 was stripped by the reference encoder
    assert model.vendor_consents == (2, 10)
    assert model.vendor_legitimate_interests == (2,)
    assert model.vendors_disclosed == (2, 10)
    assert model.special_feature_opt_ins == (1,)
    assert model.is_service_specific


def test_spec_example_reencodes_identically() -> None:
    assert tcf.encode(_model()) == SPEC_EXAMPLE
    assert tcf.encode(tcf.decode(SPEC_EXAMPLE)) == SPEC_EXAMPLE


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"policy_version": 3}, "policy_version is 3"),
        ({"is_service_specific": False}, "is_service_specific"),
        ({"purpose_legitimate_interests": (2, 3)}, "purposes [3]"),
        ({"purpose_legitimate_interests": (1,)}, "purposes [1]"),
        ({"purpose_legitimate_interests": (4, 5, 6, 7)}, "purposes [4, 5, 6]"),
    ],
)
def test_encode_refuses_rule_violations(overrides: dict[str, Any], message: str) -> None:
    model = _model(**overrides)
    with pytest.raises(TCStringError, match=message.replace("[", r"\[").replace("]", r"\]")):
        tcf.encode(model)
    # lenient encoding (for tests/interop) and lenient decoding still work
    encoded = tcf.encode(model, strict=False)
    with pytest.raises(TCStringError, match="invalid TC string"):
        tcf.decode(encoded)
    assert tcf.decode(encoded, strict=False) == model


def test_all_problems_reported_together() -> None:
    model = _model(policy_version=2, is_service_specific=False, purpose_legitimate_interests=(3,))
    with pytest.raises(TCStringError) as info:
        tcf.validate(model)
    text = str(info.value)
    assert "policy_version" in text
    assert "is_service_specific" in text
    assert "purposes [3]" in text


def test_missing_disclosed_vendors_segment() -> None:
    core_only = SPEC_EXAMPLE.split(".")[0]
    with pytest.raises(TCStringError, match="Disclosed Vendors segment is missing"):
        tcf.decode(core_only)
    lenient = tcf.decode(core_only, strict=False)
    assert lenient.vendor_consents == (2, 10)
    assert lenient.vendors_disclosed == ()


def test_old_string_readable_as_evidence() -> None:
    # TCF 2.0-era string (policy version 2, no disclosed vendors) from the GPP spec example
    old = "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"
    with pytest.raises(TCStringError) as info:
        tcf.decode(old)
    assert "policy_version is 2" in str(info.value)
    assert "Disclosed Vendors" in str(info.value)
    model = tcf.decode(old, strict=False)
    assert model.policy_version == 2
    assert model.cmp_id == 31
    assert model.publisher_country_code == "DE"
    assert tcf.segment_types(old) == (SegmentType.CORE,)


@pytest.mark.parametrize(
    ("restriction", "message"),
    [
        (PublisherRestriction(1, RestrictionType.REQUIRE_LEGITIMATE_INTEREST, (2,)), "purpose 1"),
        (PublisherRestriction(4, RestrictionType.REQUIRE_LEGITIMATE_INTEREST, (2,)), "purpose 4"),
        (PublisherRestriction(2, RestrictionType.UNDEFINED, (2,)), "undefined type 3"),
    ],
)
def test_publisher_restriction_rules(restriction: PublisherRestriction, message: str) -> None:
    model = _model(publisher_restrictions=(restriction,))
    with pytest.raises(TCStringError, match=message):
        tcf.encode(model)
    assert tcf.decode(tcf.encode(model, strict=False), strict=False) == model


def test_vendor_with_two_restrictions_for_one_purpose() -> None:
    model = _model(
        publisher_restrictions=(
            PublisherRestriction(2, RestrictionType.NOT_ALLOWED, (5, 6)),
            PublisherRestriction(2, RestrictionType.REQUIRE_CONSENT, (6, 7)),
        )
    )
    with pytest.raises(TCStringError, match="vendor 6 has more than one restriction"):
        tcf.validate(model)


def test_publisher_restrictions_round_trip() -> None:
    restrictions = (
        PublisherRestriction(2, RestrictionType.REQUIRE_CONSENT, (1, 2, 3, 10, 700)),
        PublisherRestriction(7, RestrictionType.REQUIRE_LEGITIMATE_INTEREST, (8,)),
        PublisherRestriction(1, RestrictionType.NOT_ALLOWED, range(40, 90)),  # type: ignore[arg-type]
    )
    model = _model(publisher_restrictions=restrictions)
    decoded = tcf.decode(tcf.encode(model))
    assert decoded == model
    assert decoded.publisher_restrictions[0].purpose_id == 1
    assert decoded.publisher_restrictions[0].vendor_ids == tuple(range(40, 90))
    as_dict = decoded.to_dict()["publisher_restrictions"]
    assert as_dict[1] == {"purpose_id": 2, "restriction_type": 1, "vendor_ids": [1, 2, 3, 10, 700]}
    assert TCModel.from_dict(decoded.to_dict()) == model


def test_validate_against_gvl() -> None:
    gvl = gvl_mod.from_dict(_gvl_stub())
    tcf.validate(_model(), gvl)
    with pytest.raises(
        TCStringError, match=r"vendor_consents names vendors not in the GVL: \[99\]"
    ):
        tcf.encode(_model(vendor_consents=(2, 99)), gvl=gvl)
    with pytest.raises(TCStringError, match="GVL given is version 151"):
        tcf.validate(_model(), gvl_mod.from_dict({**_gvl_stub(), "vendorListVersion": 151}))
    with pytest.raises(TCStringError, match="tcfPolicyVersion 4"):
        tcf.validate(_model(), gvl_mod.from_dict({**_gvl_stub(), "tcfPolicyVersion": 4}))


# --------------------------------------------------------------------------- malformed strings


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty TC string"),
        ("CQeEcwAQeEcwAEsACBENCWFoALAA+EIAAAqIAFEBAAIgAAAA", "invalid character"),
        ("CQeEcwAQeEcwAEsACBENCWFo", "string too short"),
        ("BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA", "version 1"),
        (SPEC_EXAMPLE + ".", "empty segment"),
        (SPEC_EXAMPLE + ".IAFEBAAA", "duplicate segment type 1"),
        (SPEC_EXAMPLE + ".CQeEcwAQ", "second core segment"),
        (SPEC_EXAMPLE.split(".")[0] + ".gAAA", "unknown segment type 4"),
    ],
)
def test_malformed_strings(text: str, message: str) -> None:
    with pytest.raises(TCStringError, match=message):
        tcf.decode(text)


def test_non_string_input() -> None:
    with pytest.raises(TCStringError, match="must be a str"):
        tcf.decode(b"CQ")  # type: ignore[arg-type]


def test_unknown_segment_ignored_when_lenient() -> None:
    text = SPEC_EXAMPLE + ".gAAA"
    assert tcf.decode(text, strict=False) == tcf.decode(SPEC_EXAMPLE)
    assert tcf.segment_types(text)[-1] == 4


def test_allowed_vendors_segment_is_skipped() -> None:
    writer = BitWriter()
    writer.write_int(SegmentType.ALLOWED_VENDORS, 3)
    writer.write_int(3, 16)  # MaxVendorId
    writer.write_bool(False)
    writer.write_bitfield([1, 3], 3)
    allowed = bits_to_base64url(writer.to_bits(), 24)
    core, disclosed, publisher = SPEC_EXAMPLE.split(".")
    text = ".".join([core, allowed, publisher, disclosed])  # segments after core in any order
    assert tcf.segment_types(text)[1] is SegmentType.ALLOWED_VENDORS
    assert tcf.decode(text) == tcf.decode(SPEC_EXAMPLE)


def test_trailing_padding_is_ignored() -> None:
    padded = ".".join(part + "AAAA" for part in SPEC_EXAMPLE.split("."))
    assert tcf.decode(padded) == tcf.decode(SPEC_EXAMPLE)


def test_range_above_max_vendor_id() -> None:
    writer = BitWriter()
    writer.write_int(SegmentType.DISCLOSED_VENDORS, 3)
    writer.write_int(5, 16)  # MaxVendorId 5 ...
    writer.write_bool(True)
    writer.write_int(1, 12)
    writer.write_bool(False)
    writer.write_int(9, 16)  # ... but the range names vendor 9
    bad = bits_to_base64url(writer.to_bits(), 24)
    text = SPEC_EXAMPLE.split(".")[0] + "." + bad
    with pytest.raises(TCStringError, match="above MaxVendorId"):
        tcf.decode(text)
    assert tcf.decode(text, strict=False).vendors_disclosed == (9,)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cmp_id": 4096}, "cmp_id=4096 does not fit in 12 bits"),
        ({"consent_language": "E1"}, "consent_language must be two letters"),
        ({"publisher_country_code": "FRA"}, "publisher_country_code must be two letters"),
        ({"purpose_consents": (25,)}, "purpose_consents: id 25 is outside 1..24"),
        ({"vendor_consents": (0, 2)}, "vendor ids must be within"),
        ({"vendor_consents": (70000,)}, "vendor ids must be within"),
        ({"num_custom_purposes": 2, "publisher_custom_consents": (3,)}, "id 3 is outside 1..2"),
        ({"num_custom_purposes": 64}, "num_custom_purposes"),
    ],
)
def test_encode_structural_errors(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(TCStringError, match=message):
        tcf.encode(_model(**overrides))


def test_model_construction_errors() -> None:
    with pytest.raises(TCStringError, match="timezone-aware"):
        _model(created=datetime(2026, 1, 1))
    with pytest.raises(TCStringError, match="unknown TCModel field"):
        TCModel.from_dict({**_model().to_dict(), "purpose_consent": [1]})
    with pytest.raises(TCStringError, match="cmp_id"):
        TCModel.from_dict(
            {"created": "2026-01-01T00:00:00Z", "last_updated": "2026-01-01T00:00:00Z"}
        )
    with pytest.raises(TCStringError, match="has no timezone"):
        TCModel.from_dict({**_model().to_dict(), "created": "2026-01-01T00:00:00"})


def test_omitting_publisher_tc() -> None:
    text = tcf.encode(_model(), include_publisher_tc=False)
    assert tcf.segment_types(text) == (SegmentType.CORE, SegmentType.DISCLOSED_VENDORS)
    assert tcf.decode(text) == _model()
    with pytest.raises(TCStringError, match="would drop"):
        tcf.encode(_model(publisher_consents=(1,)), include_publisher_tc=False)


def test_model_normalises_collections_and_case() -> None:
    model = _model(
        vendor_consents=[10, 2, 2],
        consent_language="fr",
        created=datetime(2026, 1, 15, 1, 0, 0, 123456, tzinfo=UTC),
    )
    assert model.vendor_consents == (2, 10)
    assert model.consent_language == "FR"
    assert model.created.microsecond == 100000  # stored to the decisecond


def test_day_timestamp() -> None:
    moment = datetime(2026, 3, 1, 23, 30, tzinfo=UTC)
    assert tcf.day_timestamp(moment) == datetime(2026, 3, 1, tzinfo=UTC)
    local = datetime(2026, 3, 2, 0, 30, tzinfo=UTC) + timedelta(hours=-1)
    assert tcf.day_timestamp(local) == datetime(2026, 3, 1, tzinfo=UTC)
    assert tcf.day_timestamp().tzinfo is not None


def test_consent_summary() -> None:
    model = _model(
        purpose_legitimate_interests=(2, 3, 7),
        publisher_consents=(1, 2),
        publisher_legitimate_interests=(8,),
        num_custom_purposes=3,
        publisher_custom_consents=(2,),
        publisher_custom_legitimate_interests=(3,),
    )
    summary = tcf.consent_summary(model)
    assert summary.purposes_consented == {1, 3, 4}
    assert summary.purposes_legitimate_interest == {2, 7}  # 3 is never a valid LI purpose
    assert summary.special_features_opted_in == {1}
    assert summary.publisher_purposes_consented == {1, 2}
    assert summary.publisher_purposes_legitimate_interest == {8}
    assert summary.custom_purposes_consented == {2}
    assert summary.custom_purposes_legitimate_interest == {3}


# --------------------------------------------------------------------------- vendor encoding


def _section_bits(text: str) -> int:
    return len(base64url_to_bits(text.split(".")[1]))


def test_dense_vendors_use_bit_field_and_sparse_use_range() -> None:
    dense = tcf.encode(_model(vendors_disclosed=tuple(range(1, 200, 2))))
    sparse = tcf.encode(_model(vendors_disclosed=(5, 900, 1500)))
    dense_bits = base64url_to_bits(dense.split(".")[1])
    sparse_bits = base64url_to_bits(sparse.split(".")[1])
    assert dense_bits[19] == "0"  # IsRangeEncoding after SegmentType(3) + MaxVendorId(16)
    assert sparse_bits[19] == "1"
    assert len(sparse) < len(
        tcf.encode(
            _model(vendors_disclosed=(5, 900, 1500)), vendor_encoding=VendorEncoding.BIT_FIELD
        )
    )


def test_forced_encodings_decode_identically() -> None:
    model = _model(vendor_consents=(1, 2, 3, 50, 51, 52, 700), vendors_disclosed=range(1, 800))
    for encoding in VendorEncoding:
        assert tcf.decode(tcf.encode(model, vendor_encoding=encoding)) == model


def test_empty_vendor_sections() -> None:
    model = _model(vendor_consents=(), vendor_legitimate_interests=(), vendors_disclosed=())
    for encoding in VendorEncoding:
        assert tcf.decode(tcf.encode(model, vendor_encoding=encoding)) == model


# --------------------------------------------------------------------------- properties


def _id_sets(max_id: int, max_size: int) -> st.SearchStrategy[tuple[int, ...]]:
    return st.frozensets(st.integers(1, max_id), max_size=max_size).map(lambda s: tuple(sorted(s)))


_vendor_ids = st.one_of(
    _id_sets(60, 60),  # dense, small: bit field territory
    _id_sets(3000, 12),  # sparse: range territory
    st.lists(st.tuples(st.integers(1, 2000), st.integers(0, 120)), max_size=6).map(
        lambda runs: tuple(
            sorted({v for start, length in runs for v in range(start, start + length + 1)})
        )
    ),
)
_timestamps = st.integers(0, (1 << 36) - 1).map(
    lambda ds: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=100 * ds)
)
_letters = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=2)


@st.composite
def _restrictions(draw: st.DrawFn, strict: bool) -> tuple[PublisherRestriction, ...]:
    purposes = draw(st.frozensets(st.integers(1, 24 if strict else 63), max_size=4))
    out = []
    for purpose in sorted(purposes):
        allowed = [RestrictionType.NOT_ALLOWED, RestrictionType.REQUIRE_CONSENT]
        if not strict:
            allowed += [RestrictionType.REQUIRE_LEGITIMATE_INTEREST, RestrictionType.UNDEFINED]
        elif purpose not in tcf.LI_FORBIDDEN_PURPOSES:
            allowed.append(RestrictionType.REQUIRE_LEGITIMATE_INTEREST)
        out.append(PublisherRestriction(purpose, draw(st.sampled_from(allowed)), draw(_vendor_ids)))
    return tuple(out)


@st.composite
def models(draw: st.DrawFn, strict: bool = True) -> TCModel:
    custom = draw(st.integers(0, 63))
    li_purposes = _id_sets(24, 24)
    if strict:
        li_purposes = li_purposes.map(
            lambda ids: tuple(i for i in ids if i not in tcf.LI_FORBIDDEN_PURPOSES)
        )
    return TCModel(
        created=draw(_timestamps),
        last_updated=draw(_timestamps),
        cmp_id=draw(st.integers(0, 4095)),
        cmp_version=draw(st.integers(0, 4095)),
        consent_screen=draw(st.integers(0, 63)),
        consent_language=draw(_letters),
        vendor_list_version=draw(st.integers(0, 4095)),
        policy_version=draw(st.integers(4, 63) if strict else st.integers(0, 63)),
        is_service_specific=True if strict else draw(st.booleans()),
        use_non_standard_texts=draw(st.booleans()),
        special_feature_opt_ins=draw(_id_sets(12, 12)),
        purpose_consents=draw(_id_sets(24, 24)),
        purpose_legitimate_interests=draw(li_purposes),
        purpose_one_treatment=draw(st.booleans()),
        publisher_country_code=draw(_letters),
        vendor_consents=draw(_vendor_ids),
        vendor_legitimate_interests=draw(_vendor_ids),
        publisher_restrictions=draw(_restrictions(strict)),
        vendors_disclosed=draw(_vendor_ids),
        publisher_consents=draw(_id_sets(24, 24)),
        publisher_legitimate_interests=draw(_id_sets(24, 24)),
        num_custom_purposes=custom,
        publisher_custom_consents=draw(_id_sets(custom, custom)) if custom else (),
        publisher_custom_legitimate_interests=draw(_id_sets(custom, custom)) if custom else (),
    )


@given(models())
@settings(max_examples=200)
def test_property_round_trip(model: TCModel) -> None:
    assert tcf.decode(tcf.encode(model)) == model


@given(models(strict=False))
def test_property_round_trip_lenient(model: TCModel) -> None:
    assert tcf.decode(tcf.encode(model, strict=False), strict=False) == model


@given(models())
def test_property_dict_round_trip(model: TCModel) -> None:
    assert TCModel.from_dict(json.loads(json.dumps(model.to_dict()))) == model


@given(models())
def test_property_auto_encoding_is_never_longer(model: TCModel) -> None:
    auto = tcf.encode(model)
    for forced in (VendorEncoding.BIT_FIELD, VendorEncoding.RANGE):
        assert len(auto) <= len(tcf.encode(model, vendor_encoding=forced))


@given(_vendor_ids)
def test_property_vendor_section_picks_the_shorter_bits(ids: tuple[int, ...]) -> None:
    model = _model(vendors_disclosed=ids)
    lengths = {
        encoding: len(tcf._encode_disclosed(model, encoding))  # bit length before padding
        for encoding in VendorEncoding
    }
    assert lengths[VendorEncoding.AUTO] == min(lengths.values())
    decoded = tcf.decode(tcf.encode(model))
    assert decoded.vendors_disclosed == ids


# --------------------------------------------------------------------------- GVL


def _gvl_stub() -> dict[str, Any]:
    purpose = {"name": "P", "description": "d", "illustrations": []}
    return {
        "gvlSpecificationVersion": 3,
        "vendorListVersion": 150,
        "tcfPolicyVersion": 5,
        "lastUpdated": "2026-01-15T16:00:00Z",
        "purposes": {str(i): {"id": i, **purpose} for i in range(1, 12)},
        "specialPurposes": {"1": {"id": 1, **purpose}},
        "features": {"1": {"id": 1, **purpose}},
        "specialFeatures": {"1": {"id": 1, **purpose}, "2": {"id": 2, **purpose}},
        "stacks": {
            "1": {
                "id": 1,
                "name": "S",
                "description": "",
                "purposes": [2, 7],
                "specialFeatures": [],
            }
        },
        "vendors": {
            "2": {
                "id": 2,
                "name": "Two",
                "purposes": [1, 3],
                "legIntPurposes": [2, 7],
                "specialPurposes": [1],
                "features": [],
                "specialFeatures": [1],
                "flexiblePurposes": [2],
                "usesCookies": True,
                "cookieMaxAgeSeconds": 86400,
                "usesNonCookieAccess": False,
            },
            "10": {"id": 10, "name": "Ten", "purposes": [1], "legIntPurposes": []},
            "11": {
                "id": 11,
                "name": "Gone",
                "purposes": [1],
                "deletedDate": "2025-01-01T00:00:00Z",
            },
        },
        "dataCategories": {"1": {"id": 1, "name": "IP"}},
    }


def test_gvl_from_dict_and_file(tmp_path: Path) -> None:
    path = tmp_path / "vendor-list.json"
    path.write_text(json.dumps(_gvl_stub()), encoding="utf-8")
    for gvl in (gvl_mod.from_dict(_gvl_stub()), gvl_mod.load(path), gvl_mod.load(str(path))):
        assert gvl.vendor_list_version == 150
        assert gvl.tcf_policy_version == 5
        assert sorted(gvl.purposes) == list(range(1, 12))
        assert sorted(gvl.special_features) == [1, 2]
        assert gvl.stacks[1].purposes == {2, 7}
        vendor = gvl.vendors[2]
        assert vendor.purposes == {1, 3}
        assert vendor.leg_int_purposes == {2, 7}
        assert vendor.flexible_purposes == {2}
        assert vendor.cookie_max_age_seconds == 86400
        assert gvl.active_vendor_ids() == {2, 10}
        assert gvl.vendors[11].is_active(datetime(2024, 1, 1, tzinfo=UTC))
        assert gvl.last_updated == datetime(2026, 1, 15, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("vendorListVersion"), "missing required field 'vendorListVersion'"),
        (lambda d: d.update(tcfPolicyVersion="5"), "tcfPolicyVersion: expected an integer"),
        (lambda d: d["vendors"].update({"3": {"id": 4, "name": "x"}}), "key does not match id 4"),
        (
            lambda d: d["vendors"]["2"].update(purposes=[2]),
            r"purposes \[2\] are declared under both",
        ),
        (lambda d: d["vendors"]["10"].update(purposes="1"), "expected a list of ids"),
        (lambda d: d["purposes"]["1"].pop("name"), "missing required field 'name'"),
        (lambda d: d.update(vendors=[]), "expected an object keyed by id"),
        (lambda d: d["vendors"]["10"].update(deletedDate="yesterday"), "not an ISO 8601"),
    ],
)
def test_gvl_errors(mutate: Any, message: str) -> None:
    data = _gvl_stub()
    mutate(data)
    with pytest.raises(gvl_mod.GVLError, match=message):
        gvl_mod.from_dict(data)


def test_gvl_bad_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(gvl_mod.GVLError, match="not valid JSON"):
        gvl_mod.load(path)
    with pytest.raises(gvl_mod.GVLError, match="must be a JSON object"):
        gvl_mod.from_dict([])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- package boundary


def test_signals_imports_only_stdlib_and_itself() -> None:
    """signals/ must stay a pure codec package: stdlib plus its own modules, nothing else."""
    import ast
    import sys

    package = Path(tcf.__file__).resolve().parent
    offenders = []
    for source in sorted(package.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else ["consentry.signals"]
            for name in names:
                top = name.split(".")[0]
                allowed = top in sys.stdlib_module_names or top == "__future__"
                if not allowed and not (
                    name == "consentry.signals" or name.startswith("consentry.signals.")
                ):
                    offenders.append(f"{source.name}: {name}")
    assert not offenders


def test_publisher_restrictions_cannot_expand_without_bound() -> None:
    """A short string must not expand into hundreds of millions of vendor ids (a DoS): each
    restriction below costs 53 bits and names 60,000 vendors."""
    every_vendor = range(1, 60_001)
    restrictions = tuple(
        PublisherRestriction(purpose, RestrictionType.REQUIRE_CONSENT, every_vendor)  # type: ignore[arg-type]
        for purpose in (2, 3, 4, 7)
    )
    text = tcf.encode(_model(publisher_restrictions=restrictions), strict=False)
    assert len(text) < 200
    with pytest.raises(TCStringError, match="more than 200000 vendor ids"):
        tcf.decode(text, strict=False)
    fits = tcf.decode(tcf.encode(_model(publisher_restrictions=restrictions[:3]), strict=False))
    assert [len(r.vendor_ids) for r in fits.publisher_restrictions] == [60_000] * 3
