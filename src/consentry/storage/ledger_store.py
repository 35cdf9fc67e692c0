"""The ledger's tables on SQLite and PostgreSQL: leaves, interior nodes and signed checkpoints.

Built on SqlStore's connection hooks, beside the log it proves (migration 0002). Each tenant has
its own RFC 9162 tree over its events in position order; the position is global across tenants,
so a leaf row maps (tenant, leaf index) to the event's position and id.

What makes the integrator crash-safe and fork-proof lives here:

* a batch (the leaves of every tenant it touches, the nodes they complete, the checkpoints it
  signs, the integrated position) is ONE transaction: a crash leaves the last committed batch;
* the integrated position is MAX(position) of ledger_leaves, so it cannot disagree with the tree
  (it is mirrored into reader_offsets['ledger'] in the same transaction, for monitoring);
* unique keys on (tenant, leaf_index) and position, (tenant, level, node_index) and
  (tenant, tree_size) refuse a second writer: two integrators that raced cannot fork a tree, the
  loser's transaction fails (LedgerConflictError) and it starts again from what is committed.
  Writers are also serialized up front (SQLite's single writer; a PostgreSQL advisory lock,
  not the log's own lock, so recording never waits for the integrator).

Reading events for hashing goes through `leaf_inputs_after` (and `event_bytes_after`, its
bytes), which has the database write each event's canonical JSON (SQLite's json_object,
PostgreSQL's row_to_json, both compact, keys in the order given, strings escaped exactly as
Python's json does), so that a leaf costs a few microseconds instead of the ~35 µs of
RecordedEvent.canonical_bytes() in pure Python; PostgreSQL also hashes it (pg_catalog.sha256),
so that 32 bytes a row cross the connection. The bytes and hashes must be identical to the
domain's: the keys are taken from RecordedEvent.to_dict() itself, `canonical_matches_domain`
compares both on a real row (the integrator does so when it starts and every minute), and tests
compare them on arbitrary text on both backends.
"""

from __future__ import annotations

import hashlib
import sqlite3
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import psycopg

from consentry.domain.errors import ConflictError
from consentry.domain.events import (
    Action,
    Evidence,
    RecordedEvent,
    Source,
    format_time,
    parse_time,
)
from consentry.domain.purposes import LegalBasis
from consentry.storage.sql import EVENT_COLUMNS, Cursor, SqlStore, utcnow

__all__ = [
    "LEDGER_OFFSET",
    "EventBytes",
    "LeafInput",
    "LedgerConflictError",
    "LedgerStore",
    "LedgerWriter",
    "SqlNodeStore",
    "StoredCheckpoint",
    "StoredLeaf",
    "TxnNodeStore",
]

LEDGER_OFFSET = "ledger"
"""The integrator's name in reader_offsets (a mirror of MAX(ledger_leaves.position))."""

NodeKey = tuple[int, int]
"""(level, index), as in consentry.ledger.tree: the store needs no more of the tree than that."""

NODE_LEVEL_STEP = 4
"""Interior nodes are stored at levels 4, 8, 12, ... only (and leaves at level 0).

A node of another level is the root of a perfect subtree of at most 2^3 stored nodes and is
recomputed from them when read. This stores 1/15 of a row per leaf instead of one (half the
rows of the ledger, the dominant cost of integrating), for proofs that read ~80 rows instead of
~20: still one query, of a few index range scans (the rows come in runs of neighbours), and the
upper levels are cached. Part of the schema: changing it needs a migration.
"""

NODE_CACHE_SIZE = 200_000
"""Upper-level nodes kept in memory per LedgerStore (~30 MB at most)."""

_PG_LEDGER_LOCK = 7283005  # pg_advisory_xact_lock key: one ledger writer at a time
_TIME_COLUMNS = frozenset({"occurred_at", "recorded_at", "expires_at"})
_PG_TIME = "to_char({0} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"') AS {0}"
_FORMATTED_TIME_LENGTH = 27  # len(format_time(...)): 2024-05-01T12:00:00.123456Z
_SORT_KEYS = orjson.OPT_SORT_KEYS


def _canonical_keys() -> list[str]:
    """The keys of RecordedEvent.canonical_bytes(), sorted as its JSON has them."""
    sample = RecordedEvent(
        position=1,
        subject_version=1,
        recorded_at=datetime(2000, 1, 1, tzinfo=UTC),
        event_id=uuid.UUID(int=0),
        tenant="t",
        subject="s",
        purpose="p",
        action=Action.GIVEN,
        legal_basis=LegalBasis.CONSENT,
        occurred_at=datetime(2000, 1, 1, tzinfo=UTC),
        evidence=Evidence(source=Source.API),
    )
    data = orjson.loads(sample.canonical_bytes())
    assert isinstance(data, dict) and data.get("v") == 1
    return sorted(data)


