"""Production storage: the log on PostgreSQL (psycopg 3, a connection pool).

Writers serialize on the row lock of `log_head` (SELECT ... FOR UPDATE), held until commit, so
positions are assigned in commit order without gaps (invariant 3); a sequence would not do,
because a rolled-back transaction leaves a hole and two transactions can commit out of order.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from consentry.storage.base import SchemaError, StoreUnavailableError
from consentry.storage.sql import Cursor, Migration, SqlStore, utcnow

POOL_TIMEOUT_S = 5.0


def conninfo(url: str) -> str:
    """Accept postgresql://, postgres:// and the SQLAlchemy-style postgresql+psycopg://."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgresql+asyncpg://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class PostgresStore(SqlStore):
    dialect = "postgres"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10) -> None:
        super().__init__()
        self.url = url
        self.pool = ConnectionPool(
            conninfo(url),
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=POOL_TIMEOUT_S,
            kwargs={"autocommit": True, "connect_timeout": 5},
        )
        try:
            self.pool.open(wait=True, timeout=POOL_TIMEOUT_S)
        except PoolTimeout as exc:
            self.pool.close()
            raise StoreUnavailableError(f"cannot connect to PostgreSQL at {url}: {exc}") from exc

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self.pool.connection() as conn:
                yield conn
        except (PoolTimeout, psycopg.OperationalError) as exc:
            if isinstance(exc, psycopg.OperationalError):
                # The server may have restarted: every idle pooled connection is dead too.
                # Purge them now, so that only this request fails (closed), not one per
                # connection in the pool.
                with contextlib.suppress(Exception):
                    self.pool.check()
            raise StoreUnavailableError(f"PostgreSQL is unavailable: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        with self._connection() as conn, conn.cursor() as cur:
            yield _PgCursor(cur)

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        with self._connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT position FROM log_head WHERE id = 1 FOR UPDATE")
            yield _PgCursor(cur)

    def _apply_migration(self, migration: Migration) -> None:
        with self._connection() as conn:
            try:
                with conn.transaction(), conn.cursor() as cur:
                    # One migrator at a time, even from several processes.
                    cur.execute("SELECT pg_advisory_xact_lock(7283001)")
                    cur.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY"
                        " KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
                    )
                    cur.execute(
                        "SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)
                    )
                    if cur.fetchone():
                        return
                    cur.execute(migration.sql.encode())
                    cur.execute(
                        "INSERT INTO schema_migrations (version, name, applied_at)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, utcnow()),
                    )
            except psycopg.Error as exc:
                raise SchemaError(f"migration {migration.name} failed: {exc}") from exc

    def _applied_versions(self) -> set[int] | None:
        with self._read() as cur:
            cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT version FROM schema_migrations")
            return {int(r[0]) for r in cur.fetchall()}

    def _ts_in(self, value: datetime) -> Any:
        return value

    def _ts_out(self, value: Any) -> datetime:
        assert isinstance(value, datetime)
        return value.astimezone(UTC)

    def _uuid_in(self, value: uuid.UUID) -> Any:
        return value

    def close(self) -> None:
        self.pool.close()


class _PgCursor:
    """Translate the shared SQL's `?` placeholders to psycopg's `%s`."""

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Any = None, /) -> Any:
        return self._cur.execute(sql.replace("?", "%s"), params)

    def executemany(self, sql: str, params: Any, /) -> Any:
        return self._cur.executemany(sql.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()
