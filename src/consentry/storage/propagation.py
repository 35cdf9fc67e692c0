"""What propagation needs from the database besides the log: processed commands, one active
relay per database, and a wake-up when events are appended.

These live in the storage layer because they are backend-specific (an advisory lock and
LISTEN/NOTIFY on PostgreSQL, a lock file beside the SQLite database) and the services above
never talk to a database driver themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from consentry.storage.base import StoreUnavailableError
from consentry.storage.sql import SqlStore

NOTIFY_CHANNEL = "consentry_log"


# The relay's read ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """A committed event as the relay publishes it: `data` is exactly RecordedEvent.to_dict().

    Read straight from the row, without building the domain object and formatting its times
    again (on SQLite the stored text already is the wire form): this is what lets one relay
    publish tens of thousands of events a second. tests/propagation/test_outbox_rows.py checks
    that `data` equals to_dict() on both backends.
    """

    position: int
    tenant: str
    subject: str
    recorded_at: str
    data: dict[str, Any]


_OUTBOX_COLUMNS = (
    "event_id, tenant, subject, purpose, action, legal_basis, occurred_at, recorded_at,"
    " position, subject_version, source, actor, jurisdiction, notice_id, notice_version,"
    " notice_hash, ip, user_agent, raw_signal, expires_at"
)
_KEYS = tuple(c.strip() for c in _OUTBOX_COLUMNS.split(","))


# PostgreSQL formats the times itself (in C), in format_time's form: fixed width, UTC, Z.
_PG_TIME = "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
_PG_OUTBOX_COLUMNS = ", ".join(
    _PG_TIME.format(k)
    if k in ("occurred_at", "recorded_at", "expires_at")
    else ("event_id::text" if k == "event_id" else k)
    for k in _KEYS
)


def outbox_after(store: SqlStore, position: int, limit: int) -> list[OutboxEvent]:
    """Committed events with position > `position`, in position order, gapless (events_after),
    in their wire form."""
    columns = _OUTBOX_COLUMNS if store.dialect == "sqlite" else _PG_OUTBOX_COLUMNS
    with store._read() as cur:
        cur.execute(
            store._sql(
                f"SELECT {columns} FROM events WHERE position > ? ORDER BY position LIMIT ?"
            ),
            (position, limit),
        )
        rows = cur.fetchall()
    out = []
    for row in rows:
        data = dict(zip(_KEYS, row, strict=True))
        out.append(OutboxEvent(row[8], row[1], row[2], row[7], data))
    return out


# Processed commands ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProcessedCommand:
    """The outcome of one command, kept so that a re-delivered command is not executed again."""

    tenant: str
    command_id: str
    kind: str
    outcome: str
    positions: tuple[int, ...]
    processed_at: datetime


def get_processed_command(store: SqlStore, tenant: str, command_id: str) -> ProcessedCommand | None:
    """The recorded outcome of a command, or None if it was never completed."""
    with store._read() as cur:
        cur.execute(
            store._sql(
                "SELECT kind, outcome, positions, processed_at FROM processed_commands"
                " WHERE tenant = ? AND command_id = ?"
            ),
            (tenant, command_id),
        )
        row = cur.fetchone()
    if row is None:
        return None
    return ProcessedCommand(
        tenant=tenant,
        command_id=command_id,
        kind=row[0],
        outcome=row[1],
        positions=tuple(int(p) for p in json.loads(row[2])),
        processed_at=store._ts_out(row[3]),
    )


def add_processed_command(store: SqlStore, command: ProcessedCommand) -> bool:
    """Record a command's outcome; False if another processor recorded it first."""
    with store._write() as cur:
        cur.execute(
            store._sql(
                "INSERT INTO processed_commands (tenant, command_id, kind, outcome, positions,"
                " processed_at) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant, command_id) DO NOTHING RETURNING command_id"
            ),
            (
                command.tenant,
                command.command_id,
                command.kind,
                command.outcome,
                json.dumps(list(command.positions)),
                store._ts_in(command.processed_at),
            ),
        )
        return cur.fetchone() is not None


# One relay per database -------------------------------------------------------------------------
class Lease(Protocol):
    """Exclusive leadership of one reader of the log (the relay), so two relays never race.

    A second relay is a hot standby: it keeps trying and takes over within a poll interval when
    the leader's process dies, because the lock dies with its holder (a session advisory lock, a
    file lock), never with a timeout that a slow leader could overrun.
    """

    def try_acquire(self) -> bool:
        """Take the lease if free; True when this process now holds it."""
        ...

    def held(self) -> bool:
        """Whether the lease is still ours (False after a lost database connection)."""
        ...

    def release(self) -> None: ...


