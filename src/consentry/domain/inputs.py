"""What the system of record accepts as input: one rule per kind of value, for every channel.

A consent log keeps what it is given forever (events cannot be deleted), so a value that one
backend stores and another refuses, or that is stored but cannot be read back, breaks the
installation for good: a NUL character is a 500 on PostgreSQL, a year-1 time with a positive
offset becomes a BC timestamp that no reader can parse, a notice version of 2^31 overflows an
INTEGER column. These functions decide, in one place and before anything is written, what is
accepted; the API's request schemas, the recorder, the catalogue, the CLI, the commands topic,
the banner and the preference center all call them, so every channel refuses the same inputs
with the same words. The rules are written out for people in docs/model.md ("Input rules").
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime, timedelta

from consentry.domain.errors import ValidationError
from consentry.domain.regimes import normalize_jurisdiction

#: The earliest time accepted anywhere (occurred_at, published_at, as_of, known_at).
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
#: The largest integer any write stores: PostgreSQL's INTEGER, the narrowest column of both
#: backends, so that one rule holds on SQLite and PostgreSQL alike.
MAX_STORED_INT = 2**31 - 1
MAX_SUBJECT_LENGTH = 256

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})", re.ASCII
)
# C0 and C1 control characters, DEL, and lone surrogates (which no UTF-8 database can store).
_NOT_IN_A_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# The same, but a text of several lines keeps its tabs and line breaks.
_NOT_IN_A_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_JURISDICTION = re.compile(r"[A-Z]{2,3}(?:-[A-Z0-9]{1,3})?", re.ASCII)
_TENANT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", re.ASCII)
# Unicode general categories a subject may use besides the space: letters, marks, numbers,
# punctuation, symbols. Not: controls (Cc), format characters such as zero-width joiners and
# bidirectional overrides (Cf), surrogates (Cs), private use (Co), unassigned (Cn), and
# separators other than U+0020 (Zs, Zl, Zp).
_SUBJECT_CATEGORIES = frozenset("LMNPS")


# Times -----------------------------------------------------------------------------------------
def parse_timestamp(field: str, value: object) -> datetime:
    """An RFC 3339 date-time string with its offset, e.g. 2026-03-04T05:06:07Z.

    Only strings: a number (`"occurred_at": 0`) is refused rather than read as a Unix time, and
    the ISO 8601 variants Python would also read (no offset, week dates, basic format) are
    refused, so that every channel reads a time the same way.
    """
    if not isinstance(value, str):
        raise ValidationError(
            f"{field} must be an RFC 3339 string such as 2026-03-04T05:06:07Z, not"
            f" {type(value).__name__}"
        )
    if not _RFC3339.fullmatch(value):
        raise ValidationError(
            f"{field} {value[:64]!r} is not an RFC 3339 time with an offset, such as"
            " 2026-03-04T05:06:07Z or 2026-03-04T07:06:07+02:00"
        )
    text = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    try:
        return datetime.fromisoformat(text[:10] + "T" + text[11:])
    except ValueError as exc:
        raise ValidationError(f"{field} {value!r} is not a valid time: {exc}") from exc


def check_time(field: str, value: datetime, *, now: datetime, skew_seconds: int) -> datetime:
    """`value` unless it lies before 1970-01-01T00:00:00Z or after `now` + `skew_seconds`.

    Both ends are compared in UTC, offsets applied: "0001-01-01T00:00:00+01:00" is a time of the
    year 0, which PostgreSQL would store as BC and no reader could parse back.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{field} needs a time zone offset, e.g. Z or +02:00")
    latest = now + timedelta(seconds=skew_seconds)
    if value < EARLIEST_TIME:
        raise ValidationError(
            f"{field} {_show(value)} is before 1970-01-01T00:00:00Z, the earliest time accepted"
        )
    if value > latest:
        raise ValidationError(
            f"{field} {_show(value)} is more than {skew_seconds} s in the future (now is"
            f" {_show(now)}); send the time with its time zone"
        )
    return value


def _show(value: datetime) -> str:
    try:
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    except OverflowError:
        return value.isoformat()


