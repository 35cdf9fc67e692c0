"""Inclusion and consistency proofs (RFC 9162 §2.1.3 and §2.1.4) from a node store.

Each proof is planned first as a list of leaf ranges whose hashes it needs (RFC 9162's
``MTH(D[a:b])`` terms), then every stored node behind those ranges is read in a single
``get_nodes`` call. A range is either one perfect subtree (one stored node) or the tree's
incomplete right edge (a handful of stored nodes, folded), so a proof costs O(log n) reads and
one round trip, for any past tree size.

The proofs are the RFC's own lists of hashes, ordered from the leaf upwards, and verify with
``verify.py`` or with any RFC 6962/9162 verifier (transparency-dev/merkle, Trillian, ...).
"""

from __future__ import annotations

from .tree import NodeStore, checked_size, compact_range, fetch, fold_range

__all__ = [
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
]


def _largest_power_of_two_below(size: int) -> int:
    """RFC 9162's split point k: the largest power of two strictly less than ``size`` (> 1)."""
    return 1 << ((size - 1).bit_length() - 1)


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PATH(index, D[0:size]), from the leaf upwards.

    Separate from the store so that the proof's shape can be tested, and a caller can see which
    subtrees a proof reveals, without any data.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not within tree size {size}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
    ranges.reverse()
    return ranges


def consistency_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes form PROOF(size1, D[0:size2]), from the bottom upwards.

    ``size1 == 0`` is refused: every tree extends the empty tree, so such a proof would prove
    nothing, and RFC 9162 (and transparency-dev/merkle's verifier) do not define one.
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"consistency proof needs 0 < size1 <= size2, got {size1} and {size2}")
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size2
    whole_old_tree = True  # SUBPROOF's flag b: is [lo, hi) still the whole old tree's root?
    while size1 != hi:
        k = _largest_power_of_two_below(hi - lo)
        if size1 <= lo + k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo += k
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def _hashes_for(store: NodeStore, ranges: list[tuple[int, int]]) -> list[bytes]:
    plans = [compact_range(begin, end) for begin, end in ranges]
    nodes = fetch(store, [key for plan in plans for key in plan])  # one read for the whole proof
    return [fold_range([nodes[key] for key in plan]) for plan in plans]


def inclusion_proof(store: NodeStore, index: int, size: int) -> list[bytes]:
    """Prove that leaf ``index`` is in the tree of ``size`` leaves (the RFC's audit path).

    ``size`` is that of a checkpoint the verifier holds, which may be older than the store:
    proofs against past sizes are what let a receipt be checked against the checkpoint the
    auditor kept.
    """
    n = checked_size(store, size)
    return _hashes_for(store, inclusion_ranges(index, n))


def consistency_proof(store: NodeStore, size1: int, size2: int) -> list[bytes]:
    """Prove that the tree of ``size2`` leaves extends the tree of ``size1`` leaves unchanged.

    This is how an auditor holding an old checkpoint learns that nothing before it was altered,
    removed or reordered. Empty when ``size1 == size2``.
    """
    n = checked_size(store, size2)
    return _hashes_for(store, consistency_ranges(size1, n))
