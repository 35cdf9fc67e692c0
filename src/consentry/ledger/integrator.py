"""The integrator: adds committed events to their tenant's Merkle tree and signs checkpoints.

It tails the log in position order (the log is gapless and in commit order, DESIGN.md invariant
3), in batches: read the events after the last integrated position, hash their canonical bytes
(RFC 9162 leaf hashes), group them by tenant (each tenant has its own tree, signed with its own
key), and in ONE transaction append every tenant's leaves and the nodes they complete, sign the
checkpoints that are due, and move the integrated position. So:

* a crash, or a restart, resumes from the last committed batch: nothing is lost or doubled;
* two integrators (two `serve` processes, or `consentry integrate` beside a server) cannot fork a
  tree: they serialize on a lock, and the primary keys refuse a node or leaf written twice, so
  the loser of a race rolls back and starts again from what the winner committed;
* the batch is the unit of cost: two queries per tenant and batch plus the inserts, so a backlog
  is absorbed at tens of thousands of leaves per second.

Checkpoints are signed per batch but at most once per `checkpoint_interval` seconds and tenant
(0: every batch); a tree that grew and went quiet gets its checkpoint when the interval has
passed. Proofs do not wait for a stored checkpoint: the API signs one for any integrated size.

In a server, `BackgroundIntegrator` runs this in a thread, woken by the recorder after each
commit (so a proof is available milliseconds after the write), polling otherwise (writes that
other processes commit).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from consentry.ledger.checkpoint import Checkpoint, SigningKey, sign_checkpoint
from consentry.ledger.tree import append_leaves, root
from consentry.storage.base import StoreUnavailableError
from consentry.storage.ledger_store import LeafInput, LedgerConflictError, LedgerStore, LedgerWriter

__all__ = ["BackgroundIntegrator", "CanonicalFormError", "Integrator"]

log = logging.getLogger("consentry.ledger")

SELF_CHECK_SECONDS = 60.0
"""How often the fast canonical bytes are compared with the domain's on a real row."""


@dataclass(frozen=True, slots=True)
class _Batch:
    offset: int
    """The integrated position it was read after: the transaction checks it is still so."""
    last: int
    count: int
    groups: dict[str, list[LeafInput]]