class LedgerConflictError(ConflictError):
    """Another integrator committed the same leaves, nodes or checkpoint first.

    Expected when two integrators run; the loser simply starts again from what is committed.
    """


class EventBytes(NamedTuple):
    """One committed event as the ledger sees it: where, whose, which, and its canonical bytes."""

    position: int
    tenant: str
    event_id: str
    data: bytes


class LeafInput(NamedTuple):
    """An event to append to its tenant's tree (a tuple: the integrator makes one per event)."""

    position: int
    event_id: str
    leaf_hash: bytes
    tenant: str = ""
    """Whose tree: what the integrator groups a batch by (the node store is per tenant)."""


@dataclass(frozen=True, slots=True)
class StoredLeaf:
    tenant: str
    leaf_index: int
    position: int
    event_id: str
    leaf_hash: bytes


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    tenant: str
    tree_size: int
    root_hash: bytes
    signed_at: datetime
    note: str


def _time_text(value: Any) -> Any:
    """A stored time as format_time() writes it (what RecordedEvent.to_dict() puts in the JSON)."""
    if value is None:
        return None
    if type(value) is str and len(value) == _FORMATTED_TIME_LENGTH and value[-1] == "Z":
        return value
    try:
        return format_time(value if isinstance(value, datetime) else parse_time(str(value)))
    except ValueError:
        return value  # not a time at all: hash what is there (verify will call it altered)


def _canonical(row: Sequence[Any]) -> bytes:
    """The canonical bytes of an event row (EVENT_COLUMNS order), computed in Python.

    The fallback of the SQL path, for rows the database's JSON functions refuse (SQLite will not
    quote a BLOB that an administrator wrote into a text column): same dictionary as
    RecordedEvent.to_dict() plus the format tag, serialized as json.dumps(sort_keys=True,
    separators=(",", ":"), ensure_ascii=False) would (orjson escapes the same characters).
    Whatever is stored is hashed, so that `verify database` can report the row as altered.
    """
    ip, ua, raw, exp = row[16], row[17], row[18], row[19]
    return orjson.dumps(
        {
            "v": 1,
            "event_id": row[1],
            "tenant": row[2],
            "subject": row[3],
            "purpose": row[5],
            "action": row[6],
            "legal_basis": row[7],
            "occurred_at": _time_text(row[8]),
            "recorded_at": _time_text(row[9]),
            "position": row[0],
            "subject_version": row[4],
            "source": row[10],
            "actor": row[11],
            "jurisdiction": row[12],
            "notice_id": row[13],
            "notice_version": row[14],
            "notice_hash": row[15],
            "ip": ip,
            "user_agent": ua,
            "raw_signal": raw,
            "expires_at": _time_text(exp),
        },
        option=_SORT_KEYS,
        default=lambda value: value.hex() if isinstance(value, bytes) else str(value),
    )


def _is_integrity_error(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.IntegrityError | psycopg.errors.IntegrityError)


