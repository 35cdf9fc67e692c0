"""Every GPP section against the official IAB library: strings @iabgpp/cmpapi encoded
(tests/signals/vectors/gpp_sections.json, made by tools/gpp-vectors/generate.mjs) decode to every
field the library set, and encoding those fields gives the library's string byte for byte.
Round trips for every section model with hypothesis."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.signals import gpp
from consentry.signals.gpp.tcfeu import CONSTANT_FIELDS
from tests.signals.gpp_strategies import gpp_strings, models_for
from tests.signals.vectors_path import vectors_file

DATA: dict[str, Any] = json.loads(vectors_file("gpp_sections.json").read_text("utf-8"))
VECTORS: list[dict[str, Any]] = DATA["vectors"]
IDS = [v["description"] for v in VECTORS]
# Fields the library shows that carry no value of their own (segment type constants).
CONSTANTS: dict[str, Any] = {
    "GpcSegmentType": 1,
    "PubPurposesSegmentType": 3,
    "DisclosedVendorsSegmentType": 1,
    **CONSTANT_FIELDS,
}


def _model(name: str, fields: dict[str, Any]) -> Any:
    row = gpp.SECTIONS_BY_NAME[name]
    return row.from_fields({k: v for k, v in fields.items() if k not in CONSTANTS})


def test_every_library_section_is_supported_and_has_vectors() -> None:
    assert DATA["library"] == "@iabgpp/cmpapi"
    assert DATA["library_version"] == "3.2.0"
    per_section = Counter(name for v in VECTORS for name in v["sections"])
    assert set(per_section) == set(gpp.SECTIONS_BY_NAME)
    assert len(gpp.SECTIONS) == 24
    assert min(per_section.values()) >= 20, per_section
    assert sum(len(v["sections"]) > 1 for v in VECTORS) >= 30


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_vector_decodes_to_every_field_the_library_set(vector: dict[str, Any]) -> None:
    decoded = gpp.decode(vector["gpp_string"])
    assert list(decoded.section_ids) == vector["section_ids"]
    assert decoded.unknown_sections == ()
    for name, expected in vector["sections"].items():
        row = gpp.SECTIONS_BY_NAME[name]
        view = row.fields(getattr(decoded, name))
        for field, value in expected.items():
            if field in CONSTANTS:
                assert value == CONSTANTS[field], field
            else:
                assert view[field] == value, f"{name}.{field}"
        assert set(view) <= set(expected), f"{name}: fields the library does not show"


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_encoding_the_fields_gives_the_library_string(vector: dict[str, Any]) -> None:
    models = {name: _model(name, fields) for name, fields in vector["sections"].items()}
    model = gpp.GPPString(**models)
    assert gpp.encode(model) == vector["gpp_string"]
    minimal = gpp.encode(model, padding=gpp.Padding.MINIMAL)
    assert gpp.decode(minimal) == gpp.decode(vector["gpp_string"])


@pytest.mark.parametrize("vector", VECTORS[::25], ids=IDS[::25])
def test_an_unknown_section_is_reported_and_the_rest_decoded(vector: dict[str, Any]) -> None:
    known = gpp.decode(vector["gpp_string"])
    with_unknown = gpp.GPPString(
        **{row.name: model for row, model in known.sections()},
        unknown_sections=((99, "BVVVVVVV.QA"),),
    )
    decoded = gpp.decode(gpp.encode(with_unknown))
    assert decoded.unknown_sections == ((99, "BVVVVVVV.QA"),)
    assert decoded.section_ids == (*known.section_ids, 99)
    for row, model in known.sections():
        assert getattr(decoded, row.name) == model


@pytest.mark.parametrize("row", gpp.SECTIONS, ids=[r.name for r in gpp.SECTIONS])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_property_each_section_round_trips(row: gpp.SectionType, data: st.DataObject) -> None:
    model = data.draw(models_for(row))
    for padding in gpp.Padding:
        body = gpp.encode_section(model, padding=padding)
        assert gpp.decode_section(row.id, body) == model
    assert row.from_fields(json.loads(json.dumps(row.fields(model)))) == model


@settings(max_examples=60, deadline=None)
@given(gpp_strings(), st.sampled_from(list(gpp.Padding)))
def test_property_whole_strings_round_trip(model: gpp.GPPString, padding: gpp.Padding) -> None:
    assert gpp.decode(gpp.encode(model, padding=padding)) == model
