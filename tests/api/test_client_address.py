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


def test_serve_hands_uvicorn_the_same_trusted_proxies(tmp_path: Any) -> None:
    """Behind a trusted TLS proxy the scheme is https (Secure cookies); never by default."""
    import threading
    import time

    import httpx
    import uvicorn

    from consentry.api.app import create_app, served, uvicorn_options
    from consentry.bootstrap import prepare
    from consentry.config import Settings
    from consentry.services import Services
    from consentry.ui.banner import preference_link_token
    from tests.ui.conftest import _free_port

    assert uvicorn_options(Settings())["proxy_headers"] is False
    for trusted, secure in (([], False), (["127.0.0.0/8"], True)):
        settings = Settings(
            database_url=f"sqlite:///{tmp_path / f'{secure}.db'}",
            signing_keys_dir=tmp_path / "keys",
            trusted_proxies=trusted,
        )
        services = Services.build(settings)
        prepare(services.store, create_if_empty=True)
        options = {**uvicorn_options(settings), "log_config": None}
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(served(create_app(settings, services)), port=port, **options)
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.02)
        try:
            link = preference_link_token(services, "default", "s-1", 1)
            r = httpx.post(
                f"http://127.0.0.1:{port}/preferences/open",
                data={"t": link},
                headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.4"},
            )
            assert r.status_code == 303, r.text
            assert ("Secure" in r.headers["set-cookie"]) is secure, trusted
        finally:
            server.should_exit = True
            thread.join(timeout=10)
            services.close()
