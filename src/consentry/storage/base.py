"""The storage protocol: the log, the state, the catalogue and the keys, for every backend.

One protocol, one module per technology (sqlite, postgres), one contract suite that every backend
passes. Services depend on this protocol only, never on a driver.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from consentry.domain.events import NewEvent, RecordedEvent
from consentry.domain.notices import Notice
from consentry.domain.purposes import Purpose


class Role(StrEnum):
    """What an API key may do: admin everything, collector write, checker read decisions,
    auditor read history and proofs."""

    ADMIN = "admin"
    COLLECTOR = "collector"
    CHECKER = "checker"
    AUDITOR = "auditor"


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    tenant: str
    role: Role
    created_at: datetime
    label: str = ""
    revoked_at: datetime | None = None


class SchemaState(StrEnum):
    EMPTY = "empty"
    CURRENT = "current"
    BEHIND = "behind"
    AHEAD = "ahead"


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    state: SchemaState
    version: int
    latest: int


@dataclass(frozen=True, slots=True)
class AppendResult:
    """The committed events of one request; `replayed` when a retry found them already there."""

    events: tuple[RecordedEvent, ...]
    replayed: bool = False

    @property
    def token(self) -> int:
        """Read-your-writes token (invariant 7): the highest position this request touched."""
        return max((e.position for e in self.events), default=0)


class SchemaError(RuntimeError):
    """The database schema is missing, older or newer than this code: run `consentry migrate`."""


class StoreUnavailableError(RuntimeError):
    """The database cannot be reached; the decision path answers `unavailable`."""


class ConsentStore(Protocol):
    """The system of record. Every method is one transaction; append is atomic (invariant 2)."""

    def schema_status(self) -> SchemaStatus:
        """Where the schema stands against this code, so serve can refuse a mismatch."""
        ...

    def migrate(self) -> list[int]:
        """Apply pending migrations; return the versions applied. Refuses a newer schema."""
        ...

    def require_current_schema(self) -> None:
        """Raise SchemaError naming the command to run unless the schema is current."""
        ...

    def close(self) -> None: ...

    def ping(self) -> None:
        """Raise StoreUnavailableError unless the database answers."""
        ...

    def installation_id(self) -> str:
        """This installation's random id, created by the migration that made its schema: what
        it shares with other installations (the Redis cache) is named after it."""
        ...

    # Tenants and keys --------------------------------------------------------------------
    def ensure_tenant(self, name: str) -> bool:
        """Create the tenant if missing; True when created."""
        ...

    def tenant_exists(self, name: str) -> bool: ...

    def add_api_key(self, key: ApiKey, key_hash: str) -> None:
        """Store a key by its hash only: a stolen database reveals no usable key."""
        ...

    def find_api_key(self, key_hash: str) -> ApiKey | None: ...

    def list_api_keys(self, tenant: str) -> list[ApiKey]: ...

    def count_api_keys(self) -> int: ...

    def revoke_api_key(
        self,
        tenant: str,
        key_id: str,
        at: datetime,
        *,
        revoked_by: str = "",
        keep_an_admin: bool = True,
    ) -> ApiKey:
        """Revoke the tenant's key from `at` on (now, or later for a rotation's grace period).

        An earlier time replaces a later one, never the reverse; each change is a row in the
        revocation log and bumps the revocation generation. NotFoundError if the tenant has no
        such key; with `keep_an_admin`, ConflictError if it is the tenant's last admin key
        still in force (checked in the same transaction, so two revocations cannot both pass).
        """
        ...

    def api_key_generation(self) -> int:
        """The revocation generation: it changes whenever any key is revoked (one cheap read)."""
        ...

    # Catalogue ---------------------------------------------------------------------------
    def add_purpose(self, tenant: str, purpose: Purpose) -> bool:
        """Insert; True if new, False if an identical purpose exists; ConflictError if it differs
        (a purpose's basis is part of every event recorded against it, so it never changes)."""
        ...

    def get_purposes(self, tenant: str) -> list[Purpose]: ...

    def add_notice(self, tenant: str, notice: Notice) -> bool:
        """Append a notice version; True if new, False if identical, ConflictError if it
        differs. Versions of one notice must be published in increasing order."""
        ...

    def get_notices(self, tenant: str, notice_id: str | None = None) -> list[Notice]:
        """Every version (of one notice, or all), oldest first."""
        ...

    # The log -----------------------------------------------------------------------------
    def append(
        self,
        tenant: str,
        events: Sequence[NewEvent],
        *,
        idempotency_key: str | None = None,
        request_hash: str | None = None,
    ) -> AppendResult:
        """Commit events, state and idempotency record together (invariants 1-4).

        A retry with the same event ids, or the same idempotency key and request hash, writes
        nothing and returns the first result; the same key with another request is a conflict.
        """
        ...

    def head(self) -> int:
        """The highest committed position (0 for an empty log)."""
        ...

    def events_after(
        self, position: int, limit: int, tenant: str | None = None
    ) -> list[RecordedEvent]:
        """Committed events with position > `position`, in position order, gapless."""
        ...

    def subject_history(self, tenant: str, subject: str) -> list[RecordedEvent]:
        """Every event of one subject, in position order."""
        ...

    def subject_state(self, tenant: str, subject: str) -> list[RecordedEvent]:
        """The current deciding event of each of the subject's purposes (the projection)."""
        ...

    def state_snapshot(self, tenant: str, after_subject: str, limit: int) -> list[RecordedEvent]:
        """The projection of a tenant, paged by subject, to bootstrap replicas."""
        ...

    def get_events(self, tenant: str, event_ids: Sequence[uuid.UUID]) -> list[RecordedEvent]: ...

    # Positions of readers of the log (relay, integrator) ---------------------------------
    def get_offset(self, name: str) -> int: ...

    def set_offset(self, name: str, position: int) -> None: ...