class LedgerStore:
    """The ledger tables of one SqlStore's database."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.postgres = store.dialect == "postgres"
        self.node_cache: dict[tuple[str, int, int], bytes] = {}
        self._event_id = "event_id::text" if self.postgres else "event_id"
        keys = _canonical_keys()
        if self.postgres:
            # row_to_json of a row whose columns are named and ordered as the keys.
            columns = ", ".join(
                "1 AS v" if k == "v" else (_PG_TIME.format(k) if k in _TIME_COLUMNS else k)
                for k in keys
            )
            self._json_from = f" FROM (SELECT {columns} FROM events WHERE {{where}}) x"
            self._json = "row_to_json(x)::text"
            self._full = "x.position, x.tenant, x.event_id::text"
            # The RFC 9162 leaf hash of the same bytes, computed where they are: the client
            # receives 32 bytes a row instead of the ~450 of the JSON, and the server, which
            # writes the JSON anyway, hashes it in C (schema-qualified: no search_path trick).
            self._leaf_hash: str | None = (
                "pg_catalog.sha256('\\x00'::bytea"
                " || pg_catalog.convert_to(row_to_json(x)::text, 'UTF8'))"
            )
        else:
            pairs = ", ".join(f"'{k}', " + ("1" if k == "v" else k) for k in keys)
            self._json_from = " FROM events WHERE {where}"
            self._json = f"json_object({pairs})"
            self._full = "position, tenant, event_id"
            self._leaf_hash = None  # SQLite has no SHA-256: hashed in Python (hashlib, in C)

    def _json_query(self, columns: str, where: str) -> str:
        return f"SELECT {columns}, {self._json}" + self._json_from.format(where=where)

    def _sql(self, sql: str) -> str:
        return self.store._sql(sql)

    # Reading the log ------------------------------------------------------------------------
    def event_bytes_after(
        self, position: int, limit: int, upto: int | None = None
    ) -> list[EventBytes]:
        """Committed events with position > `position` (and <= `upto`), in order, as bytes."""
        rows = self._event_rows(*_after(position, limit, upto))
        return [EventBytes(p, t, e, data.encode()) for p, t, e, data in rows]

    def leaf_inputs_after(
        self, position: int, limit: int, upto: int | None = None
    ) -> list[LeafInput]:
        """The leaves to append for the committed events after `position` (up to `upto`), in
        position order: what the integrator reads.

        The leaf hash is RFC 9162's of the same canonical bytes as `event_bytes_after`, computed
        by PostgreSQL itself there (the integrator's self-check compares it with the domain's).
        """
        where, params = _after(position, limit, upto)
        if self._leaf_hash is not None:
            rows = self._hash_rows(f"{self._full}, {self._leaf_hash}", where, params)
            return [LeafInput(p, e, h, t) for p, t, e, h in rows]
        return [
            LeafInput(p, e, _leaf_digest(data.encode()), t)
            for p, t, e, data in self._event_rows(where, params)
        ]

    def event_leaf_hashes(self, first: int, last: int) -> list[tuple[str, bytes]]:
        """(tenant, leaf hash of the canonical bytes) of the events with first <= position <=
        last, in order: the least `verify database` reads when everything agrees."""
        where = "position >= ? AND position <= ? ORDER BY position"
        if self._leaf_hash is not None:
            rows: list[tuple[str, bytes]] = self._hash_rows(
                f"x.tenant, {self._leaf_hash}", where, [first, last]
            )
            return rows
        return [
            (tenant, _leaf_digest(data.encode())) for tenant, data in self.event_json(first, last)
        ]

    def _hash_rows(self, columns: str, where: str, params: list[Any]) -> list[Any]:
        """PostgreSQL only: rows of `columns` over the canonical-JSON subquery (`x`)."""
        with self.store._read() as cur:
            cur.execute(
                self._sql(f"SELECT {columns}" + self._json_from.format(where=where)), params
            )
            rows: list[Any] = cur.fetchall()
            return rows

    def event_rows(self, first: int, last: int) -> list[tuple[int, str, str, str]]:
        """Events with first <= position <= last as (position, tenant, event_id, canonical
        JSON text), in position order: the bulk form `verify database` reads."""
        return self._event_rows("position >= ? AND position <= ? ORDER BY position", [first, last])

    def _event_rows(self, where: str, params: list[Any]) -> list[tuple[int, str, str, str]]:
        try:
            with self.store._read() as cur:
                cur.execute(self._sql(self._json_query(self._full, where)), params)
                rows: list[tuple[int, str, str, str]] = cur.fetchall()
                return rows
        except sqlite3.Error:
            # A row SQLite cannot turn into JSON (a BLOB where text belongs): Python's turn.
            with self.store._read() as cur:
                cur.execute(self._sql(f"SELECT {EVENT_COLUMNS} FROM events WHERE {where}"), params)
                raw = cur.fetchall()
            return [(r[0], r[2], str(r[1]), _canonical(r).decode()) for r in raw]

    def leaf_rows(self, first: int, last: int) -> list[tuple[str, int, int, str, bytes]]:
        """Stored leaves with first <= position <= last as (tenant, leaf_index, position,
        event_id, leaf_hash), in position order."""
        with self.store._read() as cur:
            cur.execute(
                self._sql(
                    f"SELECT tenant, leaf_index, position, {self._event_id}, leaf_hash"
                    " FROM ledger_leaves WHERE position >= ? AND position <= ?"
                    " ORDER BY position"
                ),
                (first, last),
            )
            rows: list[tuple[str, int, int, str, bytes]] = cur.fetchall()
            return rows

    def event_json(self, first: int, last: int) -> list[tuple[str, str]]:
        """(tenant, canonical JSON) of the events with first <= position <= last, in order:
        the least `verify database` reads when everything agrees."""
        where = "position >= ? AND position <= ? ORDER BY position"
        try:
            with self.store._read() as cur:
                cur.execute(self._sql(self._json_query("tenant", where)), (first, last))
                rows: list[tuple[str, str]] = cur.fetchall()
                return rows
        except sqlite3.Error:
            return [(row[1], row[3]) for row in self.event_rows(first, last)]

    def leaf_hashes(self, first: int, last: int) -> list[tuple[str, int, bytes]]:
        """(tenant, leaf_index, leaf_hash) of the leaves with first <= position <= last."""
        with self.store._read() as cur:
            cur.execute(
                self._sql(
                    "SELECT tenant, leaf_index, leaf_hash FROM ledger_leaves"
                    " WHERE position >= ? AND position <= ? ORDER BY position"
                ),
                (first, last),
            )
            rows: list[tuple[str, int, bytes]] = cur.fetchall()
            return rows

    def min_event_position(self) -> int | None:
        with self.store._read() as cur:
            cur.execute("SELECT MIN(position) FROM events")
            row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def min_leaf_position(self) -> int | None:
        with self.store._read() as cur:
            cur.execute("SELECT MIN(position) FROM ledger_leaves")
            row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def count_events_after(self, position: int) -> int:
        with self.store._read() as cur:
            cur.execute(self._sql("SELECT COUNT(*) FROM events WHERE position > ?"), (position,))
            return int(cur.fetchone()[0])

    def max_event_position(self) -> int | None:
        with self.store._read() as cur:
            cur.execute("SELECT MAX(position) FROM events")
            row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def canonical_matches_domain(self, position: int) -> bool | None:
        """Whether the fast canonical bytes of the event at `position`, and the leaf hash the
        integrator reads for it, equal the domain's.

        None when there is no such event or the domain cannot read the row (a corrupt row: the
        fast path hashes what is stored, and `verify database` reports it as altered).
        """
        fast = self.event_bytes_after(position - 1, 1, upto=position)
        if not fast:
            return None
        try:
            events = self.store.events_after(position - 1, 1)
        except ValueError:
            return None
        if not events or events[0].position != position:
            return None
        domain = events[0].canonical_bytes()
        leaves = self.leaf_inputs_after(position - 1, 1, upto=position)
        digest = _leaf_digest(domain)
        return domain == fast[0].data and bool(leaves) and leaves[0].leaf_hash == digest

    # The integrated state -------------------------------------------------------------------
    def integrated_position(self) -> int:
        """The last log position in the ledger (0 before the first batch)."""
        with self.store._read() as cur:
            return _integrated(cur)

    def tree_size(self, tenant: str) -> int:
        """Leaves in the tenant's tree."""
        with self.store._read() as cur:
            return _tree_size(self, cur, tenant)

    def tree_sizes(self) -> dict[str, int]:
        """Every tenant's tree size, for the tenants that have a tree.

        One index lookup per tenant (of the tenants table, and any other that has a stored
        checkpoint), not a GROUP BY over every leaf: an integrator starting on a log of a
        million events would otherwise spend most of a second before its first batch.
        """
        with self.store._read() as cur:
            cur.execute("SELECT name FROM tenants UNION SELECT tenant FROM ledger_checkpoints")
            names = [str(row[0]) for row in cur.fetchall()]
            sizes = {name: _tree_size(self, cur, name) for name in names}
        return {name: size for name, size in sizes.items() if size}

    def node_store(
        self, tenant: str, size: int | None = None, *, cached: bool = True
    ) -> SqlNodeStore:
        """A read-only NodeStore over the tenant's tree, for roots and proofs.

        `size` pins what size() answers (saves a query when the caller just read it); an audit
        passes `cached=False` to read every node from the database.
        """
        return SqlNodeStore(self, tenant, size, cached=cached)

    def leaves_for_events(
        self, tenant: str, event_ids: Sequence[uuid.UUID | str]
    ) -> dict[str, StoredLeaf]:
        """The leaves of the given events of `tenant` that are integrated, by event id."""
        found: dict[str, StoredLeaf] = {}
        ids = [str(i) for i in event_ids]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            cast = "?::uuid" if self.postgres else "?"
            marks = ", ".join(cast for _ in chunk)
            with self.store._read() as cur:
                # From the events' unique event_id index to the leaves' position: with the
                # leaves first (`position IN (subquery) AND tenant = ?`), SQLite scanned all of
                # the tenant's leaves (~90 ms at 200,000).
                join = "JOIN" if self.postgres else "CROSS JOIN"
                cur.execute(
                    self._sql(
                        f"SELECT l.tenant, l.leaf_index, l.position, l.{self._event_id},"
                        f" l.leaf_hash FROM events e {join} ledger_leaves l"
                        f" ON l.position = e.position WHERE e.event_id IN ({marks})"
                        " AND l.tenant = ?"
                    ),
                    [*chunk, tenant],
                )
                for row in cur.fetchall():
                    leaf = _leaf(row)
                    found[leaf.event_id] = leaf
        return found

    def leaves_after(self, position: int, limit: int) -> list[StoredLeaf]:
        """Stored leaves of every tenant with position > `position`, in position order."""
        with self.store._read() as cur:
            cur.execute(
                self._sql(
                    f"SELECT tenant, leaf_index, position, {self._event_id}, leaf_hash"
                    " FROM ledger_leaves WHERE position > ? ORDER BY position LIMIT ?"
                ),
                (position, limit),
            )
            return [_leaf(row) for row in cur.fetchall()]

    def stored_nodes(self, page: int = 50_000) -> Iterator[tuple[str, int, int, bytes]]:
        """Every stored interior node as (tenant, level, node_index, hash), in that order."""
        cursor: tuple[str, int, int] = ("", -1, -1)
        while True:
            with self.store._read() as cur:
                cur.execute(
                    self._sql(
                        "SELECT tenant, level, node_index, hash FROM ledger_nodes"
                        " WHERE tenant > ? OR (tenant = ? AND (level > ? OR (level = ?"
                        " AND node_index > ?))) ORDER BY tenant, level, node_index LIMIT ?"
                    ),
                    (cursor[0], cursor[0], cursor[1], cursor[1], cursor[2], page),
                )
                rows = cur.fetchall()
            if not rows:
                return
            for tenant, level, index, value in rows:
                yield str(tenant), int(level), int(index), bytes(value)
            last = rows[-1]
            cursor = (str(last[0]), int(last[1]), int(last[2]))

    # Checkpoints ----------------------------------------------------------------------------
    def checkpoints(self, tenant: str | None = None) -> list[StoredCheckpoint]:
        """Stored checkpoints (of one tenant, or all), by tenant and size."""
        sql = "SELECT tenant, tree_size, root_hash, signed_at, note FROM ledger_checkpoints"
        params: list[Any] = []
        if tenant is not None:
            sql += " WHERE tenant = ?"
            params.append(tenant)
        sql += " ORDER BY tenant, tree_size"
        with self.store._read() as cur:
            cur.execute(self._sql(sql), params)
            return [self._checkpoint(row) for row in cur.fetchall()]

    def latest_checkpoint(self, tenant: str) -> StoredCheckpoint | None:
        with self.store._read() as cur:
            cur.execute(
                self._sql(
                    "SELECT tenant, tree_size, root_hash, signed_at, note FROM ledger_checkpoints"
                    " WHERE tenant = ? ORDER BY tree_size DESC LIMIT 1"
                ),
                (tenant,),
            )
            row = cur.fetchone()
        return self._checkpoint(row) if row else None

    def latest_checkpoints(self) -> dict[str, StoredCheckpoint]:
        """Each tenant's newest stored checkpoint."""
        with self.store._read() as cur:
            cur.execute(
                "SELECT c.tenant, c.tree_size, c.root_hash, c.signed_at, c.note"
                " FROM ledger_checkpoints c JOIN (SELECT tenant, MAX(tree_size) AS size"
                " FROM ledger_checkpoints GROUP BY tenant) m"
                " ON m.tenant = c.tenant AND m.size = c.tree_size"
            )
            return {str(row[0]): self._checkpoint(row) for row in cur.fetchall()}

    def checkpoint_at(self, tenant: str, size: int) -> StoredCheckpoint | None:
        with self.store._read() as cur:
            cur.execute(
                self._sql(
                    "SELECT tenant, tree_size, root_hash, signed_at, note FROM ledger_checkpoints"
                    " WHERE tenant = ? AND tree_size = ?"
                ),
                (tenant, size),
            )
            row = cur.fetchone()
        return self._checkpoint(row) if row else None

    def _checkpoint(self, row: Sequence[Any]) -> StoredCheckpoint:
        return StoredCheckpoint(
            tenant=str(row[0]),
            tree_size=int(row[1]),
            root_hash=bytes(row[2]),
            signed_at=self.store._ts_out(row[3]),
            note=str(row[4]),
        )

    # Writing --------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[LedgerWriter]:
        """One ledger batch: everything written through the writer commits together or not at all.

        Raises LedgerConflictError if another writer committed any of the same keys first.
        """
        try:
            with self._write() as (cur, raw):
                yield LedgerWriter(self, cur, raw)
        except Exception as exc:
            if _is_integrity_error(exc):
                raise LedgerConflictError(
                    f"another integrator wrote the same ledger entries first: {exc}"
                ) from exc
            raise

    @contextmanager
    def _write(self) -> Iterator[tuple[Cursor, Any]]:
        if not self.postgres:
            # SQLite has one writer per database anyway: the store's own write transaction.
            with self.store._write() as cur:
                yield cur, None
            return
        # PostgreSQL: a transaction of our own, serialized with other integrators by an advisory
        # lock, NOT by the log_head row lock of SqlStore._write(): recording must never wait for
        # a ledger batch. (Same connection pool and error mapping as the store.)
        from consentry.storage.postgres import PostgresStore, _PgCursor

        assert isinstance(self.store, PostgresStore)
        with self.store._connection() as conn, conn.transaction(), conn.cursor() as raw:
            raw.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LEDGER_LOCK,))
            yield _PgCursor(raw), raw


