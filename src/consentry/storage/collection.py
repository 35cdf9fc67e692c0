"""Collection settings: each tenant's signal mapping and banner settings, as versioned documents.

A separate store on the same database as the log (migration 0004), using the SqlStore's
connection hooks, so that it runs on every backend without a line of driver code. Every change
is a new version (append-only, like notices): an event recorded from a TC or GPP string can be
explained by the mapping in force when it was recorded.

The documents are JSON objects whose shape the services define (recording/signals_in.py for the
mapping, ui/banner.py for the banner); this module only stores and versions them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from consentry.domain.errors import ValidationError
from consentry.storage.sql import SqlStore, utcnow


class SettingsKind(StrEnum):
    MAPPING = "mapping"
    BANNER = "banner"


@dataclass(frozen=True, slots=True)
class SettingsDocument:
    tenant: str
    kind: SettingsKind
    version: int
    body: dict[str, Any]
    created_at: datetime


@dataclass
class CollectionStore:
    """Versioned settings documents per (tenant, kind), cached in-process for `ttl` seconds."""

    store: SqlStore
    ttl: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _cache: dict[tuple[str, SettingsKind], tuple[float, SettingsDocument | None]] = field(
        default_factory=dict
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def latest(self, tenant: str, kind: SettingsKind) -> SettingsDocument | None:
        """The newest version, or None when the tenant never set this kind."""
        key = (tenant, kind)
        now = self.clock()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        s = self.store
        with s._read() as cur:
            cur.execute(
                s._sql(
                    "SELECT version, body, created_at FROM collection_settings"
                    " WHERE tenant = ? AND kind = ? ORDER BY version DESC LIMIT 1"
                ),
                (tenant, kind.value),
            )
            row = cur.fetchone()
        doc = None
        if row is not None:
            doc = SettingsDocument(tenant, kind, int(row[0]), json.loads(row[1]), s._ts_out(row[2]))
        with self._lock:
            self._cache[key] = (now, doc)
        return doc

    def history(self, tenant: str, kind: SettingsKind) -> list[SettingsDocument]:
        """Every version, oldest first."""
        s = self.store
        with s._read() as cur:
            cur.execute(
                s._sql(
                    "SELECT version, body, created_at FROM collection_settings"
                    " WHERE tenant = ? AND kind = ? ORDER BY version"
                ),
                (tenant, kind.value),
            )
            rows = cur.fetchall()
        return [
            SettingsDocument(tenant, kind, int(r[0]), json.loads(r[1]), s._ts_out(r[2]))
            for r in rows
        ]

    def put(self, tenant: str, kind: SettingsKind, body: dict[str, Any]) -> SettingsDocument:
        """Store a new version; an identical body returns the current version unchanged."""
        if not self.store.tenant_exists(tenant):
            raise ValidationError(f"tenant {tenant!r} does not exist")
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        s = self.store
        created_at = utcnow()
        with s._write() as cur:
            cur.execute(
                s._sql(
                    "SELECT version, body, created_at FROM collection_settings"
                    " WHERE tenant = ? AND kind = ? ORDER BY version DESC LIMIT 1"
                ),
                (tenant, kind.value),
            )
            row = cur.fetchone()
            if row is not None and row[1] == text:
                doc = SettingsDocument(
                    tenant, kind, int(row[0]), json.loads(row[1]), s._ts_out(row[2])
                )
            else:
                version = int(row[0]) + 1 if row is not None else 1
                cur.execute(
                    s._sql(
                        "INSERT INTO collection_settings (tenant, kind, version, body, created_at)"
                        " VALUES (?, ?, ?, ?, ?)"
                    ),
                    (tenant, kind.value, version, text, s._ts_in(created_at)),
                )
                doc = SettingsDocument(tenant, kind, version, json.loads(text), created_at)
        self.invalidate(tenant)
        return doc

    def invalidate(self, tenant: str) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[0] == tenant]:
                self._cache.pop(key, None)
