"""An append-only RFC 9162 Merkle tree kept as the hashes of its perfect subtrees.

Addressing: node ``(level, index)`` is the root of the perfect subtree over the leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 holds the leaf hashes. A node is written
exactly once, in the batch that completes its subtree, and never changes afterwards, so the node
store is append-only like the log it proves. Nodes that would cover an incomplete right edge
(RFC 9162's "ephemeral" nodes) are never stored: they are recomputed from at most log2(n) stored
nodes whenever a root or a proof needs them, which is what lets any past tree size be answered
from the same store.

Standard library only (and the hasher), so that the tree can be rebuilt and checked anywhere.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import operator
from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

from .hasher import EMPTY_ROOT, HASH_SIZE, NODE_PREFIX, hash_children

__all__ = [
    "MemoryNodeStore",
    "MissingNodeError",
    "NodeKey",
    "NodeStore",
    "append_leaves",
    "checked_size",
    "compact_range",
    "fetch",
    "fold_range",
    "range_hash",
    "root",
]

NodeKey = tuple[int, int]
"""``(level, index)`` of a perfect subtree; see the module docstring."""


class MissingNodeError(LookupError):
    """A node that the tree's size promises is absent from the store.

    Raised rather than computing a wrong hash: a store that lost a node is corrupt, and an
    answer built around the gap would be a proof of something that was never logged.
    """

    def __init__(self, key: NodeKey) -> None:
        super().__init__(f"node store is missing node level={key[0]} index={key[1]}")
        self.key = key


@runtime_checkable
class NodeStore(Protocol):
    """Where the tree keeps its perfect-subtree hashes.

    Kept this small so that a database table ``(level, index) -> hash`` can implement it: the tree
    asks for many nodes at once (one round trip per root, proof or append) and writes each batch
    once. Implementations are synchronous; an async application calls them from a worker thread.

    Contract:

    * ``put_nodes`` is atomic (all of the batch or none of it) and must refuse, by raising, to
      write a key that already exists: the tree never rewrites a node, so a duplicate means two
      writers raced or the caller is confused, and the store must not silently fork the tree.
      A primary key on ``(level, index)`` gives exactly this.
    * ``size`` is the number of leaves stored, i.e. the number of level-0 nodes. Because a batch
      always holds the leaves ``[size, size + k)`` together with the nodes they complete, this
      is also the largest tree size whose every node is present.
    """

    def size(self) -> int:
        """How many leaves the store holds; roots and proofs are available for sizes up to it."""
        ...

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """Return the hashes of the requested nodes that exist; absent keys are simply omitted.

        Batched so that a database store answers a whole proof in one query.
        """
        ...

    def put_nodes(self, nodes: Mapping[NodeKey, bytes]) -> None:
        """Store a batch of new nodes atomically, refusing any key that is already present."""
        ...


class MemoryNodeStore:
    """A NodeStore held in memory, for tests, benchmarks and rebuilding a tree to check it.

    Each level is a list, because the tree fills every level left to right without gaps; this
    makes a million-leaf tree cost ~150 MB instead of the ~350 MB a dict of tuples would, and it
    lets the store check cheaply that every write extends its level exactly (never overwrites,
    never leaves a hole).
    """

    def __init__(self) -> None:
        self._levels: list[list[bytes]] = []

    def size(self) -> int:
        """Number of leaf hashes stored."""
        return len(self._levels[0]) if self._levels else 0

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        """Return the stored hashes among ``keys``; absent keys are omitted."""
        levels = self._levels
        found: dict[NodeKey, bytes] = {}
        for key in keys:
            level, index = key
            if 0 <= level < len(levels) and 0 <= index < len(levels[level]):
                found[key] = levels[level][index]
        return found

    def put_nodes(self, nodes: Mapping[NodeKey, bytes]) -> None:
        """Append the batch; refuse all of it (ValueError) if it would overwrite or leave a gap."""
        keys = list(nodes)
        if not keys:
            return
        values = list(nodes.values())
        # The checks below run in C-level loops (map, bisect): the tree writes a million nodes
        # per million leaves, and a per-node Python loop here would cost more than the hashing.
        if not all(map(operator.lt, keys, itertools.islice(keys, 1, None))):
            pairs = sorted(nodes.items())
            keys = [key for key, _ in pairs]
            values = [value for _, value in pairs]
        if set(map(type, values)) != {bytes} or set(map(len, values)) != {HASH_SIZE}:
            raise ValueError("every node must be a 32-byte hash")
        levels = self._levels
        plan: list[tuple[int, int, int]] = []
        start = 0
        while start < len(keys):
            level = keys[start][0]
            end = bisect.bisect_left(keys, (level + 1,), lo=start)
            first, last = keys[start][1], keys[end - 1][1]
            have = len(levels[level]) if 0 <= level < len(levels) else 0
            if level < 0 or first < 0:
                raise ValueError(f"invalid node key {keys[start]}")
            if first < have:
                raise ValueError(
                    f"node level={level} index={first} already exists; the store is append-only"
                )
            # Keys are unique and sorted, so first..last has no hole iff it has end-start keys.
            if first != have or last - first != end - start - 1:
                raise ValueError(f"nodes at level {level} would leave a gap after index {have}")
            plan.append((level, start, end))
            start = end
        for level, start, end in plan:
            while len(levels) <= level:
                levels.append([])
            levels[level].extend(values[start:end])


def compact_range(begin: int, end: int) -> list[NodeKey]:
    """The fewest perfect subtrees covering leaves ``[begin, end)``, left to right.

    These are the only nodes needed to hash the range: for ``[0, n)`` they give the root of the
    tree of size n, and for the right-edge subtrees that proofs need they give the ephemeral
    node's hash. There are at most 2*log2(end - begin) of them.
    """
    if not 0 <= begin <= end:
        raise ValueError(f"invalid range [{begin}, {end})")
    width = end - begin
    if width and not width & (width - 1) and not begin & (width - 1):
        # One perfect subtree: the common case in proofs, answered without a loop.
        level = width.bit_length() - 1
        return [(level, begin >> level)]
    keys: list[NodeKey] = []
    while begin < end:
        # The largest aligned subtree starting at `begin` that does not pass `end`.
        level = (begin & -begin).bit_length() - 1 if begin else (end - begin).bit_length()
        while (1 << level) > end - begin:
            level -= 1
        keys.append((level, begin >> level))
        begin += 1 << level
    return keys


def fold_range(hashes: Sequence[bytes]) -> bytes:
    """Hash a compact range into one node, merging from the right as RFC 9162's MTH does.

    MTH splits a range at its largest power of two, so a right-edge subtree is its perfect left
    part hashed with the (recursively split) rest: folding right to left reproduces exactly that.
    """
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for left in reversed(hashes[:-1]):
        acc = hash_children(left, acc)
    return acc


def range_hash(nodes: Mapping[NodeKey, bytes], begin: int, end: int) -> bytes:
    """MTH(D[begin:end]) from already-fetched nodes, for ranges shaped like RFC 9162 subtrees.

    Valid when ``begin`` is a multiple of the largest power of two below ``end - begin`` (always
    true of ``[0, n)`` and of every subtree that appears in an RFC 9162 proof).
    """
    return fold_range([_need(nodes, key) for key in compact_range(begin, end)])


def _need(nodes: Mapping[NodeKey, bytes], key: NodeKey) -> bytes:
    try:
        return nodes[key]
    except KeyError:
        raise MissingNodeError(key) from None


def fetch(store: NodeStore, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
    """Read ``keys`` in one call and fail loudly if any is missing."""
    unique = list(dict.fromkeys(keys))
    nodes = store.get_nodes(unique)
    for key in unique:
        if key not in nodes:
            raise MissingNodeError(key)
    return nodes


def checked_size(store: NodeStore, size: int | None) -> int:
    """Resolve ``size`` (None = the store's size) and refuse sizes the store cannot answer."""
    stored = store.size()
    if size is None:
        return stored
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise ValueError(f"tree size must be a non-negative integer, got {size!r}")
    if size > stored:
        raise ValueError(f"tree size {size} is beyond the stored size {stored}")
    return size


def root(store: NodeStore, size: int | None = None) -> bytes:
    """The root hash of the tree at ``size`` leaves (default: all stored leaves).

    Any past size can be asked, because nodes are immutable: this is what lets a checkpoint
    signed long ago be checked against today's store, with one read of popcount(size) nodes.
    """
    n = checked_size(store, size)
    if n == 0:
        return EMPTY_ROOT
    return range_hash(fetch(store, compact_range(0, n)), 0, n)


def append_leaves(store: NodeStore, leaf_hashes: Sequence[bytes]) -> int:
    """Append leaf hashes (already RFC 9162 leaf hashes) and return the new tree size.

    One read (the right edge of the current tree, at most log2(n) nodes) and one write per
    batch, so that a database-backed integrator pays two round trips per batch rather than per
    event. Completed subtrees are hashed level by level in tight loops, not leaf by leaf.
    """
    count = len(leaf_hashes)
    n = store.size()
    if count == 0:
        return n
    if set(map(type, leaf_hashes)) != {bytes} or set(map(len, leaf_hashes)) != {HASH_SIZE}:
        raise ValueError("every leaf hash of the batch must be 32 bytes")

    edge = fetch(store, compact_range(0, n)) if n else {}
    new_nodes: dict[NodeKey, bytes] = {}
    row: list[bytes] = list(leaf_hashes)
    start = n  # index, at this level, of row[0]
    level = 0
    sha256, prefix = hashlib.sha256, NODE_PREFIX  # hash_children, inlined for the hot loop
    while True:
        keys = zip(itertools.repeat(level), range(start, start + len(row)))
        new_nodes.update(zip(keys, row, strict=True))
        if start & 1:
            # The first new node is a right child: its left sibling is on the old right edge.
            row.insert(0, _need(edge, (level, start - 1)))
            start -= 1
        if len(row) < 2:
            break
        # zip drops an odd last node: its sibling does not exist yet, so it has no parent yet.
        pairs = zip(row[::2], row[1::2], strict=False)
        row = [sha256(prefix + left + right).digest() for left, right in pairs]
        start >>= 1
        level += 1
    store.put_nodes(new_nodes)
    return n + count