class LedgerWriter:
    """Writes of one ledger transaction (see LedgerStore.transaction)."""

    def __init__(self, ledger: LedgerStore, cur: Cursor, raw: Any = None) -> None:
        self.ledger = ledger
        self.cur = cur
        self.raw = raw

    def integrated_position(self) -> int:
        """MAX(position) of the leaves, read inside the transaction (after its lock)."""
        return _integrated(self.cur)

    def tree_size(self, tenant: str) -> int:
        return _tree_size(self.ledger, self.cur, tenant)

    def node_store(self, tenant: str, leaves: Sequence[LeafInput] = ()) -> TxnNodeStore:
        """The NodeStore to append `leaves` to the tenant's tree through (tree.append_leaves)."""
        return TxnNodeStore(self.ledger, self.cur, tenant, leaves, self.raw)

    def add_checkpoint(
        self, tenant: str, size: int, root_hash: bytes, signed_at: datetime, note: str
    ) -> None:
        self.cur.execute(
            self.ledger._sql(
                "INSERT INTO ledger_checkpoints (tenant, tree_size, root_hash, signed_at, note)"
                " VALUES (?, ?, ?, ?, ?)"
            ),
            (tenant, size, root_hash, self.ledger.store._ts_in(signed_at), note),
        )

    def record_offset(self, position: int) -> None:
        """Mirror the integrated position into reader_offsets, for lag monitoring."""
        self.cur.execute(
            self.ledger._sql(
                "INSERT INTO reader_offsets (name, position, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
                " updated_at = excluded.updated_at"
            ),
            (LEDGER_OFFSET, position, self.ledger.store._ts_in(utcnow())),
        )


