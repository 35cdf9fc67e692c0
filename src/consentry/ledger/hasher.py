"""RFC 9162 §2.1 hashing for the ledger's Merkle tree.

Leaves and interior nodes are hashed with different one-byte prefixes (0x00 and 0x01). Without
that domain separation an interior node could be presented as a leaf (a second preimage), and a
proof could claim that a subtree hash was itself a logged event. The prefixes and SHA-256 are the
ones of RFC 6962/9162, so any Certificate Transparency tooling computes the same roots.

Standard library only: the same bytes must be reproducible by an auditor without our server.
"""

from __future__ import annotations

import hashlib

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "LEAF_PREFIX",
    "NODE_PREFIX",
    "hash_children",
    "hash_leaf",
]

HASH_SIZE = 32
"""Bytes in every leaf, node and root hash (SHA-256)."""

LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"

EMPTY_ROOT = hashlib.sha256(b"").digest()
"""MTH({}) = SHA-256() of no input: the root of the empty tree (RFC 9162 §2.1.1)."""

_sha256 = hashlib.sha256


def hash_leaf(data: bytes) -> bytes:
    """Hash one logged entry (its canonical bytes) with the leaf prefix.

    The prefix makes a leaf hash impossible to confuse with an interior node's hash.
    """
    return _sha256(LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """Hash two subtree hashes into their parent with the node prefix.

    Order matters: the left child covers the earlier leaves, so reordering events changes the root.
    """
    return _sha256(NODE_PREFIX + left + right).digest()
