"""RFC 9162 §2.1 hashing: known answers, domain separation, and agreement with verify.py."""

from __future__ import annotations

import hashlib

from hypothesis import given
from hypothesis import strategies as st

from consentry.ledger import verify
from consentry.ledger.hasher import (
    EMPTY_ROOT,
    HASH_SIZE,
    LEAF_PREFIX,
    NODE_PREFIX,
    hash_children,
    hash_leaf,
)

# Known answers from RFC 6962's test data as used by transparency-dev/merkle (testonly).
EMPTY_TREE = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
LEAF_OF_EMPTY = "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
ROOT_OF_TWO = "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT.hex() == EMPTY_TREE
    assert len(EMPTY_ROOT) == HASH_SIZE


def test_leaf_hash_known_answer() -> None:
    assert hash_leaf(b"").hex() == LEAF_OF_EMPTY


def test_node_hash_known_answer() -> None:
    # The tree of the RFC 6962 test leaves "" and 0x00.
    assert hash_children(hash_leaf(b""), hash_leaf(b"\x00")).hex() == ROOT_OF_TWO


def test_prefixes_are_the_rfc_ones() -> None:
    assert LEAF_PREFIX == b"\x00"
    assert NODE_PREFIX == b"\x01"


@given(st.binary(max_size=200))
def test_leaf_hash_is_prefixed_sha256(data: bytes) -> None:
    assert hash_leaf(data) == hashlib.sha256(b"\x00" + data).digest()


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_domain_separation(left: bytes, right: bytes) -> None:
    # A node can never be passed off as a leaf over the same bytes, nor the reverse.
    assert hash_children(left, right) != hash_leaf(left + right)
    assert hash_children(left, right) == hashlib.sha256(b"\x01" + left + right).digest()


@given(st.binary(min_size=32, max_size=32), st.binary(min_size=32, max_size=32))
def test_children_order_matters(left: bytes, right: bytes) -> None:
    if left != right:
        assert hash_children(left, right) != hash_children(right, left)


@given(st.binary(max_size=100), st.binary(min_size=32, max_size=32))
def test_standalone_verifier_hashes_identically(data: bytes, other: bytes) -> None:
    # verify.py repeats the hash functions so that it can be copied alone; they must agree.
    assert verify.hash_leaf(data) == hash_leaf(data)
    assert verify.hash_children(hash_leaf(data), other) == hash_children(hash_leaf(data), other)
