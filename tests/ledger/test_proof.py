"""Inclusion and consistency proofs from the store, against the RFC and a naive reference."""

from __future__ import annotations

import pytest

from consentry.ledger.hasher import hash_leaf
from consentry.ledger.proof import (
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
)
from consentry.ledger.tree import MemoryNodeStore, append_leaves, root
from consentry.ledger.verify import verify_consistency, verify_inclusion

from . import rfc_reference as ref
from .test_tree import RFC_LEAVES, RFC_ROOTS, RecordingStore, build, entries


def h(hex_text: str) -> bytes:
    return bytes.fromhex(hex_text)


def test_rfc_seven_leaf_example() -> None:
    # RFC 9162 §2.1.5 (RFC 6962 §2.1.3): the tree of d0..d6 and its named nodes.
    store = build(RFC_LEAVES[:7])
    a, b, c, d, e, f, j = (ref.leaf(x) for x in RFC_LEAVES[:7])
    g, h_, i = ref.node(a, b), ref.node(c, d), ref.node(e, f)
    k, l_ = ref.node(g, h_), ref.node(i, j)
    # "The audit path for d0 is [b, h, l]. ... d3 is [c, g, l]. ... d4 is [f, j, k].
    #  ... d6 is [i, k]."
    assert inclusion_proof(store, 0, 7) == [b, h_, l_]
    assert inclusion_proof(store, 3, 7) == [c, g, l_]
    assert inclusion_proof(store, 4, 7) == [f, j, k]
    assert inclusion_proof(store, 6, 7) == [i, k]
    # "PROOF(3, D[7]) = [c, d, g, l]", "PROOF(4, D[7]) = [l]", "PROOF(6, D[7]) = [i, j, k]".
    assert consistency_proof(store, 3, 7) == [c, d, g, l_]
    assert consistency_proof(store, 4, 7) == [l_]
    assert consistency_proof(store, 6, 7) == [i, j, k]


# Known proofs over the eight RFC 6962 test leaves (from transparency-dev/merkle's tests).
KNOWN_INCLUSION = [
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]  # fmt: skip
KNOWN_CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


@pytest.mark.parametrize(("index", "size", "expected"), KNOWN_INCLUSION)
def test_known_inclusion_proofs(index: int, size: int, expected: list[str]) -> None:
    store = build(RFC_LEAVES)
    proof = inclusion_proof(store, index, size)
    assert [p.hex() for p in proof] == expected
    verify_inclusion(hash_leaf(RFC_LEAVES[index]), index, size, proof, h(RFC_ROOTS[size - 1]))


@pytest.mark.parametrize(("size1", "size2", "expected"), KNOWN_CONSISTENCY)
def test_known_consistency_proofs(size1: int, size2: int, expected: list[str]) -> None:
    store = build(RFC_LEAVES)
    proof = consistency_proof(store, size1, size2)
    assert [p.hex() for p in proof] == expected
    verify_consistency(size1, size2, proof, h(RFC_ROOTS[size1 - 1]), h(RFC_ROOTS[size2 - 1]))


def test_every_proof_up_to_70_matches_the_naive_rfc_recursion() -> None:
    data = entries(70, seed=3)
    store = build(data, chunks=[1, 1, 5, 13, 8])
    hashes = [hash_leaf(d) for d in data]
    for n in range(1, 71):
        tree = data[:n]
        tree_root = root(store, n)
        assert tree_root == ref.mth(tree)
        for index in range(n):
            proof = inclusion_proof(store, index, n)
            assert proof == ref.path(index, tree), (index, n)
            verify_inclusion(hashes[index], index, n, proof, tree_root)
        for m in range(1, n + 1):
            proof = consistency_proof(store, m, n)
            assert proof == ref.proof(m, tree), (m, n)
            verify_consistency(m, n, proof, root(store, m), tree_root)


def test_proofs_for_past_sizes_do_not_change_as_the_log_grows() -> None:
    data = entries(300, seed=4)
    hashes = [hash_leaf(d) for d in data]
    store = MemoryNodeStore()
    append_leaves(store, hashes[:100])
    before = {
        (i, n): inclusion_proof(store, i, n) for n in (1, 37, 64, 100) for i in (0, n // 2, n - 1)
    }
    consistency_before = {(m, 100): consistency_proof(store, m, 100) for m in (1, 7, 64, 99)}
    append_leaves(store, hashes[100:])
    for (i, n), proof in before.items():
        assert inclusion_proof(store, i, n) == proof
    for (m, n), proof in consistency_before.items():
        assert consistency_proof(store, m, n) == proof


def test_each_proof_is_one_batched_read_of_logarithmic_size() -> None:
    store = RecordingStore()
    n_total = 5000
    append_leaves(store, [hash_leaf(d) for d in entries(n_total, seed=5)])
    for n in [1, 2, 3, 5, 8, 1000, 1023, 1024, 1025, 4097, 5000]:
        limit = 2 * n.bit_length() + 1
        for index in {0, n // 3, n // 2, n - 2 if n > 1 else 0, n - 1}:
            store.gets.clear()
            inclusion_proof(store, index, n)
            assert len(store.gets) == 1
            assert len(store.gets[0]) <= limit, (index, n, len(store.gets[0]))
        for m in {1, n // 3 or 1, n // 2 or 1, n - 1 or 1, n}:
            store.gets.clear()
            consistency_proof(store, m, n)
            assert len(store.gets) <= 1
            assert sum(len(g) for g in store.gets) <= limit + 1, (m, n)


def test_ranges_describe_the_proof_shape() -> None:
    # Audit path of d0 in the 7-leaf tree: b = [1,2), h = [2,4), l = [4,7).
    assert inclusion_ranges(0, 7) == [(1, 2), (2, 4), (4, 7)]
    # PROOF(3, D[7]) = [c, d, g, l].
    assert consistency_ranges(3, 7) == [(2, 3), (3, 4), (0, 2), (4, 7)]
    assert consistency_ranges(5, 5) == []


def test_proof_arguments_are_checked() -> None:
    store = build(entries(10))
    with pytest.raises(ValueError):
        inclusion_proof(store, 10, 10)
    with pytest.raises(ValueError):
        inclusion_proof(store, -1, 10)
    with pytest.raises(ValueError, match="beyond"):
        inclusion_proof(store, 0, 11)
    with pytest.raises(ValueError):
        consistency_proof(store, 0, 5)  # from the empty tree proves nothing
    with pytest.raises(ValueError):
        consistency_proof(store, 6, 5)
    with pytest.raises(ValueError, match="beyond"):
        consistency_proof(store, 1, 11)
    assert consistency_proof(store, 10, 10) == []
