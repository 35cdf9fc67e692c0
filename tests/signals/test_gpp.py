"""GPP codec: usnat vectors, spec examples, both padding forms, errors, properties (every
section against the library: test_gpp_vectors.py; fuzzing: test_gpp_fuzz.py)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.signals import gpp, tcf
from consentry.signals.bits import BitWriter, bits_to_base64url
from consentry.signals.gpp import GPPString, GPPStringError, Padding, UsNat, UspV1
from consentry.signals.gpp.encoding import write_fibonacci_range
from tests.signals.vectors_path import vectors_file

GPP_VECTORS: list[dict[str, Any]] = json.loads(vectors_file("gpp_usnat.json").read_text("utf-8"))
VECTOR_IDS = [v["gpp_string"] for v in GPP_VECTORS]

SPEC_FULL_EXAMPLE = "DBACNY~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN"
REFERENCE_USNAT = "DBABLA~CUQRAAAAAACA.YA"


def _minimal(text: str) -> str:
    """Strip the reference library's extra padding: what a spec-minimal encoder would emit."""
    return gpp.encode(gpp.decode(text, strict=False), strict=False, padding=Padding.MINIMAL)


# --------------------------------------------------------------------------- official vectors


def test_vectors_present() -> None:
    assert len(GPP_VECTORS) >= 10


@pytest.mark.parametrize("vector", GPP_VECTORS, ids=VECTOR_IDS)
def test_vector_decodes_to_every_expected_field(vector: dict[str, Any]) -> None:
    decoded = gpp.decode(vector["gpp_string"])
    expected = vector["expected"]
    assert list(decoded.section_ids) == expected["section_ids"]
    assert decoded.usnat is not None
    assert decoded.usnat.Version == 2
    for name, value in expected["usnat"].items():
        actual = getattr(decoded.usnat, name)
        assert (list(actual) if isinstance(actual, tuple) else actual) == value, name
    assert {k: decoded.usnat.to_dict()[k] for k in expected["usnat"]} == expected["usnat"]


@pytest.mark.parametrize("vector", GPP_VECTORS, ids=VECTOR_IDS)
def test_encoding_expected_fields_decodes_back(vector: dict[str, Any]) -> None:
    section = UsNat.from_dict(vector["expected"]["usnat"])
    for padding in Padding:
        encoded = gpp.encode(GPPString(usnat=section), padding=padding)
        decoded = gpp.decode(encoded)
        assert decoded.usnat == section
        assert list(decoded.section_ids) == vector["expected"]["section_ids"]
    # the reference padding reproduces the library's bytes exactly
    assert gpp.encode(GPPString(usnat=section)) == vector["gpp_string"]


@pytest.mark.parametrize("vector", GPP_VECTORS, ids=VECTOR_IDS)
def test_vector_without_padding_decodes_the_same(vector: dict[str, Any]) -> None:
    minimal = _minimal(vector["gpp_string"])
    assert minimal != vector["gpp_string"]
    assert minimal.startswith("DBABL~")
    assert gpp.decode(minimal) == gpp.decode(vector["gpp_string"])


# --------------------------------------------------------------------------- spec examples


@pytest.mark.parametrize(
    ("header", "ids"),
    [("DBABM", (2,)), ("DBACNY", (2, 6)), ("DBABjw", (5, 6)), ("DBABMA", (2,)), ("DBABLA", (7,))],
)
def test_spec_header_examples(header: str, ids: tuple[int, ...]) -> None:
    assert gpp.section_ids(header) == ids
    assert gpp.section_ids(header + "~anything~else") == ids


def test_spec_header_encoding() -> None:
    usp = UspV1.parse("1YNN")
    when = datetime(2026, 1, 1, tzinfo=UTC)
    other = GPPString(uspv1=usp, tcfcav1=gpp.TcfCaV1(Created=when, LastUpdated=when))
    assert gpp.encode(other, padding=Padding.MINIMAL).split("~")[0] == "DBABjw"


