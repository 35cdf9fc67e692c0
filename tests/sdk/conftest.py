"""A real uvicorn server on a free port for the SDK to talk to (no mocks)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from consentry.api.app import create_app
from consentry.config import Settings
from consentry.keys import create_key
from consentry.services import Services
from consentry.storage import open_store
from consentry.storage.base import Role


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    key: str
    services: Services
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def start_server(services: Services, port: int | None = None) -> LiveServer:
    port = port or free_port()
    app = create_app(services.settings, services)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,  # long polls in flight are not waited for
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    key = create_key(services.store, "default", Role.ADMIN).key
    return LiveServer(f"http://127.0.0.1:{port}", key, services, server, thread)


@pytest.fixture
def live(tmp_path: Path) -> Iterator[LiveServer]:
    """uvicorn serving Consentry on SQLite, with purposes email, analytics, ads (opt-out)."""
    url = f"sqlite:///{tmp_path / 'live.db'}"
    store = open_store(url)
    store.migrate()
    store.ensure_tenant("default")
    services = Services.build(Settings(database_url=url, min_token_wait_ms=200), store)
    running = start_server(services)
    import httpx

    headers = {"Authorization": f"Bearer {running.key}"}
    for body in (
        {"id": "email", "name": "Email", "legal_basis": "consent"},
        {"id": "analytics", "name": "Analytics", "legal_basis": "consent"},
        {
            "id": "ads",
            "name": "Ads",
            "legal_basis": "consent",
            "opt_out_category": "targeted_advertising",
        },
    ):
        httpx.post(f"{running.url}/v1/purposes", json=body, headers=headers).raise_for_status()
    try:
        yield running
    finally:
        running.stop()
        services.close()
