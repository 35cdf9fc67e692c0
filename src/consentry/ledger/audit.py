"""`consentry verify database`: recompute every tenant's tree from the events and check it all.

The events are the truth the ledger vouches for; the ledger's tables are derived from them and
anchored by signed checkpoints, which nobody can forge without the tenant's private key (kept
outside the database). The audit reads the events and the stored leaves side by side, in
position order, and checks:

* every event up to the integrated position has its leaf, and every leaf its event, with the
  same tenant, id and leaf hash (the hash of the event's canonical bytes as they are now): an
  event changed, deleted, swapped or inserted out of band shows up here, at its position;
* positions have no gap, and no event lies beyond the log head;
* each tenant's stored leaves are numbered 0, 1, 2, ... in position order;
* every stored checkpoint: its signature (with every key the tenant ever used), that its text
  matches its row, that the root recomputed from the events at its size equals its root, that the
  stored tree gives the same root, and a consistency proof from the stored nodes to the next one;
* every stored interior node equals the one recomputed from the events.

So a change to the events alone is named at its first bad leaf; a change that also rewrote the
ledger's tables consistently is caught by the signed checkpoints (named as the range of leaves
between the last checkpoint that still matches and the first that does not).
"""

from __future__ import annotations

import hashlib
import multiprocessing
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from consentry.ledger.checkpoint import CheckpointError, VerifierKey, verify_checkpoint
from consentry.ledger.hasher import EMPTY_ROOT, LEAF_PREFIX, NODE_PREFIX
from consentry.ledger.proof import consistency_proof
from consentry.ledger.tree import root
from consentry.ledger.verify import ProofError, verify_consistency
from consentry.storage.ledger_store import (
    NODE_LEVEL_STEP,
    LedgerStore,
    StoredCheckpoint,
)

__all__ = ["AuditReport", "Problem", "audit_database"]

PAGE = 20_000
_FAR_BEFORE = -(2**62)  # read rows an administrator may have put at position 0 or below
_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing that differs, with where it is."""

    kind: str
    """altered, missing, inserted, gap, misplaced, beyond_head, checkpoint_signature,
    checkpoint_root, stored_tree, stored_node, consistency."""
    message: str
    tenant: str | None = None
    position: int | None = None
    event_id: str | None = None
    leaf_index: int | None = None

    @property
    def names_a_leaf(self) -> bool:
        return self.position is not None


@dataclass
class AuditReport:
    events: int = 0
    """Events read (up to the integrated position, plus any out-of-band ones)."""
    pending: int = 0
    """Committed events after the integrated position: not in the ledger yet, not checked."""
    integrated_position: int = 0
    trees: dict[str, int] = field(default_factory=dict)
    """Each tenant's tree size, recomputed from the events."""
    checkpoints: int = 0
    problems: list[Problem] = field(default_factory=list)
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_bad_leaf(self) -> Problem | None:
        """The problem at the lowest log position (what to look at first), if any names one."""
        located = [p for p in self.problems if p.position is not None]
        return min(located, key=lambda p: p.position or 0) if located else None


class _Tree:
    """A tenant's tree recomputed from its events, streaming: the right edge only, plus the
    nodes of the stored levels (1/15 of a hash per leaf), to compare with ledger_nodes.

    `carry[level]` is the complete node at that level still waiting for its right sibling; the
    carries are exactly the perfect subtrees of the compact range [0, n), so they give the root.
    """

    def __init__(self) -> None:
        self.n = 0
        self.carry: list[bytes | None] = []
        self.levels: dict[int, list[bytes]] = {}
        self.positions = array("q")  # the log position of each leaf, to name ranges

    def extend(self, hashes: list[bytes]) -> None:
        if not hashes:
            return
        self.n += len(hashes)
        carry, levels = self.carry, self.levels
        sha256, prefix = _sha256, NODE_PREFIX
        row = hashes
        level = 0
        while row:
            if level and not level % NODE_LEVEL_STEP:
                levels.setdefault(level, []).extend(row)  # complete nodes, in index order
            if level == len(carry):
                carry.append(None)
            waiting = carry[level]
            if waiting is not None:
                row = [waiting, *row]
            if len(row) % 2:
                carry[level] = row[-1]
                row = row[:-1]
            else:
                carry[level] = None
            row = [
                sha256(prefix + a + b).digest() for a, b in zip(row[::2], row[1::2], strict=True)
            ]
            level += 1

    def root(self) -> bytes:
        if not self.n:
            return EMPTY_ROOT
        acc: bytes | None = None
        for node in self.carry:  # lowest level first: the rightmost subtree
            if node is not None:
                acc = node if acc is None else _sha256(NODE_PREFIX + node + acc).digest()
        assert acc is not None
        return acc