def _leaf_digest(data: bytes) -> bytes:
    """RFC 9162's leaf hash, as consentry.ledger.hasher.hash_leaf (which storage cannot import:
    the ledger sits above it); tests/ledger compares the two."""
    return hashlib.sha256(b"\x00" + data).digest()


def _after(position: int, limit: int, upto: int | None) -> tuple[str, list[Any]]:
    """The WHERE of "the first `limit` events after `position` (up to `upto`)", in order."""
    if upto is None:
        return "position > ? ORDER BY position LIMIT ?", [position, limit]
    return "position > ? AND position <= ? ORDER BY position LIMIT ?", [position, upto, limit]


def _integrated(cur: Cursor) -> int:
    cur.execute("SELECT MAX(position) FROM ledger_leaves")
    row = cur.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _tree_size(ledger: LedgerStore, cur: Cursor, tenant: str) -> int:
    cur.execute(
        ledger._sql("SELECT MAX(leaf_index) FROM ledger_leaves WHERE tenant = ?"), (tenant,)
    )
    row = cur.fetchone()
    return int(row[0]) + 1 if row and row[0] is not None else 0


def _leaf(row: Sequence[Any]) -> StoredLeaf:
    return StoredLeaf(str(row[0]), int(row[1]), int(row[2]), str(row[3]), bytes(row[4]))


