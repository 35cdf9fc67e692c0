"""Fuzzing the GPP decoder: random strings, and single-character changes, truncations and
splices of the official library's strings. Whatever comes in, the decoder returns a model or
raises GPPStringError (a ValueError): no other exception escapes, in strict or lenient mode."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from consentry.signals import gpp
from consentry.signals.bits import ALPHABET
from consentry.signals.gpp.header import encode_header
from tests.signals.vectors_path import vectors_file

VECTORS: list[str] = [
    v["gpp_string"]
    for v in json.loads(vectors_file("gpp_sections.json").read_text("utf-8"))["vectors"]
]
_CHARS = ALPHABET + "~.=+/ 1YN-"


def _decodes_or_refuses(text: str) -> None:
    for strict in (True, False):
        try:
            decoded = gpp.decode(text, strict=strict)
        except gpp.GPPStringError:
            continue
        # What decodes can be written back (unknown sections verbatim).
        assert isinstance(decoded, gpp.GPPString)
        with contextlib.suppress(gpp.GPPStringError):
            gpp.encode(decoded, strict=False)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=_CHARS, max_size=120))
@example("DBABLA~CUQRAAAAAACA.YA")
@example("DB~~")
@example("D" + "_" * 60)
def test_random_strings(text: str) -> None:
    _decodes_or_refuses(text)


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet=ALPHABET + ".", min_size=1, max_size=80),
    st.lists(st.sampled_from(gpp.SECTIONS), min_size=1, max_size=3, unique=True),
)
def test_random_section_bodies_behind_a_valid_header(body: str, rows: list[Any]) -> None:
    ids = tuple(sorted(row.id for row in rows))
    header = encode_header(ids, gpp.Padding.REFERENCE)
    parts = [body[i :: len(ids)] or "A" for i in range(len(ids))]
    _decodes_or_refuses("~".join([header, *parts]))


@settings(max_examples=600, deadline=None)
@given(st.sampled_from(VECTORS), st.data())
def test_character_changes_of_library_strings(text: str, data: st.DataObject) -> None:
    changed = list(text)
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(changed) - 1))
        changed[index] = data.draw(st.sampled_from(_CHARS))
    _decodes_or_refuses("".join(changed))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VECTORS), st.data())
def test_truncations_and_splices_of_library_strings(text: str, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(text)))
    other = data.draw(st.sampled_from(VECTORS))
    _decodes_or_refuses(text[:cut])
    _decodes_or_refuses(text[:cut] + other[data.draw(st.integers(0, len(other))) :])