class CanonicalFormError(RuntimeError):
    """The storage's canonical bytes differ from RecordedEvent.canonical_bytes().

    The integrator stops rather than build a tree that receipts would not match: the event
    format changed without the ledger's row-to-bytes path (storage/ledger_store.py).
    """


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Integrator:
    """Appends the log to the per-tenant trees. Not thread-safe: one thread drives it."""

    ledger: LedgerStore
    signer: Callable[[str], SigningKey]
    """The tenant's current signing key (TenantKeyring.signing_key)."""
    batch_size: int = 10_000
    checkpoint_interval: float = 10.0
    clock: Callable[[], datetime] = _utcnow
    monotonic: Callable[[], float] = time.monotonic
    _unsigned: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    _signed_at: dict[str, float] = field(default_factory=dict)
    _checked_at: float | None = None
    _started: bool = False

    def integrate_batch(self) -> int:
        """Integrate up to `batch_size` events; return how many (0: nothing new, or a race lost)."""
        self._start()
        offset = self.ledger.integrated_position()
        batch = self._read(offset, self.ledger.store.head())
        return self._write(batch) if batch is not None else 0

    def _read(self, offset: int, head: int) -> _Batch | None:
        """The events after `offset` (up to `head`), hashed and grouped by tenant."""
        if head <= offset:
            return None
        # Bounded on both sides: a range of the primary key, which every planner answers with
        # an index scan, whatever its statistics say (with `position > ? ... LIMIT` only, a
        # PostgreSQL that had not yet analyzed a freshly loaded log sorted it on disk: 2x).
        # Positions are gapless, so the range holds the whole batch; if events were deleted out
        # of band it may hold none, and the open-ended read finds what follows the hole.
        rows = self.ledger.leaf_inputs_after(
            offset, self.batch_size, upto=min(head, offset + self.batch_size)
        )
        if not rows and head > offset + self.batch_size:
            rows = self.ledger.leaf_inputs_after(offset, self.batch_size, upto=head)
        if not rows:
            return None
        self._self_check(rows[0].position)
        if rows[0].position != offset + 1:
            log.error(
                "the log has no event at position %d (next is %d): deleted out of band?"
                " `consentry verify database` reports it",
                offset + 1,
                rows[0].position,
            )
        groups: dict[str, list[LeafInput]] = {}
        for row in rows:
            groups.setdefault(row.tenant, []).append(row)
        return _Batch(offset, rows[-1].position, len(rows), groups)

    def _write(self, batch: _Batch) -> int:
        """Append a batch read after `batch.offset`, in one transaction; 0 if someone else did."""
        grown: dict[str, tuple[int, bytes]] = {}
        signed: dict[str, float] = {}
        now = self.monotonic()
        with self.ledger.transaction() as txn:
            if txn.integrated_position() != batch.offset:
                return 0  # another integrator committed this batch first
            for tenant, leaves in batch.groups.items():
                nodes = txn.node_store(tenant, leaves)
                size = append_leaves(nodes, [leaf.leaf_hash for leaf in leaves])
                grown[tenant] = (size, root(nodes, size))
            for tenant, (size, root_hash) in grown.items():
                if self._due(tenant, now):
                    self._sign_into(txn, tenant, size, root_hash)
                    signed[tenant] = now
            txn.record_offset(batch.last)
        self._unsigned.update(grown)
        for tenant, at in signed.items():
            self._signed_at[tenant] = at
            self._unsigned.pop(tenant, None)
        return batch.count

    def flush_checkpoints(self, *, force: bool = False) -> int:
        """Sign the checkpoints that are due (all pending ones with `force`); return how many."""
        self._start()
        now = self.monotonic()
        due = [t for t in self._unsigned if force or self._due(t, now)]
        for tenant in due:
            size, root_hash = self._unsigned[tenant]
            try:
                with self.ledger.transaction() as txn:
                    if self.ledger.checkpoint_at(tenant, size) is None:
                        self._sign_into(txn, tenant, size, root_hash)
            except LedgerConflictError:
                pass  # another integrator signed this size: as good as ours
            self._signed_at[tenant] = now
            del self._unsigned[tenant]
        return len(due)

    def next_checkpoint_in(self) -> float | None:
        """Seconds until a pending checkpoint falls due; None when none is pending."""
        if not self._unsigned:
            return None
        now = self.monotonic()
        waits = [
            self._signed_at.get(t, now - self.checkpoint_interval) + self.checkpoint_interval - now
            for t in self._unsigned
        ]
        return max(0.0, min(waits))

    def catch_up(self, progress: Callable[[int], None] | None = None) -> int:
        """Integrate everything committed so far and sign every pending checkpoint.

        On PostgreSQL a backlog is read one batch ahead in a second thread: the server writes
        and hashes the next batch's canonical JSON (in its own process) while this one appends.
        On SQLite both halves run in this process and hold its GIL: a reader thread only adds
        contention (measured: 104k leaves/s with it, 148k without), so batches alternate.
        """
        self._start()
        total = 0
        if self.ledger.postgres:
            total += self._catch_up_reading_ahead(self.ledger.store.head(), progress)
        while True:  # what was committed while catching up
            try:
                done = self.integrate_batch()
            except LedgerConflictError:
                continue
            if not done:
                break
            total += done
            if progress is not None:
                progress(done)
        self.flush_checkpoints(force=True)
        return total

    # internals ------------------------------------------------------------------------------
    def _catch_up_reading_ahead(self, head: int, progress: Callable[[int], None] | None) -> int:
        total = 0
        with ThreadPoolExecutor(1, thread_name_prefix="consentry-ledger-read") as reader:
            offset = self.ledger.integrated_position()
            ahead = reader.submit(self._read, offset, head)
            while True:
                batch = ahead.result()
                if batch is None:
                    break
                if batch.count == self.batch_size:  # more to come: read it meanwhile
                    ahead = reader.submit(self._read, batch.last, head)
                else:
                    ahead = reader.submit(lambda: None)
                try:
                    done = self._write(batch)
                except LedgerConflictError:
                    done = 0
                if not done:  # another integrator moved on: start again from what is committed
                    ahead.result()
                    offset = self.ledger.integrated_position()
                    head = max(head, self.ledger.store.head())
                    ahead = reader.submit(self._read, offset, head)
                    continue
                total += done
                if progress is not None:
                    progress(done)
        return total

    def _start(self) -> None:
        """On first use: find trees that grew past their last stored checkpoint (a restart)."""
        if self._started:
            return
        self._started = True
        latest = self.ledger.latest_checkpoints()
        for tenant, size in self.ledger.tree_sizes().items():
            stored = latest.get(tenant)
            if stored is None or stored.tree_size < size:
                self._unsigned[tenant] = (size, root(self.ledger.node_store(tenant, size), size))

    def _due(self, tenant: str, now: float) -> bool:
        last = self._signed_at.get(tenant)
        return last is None or now - last >= self.checkpoint_interval

    def _sign_into(self, txn: LedgerWriter, tenant: str, size: int, root_hash: bytes) -> None:
        key = self.signer(tenant)
        signed_at = self.clock()
        note = sign_checkpoint(Checkpoint(key.name, size, root_hash, signed_at), key)
        txn.add_checkpoint(tenant, size, root_hash, signed_at, note)

    def _self_check(self, position: int) -> None:
        now = self.monotonic()
        if self._checked_at is not None and now - self._checked_at < SELF_CHECK_SECONDS:
            return
        if self.ledger.canonical_matches_domain(position) is False:
            raise CanonicalFormError(
                f"the canonical bytes of the event at position {position} read for the ledger"
                " differ from RecordedEvent.canonical_bytes(): update storage/ledger_store.py"
                " (_canonical) to the event's current form before integrating"
            )
        self._checked_at = now


class BackgroundIntegrator:
    """Runs an Integrator in a daemon thread: woken after each commit, polling otherwise."""

    def __init__(self, integrator: Integrator, poll_interval: float = 0.2) -> None:
        self.integrator = integrator
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors = 0

    def wake(self, *_: object) -> None:
        """A recorder listener (tenant, result): new events are committed."""
        self._wake.set()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="consentry-integrator", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> BackgroundIntegrator:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _run(self) -> None:
        integrator = self.integrator
        while not self._stop.is_set():
            self._wake.clear()
            try:
                if integrator.integrate_batch():
                    continue  # there may be more
                integrator.flush_checkpoints()
            except LedgerConflictError:
                continue
            except (StoreUnavailableError, OSError) as exc:
                self.errors += 1
                log.warning("ledger integrator: %s; retrying", exc)
                self._stop.wait(self.poll_interval)
                continue
            except Exception:
                self.errors += 1
                log.exception("ledger integrator failed; retrying")
                self._stop.wait(max(self.poll_interval, 1.0))
                continue
            timeout = self.poll_interval
            pending = integrator.next_checkpoint_in()
            if pending is not None:
                timeout = min(timeout, pending)
            self._wake.wait(timeout)