def _ranges(keys: Sequence[NodeKey]) -> list[tuple[int, int, int]]:
    """The keys as runs of consecutive indexes per level: (level, first, last)."""
    runs: list[tuple[int, int, int]] = []
    for level, index in sorted(set(keys)):
        if runs and runs[-1][0] == level and runs[-1][2] == index - 1:
            runs[-1] = (level, runs[-1][1], index)
        else:
            runs.append((level, index, index))
    return runs


def _select_stored(
    ledger: LedgerStore, cur: Cursor, tenant: str, keys: Sequence[NodeKey]
) -> dict[NodeKey, bytes]:
    """Fetch stored nodes by key in one query: level 0 from ledger_leaves, others ledger_nodes.

    The keys go in as runs of consecutive indexes (a proof needs whole runs: the 15 nodes that
    a non-stored level is recomputed from are neighbours): each run is one index range scan,
    where a lookup per key cost ~75 index descents per proof.
    """
    if not keys:
        return {}
    runs = _ranges(keys)
    if ledger.postgres:
        # OR-ed ranges: PostgreSQL plans them as a BitmapOr of index range scans, and the
        # query is ~2x cheaper than joining arrays (unnest) on every proof.
        parts, params = [], []
        leaf_runs = [(lo, hi) for level, lo, hi in runs if level == 0]
        node_runs = [run for run in runs if run[0] > 0]
        if leaf_runs:
            terms = " OR ".join("leaf_index BETWEEN ? AND ?" for _ in leaf_runs)
            parts.append(
                f"SELECT 0, leaf_index, leaf_hash FROM ledger_leaves WHERE tenant = ? AND ({terms})"
            )
            params += [tenant, *(value for run in leaf_runs for value in run)]
        if node_runs:
            terms = " OR ".join("(level = ? AND node_index BETWEEN ? AND ?)" for _ in node_runs)
            parts.append(
                f"SELECT level, node_index, hash FROM ledger_nodes WHERE tenant = ? AND ({terms})"
            )
            params += [tenant, *(value for run in node_runs for value in run)]
        cur.execute(" UNION ALL ".join(parts), params)
    else:
        # One single-table range query per run, UNION ALL: each is an index range scan whatever
        # the statistics say. (Joining a VALUES table of runs was as fast until ANALYZE, after
        # which SQLite built a Bloom filter over the tenant's nodes for every proof: 17 ms.)
        parts, params = [], []
        for level, lo, hi in runs:
            if level == 0:
                parts.append(
                    "SELECT 0, leaf_index, leaf_hash FROM ledger_leaves"
                    " WHERE tenant = ? AND leaf_index BETWEEN ? AND ?"
                )
                params += [tenant, lo, hi]
            else:
                parts.append(
                    "SELECT level, node_index, hash FROM ledger_nodes"
                    " WHERE tenant = ? AND level = ? AND node_index BETWEEN ? AND ?"
                )
                params += [tenant, level, lo, hi]
        cur.execute(" UNION ALL ".join(parts), params)
    return {(int(level), int(index)): bytes(h) for level, index, h in cur.fetchall()}


