"""Who is asking: the client's IP address, believing X-Forwarded-For only from trusted proxies.

One definition, used by the rate limits (docs/collection.md#limits) and by the evidence a choice
is recorded with. By default (`CONSENTRY_TRUSTED_PROXIES` empty) the header is never read: anyone
can write it, so believing it would let a client pick its own address, escape its limit and
forge the evidence. Behind a proxy, list the proxy's addresses: the header is then read from the
right, skipping trusted hops, and the first address that is not a trusted proxy is the client.
(`consentry serve` hands the same list to uvicorn, which then also takes the scheme from
X-Forwarded-Proto, and never its default of trusting 127.0.0.1: this setting alone decides.)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from functools import lru_cache

from starlette.types import Scope

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def _networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(t, strict=False) for t in trusted)


def parse_address(text: str) -> Address | None:
    """An address as proxies write it: bare, `[v6]`, `[v6]:port` or `v4:port`; None if not one."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def client_address(scope: Scope, trusted: Sequence[str]) -> Address | None:
    """The client's address; None when the peer's is unknown (a test client, a Unix socket)."""
    peer = scope.get("client")
    address = parse_address(str(peer[0])) if peer else None
    networks = _networks(tuple(trusted))
    if address is None or not networks or not _is_trusted(address, networks):
        return address
    hops: list[str] = []
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            hops.extend(value.decode("latin-1").split(","))
    for hop in reversed(hops):
        found = parse_address(hop)
        if found is None:
            return address  # a garbled hop: believe no further than the last trusted proxy
        address = found
        if not _is_trusted(address, networks):
            return address
    return address


def _is_trusted(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == n.version and address in n for n in networks)