@dataclass
class _Tenant:
    tree: _Tree = field(default_factory=_Tree)
    pending: list[bytes] = field(default_factory=list)
    positions: array[int] = field(default_factory=lambda: array("q"))
    checkpoints: list[StoredCheckpoint] = field(default_factory=list)
    next_checkpoint: int = 0
    stored_leaves: int = 0
    good_size: int = 0  # the largest checkpointed size whose root matched
    bad: bool = False  # a leaf problem was reported: later checkpoint mismatches follow from it


EventRow = tuple[int, str, str, str]  # position, tenant, event_id, canonical JSON
LeafRow = tuple[str, int, int, str, bytes]  # tenant, leaf_index, position, event_id, leaf_hash


def _leaf_hash(data: str) -> bytes:
    return _sha256(LEAF_PREFIX + data.encode()).digest()


@dataclass(frozen=True, slots=True)
class _Scan:
    """What one range of positions holds: the agreed leaves by tenant, or the rows to merge."""

    first: int
    last: int
    agreed: Sequence[tuple[str, bytes, list[int], list[int] | None]] | None = None
    """Per tenant: its leaf hashes concatenated, their stored leaf indexes, and their positions
    (None: all of first..last, when one tenant has the whole range)."""
    events: list[EventRow] = field(default_factory=list)
    leaves: list[LeafRow] = field(default_factory=list)


def _scan(ledger: LedgerStore, first: int, last: int) -> _Scan:
    """Read and compare one range; runs in a worker process when the audit has several."""
    count = last - first + 1
    if first >= 1:
        # The common case, checked in bulk and reading the least: every position has its event
        # and its leaf (positions are unique, so `count` rows are all of them), with the same
        # tenant and leaf hash. The hash covers the event's id and position (in its JSON).
        events = ledger.event_leaf_hashes(first, last)
        leaves = ledger.leaf_hashes(first, last)
        if len(events) == count == len(leaves):
            hashes = [digest for _, digest in events]
            tenants = [tenant for tenant, _ in events]
            if hashes == [leaf[2] for leaf in leaves] and tenants == [leaf[0] for leaf in leaves]:
                indexes = [leaf[1] for leaf in leaves]
                if tenants.count(tenants[0]) == count:
                    return _Scan(first, last, [(tenants[0], b"".join(hashes), indexes, None)])
                rows: dict[str, list[int]] = {}
                for i, tenant in enumerate(tenants):
                    rows.setdefault(tenant, []).append(i)
                groups = [
                    (
                        tenant,
                        b"".join([hashes[i] for i in mine]),
                        [indexes[i] for i in mine],
                        [first + i for i in mine],
                    )
                    for tenant, mine in rows.items()
                ]
                return _Scan(first, last, groups)
    # Something differs: the full rows, to name it.
    return _Scan(first, last, None, ledger.event_rows(first, last), ledger.leaf_rows(first, last))


_worker_ledger: LedgerStore | None = None


def _worker_init(database_url: str) -> None:
    global _worker_ledger
    from consentry.storage import open_store

    _worker_ledger = LedgerStore(open_store(database_url))


def _worker_scan(bounds: tuple[int, int]) -> _Scan:
    assert _worker_ledger is not None
    return _scan(_worker_ledger, *bounds)


