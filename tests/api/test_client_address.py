"""Who is asking (api/client_address.py): X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

from typing import Any

import pytest

from consentry.api.client_address import client_address, parse_address


def scope(peer: str | None, *forwarded: str) -> dict[str, Any]:
    headers = [(b"x-forwarded-for", f.encode()) for f in forwarded]
    return {"client": (peer, 1234) if peer else None, "headers": headers}


@pytest.mark.parametrize(
    ("peer", "forwarded", "trusted", "client"),
    [
        ("198.51.100.1", ["203.0.113.9"], [], "198.51.100.1"),  # never believed by default
        ("198.51.100.1", ["203.0.113.9"], ["10.0.0.0/8"], "198.51.100.1"),  # peer not a proxy
        ("10.0.0.1", ["203.0.113.9"], ["10.0.0.0/8"], "203.0.113.9"),
        ("10.0.0.1", ["1.1.1.1, 203.0.113.9, 10.0.0.2"], ["10.0.0.0/8"], "203.0.113.9"),
        ("10.0.0.1", ["1.1.1.1", "203.0.113.9"], ["10.0.0.0/8"], "203.0.113.9"),  # two headers
        ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], ["10.0.0.0/8"], "10.0.0.3"),  # all trusted
        ("10.0.0.1", ["1.1.1.1, garbage"], ["10.0.0.0/8"], "10.0.0.1"),  # garbled: stop there
        ("10.0.0.1", [], ["10.0.0.0/8"], "10.0.0.1"),
        ("::ffff:10.0.0.1", ["[2001:db8::7]:443"], ["10.0.0.1"], "2001:db8::7"),
        ("10.0.0.1", ["203.0.113.9:5555"], ["10.0.0.1/32"], "203.0.113.9"),
        ("testclient", ["203.0.113.9"], ["10.0.0.0/8"], None),
    ],
)
def test_client_address(
    peer: str, forwarded: list[str], trusted: list[str], client: str | None
) -> None:
    found = client_address(scope(peer, *forwarded), trusted)
    assert (str(found) if found else None) == client


def test_parse_address() -> None:
    assert str(parse_address(" 192.0.2.1 ")) == "192.0.2.1"
    assert str(parse_address("[::1]")) == "::1"
    assert parse_address("unknown") is None and parse_address("[::1") is None