def _stored_under(key: NodeKey) -> list[NodeKey]:
    """The stored nodes that node `key` is computed from: itself if its level is stored."""
    level, index = key
    span = level % NODE_LEVEL_STEP
    base, first = level - span, index << span
    return [(base, first + k) for k in range(1 << span)]


def _fold_perfect(hashes: list[bytes]) -> bytes:
    """The root of a perfect subtree from its 2^k nodes at one level."""
    row = hashes
    sha256 = hashlib.sha256
    while len(row) > 1:
        row = [sha256(b"\x01" + a + b).digest() for a, b in zip(row[::2], row[1::2], strict=True)]
    return row[0]


def _select_nodes(
    ledger: LedgerStore, cur: Cursor, tenant: str, keys: Sequence[NodeKey]
) -> dict[NodeKey, bytes]:
    """Any nodes by key (stored or not), from one query; keys whose subtree is absent omitted."""
    step = NODE_LEVEL_STEP
    computed = {key: _stored_under(key) for key in keys if key[0] % step}
    wanted = [key for key in keys if not key[0] % step]
    for plan in computed.values():
        wanted += plan
    stored = _select_stored(ledger, cur, tenant, wanted)
    found = {key: stored[key] for key in keys if not key[0] % step and key in stored}
    for key, plan in computed.items():
        parts = [stored.get(k) for k in plan]
        if None not in parts:
            found[key] = _fold_perfect(parts)  # type: ignore[arg-type]
    return found


CACHED_LEVEL = 4
"""Nodes from this level up are cached by LedgerStore.node_cache (see SqlNodeStore)."""


class SqlNodeStore:
    """A read-only NodeStore over one tenant's tree: what proofs and roots read.

    Nodes never change once they exist (a node is the hash of a complete subtree), so those of
    the upper levels, which most proofs share, are kept in the LedgerStore's bounded cache:
    a proof then reads only its lower levels, two or three index range scans.
    """

    def __init__(
        self, ledger: LedgerStore, tenant: str, size: int | None = None, *, cached: bool = True
    ) -> None:
        self.ledger = ledger
        self.tenant = tenant
        self._size = size
        self.cached = cached

    def size(self) -> int:
        if self._size is None:
            return self.ledger.tree_size(self.tenant)
        return self._size

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        if not keys:
            return {}
        if not self.cached:
            with self.ledger.store._read() as cur:
                return _select_nodes(self.ledger, cur, self.tenant, keys)
        cache, tenant = self.ledger.node_cache, self.tenant
        found: dict[NodeKey, bytes] = {}
        missing: list[NodeKey] = []
        for key in keys:
            value = cache.get((tenant, *key)) if key[0] >= CACHED_LEVEL else None
            if value is None:
                missing.append(key)
            else:
                found[key] = value
        if missing:
            with self.ledger.store._read() as cur:
                fetched = _select_nodes(self.ledger, cur, tenant, missing)
            found.update(fetched)
            if len(cache) > NODE_CACHE_SIZE:
                cache.clear()
            for (level, index), value in fetched.items():
                if level >= CACHED_LEVEL:
                    cache[(tenant, level, index)] = value
        return found

    def put_nodes(self, nodes: Mapping[NodeKey, bytes]) -> None:
        raise TypeError("SqlNodeStore is read-only: append through LedgerStore.transaction()")


