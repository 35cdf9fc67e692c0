"""The ledger as a service: receipts at write time, checkpoints and proofs on request.

What the API and the CLI use. Each tenant's tree is signed with the tenant's key (a KeySource:
TenantKeyring in a server). Proofs never wait for a stored checkpoint: the tree of any integrated
size can be signed on request, from the stored nodes, so an event's inclusion proof is available
as soon as the integrator has added it (milliseconds after the commit). Stored checkpoints (those
the integrator signs per interval) are returned as they are when one exists at the size asked.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from consentry.domain.errors import NotFoundError, ValidationError
from consentry.domain.events import RecordedEvent, format_time
from consentry.ledger.checkpoint import Checkpoint, SigningKey, VerifierKey, sign_checkpoint
from consentry.ledger.hasher import hash_leaf
from consentry.ledger.integrator import BackgroundIntegrator, Integrator
from consentry.ledger.proof import consistency_proof, inclusion_proof
from consentry.ledger.receipt import Receipt, sign_receipt
from consentry.ledger.tree import root
from consentry.storage.ledger_store import LedgerStore, SqlNodeStore, StoredLeaf
from consentry.storage.sql import SqlStore

__all__ = [
    "CheckpointView",
    "ConsistencyView",
    "InclusionView",
    "KeySource",
    "LedgerService",
    "NotIntegratedError",
]


class KeySource(Protocol):
    """Each tenant's signing key and every public key it ever used (TenantKeyring)."""

    def signing_key(self, tenant: str) -> SigningKey: ...

    def verifiers(self, tenant: str) -> list[VerifierKey]: ...


class NotIntegratedError(NotFoundError):
    """The event is committed but not yet in the tree: retry in a moment."""

    code = "not_integrated"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass(frozen=True, slots=True)
class CheckpointView:
    """A signed checkpoint of a tenant's tree, and whether it is one the integrator stored."""

    origin: str
    tree_size: int
    root_hash: bytes
    timestamp: datetime
    note: str
    stored: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "tree_size": self.tree_size,
            "root_hash": b64(self.root_hash),
            "timestamp": format_time(self.timestamp),
            "stored": self.stored,
            "checkpoint": self.note,
        }


@dataclass(frozen=True, slots=True)
class InclusionView:
    """An event's leaf, its RFC 9162 audit path in a tree of `tree_size` leaves, and that tree."""

    leaf: StoredLeaf
    tree_size: int
    proof: list[bytes]
    checkpoint: CheckpointView

    def to_dict(self, *, with_checkpoint: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "event_id": self.leaf.event_id,
            "position": self.leaf.position,
            "leaf_index": self.leaf.leaf_index,
            "leaf_hash": b64(self.leaf.leaf_hash),
            "tree_size": self.tree_size,
            "inclusion_proof": [b64(h) for h in self.proof],
        }
        if with_checkpoint:
            data["checkpoint"] = self.checkpoint.note
        return data


