"""Single-use tokens: the ids of preference links already exchanged (migration 0008).

A preference link is a bearer credential in an email; once its person has opened it, a copy
(forwarded, in a proxy's log, in the browser's history) must open nothing. The preference center
claims the link's id here when it exchanges the link for its session cookie; a second claim of
the same id fails. Like collection.py, it runs on every backend through the SqlStore's hooks.
Rows are deleted once the token they stand for has expired (it could not verify anyway).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from consentry.storage.sql import SqlStore, utcnow

# Kept past a token's exp for at least the verifier's leeway (tokens.DEFAULT_LEEWAY_SECONDS).
KEEP_AFTER_EXPIRY_SECONDS = 600


@dataclass
class TokenUses:
    store: SqlStore

    def used(self, tenant: str, token_id: str) -> bool:
        s = self.store
        with s._read() as cur:
            cur.execute(
                s._sql("SELECT 1 FROM used_tokens WHERE tenant = ? AND token_id = ?"),
                (tenant, token_id),
            )
            return cur.fetchone() is not None

    def claim(self, tenant: str, token_id: str, expires_at: int) -> bool:
        """Record the token as used; True the first time, False if it already was.

        The write cursor holds the store's single-writer lock, so the look and the insert
        cannot interleave with another claim of the same id.
        """
        s = self.store
        with s._write() as cur:
            cur.execute(
                s._sql("DELETE FROM used_tokens WHERE expires_at < ?"),
                (int(time.time()) - KEEP_AFTER_EXPIRY_SECONDS,),
            )
            cur.execute(
                s._sql("SELECT 1 FROM used_tokens WHERE tenant = ? AND token_id = ?"),
                (tenant, token_id),
            )
            if cur.fetchone() is not None:
                return False
            cur.execute(
                s._sql(
                    "INSERT INTO used_tokens (tenant, token_id, used_at, expires_at)"
                    " VALUES (?, ?, ?, ?)"
                ),
                (tenant, token_id, s._ts_in(utcnow()), int(expires_at)),
            )
            return True
