"""A cached state is used only when it can be shown not older than the log (invariant 5).

The reported defect first, exactly as it happened (a real redis-server, hung with SIGSTOP), then
the property in general: many processes, restarts, and a Redis that loses invalidations or comes
back with old data, checked against the database after every step.
"""

from __future__ import annotations

import random
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


def test_withdrawal_during_a_redis_hang_is_not_forgotten_by_a_restarted_server(
    db_url: str, store: SqlStore, private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """grant, SIGSTOP redis, withdraw (acknowledged), restart the server, SIGCONT, decide."""
    settings = Settings(
        database_url=db_url,
        redis_url=private_redis.url,
        redis_timeout_ms=200,
        signing_keys_dir=tmp_path / "keys",
    )
    auth = {"Authorization": f"Bearer {create_key(store, 'default', Role.ADMIN).key}"}
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
        cached = [k for k in redis.Redis.from_url(private_redis.url).scan_iter() if b"alice" in k]
        assert cached, "the grant was not cached in Redis: the test would prove nothing"

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


# The property in general -------------------------------------------------------------------
SUBJECTS = ("s0", "s1", "s2", "s3")
ACTIONS = (Action.GIVEN, Action.WITHDRAWN, Action.REFUSED)


class World:
    """One database, one Redis, three server processes (each its own Services and store) that
    are restarted at random, and an oracle that reads the database alone."""

    PROCESS_SETTINGS: tuple[dict[str, Any], ...] = (
        {},  # the default: L1 and Redis
        {"local_cache": False},  # Redis only
        {"local_cache_subjects": 2},  # an L1 so small that floors are forgotten constantly
    )

    def __init__(self, db_url: str, redis_url: str) -> None:
        self.db_url = db_url
        self.redis_url = redis_url
        self.redis = redis.Redis.from_url(redis_url)
        self.processes = [self.start(i) for i in range(len(self.PROCESS_SETTINGS))]
        self.processes[0].recorder.add_purpose(
            "default", Purpose("email", "Email", LegalBasis.CONSENT)
        )
        self.oracle_store = open_store(db_url)
        self.oracle = Services.build(Settings(database_url=db_url), self.oracle_store).decisions
        self.snapshot: dict[bytes, bytes] = {}

    def start(self, index: int) -> Services:
        settings = Settings(
            database_url=self.db_url, redis_url=self.redis_url, **self.PROCESS_SETTINGS[index]
        )
        return Services.build(settings, open_store(self.db_url))

    def restart(self, index: int) -> None:
        """The process dies with whatever it held in memory (pending invalidations, floors)."""
        self.processes[index].close()
        self.processes[index] = self.start(index)

    def write(self, index: int, subject: str, action: Action) -> None:
        request = ConsentRequest(subject, Source.API, [EventRequest("email", action)])
        self.processes[index].recorder.record("default", request)

    def take_snapshot(self) -> None:
        """What a Redis snapshot (RDB) would hold now."""
        self.snapshot = {k: self.redis.dump(k) for k in self.redis.scan_iter()}  # type: ignore[misc]

    def come_back_with_old_data(self) -> None:
        """Redis restarts from its last snapshot: entries AND floors go back in time."""
        self.redis.flushdb()
        for k, v in self.snapshot.items():
            self.redis.restore(k, 0, v, replace=True)

    def close(self) -> None:
        for p in self.processes:
            p.close()
        self.oracle_store.close()
        self.redis.close()


def expected(oracle: DecisionService, subject: str) -> tuple[bool, str, int | None]:
    d = oracle.check("default", subject, "email")
    return d.permitted, d.reason.value, d.position


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_process_answers_from_a_state_older_than_the_log(
    db_url: str, store: SqlStore, private_redis: PrivateRedis, seed: int
) -> None:
    """A random walk of writes, checks, restarts and Redis losing data, on every backend: after
    every step, every process answers exactly what the database says."""
    rng = random.Random(seed)
    world = World(db_url, private_redis.url)
    steps: list[str] = []
    try:
        for _ in range(120):
            roll = rng.random()
            index = rng.randrange(len(world.processes))
            subject = rng.choice(SUBJECTS)
            if roll < 0.35:
                action = rng.choice(ACTIONS)
                steps.append(f"p{index} writes {subject} {action.value}")
                world.write(index, subject, action)
            elif roll < 0.45:
                steps.append(f"p{index} restarts")
                world.restart(index)
            elif roll < 0.55:
                steps.append("redis snapshot")
                world.take_snapshot()
            elif roll < 0.65:
                steps.append("redis comes back from its snapshot")
                world.come_back_with_old_data()
            elif roll < 0.70:
                steps.append("redis flushed")
                world.redis.flushdb()
            steps.append(f"p{index} checks {subject}")
            got = world.processes[index].decisions.check("default", subject, "email")
            want = expected(world.oracle, subject)
            assert (got.permitted, got.reason.value, got.position) == want, "\n".join(steps)
        hits = sum(p.decisions.active_reader.redis.hits for p in world.processes)  # type: ignore[union-attr]
        assert hits > 0, "Redis never answered: the walk proved nothing about it"
    finally:
        world.close()


# Installations sharing one Redis -------------------------------------------------------------
@pytest.mark.parametrize("second_backend", ["sqlite", "postgres"])
def test_two_installations_sharing_one_redis_never_decide_from_each_others_data(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str, second_backend: str
) -> None:
    """Same tenant, same subject, same positions, one Redis: each decides from its own log."""
    urls = [f"sqlite:///{tmp_path / 'first.db'}"]
    if second_backend == "sqlite":
        urls.append(f"sqlite:///{tmp_path / 'second.db'}")
    else:
        urls.append(str(request.getfixturevalue("pg_url")))
    installations: list[Services] = []
    try:
        for url in urls:
            store = open_store(url)
            store.migrate()
            store.ensure_tenant("default")
            services = Services.build(Settings(database_url=url, redis_url=redis_url), store)
            services.recorder.add_purpose("default", Purpose("email", "Email", LegalBasis.CONSENT))
            installations.append(services)
        first, second = installations

        def record(services: Services, action: Action) -> int:
            request = ConsentRequest("alice", Source.API, [EventRequest("email", action)])
            return services.recorder.record("default", request).token

        assert record(second, Action.REFUSED) == 1
        assert second.decisions.check("default", "alice", "email").reason.value == "refused"
        assert record(first, Action.GIVEN) == 1  # the same position in the other log
        assert first.decisions.check("default", "alice", "email").permitted  # cached in Redis
        for services in installations:
            services.decisions.active_reader.clear()  # past the L1: to Redis
        assert second.decisions.check("default", "alice", "email").reason.value == "refused"
        assert first.decisions.check("default", "alice", "email").reason.value == "granted"
        keys = redis.Redis.from_url(redis_url).keys("consentry:*")
        ids = {first.store.installation_id(), second.store.installation_id()}
        assert len(ids) == 2
        assert {k.split(b":")[1].decode() for k in keys} == ids
    finally:
        for services in installations:
            services.close()
