"""Browser fixtures: the real server (uvicorn on a free 127.0.0.1 port) and headless Chromium.

Chromium is Debian's package (/usr/bin/chromium, installed by .ci/run), driven by Playwright for
Python with executable_path: nothing downloads a browser. Each test gets a fresh server database
and a fresh browser profile (--user-data-dir), so tests cannot leak cookies into each other.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from consentry.bootstrap import prepare
from consentry.config import Settings
from consentry.services import Services
from tests.conftest import service_missing

CHROMIUM = os.environ.get("CONSENTRY_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class LiveServer:
    url: str
    services: Services


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    import uvicorn

    from consentry.api.app import create_app

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'live.db'}",
        signing_keys_dir=tmp_path / "keys",
        demo=True,
    )
    services = Services.build(settings)
    prepare(services.store, create_if_empty=True)
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings, services), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", services)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        services.close()


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Any]:
    if not (Path(CHROMIUM).exists() and shutil.which(CHROMIUM)):
        service_missing("Chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        service_missing("Playwright", exc)
        raise
    with sync_playwright() as p:
        yield p


@pytest.fixture
def browser_context(playwright_driver: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh Chromium profile; tests set headers and init scripts on it."""
    profile = tmp_path / "chromium-profile"
    context = playwright_driver.chromium.launch_persistent_context(
        str(profile),
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": 1100, "height": 800},
        locale="en-GB",
    )
    try:
        yield context
    finally:
        context.close()