def test_spec_full_example() -> None:
    with pytest.raises(GPPStringError, match=r"tcfeuv2: .*policy_version is 2") as info:
        gpp.decode(SPEC_FULL_EXAMPLE)
    assert isinstance(info.value.__cause__, tcf.TCStringError)
    decoded = gpp.decode(SPEC_FULL_EXAMPLE, strict=False)
    assert decoded.section_ids == (2, 6)
    assert decoded.section_names() == ("tcfeuv2", "uspv1")
    assert decoded.uspv1 == UspV1(Notice="Y", OptOutSale="N", LspaCovered="N")
    assert str(decoded.uspv1) == "1YNN"
    assert decoded.tcfeuv2 is not None
    assert decoded.tcfeuv2 == tcf.decode(SPEC_FULL_EXAMPLE.split("~")[1], strict=False)
    assert decoded.tcfeuv2.cmp_id == 31
    assert gpp.encode(decoded, strict=False, padding=Padding.MINIMAL).startswith("DBACNY~")


def test_reference_library_usnat_example() -> None:
    section = gpp.decode(REFERENCE_USNAT).usnat
    assert section is not None
    assert section.SaleOptOut == 1
    assert section.TargetedAdvertisingOptOut == 1
    assert section.MspaCoveredTransaction == 2
    assert section.GpcSegmentIncluded
    assert section.Gpc is True
    assert gpp.encode(GPPString(usnat=section)) == REFERENCE_USNAT
    assert gpp.decode("DBABL~CUQRAAAAAACA.Y") == gpp.decode(REFERENCE_USNAT)


def test_tcf_section_passthrough() -> None:
    model = tcf.decode("CQeEcwAQeEcwAEsACBENCWFoALAAAEIAAAqIAFEBAAIgAAAA.IAFEBAAA.YAAAAAAAAAAA")
    text = gpp.encode(GPPString(tcfeuv2=model, uspv1=UspV1.parse("1NYN")))
    header, tcf_part, usp_part = text.split("~")
    assert header == "DBACNYA"
    assert tcf_part == tcf.encode(model)
    assert usp_part == "1NYN"
    assert gpp.decode(text).tcfeuv2 == model


# --------------------------------------------------------------------------- Fibonacci


@pytest.mark.parametrize(
    ("value", "code"),
    [(1, "11"), (2, "011"), (3, "0011"), (4, "1011"), (5, "00011"), (6, "10011"), (7, "01011")],
)
def test_fibonacci_spec_examples(value: int, code: str) -> None:
    assert gpp.fibonacci_encode(value) == code
    assert gpp.fibonacci_decode(code) == value


def test_fibonacci_range_spec_example() -> None:
    writer = BitWriter()
    write_fibonacci_range(writer, (3, 5, 6, 7, 8), "ids")
    assert writer.to_bits() == "000000000010" + "0" + "0011" + "1" + "011" + "0011"


@given(st.integers(1, 10**9))
def test_property_fibonacci_round_trip(value: int) -> None:
    code = gpp.fibonacci_encode(value)
    assert code.endswith("11") and "11" not in code[:-1]
    assert gpp.fibonacci_decode(code) == value


def test_fibonacci_errors() -> None:
    with pytest.raises(GPPStringError, match="positive"):
        gpp.fibonacci_encode(0)
    with pytest.raises(GPPStringError, match="not a Fibonacci code word"):
        gpp.fibonacci_decode("0110")


# --------------------------------------------------------------------------- usnat specifics


def test_usnat_version_1_round_trip() -> None:
    section = UsNat(
        Version=1,
        SaleOptOutNotice=1,
        SaleOptOut=1,
        SensitiveDataProcessing=(1, 2) * 6,
        KnownChildSensitiveDataConsents=(2, 1),
        MspaCoveredTransaction=1,
        Gpc=True,
    )
    text = gpp.encode(GPPString(usnat=section))
    assert gpp.decode(text).usnat == section
    assert gpp.decode_usnat(gpp.encode_usnat(section)) == section


def test_usnat_defaults_fill_lists_for_the_version() -> None:
    assert UsNat(MspaCoveredTransaction=2).SensitiveDataProcessing == (0,) * 16
    assert UsNat(Version=1, MspaCoveredTransaction=2).KnownChildSensitiveDataConsents == (0, 0)


def test_usnat_without_gpc_subsection() -> None:
    section = UsNat(MspaCoveredTransaction=1, GpcSegmentIncluded=False)
    body = gpp.encode_usnat(section)
    assert "." not in body
    assert gpp.decode_usnat(body) == section
    with pytest.raises(GPPStringError, match="Gpc is set but GpcSegmentIncluded is false"):
        gpp.encode_usnat(UsNat(MspaCoveredTransaction=1, GpcSegmentIncluded=False, Gpc=True))