# Integers --------------------------------------------------------------------------------------
def check_int(field: str, value: int, *, low: int = 0, high: int = MAX_STORED_INT) -> int:
    """`value` unless it is outside [low, high]; `high` defaults to what every column holds."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field} must be an integer")
    if not low <= value <= high:
        raise ValidationError(f"{field} must be between {low} and {high}, not {value}")
    return value


# Text ------------------------------------------------------------------------------------------
def check_text(
    field: str, value: str, *, multiline: bool = False, max_length: int | None = None
) -> str:
    """`value` unless it holds a control character or a lone surrogate.

    A one-line value (a name, a user agent, a label, a raw signal) refuses every C0 and C1
    control character, DEL included; a text of several lines (a notice, a description) keeps
    tab, line feed and carriage return. NUL is refused everywhere: PostgreSQL cannot store it.
    """
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string")
    if max_length is not None and len(value) > max_length:
        raise ValidationError(f"{field} is longer than {max_length} characters")
    found = (_NOT_IN_A_TEXT if multiline else _NOT_IN_A_LINE).search(value)
    if found is not None:
        char = found.group()
        raise ValidationError(
            f"{field} contains the control character U+{ord(char):04X} at index"
            f" {found.start()}; {'only tab and line breaks are' if multiline else 'none is'}"
            " allowed"
        )
    return value


# Subjects --------------------------------------------------------------------------------------
def is_valid_subject(value: str) -> bool:
    """The subject rule as a yes/no, fast for the usual ASCII identifiers (decision hot path)."""
    if not 0 < len(value) <= MAX_SUBJECT_LENGTH or value[0] == " " or value[-1] == " ":
        return False
    if value.isascii():
        return value.isprintable()  # for ASCII: exactly U+0020..U+007E
    return subject_problem(value) is None


def subject_problem(value: str) -> str | None:
    """Why `value` is not a valid subject, or None when it is (docs/model.md, Subjects)."""
    if not value:
        return "subject must be a non-empty string"
    if len(value) > MAX_SUBJECT_LENGTH:
        return f"subject is longer than {MAX_SUBJECT_LENGTH} characters"
    if value[0] == " " or value[-1] == " ":
        return "subject must not start or end with a space"
    for index, char in enumerate(value):
        if char == " ":
            continue
        category = unicodedata.category(char)
        if category[0] not in _SUBJECT_CATEGORIES:
            return (
                f"subject contains U+{ord(char):04X} ({category}) at index {index}: a subject is"
                " letters, marks, numbers, punctuation, symbols and inner spaces"
            )
    if not unicodedata.is_normalized("NFC", value):
        return (
            "subject is not in Unicode normalization form NFC; normalize it (e.g."
            " unicodedata.normalize('NFC', s)) so that one person has one key"
        )
    return None


def check_subject(value: str, field: str = "subject") -> str:
    """`value` if it is a valid subject, else ValidationError saying why."""
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string")
    if is_valid_subject(value):
        return value
    problem = subject_problem(value) or "subject is not valid"
    raise ValidationError(problem if field == "subject" else f"{field}: {problem}")


# Codes and names -------------------------------------------------------------------------------
def jurisdiction_code(value: str) -> str | None:
    """The normalized ISO 3166 code (DE, US-CA, EU), or None when `value` is not one.

    ASCII only: a D followed by a Cyrillic IE (U+0415), or a full-width D E (U+FF24 U+FF25),
    looks like a country and is not one (and str.upper() turns the ligature U+FB00 into "FF").
    """
    if not (value.isascii() and value.isprintable()):
        return None
    code = normalize_jurisdiction(value)
    return code if _JURISDICTION.fullmatch(code) else None


def check_jurisdiction(value: str, field: str = "jurisdiction") -> str:
    code = jurisdiction_code(value) if isinstance(value, str) else None
    if code is None:
        raise ValidationError(
            f"{field} {str(value)[:16]!r} is not an ISO 3166 code in ASCII letters, such as DE,"
            " US-CA or EU"
        )
    return code


def check_tenant_name(value: str) -> str:
    """A tenant's name is also its banner's site id (a URL segment): the same rule for both."""
    if not isinstance(value, str) or not _TENANT.fullmatch(value):
        raise ValidationError(
            f"tenant name {str(value)[:70]!r} must be 1-64 ASCII letters, digits, '_', '.' or"
            " '-', starting with a letter or a digit"
        )
    return value
