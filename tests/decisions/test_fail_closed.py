"""Fail closed with the REAL database stopped: a throwaway PostgreSQL server of this test's own
(tests/decisions/conftest.py), never the shared one."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from consentry.api.app import create_app
from consentry.config import Settings
from consentry.domain.decide import Reason
from consentry.keys import create_key
from consentry.sdk import Client, ConsentryUnavailable
from consentry.services import Services
from consentry.storage import open_store
from consentry.storage.base import Role
from tests.decisions.conftest import ThrowawayPostgres
from tests.sdk.conftest import start_server

pytestmark = pytest.mark.postgres


def test_database_down_means_503_and_unavailable_then_recovery(
    throwaway_pg: ThrowawayPostgres,
) -> None:
    store = open_store(throwaway_pg.url)
    store.migrate()
    store.ensure_tenant("default")
    services = Services.build(Settings(database_url=throwaway_pg.url), store)
    key = create_key(store, "default", Role.ADMIN).key
    auth = {"Authorization": f"Bearer {key}"}
    live = start_server(services)
    try:
        with TestClient(create_app(services.settings, services)) as http:
            http.post(
                "/v1/purposes",
                json={"id": "email", "name": "E", "legal_basis": "consent"},
                headers=auth,
            )
            r = http.post(
                "/v1/consents",
                json={"subject": "s", "events": [{"purpose": "email", "action": "given"}]},
                headers=auth,
            )
            assert r.status_code == 201
            params = {"subject": "s", "purpose": "email"}
            assert http.get("/v1/decisions", params=params, headers=auth).json()["permitted"]

            throwaway_pg.stop()  # the real server, stopped

            # The server gives up on the database after its pool timeout (storage/postgres.py).
            response = http.get("/v1/decisions", params=params, headers=auth)
            assert response.status_code == 503, response.text
            assert response.json() == {
                "error": {
                    "status": 503,
                    "code": "unavailable",
                    "message": "the consent database is unavailable; retry shortly",
                }
            }
            assert response.headers["retry-after"] == "1"
            # The SDK: denied, reason unavailable (here its own 1 s timeout fires first)...
            with Client(live.url, key, retries=0, timeout=1) as client:
                d = client.check("s", "email")
                assert not d.permitted and d.reason is Reason.UNAVAILABLE
                many = client.check_many([("s", "email"), ("t", "email")])
                assert [x.reason for x in many] == [Reason.UNAVAILABLE] * 2
            # ...or, when asked to raise, the server's 503 as an exception.
            with Client(live.url, key, retries=0, timeout=15, raise_errors=True) as client:
                with pytest.raises(ConsentryUnavailable) as err:
                    client.check_many([("s", "email")])
                assert err.value.status == 503 and err.value.code == "unavailable"

            throwaway_pg.start()
            # Pooled connections that died with the old server fail a request or two (closed:
            # 503, never a guess), which purges the pool; then the restarted database answers.
            statuses = []
            for _ in range(20):
                ok = http.get("/v1/decisions", params=params, headers=auth)
                statuses.append(ok.status_code)
                if ok.status_code == 200:
                    break
                time.sleep(0.1)
            assert statuses[-1] == 200 and ok.json()["permitted"], statuses
            assert set(statuses) <= {200, 503}, statuses
    finally:
        live.stop()
        services.close()
