"""Verify RFC 9162 inclusion and consistency proofs with the Python standard library alone.

This file is meant to be copied: an auditor can take it out of Consentry, read it in a few
minutes, and check our proofs without our server, our database or any third-party package. It
therefore repeats the two hash functions of ``hasher.py`` instead of importing them.

Semantics follow transparency-dev/merkle's Go verifier (and pass its test vectors):

* ``ProofError`` means the inputs cannot be a proof at all (an index outside the tree, a proof
  of the wrong length, a hash of the wrong size, sizes in the wrong order);
* ``RootMismatchError``, a subclass, means the proof is well formed but leads to a root other
  than the one expected: the entry is not in that tree, or the two trees are not consistent.

Catch ``ProofError`` to treat both as "not verified". Functions return nothing on success.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "HASH_SIZE",
    "ProofError",
    "RootMismatchError",
    "hash_children",
    "hash_leaf",
    "root_from_inclusion_proof",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
_MAX_SIZE = 2**64 - 1  # RFC 9162 tree sizes and indexes are uint64


class ProofError(ValueError):
    """The proof or its parameters are malformed, so nothing can be concluded from them."""


class RootMismatchError(ProofError):
    """A well-formed proof leads to a different root than the expected one."""

    def __init__(self, size: int, computed: bytes, expected: bytes) -> None:
        super().__init__(
            f"root hash at tree size {size} does not match: "
            f"computed {computed.hex()}, expected {bytes(expected).hex()}"
        )
        self.size = size
        self.computed = computed
        self.expected = expected


def hash_leaf(data: bytes) -> bytes:
    """RFC 9162 leaf hash, SHA-256(0x00 || data): lets an auditor hash an event they hold."""
    return hashlib.sha256(b"\x00" + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash, SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _check_number(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProofError(f"{name} must be an integer, got {type(value).__name__}")
    if not 0 <= value <= _MAX_SIZE:
        raise ProofError(f"{name} {value} is outside 0..2^64-1")


def _check_hashes(proof: Sequence[bytes]) -> None:
    for i, node in enumerate(proof):
        if len(node) != HASH_SIZE:
            raise ProofError(f"proof element {i} has {len(node)} bytes, want {HASH_SIZE}")


def _split(index: int, size: int) -> tuple[int, int]:
    """Split the audit path of ``index`` in a tree of ``size`` leaves into its two parts.

    ``inner``: levels below the point where the paths to ``index`` and to the last leaf
    ``size - 1`` meet; there the sibling is on either side, as the index's bits say.
    ``border``: the remaining levels, on the right border of the tree, where every sibling is a
    left-hand perfect subtree (one per set bit of the index above ``inner``).
    Their sum is the only valid proof length, which is how malformed proofs are caught.
    """
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Compute the root that ``proof`` implies for leaf ``index`` in a tree of ``size`` leaves.

    Useful when the expected root comes from elsewhere (a checkpoint) and should be compared by
    the caller; ``verify_inclusion`` does that comparison.
    """
    _check_number("leaf index", index)
    _check_number("tree size", size)
    if index >= size:
        raise ProofError(f"leaf index {index} is not within tree size {size}")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"leaf hash has {len(leaf_hash)} bytes, want {HASH_SIZE}")
    inner, border = _split(index, size)
    if len(proof) != inner + border:
        raise ProofError(
            f"inclusion proof for index {index} in tree size {size} must have "
            f"{inner + border} hashes, got {len(proof)}"
        )
    _check_hashes(proof)
    node = bytes(leaf_hash)
    for level, sibling in enumerate(proof[:inner]):
        # A set bit: this level's node is a right child, so its sibling goes on the left.
        left_sibling = (index >> level) & 1
        node = hash_children(sibling, node) if left_sibling else hash_children(node, sibling)
    for sibling in proof[inner:]:
        node = hash_children(sibling, node)
    return node


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that the leaf with ``leaf_hash`` is entry ``index`` of the tree with ``root``.

    Raises ProofError if the proof is malformed, RootMismatchError if it does not lead to
    ``root``. Returns None when the entry is proven to be in the tree.
    """
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise RootMismatchError(size, computed, root)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree (``size2``, ``root2``) extends the tree (``size1``, ``root1``).

    That is: its first ``size1`` entries are exactly those of the older tree, unchanged and in
    the same order. Requires ``0 < size1 <= size2``: every tree extends the empty one, so a proof
    from size 0 proves nothing and is refused (as transparency-dev/merkle's test vectors do).
    Raises ProofError if malformed, RootMismatchError if either root does not match.
    """
    _check_number("size1", size1)
    _check_number("size2", size2)
    if size2 < size1:
        raise ProofError(f"size2 {size2} is smaller than size1 {size1}")
    if size1 == 0:
        raise ProofError("a consistency proof from the empty tree (size1 = 0) proves nothing")
    if size1 == size2:
        if proof:
            raise ProofError(f"sizes are equal ({size1}) but the proof is not empty")
        if root1 != root2:
            raise RootMismatchError(size2, bytes(root1), root2)
        return
    if not proof:
        raise ProofError(f"empty consistency proof between sizes {size1} and {size2}")

    # The proof is the audit path of the old tree's last leaf in the new tree, cut off below
    # the largest perfect subtree that ends the old tree (level `shift`), plus that subtree's
    # hash first -- left out when it is the whole old tree, because the verifier has root1.
    inner, border = _split(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    inner -= shift
    if size1 == 1 << shift:
        seed, path = bytes(root1), proof
    else:
        seed, path = proof[0], proof[1:]
    expected_length = inner + border + (0 if size1 == 1 << shift else 1)
    if len(proof) != expected_length:
        raise ProofError(
            f"consistency proof between sizes {size1} and {size2} must have "
            f"{expected_length} hashes, got {len(proof)}"
        )
    _check_hashes(proof)

    index = (size1 - 1) >> shift  # position of the seed subtree at level `shift`
    old = new = seed
    for level, sibling in enumerate(path[:inner]):
        if (index >> level) & 1:
            # A left sibling belongs to both trees.
            old = hash_children(sibling, old)
            new = hash_children(sibling, new)
        else:
            # A right sibling holds entries added after size1: only the new tree has it.
            new = hash_children(new, sibling)
    for sibling in path[inner:]:
        old = hash_children(sibling, old)
        new = hash_children(sibling, new)
    if old != root1:
        raise RootMismatchError(size1, old, root1)
    if new != root2:
        raise RootMismatchError(size2, new, root2)
