"""The catalogue of a tenant (purposes and notices), cached in-process.

Every write and every decision needs the tenant's purposes; they change rarely. The cache is
dropped on a change made through this process and expires after `ttl` seconds, so a change made
through another worker is seen within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from consentry.domain.notices import MaterialChange, Notice, material_changes
from consentry.domain.purposes import Purpose
from consentry.storage.base import ConsentStore


@dataclass(frozen=True, slots=True)
class TenantCatalog:
    purposes: dict[str, Purpose]
    notices: tuple[Notice, ...]
    changes: dict[str, tuple[MaterialChange, ...]]
    loaded_at: float


@dataclass
class Catalog:
    store: ConsentStore
    ttl: float = 2.0
    clock: Callable[[], float] = time.monotonic
    _tenants: dict[str, TenantCatalog] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, tenant: str) -> TenantCatalog:
        cached = self._tenants.get(tenant)
        now = self.clock()
        if cached is not None and now - cached.loaded_at < self.ttl:
            return cached
        purposes = {p.id: p for p in self.store.get_purposes(tenant)}
        notices = tuple(self.store.get_notices(tenant))
        changes = {pid: material_changes(notices, pid) for pid in purposes}
        loaded = TenantCatalog(purposes, notices, changes, now)
        with self._lock:
            self._tenants[tenant] = loaded
        return loaded

    def purposes(self, tenant: str) -> dict[str, Purpose]:
        return self.get(tenant).purposes

    def notices(self, tenant: str, notice_id: str) -> list[Notice]:
        return [n for n in self.get(tenant).notices if n.id == notice_id]

    def purpose(self, tenant: str, purpose_id: str) -> Purpose | None:
        """One purpose; a miss reloads once, so a purpose just created elsewhere is found."""
        found = self.get(tenant).purposes.get(purpose_id)
        if found is None:
            self.invalidate(tenant)
            found = self.get(tenant).purposes.get(purpose_id)
        return found

    def invalidate(self, tenant: str) -> None:
        with self._lock:
            self._tenants.pop(tenant, None)