class _Auditor:
    def __init__(
        self,
        ledger: LedgerStore,
        verifiers: Callable[[str], list[VerifierKey]],
        progress: Callable[[int], None] | None,
        max_problems: int,
        workers: int = 0,
        database_url: str | None = None,
        page: int = PAGE,
    ) -> None:
        self.page = page
        self.workers = workers
        self.database_url = database_url
        self.ledger = ledger
        self.verifiers = verifiers
        self.progress = progress
        self.max_problems = max_problems
        self.report = AuditReport()
        self.tenants: dict[str, _Tenant] = {}
        self.expected = 1  # the next position a gapless log must have

    def problem(self, problem: Problem) -> None:
        if len(self.report.problems) >= self.max_problems:
            self.report.truncated = True
            return
        self.report.problems.append(problem)

    def tenant(self, name: str) -> _Tenant:
        state = self.tenants.get(name)
        if state is None:
            state = self.tenants[name] = _Tenant()
        return state

    def run(self) -> AuditReport:
        ledger, report = self.ledger, self.report
        offset = report.integrated_position = ledger.integrated_position()
        head = ledger.store.head()
        for stored in ledger.checkpoints():
            self.tenant(stored.tenant).checkpoints.append(stored)
        report.checkpoints = sum(len(t.checkpoints) for t in self.tenants.values())
        lowest = min(
            (p for p in (ledger.min_event_position(), ledger.min_leaf_position()) if p is not None),
            default=1,
        )
        if lowest < 1:  # rows an administrator put before the first position
            self.check_range(lowest, 0, offset)
        page = self.page
        ranges = [(first, min(first + page - 1, offset)) for first in range(1, offset + 1, page)]
        if self.workers > 1 and self.database_url and len(ranges) > 2:
            # Reading and hashing the events is most of the work, and parallel: worker processes
            # scan ranges (each with its own connection), this one assembles the trees in order.
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(
                self.workers, context, _worker_init, (self.database_url,)
            ) as pool:
                window: deque[Future[_Scan]] = deque()
                for bounds in ranges:  # a few ranges in flight: memory stays bounded
                    window.append(pool.submit(_worker_scan, bounds))
                    if len(window) > 2 * self.workers:
                        self.apply(window.popleft().result())
                while window:
                    self.apply(window.popleft().result())
        else:
            for first, last in ranges:
                self.check_range(first, last, offset)
        highest = ledger.max_event_position() or 0
        if highest > offset:
            report.pending = ledger.count_events_after(offset)
            for position, tenant, event_id, _ in ledger.event_rows(max(head, offset) + 1, highest):
                if len(self.report.problems) >= self.max_problems:
                    break
                self.problem(
                    Problem(
                        "beyond_head",
                        f"the event at position {position} (event {event_id}) lies beyond the log"
                        f" head ({head}): written out of band",
                        tenant,
                        position,
                        event_id,
                    )
                )
        for tenant, state in self.tenants.items():
            self.flush(tenant, state, final=True)
        self.check_nodes()
        report.trees = {t: s.tree.n for t, s in self.tenants.items() if s.tree.n}
        return report

    def check_range(self, first: int, last: int, offset: int) -> None:
        """Check the events and leaves of positions first..last (all integrated)."""
        self.apply(_scan(self.ledger, first, last))

    def apply(self, scan: _Scan) -> None:
        if scan.agreed is not None:
            for tenant, blob, numbers, listed in scan.agreed:
                hashes = [blob[i : i + 32] for i in range(0, len(blob), 32)]
                positions = range(scan.first, scan.last + 1) if listed is None else listed
                state = self.tenant(tenant)
                start = state.stored_leaves
                if numbers == list(range(start, start + len(hashes))):
                    state.stored_leaves = start + len(hashes)
                else:
                    for index, position in zip(numbers, positions, strict=True):
                        self.check_numbering(tenant, index, position, None)
                self.add(tenant, state, hashes, positions)
                self.report.events += len(hashes)
            self.expected = scan.last + 1
        else:
            self.merge(scan.events, scan.leaves)
            self.report.events += len(scan.events)
        if self.progress is not None:
            self.progress(scan.last - scan.first + 1)

    def merge(self, events: list[EventRow], leaves: list[LeafRow]) -> None:
        """Row by row, when something differs: name each difference by position."""
        i = j = 0
        while i < len(events) or j < len(leaves):
            event = events[i] if i < len(events) else None
            leaf = leaves[j] if j < len(leaves) else None
            position = min(p for p in (event and event[0], leaf and leaf[2]) if p is not None)
            if position > self.expected:
                self.problem(
                    Problem(
                        "gap",
                        f"position {self.expected} is missing from the log and from the ledger:"
                        " an event deleted before it was integrated",
                        position=self.expected,
                    )
                )
            self.expected = max(self.expected, position + 1)
            if leaf is None or (event is not None and event[0] < leaf[2]):
                assert event is not None
                position, tenant, event_id, data = event
                self.problem(
                    Problem(
                        "inserted",
                        f"the event at position {position} (event {event_id}) is not in the"
                        " ledger: inserted out of band",
                        tenant,
                        position,
                        event_id,
                    )
                )
                state = self.tenant(tenant)
                state.bad = True
                self.add(tenant, state, [_leaf_hash(data)], [position])
                i += 1
            elif event is None or leaf[2] < event[0]:
                tenant, index, position, event_id, _ = leaf
                self.problem(
                    Problem(
                        "missing",
                        f"leaf {index} of tenant {tenant!r} is the event at position {position}"
                        f" (event {event_id}), which is no longer in the log: deleted",
                        tenant,
                        position,
                        event_id,
                        index,
                    )
                )
                self.tenant(tenant).bad = True
                self.check_numbering(tenant, index, position, event_id)
                j += 1
            else:
                position, tenant, event_id, data = event
                digest = _leaf_hash(data)
                self.check_numbering(leaf[0], leaf[1], position, event_id)
                if (leaf[0], leaf[3], leaf[4]) != (tenant, event_id, digest):
                    self.problem(
                        Problem(
                            "altered",
                            f"the event at position {position} (event {event_id}) is not the"
                            f" one the ledger holds as leaf {leaf[1]} of tenant {leaf[0]!r}"
                            f" (event {leaf[3]}): altered",
                            tenant,
                            position,
                            event_id,
                            leaf[1],
                        )
                    )
                    self.tenant(tenant).bad = True
                    self.tenant(leaf[0]).bad = True
                state = self.tenant(tenant)
                self.add(tenant, state, [digest], [position])
                i += 1
                j += 1

    def check_numbering(self, tenant: str, index: int, position: int, event_id: str | None) -> None:
        state = self.tenant(tenant)
        if index != state.stored_leaves:
            self.problem(
                Problem(
                    "misplaced",
                    f"the ledger numbers the event at position {position} as leaf {index} of"
                    f" tenant {tenant!r}, expected leaf {state.stored_leaves}",
                    tenant,
                    position,
                    event_id,
                    index,
                )
            )
        state.stored_leaves = index + 1

    def add(
        self, tenant: str, state: _Tenant, hashes: list[bytes], positions: Sequence[int]
    ) -> None:
        """Queue leaves recomputed from the events for the tenant's tree."""
        state.pending += hashes
        state.positions.extend(positions)
        if len(state.pending) >= PAGE or (
            state.next_checkpoint < len(state.checkpoints)
            and state.tree.n + len(state.pending)
            >= state.checkpoints[state.next_checkpoint].tree_size
        ):
            self.flush(tenant, state)

    def flush(self, tenant: str, state: _Tenant, *, final: bool = False) -> None:
        """Add the pending leaves to the recomputed tree, checking checkpoints on the way."""
        tree = state.tree
        while state.pending or (final and state.next_checkpoint < len(state.checkpoints)):
            target = None
            if state.next_checkpoint < len(state.checkpoints):
                target = state.checkpoints[state.next_checkpoint].tree_size
            if target is not None and target <= tree.n + len(state.pending):
                take = target - tree.n
                tree.extend(state.pending[:take])
                tree.positions.extend(state.positions[:take])
                del state.pending[:take]
                del state.positions[:take]
                self.check_checkpoint(tenant, state, state.checkpoints[state.next_checkpoint])
                state.next_checkpoint += 1
                continue
            if target is not None and final and not state.pending:
                self.check_checkpoint(tenant, state, state.checkpoints[state.next_checkpoint])
                state.next_checkpoint += 1
                continue
            tree.extend(state.pending)
            tree.positions.extend(state.positions)
            state.pending, state.positions = [], array("q")

    def check_checkpoint(self, tenant: str, state: _Tenant, stored: StoredCheckpoint) -> None:
        size = stored.tree_size
        where = f"checkpoint of tenant {tenant!r} at size {size}"
        try:
            checkpoint = verify_checkpoint(stored.note, self.verifiers(tenant))
        except CheckpointError as exc:
            self.problem(Problem("checkpoint_signature", f"{where}: {exc}", tenant))
            return
        if (checkpoint.size, checkpoint.root_hash) != (size, stored.root_hash):
            self.problem(
                Problem(
                    "checkpoint_signature",
                    f"{where}: the stored size or root differs from the signed text",
                    tenant,
                )
            )
            return
        if size > state.tree.n:
            self.problem(
                Problem(
                    "checkpoint_root",
                    f"{where}: the events give only {state.tree.n} leaves (events deleted after"
                    " the last one)",
                    tenant,
                )
            )
            return
        if state.tree.root() != checkpoint.root_hash:
            first = state.good_size
            message = f"{where}: the root recomputed from the events differs from the signed one"
            position = event_id = None
            if not state.bad:
                # The events agree with the stored leaves: the ledger's tables were rewritten
                # to match altered events. The signed checkpoints bound where.
                position = state.tree.positions[first]
                event_id = self._event_id_at(position)
                message += (
                    f"; a leaf from {first} to {size - 1} (positions"
                    f" {state.tree.positions[first]} to"
                    f" {state.tree.positions[size - 1]}) was altered, and the ledger's"
                    " own tables rewritten to hide it"
                )
                state.bad = True
            self.problem(Problem("checkpoint_root", message, tenant, position, event_id, first))
        else:
            state.good_size = size
        nodes = self.ledger.node_store(tenant, cached=False)
        try:
            if root(nodes, size) != checkpoint.root_hash:
                self.problem(
                    Problem(
                        "stored_tree",
                        f"{where}: the stored tree's root differs from the signed one",
                        tenant,
                    )
                )
        except (LookupError, ValueError) as exc:
            self.problem(Problem("stored_tree", f"{where}: {exc}", tenant))
        following = state.checkpoints.index(stored) + 1
        if following < len(state.checkpoints):
            nxt = state.checkpoints[following]
            try:
                later = verify_checkpoint(nxt.note, self.verifiers(tenant))
                proof = consistency_proof(nodes, size, later.size)
                verify_consistency(size, later.size, proof, checkpoint.root_hash, later.root_hash)
            except (CheckpointError, ProofError, LookupError, ValueError) as exc:
                self.problem(
                    Problem(
                        "consistency",
                        f"{where} and the next one, at size {nxt.tree_size}, are not"
                        f" consistent in the stored tree: {exc}",
                        tenant,
                    )
                )

    def _event_id_at(self, position: int) -> str | None:
        found = self.ledger.leaves_after(position - 1, 1)
        return found[0].event_id if found and found[0].position == position else None

    def check_nodes(self) -> None:
        """Every stored interior node against the recomputed one."""
        for tenant, level, index, value in self.ledger.stored_nodes():
            state = self.tenants.get(tenant)
            recomputed = state.tree.levels.get(level, []) if state else []
            if index >= len(recomputed) or recomputed[index] != value:
                if state is not None and state.bad:
                    continue  # follows from a problem already reported
                first = index << level
                self.problem(
                    Problem(
                        "stored_node",
                        f"the stored node over leaves {first} to {first + (1 << level) - 1} of"
                        f" tenant {tenant!r} (level {level}) differs from the events'",
                        tenant,
                    )
                )
                if state is not None:
                    state.bad = True


def audit_database(
    ledger: LedgerStore,
    verifiers: Callable[[str], list[VerifierKey]],
    *,
    progress: Callable[[int], None] | None = None,
    max_problems: int = 1000,
    workers: int = 0,
    database_url: str | None = None,
    page: int = PAGE,
) -> AuditReport:
    """Recompute every tenant's tree from the events and check the ledger against it.

    `verifiers(tenant)` gives every public key the tenant ever signed with (TenantKeyring).
    `progress(n)` is called as events are read (n more each time). With `workers` > 1 and the
    `database_url`, that many processes read and hash the events in parallel, `page` positions
    at a time.
    """
    auditor = _Auditor(ledger, verifiers, progress, max_problems, workers, database_url, page)
    return auditor.run()
