"""Shared fixtures: real SQLite and PostgreSQL stores, Redis, and CI's no-quiet-skip rule.

PostgreSQL tests each get a fresh schema in the `test` database (search_path set in the URL), so
they are isolated and fast. When a service is missing, a test skips on a developer's machine but
FAILS in CI (CI=true): a suite that quietly skips its backends proves nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from consentry.config import Settings
from consentry.keys import create_key
from consentry.services import Services
from consentry.storage import SqlStore, open_store
from consentry.storage.base import Role

PG_BASE_URL = os.environ.get("CONSENTRY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("CONSENTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(what: str, why: object) -> None:
    """Skip locally, fail in CI."""
    message = f"{what} is not available: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: a missing service is a failure, not a skip)")
    pytest.skip(message)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a new, empty schema; dropped afterwards."""
    try:
        import psycopg

        admin = psycopg.connect(PG_BASE_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:
        service_missing("PostgreSQL", exc)
        raise
    schema = "t_" + uuid.uuid4().hex[:12]
    admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_BASE_URL else "?"
    url = f"{PG_BASE_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    try:
        yield url
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'consentry.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every backend, for the contract suite: the test runs once per backend."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def store(db_url: str) -> Iterator[SqlStore]:
    """A migrated store with the `default` tenant, on each backend."""
    s = open_store(db_url)
    s.migrate()
    s.ensure_tenant("default")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def redis_url() -> str:
    """Redis database 15, flushed: tests never touch a developer's data in db 0."""
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.flushdb()
        client.close()
    except Exception as exc:
        service_missing("Redis", exc)
    return REDIS_URL


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=db_url, min_token_wait_ms=200, signing_keys_dir=tmp_path / "keys"
    )


@pytest.fixture
def services(settings: Settings, store: SqlStore) -> Services:
    return Services.build(settings, store)


@pytest.fixture
def api(services: Services) -> Iterator[ApiClient]:
    """The API on each backend, with an admin key for `default` in its headers."""
    from fastapi.testclient import TestClient

    from consentry.api.app import create_app

    issued = create_key(services.store, "default", Role.ADMIN)
    with TestClient(create_app(services.settings, services)) as client:
        client.headers["Authorization"] = f"Bearer {issued.key}"
        yield ApiClient(client, services, issued.key)


class ApiClient:
    """A TestClient bound to an admin key, with the services behind it for assertions."""

    def __init__(self, client: Any, services: Services, key: str) -> None:
        self.client = client
        self.services = services
        self.key = key

    def key_for(self, role: Role, tenant: str = "default") -> dict[str, str]:
        self.services.store.ensure_tenant(tenant)
        issued = create_key(self.services.store, tenant, role)
        return {"Authorization": f"Bearer {issued.key}"}

    def purpose(self, pid: str, basis: str = "consent", **extra: Any) -> dict[str, Any]:
        body = {"id": pid, "name": pid.replace("_", " ").title(), "legal_basis": basis, **extra}
        r = self.client.post("/v1/purposes", json=body)
        assert r.status_code in (200, 201), r.text
        return dict(r.json())

    def notice(
        self, nid: str, version: int, purposes: list[str], published_at: str, **extra: Any
    ) -> dict[str, Any]:
        """Publish a notice version (text "<nid> v<version>" unless given); 201 expected."""
        body = {
            "id": nid,
            "version": version,
            "text": f"{nid} v{version}",
            "purposes": purposes,
            "published_at": published_at,
            **extra,
        }
        r = self.client.post("/v1/notices", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    def record(self, subject: str, **choices: str) -> dict[str, Any]:
        body = {
            "subject": subject,
            "events": [{"purpose": p, "action": a} for p, a in choices.items()],
        }
        r = self.client.post("/v1/consents", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())