def _usnat_bits(**values: int) -> str:
    """A hand-built usnat v2 core, to feed values our encoder refuses to write."""
    writer = BitWriter()
    writer.write_int(values.get("Version", 2), 6)
    for _ in range(9):
        writer.write_int(values.get("head", 0), 2)
    for _ in range(16 + 3):
        writer.write_int(0, 2)
    writer.write_int(0, 2)
    writer.write_int(values.get("covered", 1), 2)
    writer.write_int(0, 2)
    writer.write_int(0, 2)
    return bits_to_base64url(writer.to_bits(), 8)


def test_usnat_strict_value_rules() -> None:
    with pytest.raises(GPPStringError, match="SharingNotice=3"):
        gpp.decode_usnat(_usnat_bits(head=3))
    assert gpp.decode_usnat(_usnat_bits(head=3), strict=False).SaleOptOut == 3
    with pytest.raises(GPPStringError, match="MspaCoveredTransaction=0"):
        gpp.decode("DBABLA~" + _usnat_bits(covered=0))
    with pytest.raises(GPPStringError, match="MspaCoveredTransaction=0"):
        gpp.encode(GPPString(usnat=UsNat(MspaCoveredTransaction=0)))
    lenient = gpp.encode(GPPString(usnat=UsNat(MspaCoveredTransaction=0)), strict=False)
    assert gpp.decode(lenient, strict=False).usnat == UsNat(MspaCoveredTransaction=0)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: UsNat(Version=3, MspaCoveredTransaction=1), "unsupported section version 3"),
        (
            lambda: UsNat(MspaCoveredTransaction=1, SensitiveDataProcessing=(0,) * 12),
            "must have 16 entries",
        ),
        (lambda: UsNat.from_dict({"SaleOptout": 1, "MspaCoveredTransaction": 1}), "unknown field"),
        (lambda: UsNat.from_dict({"SaleOptOut": 1}), "missing required field.*MspaCovered"),
        (lambda: UspV1.parse("1YN"), "expected 4 characters"),
        (lambda: UspV1.parse("2YNN"), "unsupported version 2"),
        (lambda: UspV1.parse("1YXN"), "OptOutSale must be"),
    ],
)
def test_section_model_errors(build: Any, message: str) -> None:
    with pytest.raises(GPPStringError, match=message):
        build()


def test_usnat_value_too_wide() -> None:
    with pytest.raises(GPPStringError, match="does not fit in 2 bits"):
        gpp.encode_usnat(UsNat(MspaCoveredTransaction=1, SaleOptOut=4), strict=False)


def test_unknown_usnat_subsection() -> None:
    body = gpp.encode_usnat(UsNat(MspaCoveredTransaction=1)) + ".wA"  # sub-section type 3
    with pytest.raises(GPPStringError, match="unknown sub-section type 3"):
        gpp.decode_usnat(body)
    assert gpp.decode_usnat(body, strict=False).Gpc is False


# --------------------------------------------------------------------------- malformed strings


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty GPP string"),
        ("~CUQRAAAAAACA.YA", "empty GPP header"),
        ("CQeEcwAQeEcwAEsACBENCWFoALAAAEIAAAqIAFEBAAIgAAAA", "bare TC string"),
        ("DCABLA~CUQRAAAAAACA.YA", "unsupported GPP version 2"),
        ("DBABLA", "header lists 1 section"),
        ("DBABLA~CUQRAAAAAACA.YA~1YNN", "but 2 follow"),
        ("DBABLA~", "section 7 is empty"),
        ("DBABLA~CUQRAAAA+ACA.YA", "invalid character"),
        ("DBABLA~CUQRAA", "string too short"),
        ("DBABLA~CUQRAAAAAACA..YA", "empty sub-section"),
        ("DBAB", "header: string too short"),
        ("DBABLA~FUQRAAAAAACA.YA", "unsupported section version 5"),
    ],
)
def test_malformed_strings(text: str, message: str) -> None:
    with pytest.raises(GPPStringError, match=message):
        gpp.decode(text)


def test_unknown_sections_are_kept_verbatim_and_reported() -> None:
    original = GPPString(
        usnat=UsNat(MspaCoveredTransaction=1), unknown_sections=((40, "anything"), (4, "BAAA"))
    )
    text = gpp.encode(original)
    assert text.split("~")[1:] == [
        "BAAA",
        gpp.encode_usnat(UsNat(MspaCoveredTransaction=1)),
        "anything",
    ]
    decoded = gpp.decode(text)
    assert decoded == original
    assert decoded.section_ids == (4, 7, 40)
    assert decoded.unknown_section_ids == (4, 40)
    assert decoded.section_names() == ("signal integrity", "usnat", "40")