@dataclass(frozen=True, slots=True)
class ConsistencyView:
    first: int
    second: int
    proof: list[bytes]
    checkpoint: CheckpointView

    def to_dict(self) -> dict[str, Any]:
        return {
            "from": self.first,
            "to": self.second,
            "consistency_proof": [b64(h) for h in self.proof],
            "checkpoint": self.checkpoint.note,
        }


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class LedgerService:
    store: SqlStore
    keys: KeySource
    batch_size: int = 10_000
    checkpoint_interval: float = 10.0
    poll_interval: float = 0.2
    clock: Callable[[], datetime] = _utcnow

    def __post_init__(self) -> None:
        self.ledger = LedgerStore(self.store)

    # Write time -----------------------------------------------------------------------------
    def receipt(self, event: RecordedEvent) -> Receipt:
        """The signed promise that `event` is (or will shortly be) in its tenant's tree."""
        key = self.keys.signing_key(event.tenant)
        return sign_receipt(
            key, hash_leaf(event.canonical_bytes()), event.position, event.recorded_at
        )

    # Integration ----------------------------------------------------------------------------
    def integrator(self) -> Integrator:
        return Integrator(
            self.ledger,
            self.keys.signing_key,
            batch_size=self.batch_size,
            checkpoint_interval=self.checkpoint_interval,
            clock=self.clock,
        )

    def background(self) -> BackgroundIntegrator:
        """An integrator thread (not started): wire `.wake` as a recorder listener."""
        return BackgroundIntegrator(self.integrator(), self.poll_interval)

    def integrate(self) -> int:
        """Integrate everything committed so far (tests, `consentry integrate --once`)."""
        return self.integrator().catch_up()

    # Checkpoints ----------------------------------------------------------------------------
    def checkpoint(self, tenant: str, size: int | None = None) -> CheckpointView:
        """A signed checkpoint of the tenant's tree at `size` (default: all integrated leaves).

        The stored one when the integrator signed that size, else one signed now from the
        stored nodes (any past size can be: nodes never change).
        """
        current = self.ledger.tree_size(tenant)
        return self._checkpoint(tenant, current, current if size is None else size)

    def _checkpoint(self, tenant: str, current: int, size: int) -> CheckpointView:
        if size < 0:
            raise ValidationError("size must not be negative")
        if size > current:
            raise ValidationError(
                f"size {size} is beyond the ledger of tenant {tenant!r}, which has {current} leaves"
            )
        stored = self.ledger.checkpoint_at(tenant, size) if size else None
        if stored is not None:
            return CheckpointView(
                origin=stored.note.split("\n", 1)[0],
                tree_size=stored.tree_size,
                root_hash=stored.root_hash,
                timestamp=stored.signed_at,
                note=stored.note,
                stored=True,
            )
        key = self.keys.signing_key(tenant)
        root_hash = root(self._nodes(tenant, current), size)
        checkpoint = Checkpoint(key.name, size, root_hash, self.clock())
        assert checkpoint.timestamp is not None
        return CheckpointView(
            origin=key.name,
            tree_size=size,
            root_hash=root_hash,
            timestamp=checkpoint.timestamp,
            note=sign_checkpoint(checkpoint, key),
            stored=False,
        )

    def _nodes(self, tenant: str, current: int) -> SqlNodeStore:
        return self.ledger.node_store(tenant, current)

    # Proofs ---------------------------------------------------------------------------------
    def inclusion(self, tenant: str, event_id: uuid.UUID, size: int | None = None) -> InclusionView:
        """The event's inclusion proof in the tenant's tree at `size` (default: the latest)."""
        leaf = self.ledger.leaves_for_events(tenant, [event_id]).get(str(event_id))
        if leaf is None:
            if not self.store.get_events(tenant, [event_id]):
                raise NotFoundError(f"event {event_id} does not exist")
            raise NotIntegratedError(
                f"event {event_id} is committed but not yet in the ledger; the integrator adds"
                " it within a second: retry shortly"
            )
        current = self.ledger.tree_size(tenant)
        return self._inclusion(tenant, leaf, current, current if size is None else size)

    def _inclusion(
        self,
        tenant: str,
        leaf: StoredLeaf,
        current: int,
        size: int,
        checkpoint: CheckpointView | None = None,
    ) -> InclusionView:
        if not leaf.leaf_index < size <= current:
            raise ValidationError(
                f"event {leaf.event_id} is leaf {leaf.leaf_index} of the ledger: ask a size"
                f" from {leaf.leaf_index + 1} to {current}"
            )
        proof = inclusion_proof(self._nodes(tenant, current), leaf.leaf_index, size)
        checkpoint = checkpoint or self._checkpoint(tenant, current, size)
        return InclusionView(leaf, size, proof, checkpoint)

    def inclusions(
        self, tenant: str, events: Sequence[RecordedEvent]
    ) -> tuple[CheckpointView | None, dict[str, InclusionView]]:
        """Inclusion proofs of many events against one checkpoint (the latest), by event id.

        Events not yet integrated are absent from the result.
        """
        leaves = self.ledger.leaves_for_events(tenant, [e.event_id for e in events])
        current = self.ledger.tree_size(tenant)
        if not leaves or current == 0:
            return None, {}
        checkpoint = self._checkpoint(tenant, current, current)
        return checkpoint, {
            event_id: self._inclusion(tenant, leaf, current, current, checkpoint)
            for event_id, leaf in leaves.items()
        }

    def consistency(self, tenant: str, first: int, second: int | None = None) -> ConsistencyView:
        """Proof that the tree of `second` leaves (default: latest) extends that of `first`."""
        current = self.ledger.tree_size(tenant)
        second = current if second is None else second
        if not 0 < first <= second:
            raise ValidationError(
                f"a consistency proof needs 0 < from <= to, got from={first} to={second}"
            )
        if second > current:
            raise ValidationError(
                f"to={second} is beyond the ledger of tenant {tenant!r}, which has {current} leaves"
            )
        proof = consistency_proof(self._nodes(tenant, current), first, second)
        return ConsistencyView(first, second, proof, self._checkpoint(tenant, current, second))

    # Keys -----------------------------------------------------------------------------------
    def public_keys(self, tenant: str) -> dict[str, Any]:
        """Every public key the tenant's checkpoints and receipts may be signed with."""
        current = self.keys.signing_key(tenant).verifier
        keys = self.keys.verifiers(tenant)
        return {
            "origin": current.name,
            "keys": [
                {
                    "key_id": key.key_id.hex(),
                    "verifier_key": key.to_string(),
                    "public_key": b64(key.raw),
                    "current": key == current,
                }
                for key in keys
            ],
        }
