"""The embedded default: the log in one SQLite file.

WAL mode lets readers run beside the one writer; `BEGIN IMMEDIATE` takes the database's write lock
before positions are read, which serializes writers across threads and processes alike (invariant
3). synchronous=FULL makes every acknowledged write survive a power cut, as a system of record must.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from consentry.domain.events import format_time, parse_time
from consentry.storage.base import SchemaError, StoreUnavailableError
from consentry.storage.sql import Cursor, Migration, SqlStore, utcnow

BUSY_TIMEOUT_MS = 10_000


def sqlite_path(url: str) -> str:
    """`sqlite:///relative.db` or `sqlite:////absolute/path.db` to a file path."""
    if not url.startswith("sqlite:///"):
        raise ValueError(f"{url!r} is not a sqlite:/// URL")
    path = url[len("sqlite:///") :]
    if not path:
        raise ValueError("the sqlite URL names no file; e.g. sqlite:///consentry.db")
    return path


class SqliteStore(SqlStore):
    dialect = "sqlite"

    def __init__(self, url: str, *, create: bool = True) -> None:
        super().__init__()
        self.path = sqlite_path(url)
        parent = Path(self.path).parent
        if not parent.exists():
            raise StoreUnavailableError(f"the folder {parent} for the database does not exist")
        if not create and not Path(self.path).is_file():
            raise StoreUnavailableError(
                f"the database {self.path} does not exist: `consentry migrate` creates it"
            )
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, isolation_level=None, check_same_thread=False, timeout=10
                )
            except sqlite3.Error as exc:
                raise StoreUnavailableError(f"cannot open {self.path}: {exc}") from exc
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        conn = self._connect()
        try:
            yield conn.cursor()
        except sqlite3.OperationalError as exc:
            raise StoreUnavailableError(str(exc)) from exc

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        conn = self._connect()
        with self._write_lock:
            cur = conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreUnavailableError(str(exc)) from exc
            try:
                yield cur
            except BaseException:
                conn.rollback()
                raise
            else:
                cur.execute("COMMIT")

    def _apply_migration(self, migration: Migration) -> None:
        conn = self._connect()
        with self._write_lock:
            # executescript commits what is pending first; wrap the script in one transaction
            # so that a failed migration leaves nothing half-applied.
            script = (
                "BEGIN IMMEDIATE;\n"
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TEXT NOT NULL);\n"
                f"{migration.sql}\n"
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES"
                f" ({migration.version}, '{migration.name}', '{format_time(utcnow())}');\n"
                "COMMIT;"
            )
            try:
                conn.executescript(script)
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.rollback()
                if migration.version in (self._applied_versions() or set()):
                    return  # another process applied it meanwhile
                raise SchemaError(f"migration {migration.name} failed: {exc}") from exc

    def _applied_versions(self) -> set[int] | None:
        with self._read() as cur:
            cur.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'"
            )
            if cur.fetchone() is None:
                return None
            cur.execute("SELECT version FROM schema_migrations")
            return {int(r[0]) for r in cur.fetchall()}

    def _ts_in(self, value: datetime) -> Any:
        return format_time(value)

    def _ts_out(self, value: Any) -> datetime:
        return parse_time(value)

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
