"""A cached state is used only when it can be shown not older than the log (invariant 5).

The reported defect first, exactly as it happened (a real redis-server, hung with SIGSTOP), then
the property in general: many processes, restarts, and a Redis that loses invalidations or comes
back with old data, checked against the database after every step.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from consentry.api.app import create_app
from consentry.config import Settings
from consentry.decisions.service import DecisionService
from consentry.domain.events import Action, Source
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.keys import create_key
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.services import Services
from consentry.storage import SqlStore, open_store
from consentry.storage.base import Role
from tests.decisions.conftest import PrivateRedis

pytestmark = pytest.mark.redis


@pytest.fixture
def migrated(db_url: str) -> Iterator[SqlStore]:
    s = open_store(db_url)
    s.migrate()
    s.ensure_tenant("default")
    try:
        yield s
    finally:
        s.close()


def test_withdrawal_during_a_redis_hang_is_not_forgotten_by_a_restarted_server(
    db_url: str, migrated: SqlStore, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """grant, SIGSTOP redis, withdraw (acknowledged), restart the server, SIGCONT, decide."""
    settings = Settings(
        database_url=db_url,
        redis_url=private_redis.url,
        redis_timeout_ms=200,
        signing_keys_dir=tmp_path / "keys",
    )
    auth = {"Authorization": f"Bearer {create_key(migrated, 'default', Role.ADMIN).key}"}
    check = {"subject": "alice", "purpose": "email"}

    def consent(action: str) -> Any:
        body = {"subject": "alice", "events": [{"purpose": "email", "action": action}]}
        return http.post("/v1/consents", json=body, headers=auth)

    with TestClient(create_app(settings)) as http:
        purpose = {"id": "email", "name": "Email", "legal_basis": "consent"}
        assert http.post("/v1/purposes", json=purpose, headers=auth).status_code == 201
        assert consent("given").status_code == 201
        granted = http.get("/v1/decisions", params=check, headers=auth).json()
        assert granted["permitted"] and granted["reason"] == "granted"
        stale_key = [k for k in redis.Redis.from_url(private_redis.url).keys() if b"alice" in k]
        assert stale_key, "the grant was not cached in Redis: the test would prove nothing"

        private_redis.pause()
        withdrawn = consent("withdrawn")
        assert withdrawn.status_code == 201, withdrawn.text  # acknowledged
    # The server is gone (its lifespan closed its services), and whatever it kept in memory
    # with it: a new server starts on the same database and the same, still hung, Redis.
    restarted = create_app(settings)
    private_redis.resume()
    with TestClient(restarted) as http:
        answer = http.get("/v1/decisions", params=check, headers=auth).json()
        assert (answer["permitted"], answer["reason"]) == (False, "withdrawn"), answer
        batch = http.post("/v1/decisions", json={"checks": [check]}, headers=auth).json()
        assert batch["decisions"][0]["reason"] == "withdrawn"