class FileLease:
    """SQLite: an exclusive flock on `<database>.<name>.lock`, released when the process dies."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        import fcntl

        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            import fcntl

            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


class PgLease:
    """PostgreSQL: a session advisory lock on a dedicated connection.

    The key is derived from the schema and the reader's name, so installations sharing one
    database in separate schemas (and the tests) do not block each other.
    """

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self._conn: Any = None

    def _connect(self) -> Any:
        import psycopg

        from consentry.storage.postgres import conninfo

        try:
            return psycopg.connect(conninfo(self.url), autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"PostgreSQL is unavailable: {exc}") from exc

    def try_acquire(self) -> bool:
        import psycopg

        if self._conn is not None and self.held():
            return True
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || '/' || %s, 0))",
                (self.name,),
            ).fetchone()
        except psycopg.Error as exc:
            conn.close()
            raise StoreUnavailableError(f"PostgreSQL is unavailable: {exc}") from exc
        if row and row[0]:
            self._conn = conn
            return True
        conn.close()
        return False

    def held(self) -> bool:
        import psycopg

        if self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1").fetchone()
            return True
        except psycopg.Error:
            self.release()
            return False

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()  # closing the session releases the advisory lock
            self._conn = None


def relay_lease(store: SqlStore, name: str) -> Lease:
    """The lease of the backend `store` is on."""
    from consentry.storage.postgres import PostgresStore
    from consentry.storage.sqlite import SqliteStore

    if isinstance(store, PostgresStore):
        return PgLease(store.url, name)
    if isinstance(store, SqliteStore):
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
        return FileLease(f"{Path(store.path)}.{safe}.lock")
    raise TypeError(f"no relay lease for {type(store).__name__}")


# Waking the relay -------------------------------------------------------------------------------
class AppendWaiter(Protocol):
    """Blocks until events may have been appended, so an idle relay costs nothing and a busy one
    reacts in milliseconds instead of a poll interval."""

    def wait(self, timeout: float) -> bool:
        """Return when woken (True) or after `timeout` seconds (False)."""
        ...

    def wake(self) -> None:
        """Wake the waiter from this process (a commit listener, or shutdown)."""
        ...

    def close(self) -> None: ...


class LocalWaiter:
    """Woken by commits of this process (Recorder listeners) and by shutdown; else polls."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self, timeout: float) -> bool:
        woken = self._event.wait(timeout)
        self._event.clear()
        return woken

    def wake(self) -> None:
        self._event.set()

    def close(self) -> None:
        self._event.set()


class PgNotifyWaiter:
    """LISTEN consentry_log: the append transaction's NOTIFY (migration 0003) wakes the relay
    whichever process committed. Falls back to plain waiting while the connection is down."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None
        self._schema = ""
        self._local = LocalWaiter()
        self._closed = False

    def _listen(self) -> Any:
        import psycopg

        from consentry.storage.postgres import conninfo

        if self._conn is None:
            conn = psycopg.connect(conninfo(self.url), autocommit=True, connect_timeout=5)
            row = conn.execute("SELECT current_schema()").fetchone()
            self._schema = str(row[0]) if row else ""
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._conn = conn
        return self._conn

    def wait(self, timeout: float) -> bool:
        import psycopg

        if self._closed:
            return True
        try:
            conn = self._listen()
            woken = False
            for note in conn.notifies(timeout=timeout):
                if note.payload == self._schema or not note.payload:
                    woken = True
                    break
            if woken:
                # Drain what else is queued (one query sees all of it); after the loop above,
                # which holds the connection's lock while it runs.
                for _ in conn.notifies(timeout=0.0):
                    pass
            return woken
        except psycopg.Error:
            if self._conn is not None:
                with contextlib.suppress(Exception):
                    self._conn.close()
                self._conn = None
            return self._local.wait(timeout)

    def wake(self) -> None:
        # Commits of every process NOTIFY; a local wake only shortens the fallback wait. (No
        # NOTIFY from here: the waiting thread holds the connection.)
        self._local.wake()

    def close(self) -> None:
        self._closed = True
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None


def append_waiter(store: SqlStore) -> AppendWaiter:
    """LISTEN/NOTIFY on PostgreSQL; in-process wake-ups and polling on SQLite."""
    from consentry.storage.postgres import PostgresStore

    if isinstance(store, PostgresStore):
        return PgNotifyWaiter(store.url)
    return LocalWaiter()
