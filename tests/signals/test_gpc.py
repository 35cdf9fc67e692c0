"""Global Privacy Control: the Sec-GPC header rule and the gpc.json support resource."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from consentry.signals.gpc import (
    HEADER_NAME,
    WELL_KNOWN_PATH,
    GPCResourceError,
    GPCSupport,
    parse_gpc_json,
    sec_gpc_opt_out,
)


def test_constants() -> None:
    assert HEADER_NAME == "Sec-GPC"
    assert WELL_KNOWN_PATH == "/.well-known/gpc.json"


@pytest.mark.parametrize(
    "value",
    ["1", b"1", " 1", "1\t", ["1"], ["0", "1"], ("junk", b"1"), "1, 1", "0,1"],
)
def test_opt_out_values(value: str | bytes | list[str] | tuple[str, bytes]) -> None:
    assert sec_gpc_opt_out(value) is True


@pytest.mark.parametrize(
    "value",
    [None, "", "0", "true", "True", "yes", "01", "1.0", "11", "1;q=1", "\u0661", [], ["0", "2"]],
)
def test_everything_else_is_ignored(value: str | list[str] | None) -> None:
    assert sec_gpc_opt_out(value) is False


def test_spec_example_resource() -> None:
    support = parse_gpc_json('{"gpc": true, "lastUpdate": "2025-04-15"}')
    assert support == GPCSupport(gpc=True, last_update=date(2025, 4, 15))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"gpc": False}, GPCSupport(gpc=False)),
        ({"gpc": "true"}, GPCSupport(gpc=None)),  # any non-boolean value means "unknown"
        ({"gpc": 1}, GPCSupport(gpc=None)),
        ({}, GPCSupport(gpc=None)),
        ({"gpc": True, "extra": [1, 2]}, GPCSupport(gpc=True)),
        (
            {"gpc": True, "lastUpdate": "2025-04-15T10:20:30Z"},
            GPCSupport(gpc=True, last_update=datetime(2025, 4, 15, 10, 20, 30, tzinfo=UTC)),
        ),
        (
            {"gpc": True, "lastUpdate": "2025-04-15T10:20:30.5+02:00"},
            GPCSupport(
                gpc=True,
                last_update=datetime(
                    2025, 4, 15, 10, 20, 30, 500000, tzinfo=timezone(timedelta(hours=2))
                ),
            ),
        ),
        ({"gpc": True, "lastUpdate": "15/04/2025"}, GPCSupport(gpc=True)),
        ({"gpc": True, "lastUpdate": "2025-02-30"}, GPCSupport(gpc=True)),
        ({"gpc": True, "lastUpdate": "2025-04-15T10:20:30"}, GPCSupport(gpc=True)),  # no offset
        ({"gpc": True, "lastUpdate": 20250415}, GPCSupport(gpc=True)),
    ],
)
def test_resource_members(body: dict[str, object], expected: GPCSupport) -> None:
    assert parse_gpc_json(body) == expected
    assert parse_gpc_json(json.dumps(body)) == expected
    assert parse_gpc_json(json.dumps(body).encode()) == expected


@pytest.mark.parametrize("body", ["[true]", "true", "null", "{not json", b"\xff\xfe{"])
def test_resource_must_be_a_json_object(body: str | bytes) -> None:
    with pytest.raises(GPCResourceError):
        parse_gpc_json(body)


def test_serving_our_own_resource() -> None:
    support = GPCSupport(gpc=True, last_update=date(2025, 4, 15))
    assert json.loads(support.to_json()) == {"gpc": True, "lastUpdate": "2025-04-15"}
    assert parse_gpc_json(support.to_json()) == support
    assert json.loads(GPCSupport(gpc=False).to_json()) == {"gpc": False}