class TxnNodeStore:
    """The NodeStore append_leaves writes through, inside a ledger transaction.

    Level-0 nodes go to ledger_leaves together with each leaf's position and event id (the leaf
    index); interior nodes of the stored levels (NODE_LEVEL_STEP) to ledger_nodes; the others
    are not stored. Everything read or written is kept, so the new root needs no further
    query. `leaves[k]` describes the leaf of index size() + k: append_leaves must be called with
    exactly their hashes.
    """

    def __init__(
        self,
        ledger: LedgerStore,
        cur: Cursor,
        tenant: str,
        leaves: Sequence[LeafInput],
        raw: Any = None,
    ) -> None:
        self.ledger = ledger
        self.cur = cur
        self.raw = raw  # the psycopg cursor on PostgreSQL, for COPY
        self.tenant = tenant
        self.leaves = leaves
        self.cache: dict[NodeKey, bytes] = {}
        self._written: Mapping[NodeKey, bytes] = {}
        self._size = _tree_size(ledger, cur, tenant)

    def size(self) -> int:
        return self._size

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        written, cache = self._written, self.cache
        missing = [key for key in keys if key not in cache and key not in written]
        if missing:
            cache.update(_select_nodes(self.ledger, self.cur, self.tenant, missing))
        found = {key: cache[key] for key in keys if key in cache}
        found.update((key, written[key]) for key in keys if key in written)
        return found

    def put_nodes(self, nodes: Mapping[NodeKey, bytes]) -> None:
        first, tenant, leaves = self._size, self.tenant, self.leaves
        end = first + len(leaves)
        if len(leaves) and ((0, first) not in nodes or (0, end - 1) not in nodes):
            raise ValueError(f"the batch does not hold the leaves {first} to {end - 1} described")
        # Built from the leaves and the stored levels' index ranges, not by scanning the ~2n
        # nodes of the batch: the new complete nodes of level L are (first >> L) to (end >> L).
        if len(leaves) and (
            nodes[(0, first)] != leaves[0].leaf_hash or nodes[(0, end - 1)] != leaves[-1].leaf_hash
        ):
            raise ValueError("the batch's leaf hashes are not those of the leaves described")
        leaf_rows = [
            (tenant, index, position, event_id, leaf_hash)
            for index, (position, event_id, leaf_hash, _) in enumerate(leaves, first)
        ]
        node_rows: list[tuple[Any, ...]] = []
        level = NODE_LEVEL_STEP
        while end >> level:
            node_rows += [
                (tenant, level, index, nodes[(level, index)])
                for index in range(first >> level, end >> level)
            ]
            level += NODE_LEVEL_STEP
        if self.ledger.postgres:
            name = _copy_text(tenant)
            self._copy(
                "ledger_leaves (tenant, leaf_index, position, event_id, leaf_hash)",
                [f"{name}\t{i}\t{p}\t{e}\t\\\\x{h.hex()}\n" for _, i, p, e, h in leaf_rows],
            )
            self._copy(
                "ledger_nodes (tenant, level, node_index, hash)",
                [f"{name}\t{lv}\t{i}\t\\\\x{h.hex()}\n" for _, lv, i, h in node_rows],
            )
        else:
            self.cur.executemany(
                "INSERT INTO ledger_leaves (tenant, leaf_index, position, event_id, leaf_hash)"
                " VALUES (?, ?, ?, ?, ?)",
                leaf_rows,
            )
            self.cur.executemany(
                "INSERT INTO ledger_nodes (tenant, level, node_index, hash) VALUES (?, ?, ?, ?)",
                node_rows,
            )
        self._written = nodes  # the new root reads from here: no copy of ~2n nodes
        self._size = end

    def _copy(self, target: str, lines: list[str]) -> None:
        """COPY in PostgreSQL's text format, the lines joined into one write: its fastest insert
        (a row-by-row INSERT is 3-5x slower), and with the rows formatted by str.join rather
        than by psycopg's per-row binary dumpers (which, with a UUID object per event id, cost
        more than the server's whole insert: 1.4x the leaves per CPU-second)."""
        if not lines:
            return
        with self.raw.copy(f"COPY {target} FROM STDIN") as copy:
            copy.write("".join(lines))


def _copy_text(value: str) -> str:
    """A text value as COPY's text format writes it (backslash escapes, no tab or newline)."""
    if not any(c in value for c in "\\\t\n\r"):
        return value
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )
