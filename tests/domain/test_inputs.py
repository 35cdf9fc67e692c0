"""The input rules (domain/inputs.py), as properties: what is accepted is exactly what the
rules in docs/model.md say, and the fast subject check agrees with the explained one."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.errors import ValidationError
from consentry.domain.events import format_time
from consentry.domain.inputs import (
    EARLIEST_TIME,
    MAX_STORED_INT,
    check_int,
    check_jurisdiction,
    check_subject,
    check_text,
    check_time,
    is_valid_subject,
    jurisdiction_code,
    parse_timestamp,
    subject_problem,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
ALLOWED_CATEGORIES = set("LMNPS")


def follows_the_subject_policy(value: str) -> bool:
    """docs/model.md, Subjects, written out independently of the implementation."""
    return (
        1 <= len(value) <= 256
        and not value.startswith(" ")
        and not value.endswith(" ")
        and all(c == " " or unicodedata.category(c)[0] in ALLOWED_CATEGORIES for c in value)
        and unicodedata.normalize("NFC", value) == value
    )


@given(st.text(max_size=300))
def test_subject_rule_accepts_exactly_the_documented_policy(value: str) -> None:
    expected = follows_the_subject_policy(value)
    assert is_valid_subject(value) is expected
    assert (subject_problem(value) is None) is expected
    if expected:
        assert check_subject(value) == value
    else:
        with pytest.raises(ValidationError):
            check_subject(value)


@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=127), max_size=40))
def test_the_ascii_fast_path_agrees_with_the_explained_rule(value: str) -> None:
    assert is_valid_subject(value) is (subject_problem(value) is None)


def test_subject_examples() -> None:
    for good in ("u-123", "crm 7", "\u00e9l\u00e8ve", "\u5c71\u7530", "a+b@example.com", "x" * 256):
        assert check_subject(good) == good
    for bad in ("", " u", "u ", "u\t1", "u\x00", "e\u0301", "a\u200bb", "a\u00a0b", "x" * 257):
        with pytest.raises(ValidationError):
            check_subject(bad)


@given(st.text(max_size=200), st.booleans())
def test_text_rule_refuses_exactly_controls_and_surrogates(value: str, multiline: bool) -> None:
    allowed = {"\t", "\n", "\r"} if multiline else set()
    bad = any((unicodedata.category(c) in ("Cc", "Cs")) and c not in allowed for c in value)
    if bad:
        with pytest.raises(ValidationError, match="U\\+"):
            check_text("field", value, multiline=multiline)
    else:
        assert check_text("field", value, multiline=multiline) == value
        value.encode("utf-8")  # storable by every backend


offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timezone(timedelta(minutes=m)))


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2), max_value=datetime(9998, 12, 31), timezones=offsets
    )
)
def test_rfc3339_round_trips(moment: datetime) -> None:
    text = moment.isoformat()
    assert parse_timestamp("t", text) == moment
    assert parse_timestamp("t", format_time(moment)) == moment


@pytest.mark.parametrize(
    "value",
    [
        0,
        1.5,
        True,
        None,
        "0",
        "1700000000",
        "2026-01-01",
        "2026-01-01T00:00:00",
        "2026-01-01T00:00:00+0100",
        "20260101T000000Z",
        "2026-W01-1T00:00:00Z",
        " 2026-01-01T00:00:00Z",
        "2026-01-01T00:00:00Z\n",
        "2026-13-01T00:00:00Z",
        "2026-01-01T24:00:00Z",
    ],
)
def test_only_rfc3339_strings_are_times(value: object) -> None:
    with pytest.raises(ValidationError):
        parse_timestamp("occurred_at", value)


def test_time_range() -> None:
    skew = 300
    for ok in (EARLIEST_TIME, NOW, NOW + timedelta(seconds=skew)):
        assert check_time("t", ok, now=NOW, skew_seconds=skew) == ok
    year_zero = parse_timestamp("t", "0001-01-01T00:00:00+01:00")
    for bad in (
        year_zero,
        EARLIEST_TIME - timedelta(microseconds=1),
        parse_timestamp("t", "1970-01-01T00:30:00+01:00"),
        NOW + timedelta(seconds=skew, microseconds=1),
        parse_timestamp("t", "9999-12-31T23:59:59-01:00"),
    ):
        with pytest.raises(ValidationError):
            check_time("t", bad, now=NOW, skew_seconds=skew)


@given(st.text(max_size=10))
def test_jurisdictions_are_ascii_codes_or_nothing(value: str) -> None:
    code = jurisdiction_code(value)
    if code is not None:
        assert code.isascii() and value.isascii()
        assert check_jurisdiction(value) == code


def test_jurisdiction_examples() -> None:
    for raw, code in (("de", "DE"), ("US-CA", "US-CA"), ("us_ca", "US-CA"), ("EEA", "EEA")):
        assert jurisdiction_code(raw) == code
    for bad in ("D\u0415", "\uff24\uff25", "\ufb00", "DE\n", "D", "DEUT", "US-CALI", "1A", ""):
        assert jurisdiction_code(bad) is None, bad


def test_integers_every_column_holds() -> None:
    assert check_int("v", MAX_STORED_INT, low=1) == MAX_STORED_INT
    for bad in (0, MAX_STORED_INT + 1, 2**63, True):
        with pytest.raises(ValidationError):
            check_int("v", bad, low=1)  # type: ignore[arg-type]
