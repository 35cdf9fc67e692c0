"""What SQLite and PostgreSQL share: the SQL of the log, written once.

The two backends differ in how they connect, lock, and represent times and UUIDs; those are the
abstract hooks below. Everything else (how a request's events, the state and the idempotency
record are committed together, how history and snapshots are read) is here, so both backends
follow the same rules and pass the same contract suite.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Protocol

from consentry.domain.errors import ConflictError, NotFoundError, ValidationError
from consentry.domain.events import (
    Action,
    Actor,
    Evidence,
    NewEvent,
    RecordedEvent,
    Source,
)
from consentry.domain.inputs import check_tenant_name, check_text
from consentry.domain.notices import Notice
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.storage.base import (
    ApiKey,
    AppendResult,
    Role,
    SchemaError,
    SchemaState,
    SchemaStatus,
)

EVENT_COLUMNS = (
    "position, event_id, tenant, subject, subject_version, purpose, action, legal_basis,"
    " occurred_at, recorded_at, source, actor, jurisdiction, notice_id, notice_version,"
    " notice_hash, ip, user_agent, raw_signal, expires_at"
)
_E_COLS = ", ".join("e." + c.strip() for c in EVENT_COLUMNS.split(","))
NOTICE_COLUMNS = "id, version, text, purposes, material, grace_days, published_at, recorded_at"
MAX_LABEL_LENGTH = 200


class Cursor(Protocol):
    """The slice of a DB-API cursor both drivers provide."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(dialect: str) -> list[Migration]:
    """The versioned SQL files of one dialect, in order."""
    folder = resources.files("consentry.storage").joinpath("migrations", dialect)
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append(Migration(version, entry.name, entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    return found


def utcnow() -> datetime:
    return datetime.now(UTC)


class SqlStore(ABC):
    """The log on a SQL database; subclasses supply connections, locking and type mapping."""

    dialect: str

    def __init__(self) -> None:
        self.migrations = load_migrations(self.dialect)
        self.latest_version = self.migrations[-1].version

    # Hooks ---------------------------------------------------------------------------------
    @abstractmethod
    def _read(self) -> AbstractContextManager[Cursor]:
        """A cursor for reading committed data."""

    @abstractmethod
    def _write(self) -> AbstractContextManager[Cursor]:
        """A cursor inside a transaction that holds the log's single-writer lock.

        Holding one lock from position assignment to commit is what makes positions gapless
        and in commit order (invariant 3): a writer with position N+1 cannot commit before N.
        """

    @abstractmethod
    def _apply_migration(self, migration: Migration) -> None: ...

    @abstractmethod
    def _applied_versions(self) -> set[int] | None:
        """The applied migration versions, or None when the database has no Consentry schema."""

    @abstractmethod
    def _ts_in(self, value: datetime) -> Any: ...

    @abstractmethod
    def _ts_out(self, value: Any) -> datetime: ...

    @abstractmethod
    def close(self) -> None:
        """Release connections."""

    def _uuid_in(self, value: uuid.UUID) -> Any:
        return str(value)

    def _sql(self, sql: str) -> str:
        return sql

    # Schema --------------------------------------------------------------------------------
    def schema_status(self) -> SchemaStatus:
        applied = self._applied_versions()
        if applied is None:
            return SchemaStatus(SchemaState.EMPTY, 0, self.latest_version)
        version = max(applied, default=0)
        known = {m.version for m in self.migrations}
        if version > self.latest_version:
            state = SchemaState.AHEAD
        elif known - applied:
            state = SchemaState.BEHIND
        else:
            state = SchemaState.CURRENT
        return SchemaStatus(state, version, self.latest_version)

    def migrate(self) -> list[int]:
        """Apply every known migration not yet applied, in version order (not only those above
        the highest applied: branches merged out of order still get their migration)."""
        status = self.schema_status()
        if status.state is SchemaState.AHEAD:
            raise SchemaError(
                f"the database schema is version {status.version}, newer than this Consentry"
                f" ({status.latest}); upgrade Consentry instead"
            )
        applied_before = self._applied_versions() or set()
        applied = []
        for migration in self.migrations:
            if migration.version not in applied_before:
                self._apply_migration(migration)
                applied.append(migration.version)
        return applied

    def require_current_schema(self) -> None:
        status = self.schema_status()
        if status.state is SchemaState.CURRENT:
            return
        if status.state is SchemaState.AHEAD:
            raise SchemaError(
                f"the database schema is version {status.version}, newer than this Consentry"
                f" supports ({status.latest}); upgrade Consentry"
            )
        raise SchemaError(
            f"the database schema is at version {status.version}, this Consentry needs"
            f" {status.latest}: run `consentry migrate`"
        )

    def ping(self) -> None:
        with self._read() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    def installation_id(self) -> str:
        with self._read() as cur:
            cur.execute("SELECT id FROM installation")
            return str(cur.fetchone()[0])

    # Tenants and keys ----------------------------------------------------------------------
    def ensure_tenant(self, name: str) -> bool:
        check_tenant_name(name)
        with self._write() as cur:
            cur.execute(self._sql("SELECT 1 FROM tenants WHERE name = ?"), (name,))
            if cur.fetchone():
                return False
            cur.execute(
                self._sql("INSERT INTO tenants (name, created_at) VALUES (?, ?)"),
                (name, self._ts_in(utcnow())),
            )
            return True

    def tenant_exists(self, name: str) -> bool:
        with self._read() as cur:
            cur.execute(self._sql("SELECT 1 FROM tenants WHERE name = ?"), (name,))
            return cur.fetchone() is not None

    def add_api_key(self, key: ApiKey, key_hash: str) -> None:
        check_text("label", key.label, max_length=MAX_LABEL_LENGTH)
        if not self.tenant_exists(key.tenant):
            raise ValidationError(f"tenant {key.tenant!r} does not exist")
        with self._write() as cur:
            # Checked here so that both backends raise the domain's error, not a driver's.
            cur.execute(
                self._sql("SELECT 1 FROM api_keys WHERE key_id = ? OR key_hash = ?"),
                (key.key_id, key_hash),
            )
            if cur.fetchone():
                raise ConflictError(f"an API key with id {key.key_id!r} or this hash exists")
            cur.execute(
                self._sql(
                    "INSERT INTO api_keys (key_id, tenant, role, key_hash, label, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)"
                ),
                (
                    key.key_id,
                    key.tenant,
                    key.role.value,
                    key_hash,
                    key.label,
                    self._ts_in(key.created_at),
                ),
            )

    def _api_key(self, row: Sequence[Any]) -> ApiKey:
        return ApiKey(
            key_id=row[0],
            tenant=row[1],
            role=Role(row[2]),
            label=row[3],
            created_at=self._ts_out(row[4]),
            revoked_at=self._ts_out(row[5]) if row[5] is not None else None,
        )

    def find_api_key(self, key_hash: str) -> ApiKey | None:
        with self._read() as cur:
            cur.execute(
                self._sql(
                    "SELECT key_id, tenant, role, label, created_at, revoked_at FROM api_keys"
                    " WHERE key_hash = ?"
                ),
                (key_hash,),
            )
            row = cur.fetchone()
        return self._api_key(row) if row else None

    def list_api_keys(self, tenant: str) -> list[ApiKey]:
        with self._read() as cur:
            cur.execute(
                self._sql(
                    "SELECT key_id, tenant, role, label, created_at, revoked_at FROM api_keys"
                    " WHERE tenant = ? ORDER BY created_at, key_id"
                ),
                (tenant,),
            )
            return [self._api_key(r) for r in cur.fetchall()]

    def count_api_keys(self) -> int:
        with self._read() as cur:
            cur.execute("SELECT COUNT(*) FROM api_keys")
            return int(cur.fetchone()[0])

    def revoke_api_key(
        self,
        tenant: str,
        key_id: str,
        at: datetime,
        *,
        revoked_by: str = "",
        keep_an_admin: bool = True,
    ) -> ApiKey:
        columns = "key_id, tenant, role, label, created_at, revoked_at"
        with self._write() as cur:
            cur.execute(
                self._sql(f"SELECT {columns} FROM api_keys WHERE tenant = ? AND key_id = ?"),
                (tenant, key_id),
            )
            row = cur.fetchone()
            if row is None:
                raise NotFoundError(f"the tenant has no API key {key_id!r}")
            key = self._api_key(row)
            if key.revoked_at is not None and key.revoked_at <= at:
                return key  # already revoked by then: nothing changes
            now = utcnow()
            if keep_an_admin and key.role is Role.ADMIN and at <= now:
                cur.execute(
                    self._sql(
                        "SELECT COUNT(*) FROM api_keys WHERE tenant = ? AND role = ?"
                        " AND key_id <> ? AND (revoked_at IS NULL OR revoked_at > ?)"
                    ),
                    (tenant, Role.ADMIN.value, key_id, self._ts_in(now)),
                )
                if int(cur.fetchone()[0]) == 0:
                    raise ConflictError(
                        f"{key_id!r} is the tenant's last admin key: create another admin key"
                        " first (or rotate this one)"
                    )
            cur.execute(
                self._sql("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?"),
                (self._ts_in(at), key_id),
            )
            cur.execute(
                self._sql(
                    "INSERT INTO api_key_revocations (key_id, tenant, revoked_at, recorded_at,"
                    " revoked_by) VALUES (?, ?, ?, ?, ?)"
                ),
                (key_id, tenant, self._ts_in(at), self._ts_in(now), revoked_by),
            )
        return ApiKey(key.key_id, key.tenant, key.role, key.created_at, key.label, at)

    def api_key_generation(self) -> int:
        with self._read() as cur:
            cur.execute("SELECT MAX(seq) FROM api_key_revocations")
            row = cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # Catalogue -----------------------------------------------------------------------------
    def add_purpose(self, tenant: str, purpose: Purpose) -> bool:
        with self._write() as cur:
            cur.execute(
                self._sql(
                    "SELECT id, name, legal_basis, description, required, lifetime_days,"
                    " opt_out_category FROM purposes WHERE tenant = ? AND id = ?"
                ),
                (tenant, purpose.id),
            )
            row = cur.fetchone()
            if row is not None:
                if _purpose(row) == purpose:
                    return False
                raise ConflictError(
                    f"purpose {purpose.id!r} already exists with different fields; a purpose"
                    " is immutable once created (events refer to its legal basis): create a"
                    " new purpose id instead"
                )
            cur.execute(
                self._sql(
                    "INSERT INTO purposes (tenant, id, name, description, legal_basis, required,"
                    " lifetime_days, opt_out_category, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    tenant,
                    purpose.id,
                    purpose.name,
                    purpose.description,
                    purpose.legal_basis.value,
                    int(purpose.required),
                    purpose.lifetime_days,
                    purpose.opt_out_category.value if purpose.opt_out_category else None,
                    self._ts_in(utcnow()),
                ),
            )
            return True

    def get_purposes(self, tenant: str) -> list[Purpose]:
        with self._read() as cur:
            cur.execute(
                self._sql(
                    "SELECT id, name, legal_basis, description, required, lifetime_days,"
                    " opt_out_category FROM purposes WHERE tenant = ? ORDER BY id"
                ),
                (tenant,),
            )
            return [_purpose(r) for r in cur.fetchall()]

    def add_notice(self, tenant: str, notice: Notice) -> bool:
        with self._write() as cur:
            cur.execute(
                self._sql(
                    f"SELECT {NOTICE_COLUMNS} FROM notices WHERE tenant = ? AND id = ?"
                    " ORDER BY version"
                ),
                (tenant, notice.id),
            )
            existing = [self._notice(r) for r in cur.fetchall()]
            for old in existing:
                if old.version == notice.version:
                    same = (old.text, old.purposes, old.material, old.grace_days) == (
                        notice.text,
                        notice.purposes,
                        notice.material,
                        notice.grace_days,
                    )
                    if same:
                        return False
                    raise ConflictError(
                        f"notice {notice.id!r} version {notice.version} already exists with"
                        " different content; notices are append-only: publish version"
                        f" {existing[-1].version + 1}"
                    )
            if existing and notice.version <= existing[-1].version:
                raise ConflictError(
                    f"notice {notice.id!r}: version {notice.version} is not newer than the"
                    f" latest published version {existing[-1].version}"
                )
            if existing and notice.published_at < existing[-1].published_at:
                raise ConflictError(
                    f"notice {notice.id!r}: version {notice.version} cannot be published before"
                    f" version {existing[-1].version} was"
                )
            cur.execute(
                self._sql(
                    "INSERT INTO notices (tenant, id, version, text, content_hash, purposes,"
                    " material, grace_days, published_at, recorded_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (
                    tenant,
                    notice.id,
                    notice.version,
                    notice.text,
                    notice.content_hash,
                    json.dumps(list(notice.purposes)),
                    int(notice.material),
                    notice.grace_days,
                    self._ts_in(notice.published_at),
                    self._ts_in(utcnow()),  # when we knew it: "as known at" reads this
                ),
            )
            return True

    def _notice(self, row: Sequence[Any]) -> Notice:
        return Notice(
            id=row[0],
            version=int(row[1]),
            text=row[2],
            purposes=tuple(json.loads(row[3])),
            material=bool(row[4]),
            grace_days=int(row[5]),
            published_at=self._ts_out(row[6]),
            recorded_at=self._ts_out(row[7]),
        )

    def get_notices(self, tenant: str, notice_id: str | None = None) -> list[Notice]:
        sql = f"SELECT {NOTICE_COLUMNS} FROM notices WHERE tenant = ?"
        params: list[Any] = [tenant]
        if notice_id is not None:
            sql += " AND id = ?"
            params.append(notice_id)
        sql += " ORDER BY published_at, id, version"
        with self._read() as cur:
            cur.execute(self._sql(sql), params)
            return [self._notice(r) for r in cur.fetchall()]

    # The log -------------------------------------------------------------------------------
    def append(
        self,
        tenant: str,
        events: Sequence[NewEvent],
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> AppendResult:
        if not events:
            raise ValidationError("a request must carry at least one event")
        if any(e.tenant != tenant for e in events):
            raise ValidationError("every event must belong to the request's tenant")
        ids = [e.event_id for e in events]
        if len(set(ids)) != len(ids):
            raise ValidationError("an event_id appears twice in one request")
        with self._write() as cur:
            if idempotency_key is not None:
                replay = self._replay_idempotent(cur, tenant, idempotency_key, request_hash or "")
                if replay is not None:
                    return replay
            existing = self._events_by_id(cur, tenant, ids)
            if existing:
                return self._replay_event_ids(events, existing)
            cur.execute("SELECT position, recorded_at FROM log_head WHERE id = 1")
            head, last_recorded = cur.fetchone()
            recorded_at = utcnow()
            if last_recorded is not None:
                recorded_at = max(recorded_at, self._ts_out(last_recorded))
            versions: dict[str, int] = {}
            for subject in dict.fromkeys(e.subject for e in events):
                cur.execute(
                    self._sql("SELECT version FROM subjects WHERE tenant = ? AND subject = ?"),
                    (tenant, subject),
                )
                row = cur.fetchone()
                versions[subject] = int(row[0]) if row else 0
            recorded: list[RecordedEvent] = []
            for offset, new in enumerate(events, start=1):
                versions[new.subject] += 1
                recorded.append(
                    RecordedEvent.from_new(
                        new,
                        position=int(head) + offset,
                        subject_version=versions[new.subject],
                        recorded_at=recorded_at,
                    )
                )
            cur.executemany(
                self._sql(
                    f"INSERT INTO events ({EVENT_COLUMNS})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                [self._event_row(e) for e in recorded],
            )
            cur.executemany(
                self._sql(
                    "INSERT INTO state (tenant, subject, purpose, position, occurred_at)"
                    " VALUES (?, ?, ?, ?, ?)"
                    " ON CONFLICT (tenant, subject, purpose) DO UPDATE"
                    " SET position = excluded.position, occurred_at = excluded.occurred_at"
                    " WHERE excluded.occurred_at > state.occurred_at"
                    " OR (excluded.occurred_at = state.occurred_at"
                    " AND excluded.position > state.position)"
                ),
                [
                    (tenant, e.subject, e.purpose, e.position, self._ts_in(e.occurred_at))
                    for e in recorded
                ],
            )
            cur.executemany(
                self._sql(
                    "INSERT INTO subjects (tenant, subject, version) VALUES (?, ?, ?)"
                    " ON CONFLICT (tenant, subject) DO UPDATE SET version = excluded.version"
                ),
                [(tenant, s, v) for s, v in versions.items()],
            )
            cur.execute(
                self._sql("UPDATE log_head SET position = ?, recorded_at = ? WHERE id = 1"),
                (recorded[-1].position, self._ts_in(recorded_at)),
            )
            if idempotency_key is not None:
                cur.execute(
                    self._sql(
                        "INSERT INTO idempotency_keys (tenant, key, request_hash, event_ids,"
                        " created_at) VALUES (?, ?, ?, ?, ?)"
                    ),
                    (
                        tenant,
                        idempotency_key,
                        request_hash or "",
                        json.dumps([str(i) for i in ids]),
                        self._ts_in(recorded_at),
                    ),
                )
            return AppendResult(tuple(recorded))

    def _replay_idempotent(
        self, cur: Cursor, tenant: str, key: str, request_hash: str
    ) -> AppendResult | None:
        cur.execute(
            self._sql(
                "SELECT request_hash, event_ids FROM idempotency_keys WHERE tenant = ? AND key = ?"
            ),
            (tenant, key),
        )
        row = cur.fetchone()
        if row is None:
            return None
        if row[0] != request_hash:
            raise ConflictError(
                "this Idempotency-Key was already used for a different request; use a new key"
                " for a new request"
            )
        ids = [uuid.UUID(i) for i in json.loads(row[1])]
        found = {e.event_id: e for e in self._events_by_id(cur, tenant, ids)}
        return AppendResult(tuple(found[i] for i in ids), replayed=True)

    @staticmethod
    def _replay_event_ids(
        events: Sequence[NewEvent], existing: list[RecordedEvent]
    ) -> AppendResult:
        """A retry (every event already recorded, each with the same content) answers the first
        result; anything else is a conflict that names what differs, and writes nothing."""
        by_id = {e.event_id: e for e in existing}
        missing = [str(e.event_id) for e in events if e.event_id not in by_id]
        if missing:
            raise ConflictError(
                "some event_ids of this request are already recorded and others are not"
                f" (new: {', '.join(missing[:5])}); retry the original request unchanged, or"
                " use new event ids for new events",
                [{"field": "event_id", "message": f"{i} is not recorded yet"} for i in missing],
            )
        details = [
            {
                "field": name,
                "message": f"event {new.event_id} is recorded with another {name}",
            }
            for new in events
            for name in new.differences(by_id[new.event_id])
        ]
        if details:
            names = ", ".join(dict.fromkeys(d["field"] for d in details))
            raise ConflictError(
                f"an event_id of this request is already recorded with other content ({names}"
                " differ); a retry must repeat the request unchanged, a new event needs a new"
                " event_id",
                details,
            )
        return AppendResult(tuple(by_id[e.event_id] for e in events), replayed=True)

    def _event_row(self, e: RecordedEvent) -> tuple[Any, ...]:
        ev = e.evidence
        return (
            e.position,
            self._uuid_in(e.event_id),
            e.tenant,
            e.subject,
            e.subject_version,
            e.purpose,
            e.action.value,
            e.legal_basis.value,
            self._ts_in(e.occurred_at),
            self._ts_in(e.recorded_at),
            ev.source.value,
            ev.actor.value,
            ev.jurisdiction,
            ev.notice_id,
            ev.notice_version,
            ev.notice_hash,
            ev.ip,
            ev.user_agent,
            ev.raw_signal,
            self._ts_in(e.expires_at) if e.expires_at else None,
        )

    def _event(self, row: Sequence[Any]) -> RecordedEvent:
        return RecordedEvent(
            position=int(row[0]),
            event_id=row[1] if isinstance(row[1], uuid.UUID) else uuid.UUID(row[1]),
            tenant=row[2],
            subject=row[3],
            subject_version=int(row[4]),
            purpose=row[5],
            action=Action(row[6]),
            legal_basis=LegalBasis(row[7]),
            occurred_at=self._ts_out(row[8]),
            recorded_at=self._ts_out(row[9]),
            evidence=Evidence(
                source=Source(row[10]),
                actor=Actor(row[11]),
                jurisdiction=row[12],
                notice_id=row[13],
                notice_version=row[14],
                notice_hash=row[15],
                ip=row[16],
                user_agent=row[17],
                raw_signal=row[18],
            ),
            expires_at=self._ts_out(row[19]) if row[19] is not None else None,
        )

    def _events_by_id(
        self, cur: Cursor, tenant: str, ids: Sequence[uuid.UUID]
    ) -> list[RecordedEvent]:
        """The tenant's events with these ids. Event ids are unique per tenant (migration
        0005): another tenant's event under the same id is not looked at, so no answer can
        tell whether another tenant used an id."""
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        cur.execute(
            self._sql(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id IN ({marks}) AND tenant = ?"
            ),
            [*(self._uuid_in(i) for i in ids), tenant],
        )
        return [self._event(r) for r in cur.fetchall()]

    def get_events(self, tenant: str, event_ids: Sequence[uuid.UUID]) -> list[RecordedEvent]:
        with self._read() as cur:
            found = self._events_by_id(cur, tenant, event_ids)
        return sorted(found, key=lambda e: e.position)

    def head(self) -> int:
        with self._read() as cur:
            cur.execute("SELECT position FROM log_head WHERE id = 1")
            return int(cur.fetchone()[0])

    def events_after(
        self, position: int, limit: int, tenant: str | None = None
    ) -> list[RecordedEvent]:
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE position > ?"
        params: list[Any] = [position]
        if tenant is not None:
            sql += " AND tenant = ?"
            params.append(tenant)
        sql += " ORDER BY position LIMIT ?"
        params.append(limit)
        with self._read() as cur:
            cur.execute(self._sql(sql), params)
            return [self._event(r) for r in cur.fetchall()]

    def subject_history(self, tenant: str, subject: str) -> list[RecordedEvent]:
        with self._read() as cur:
            cur.execute(
                self._sql(
                    f"SELECT {EVENT_COLUMNS} FROM events WHERE tenant = ? AND subject = ?"
                    " ORDER BY position"
                ),
                (tenant, subject),
            )
            return [self._event(r) for r in cur.fetchall()]

    def subject_state(self, tenant: str, subject: str) -> list[RecordedEvent]:
        with self._read() as cur:
            cur.execute(
                self._sql(
                    f"SELECT {_E_COLS} FROM state s JOIN events e ON e.position = s.position"
                    " WHERE s.tenant = ? AND s.subject = ? ORDER BY s.purpose"
                ),
                (tenant, subject),
            )
            return [self._event(r) for r in cur.fetchall()]

    def state_snapshot(self, tenant: str, after_subject: str, limit: int) -> list[RecordedEvent]:
        """The state of the next `limit` SUBJECTS after `after_subject`, by (subject, purpose).

        The limit counts subjects, not rows: a page always carries every purpose of each subject
        in it, so the next page can start after the last subject returned. (A row limit cut a
        subject's purposes in two and the next page, `subject > last`, skipped the rest.)
        """
        with self._read() as cur:
            cur.execute(
                self._sql(
                    f"SELECT {_E_COLS} FROM state s JOIN events e ON e.position = s.position"
                    " WHERE s.tenant = ? AND s.subject IN (SELECT subject FROM subjects"
                    " WHERE tenant = ? AND subject > ? ORDER BY subject LIMIT ?)"
                    " ORDER BY s.subject, s.purpose"
                ),
                (tenant, tenant, after_subject, limit),
            )
            return [self._event(r) for r in cur.fetchall()]

    # Reader offsets ------------------------------------------------------------------------
    def get_offset(self, name: str) -> int:
        with self._read() as cur:
            cur.execute(self._sql("SELECT position FROM reader_offsets WHERE name = ?"), (name,))
            row = cur.fetchone()
            return int(row[0]) if row else 0

    def set_offset(self, name: str, position: int) -> None:
        with self._write() as cur:
            cur.execute(
                self._sql(
                    "INSERT INTO reader_offsets (name, position, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET position = excluded.position,"
                    " updated_at = excluded.updated_at"
                ),
                (name, position, self._ts_in(utcnow())),
            )


def _purpose(row: Sequence[Any]) -> Purpose:
    return Purpose(
        id=row[0],
        name=row[1],
        legal_basis=LegalBasis(row[2]),
        description=row[3],
        required=bool(row[4]),
        lifetime_days=row[5],
        opt_out_category=OptOutCategory(row[6]) if row[6] else None,
    )


def chunked(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
