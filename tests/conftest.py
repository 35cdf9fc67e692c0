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
from urllib.parse import quote

import pytest

from consentry.storage import SqlStore, open_store

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