def test_gpp_model_errors() -> None:
    with pytest.raises(GPPStringError, match="at least one section"):
        gpp.encode(GPPString())
    with pytest.raises(GPPStringError, match="have their own attribute"):
        GPPString(unknown_sections=((7, "x"),))
    with pytest.raises(GPPStringError, match="repeats a section id"):
        GPPString(unknown_sections=((80, "x"), (80, "y")))
    with pytest.raises(GPPStringError, match="tcfeuv2: "):
        bad = tcf.TCModel(
            created=datetime(2026, 1, 1, tzinfo=UTC),
            last_updated=datetime(2026, 1, 1, tzinfo=UTC),
            cmp_id=1,
            cmp_version=1,
            vendor_list_version=1,
            policy_version=2,
        )
        gpp.encode(GPPString(tcfeuv2=bad))


# --------------------------------------------------------------------------- properties

_two_bits = st.integers(0, 2)


@st.composite
def usnat_sections(draw: st.DrawFn) -> UsNat:
    version = draw(st.sampled_from([1, 2]))
    categories, children = (12, 2) if version == 1 else (16, 3)
    include_gpc = draw(st.booleans())
    return UsNat(
        Version=version,
        SharingNotice=draw(_two_bits),
        SaleOptOutNotice=draw(_two_bits),
        SharingOptOutNotice=draw(_two_bits),
        TargetedAdvertisingOptOutNotice=draw(_two_bits),
        SensitiveDataProcessingOptOutNotice=draw(_two_bits),
        SensitiveDataLimitUseNotice=draw(_two_bits),
        SaleOptOut=draw(_two_bits),
        SharingOptOut=draw(_two_bits),
        TargetedAdvertisingOptOut=draw(_two_bits),
        SensitiveDataProcessing=tuple(
            draw(st.lists(_two_bits, min_size=categories, max_size=categories))
        ),
        KnownChildSensitiveDataConsents=tuple(
            draw(st.lists(_two_bits, min_size=children, max_size=children))
        ),
        PersonalDataConsents=draw(_two_bits),
        MspaCoveredTransaction=draw(st.sampled_from([1, 2])),
        MspaOptOutOptionMode=draw(_two_bits),
        MspaServiceProviderMode=draw(_two_bits),
        GpcSegmentIncluded=include_gpc,
        Gpc=draw(st.booleans()) if include_gpc else False,
    )


_usp = st.builds(
    UspV1,
    Notice=st.sampled_from("YN-"),
    OptOutSale=st.sampled_from("YN-"),
    LspaCovered=st.sampled_from("YN-"),
)
_others = st.dictionaries(
    st.integers(28, 60),
    st.text(alphabet="ABCDEFabcdef0123456789-_", min_size=1, max_size=12),
    max_size=4,
).map(lambda d: tuple(d.items()))


@given(st.none() | usnat_sections(), st.none() | _usp, _others, st.sampled_from(list(Padding)))
def test_property_round_trip(
    usnat: UsNat | None, usp: UspV1 | None, others: tuple[tuple[int, str], ...], padding: Padding
) -> None:
    model = GPPString(usnat=usnat, uspv1=usp, unknown_sections=others)
    if not model.section_ids:
        return
    assert gpp.decode(gpp.encode(model, padding=padding)) == model


@given(st.frozensets(st.integers(1, 300), min_size=1, max_size=40))
def test_property_header_ids_round_trip(ids: frozenset[int]) -> None:
    ids = frozenset(ids - set(gpp.SECTIONS_BY_ID) - {3})
    if not ids:
        return
    others = tuple((sid, "AA") for sid in sorted(ids))
    for padding in Padding:
        decoded = gpp.decode(gpp.encode(GPPString(unknown_sections=others), padding=padding))
        assert decoded.section_ids == tuple(sorted(ids))


def test_the_gpp_example_in_docs_runs() -> None:
    """docs/signals.md's GPP example is code, not prose: it must keep running."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "signals.md").read_text("utf-8")
    section = text[text.index("## GPP (`consentry.signals.gpp`)") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    exec(compile(block.group(1), "docs/signals.md", "exec"), {})
