"""Schemathesis against our own OpenAPI: whatever a client sends, never a 500, always the shape.

Property-based requests for every operation of the published schema, authenticated as an admin
on a catalogue with a few purposes, so that generated bodies reach the write and read paths.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from consentry.api.app import create_app
from consentry.config import Settings
from consentry.keys import create_key
from consentry.services import Services
from consentry.storage import open_store
from consentry.storage.base import Role


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    cfg = Settings(database_url=f"sqlite:///{folder / 'fuzz.db'}",
                   signing_keys_dir=folder / "keys", min_token_wait_ms=0)
    store = open_store(cfg.database_url)
    store.migrate()
    store.ensure_tenant("default")
    services = Services.build(cfg, store)
    key = create_key(store, "default", Role.ADMIN).key
    app = create_app(cfg, services)
    from fastapi.testclient import TestClient

    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {key}"}
        for pid, basis in [("email", "consent"), ("billing", "contract"), ("x", "consent")]:
            client.post("/v1/purposes", json={"id": pid, "name": pid, "legal_basis": basis},
                        headers=headers)
        yield app, key
    store.close()


@pytest.fixture(scope="module")
def api_schema(fuzz_app: tuple[Any, str]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app[0])


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_one_error_shape(case: Any, fuzz_app: tuple[Any, str]) -> None:
    _, key = fuzz_app
    if case.path.endswith("/stream"):
        pytest.skip("an endless event stream is exercised in test_changes")
    if case.query and "wait" in case.query:
        case.query["wait"] = 0
    response = case.call(headers={"Authorization": f"Bearer {key}"})
    assert response.status_code < 500, (case.method, case.path, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert body["error"]["status"] == response.status_code
        assert body["error"]["code"] and body["error"]["message"]


