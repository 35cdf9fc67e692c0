"""Sessions of the operators' console: server-side records (migration 0010, docs/admin.md).

A session is opened by signing in with an API key. The browser holds a random session id; this
store keeps only its SHA-256 (a copy of the database opens no session), the key it was opened
with, and when it expires. Tenant and role are read through the key on every lookup, and a key
revoked by now (api_keys.revoked_at) finds no session: revoking a key ends its sessions at once,
on every server, with no cache to wait for. Sign-out deletes the row. On the same database as
the log, through the SqlStore's connection hooks (as collection.py), so both backends run it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consentry.storage.base import ApiKey, Role
from consentry.storage.sql import SqlStore


@dataclass(frozen=True, slots=True)
class AdminSession:
    """An open session and the key behind it."""

    key: ApiKey
    created_at: datetime
    expires_at: datetime


@dataclass
class AdminSessionStore:
    store: SqlStore

    def open(self, session_hash: str, key: ApiKey, now: datetime, expires_at: datetime) -> None:
        """Record a new session; expired sessions are swept in the same transaction."""
        s = self.store
        with s._write() as cur:
            cur.execute(
                s._sql("DELETE FROM admin_sessions WHERE expires_at <= ?"), (s._ts_in(now),)
            )
            cur.execute(
                s._sql(
                    "INSERT INTO admin_sessions (session_hash, key_id, created_at, expires_at)"
                    " VALUES (?, ?, ?, ?)"
                ),
                (session_hash, key.key_id, s._ts_in(now), s._ts_in(expires_at)),
            )

    def find(self, session_hash: str, now: datetime) -> AdminSession | None:
        """The session, if it exists, has not expired, and its key is not revoked by `now`."""
        s = self.store
        with s._read() as cur:
            cur.execute(
                s._sql(
                    "SELECT k.key_id, k.tenant, k.role, k.created_at, k.label, k.revoked_at,"
                    " a.created_at, a.expires_at"
                    " FROM admin_sessions a JOIN api_keys k ON k.key_id = a.key_id"
                    " WHERE a.session_hash = ? AND a.expires_at > ?"
                    " AND (k.revoked_at IS NULL OR k.revoked_at > ?)"
                ),
                (session_hash, s._ts_in(now), s._ts_in(now)),
            )
            row = cur.fetchone()
        if row is None:
            return None
        key = ApiKey(
            key_id=row[0],
            tenant=row[1],
            role=Role(row[2]),
            created_at=s._ts_out(row[3]),
            label=row[4],
            revoked_at=s._ts_out(row[5]) if row[5] is not None else None,
        )
        return AdminSession(key, s._ts_out(row[6]), s._ts_out(row[7]))

    def close(self, session_hash: str) -> bool:
        """End a session (sign-out); True if it was open."""
        s = self.store
        with s._write() as cur:
            cur.execute(
                s._sql("DELETE FROM admin_sessions WHERE session_hash = ? RETURNING session_hash"),
                (session_hash,),
            )
            return cur.fetchone() is not None
