"""The append-only tree over a node store: roots, batching, reads and writes, append-only-ness."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.ledger.hasher import EMPTY_ROOT, hash_leaf
from consentry.ledger.tree import (
    MemoryNodeStore,
    MissingNodeError,
    NodeKey,
    NodeStore,
    append_leaves,
    compact_range,
    root,
)

from . import rfc_reference as ref

# RFC 6962's test leaves (transparency-dev/merkle testonly) and the roots of their prefixes.
RFC_LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
RFC_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


class RecordingStore:
    """A MemoryNodeStore that records every call, to check reads, writes and append-only-ness."""

    def __init__(self) -> None:
        self.inner = MemoryNodeStore()
        self.gets: list[list[NodeKey]] = []
        self.puts: list[dict[NodeKey, bytes]] = []
        self.written: dict[NodeKey, bytes] = {}

    def size(self) -> int:
        return self.inner.size()

    def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
        self.gets.append(list(keys))
        return self.inner.get_nodes(keys)

    def put_nodes(self, nodes: Mapping[NodeKey, bytes]) -> None:
        for key in nodes:
            assert key not in self.written, f"node {key} written twice"
        self.inner.put_nodes(nodes)
        self.puts.append(dict(nodes))
        self.written.update(nodes)


def entries(count: int, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 40)) for _ in range(count)]


def build(data: Sequence[bytes], chunks: Sequence[int] | None = None) -> MemoryNodeStore:
    store = MemoryNodeStore()
    hashes = [hash_leaf(d) for d in data]
    if chunks is None:
        append_leaves(store, hashes)
    else:
        at = 0
        for size in chunks:
            append_leaves(store, hashes[at : at + size])
            at += size
        append_leaves(store, hashes[at:])
    return store


def all_nodes(store: NodeStore) -> dict[NodeKey, bytes]:
    n = store.size()
    keys = [(level, i) for level in range(n.bit_length()) for i in range(n >> level)]
    return store.get_nodes(keys)


def test_memory_store_satisfies_the_protocol() -> None:
    assert isinstance(MemoryNodeStore(), NodeStore)
    assert isinstance(RecordingStore(), NodeStore)


def test_empty_tree() -> None:
    store = MemoryNodeStore()
    assert store.size() == 0
    assert root(store) == EMPTY_ROOT
    assert root(store, 0) == EMPTY_ROOT
    assert append_leaves(store, []) == 0
    assert store.size() == 0


def test_rfc6962_test_roots_one_by_one() -> None:
    store = MemoryNodeStore()
    for i, data in enumerate(RFC_LEAVES):
        assert append_leaves(store, [hash_leaf(data)]) == i + 1
        assert root(store).hex() == RFC_ROOTS[i]
    # ... and every past size is still answered after later appends.
    for size in range(1, 9):
        assert root(store, size).hex() == RFC_ROOTS[size - 1]


def test_rfc_seven_leaf_example_root() -> None:
    # RFC 9162 §2.1.5's tree of seven leaves d0..d6: hash = H(k, l), k = H(g, h), l = H(i, j).
    store = build(RFC_LEAVES[:7])
    a, b, c, d, e, f, j = (ref.leaf(x) for x in RFC_LEAVES[:7])
    g, h, i = ref.node(a, b), ref.node(c, d), ref.node(e, f)
    k, l_ = ref.node(g, h), ref.node(i, j)
    assert root(store) == ref.node(k, l_)
    assert root(store).hex() == RFC_ROOTS[6]
    # The stored nodes are the perfect subtrees only; j = d6 is a leaf with no stored parent.
    assert all_nodes(store) == {
        (0, 0): a, (0, 1): b, (0, 2): c, (0, 3): d, (0, 4): e, (0, 5): f, (0, 6): j,
        (1, 0): g, (1, 1): h, (1, 2): i,
        (2, 0): k,
    }  # fmt: skip


def test_roots_match_the_naive_rfc_mth_for_every_size_up_to_70() -> None:
    data = entries(70, seed=1)
    one_by_one = MemoryNodeStore()
    for item in data:
        append_leaves(one_by_one, [hash_leaf(item)])
    batched = build(data, chunks=[3, 1, 7, 16, 2, 30])
    for size in range(71):
        expected = ref.mth(data[:size])
        assert root(one_by_one, size) == expected
        assert root(batched, size) == expected


def test_every_stored_node_is_the_mth_of_its_perfect_subtree() -> None:
    data = entries(45, seed=2)
    store = build(data, chunks=[5, 9, 1])
    nodes = all_nodes(store)
    assert len(nodes) == sum(45 >> level for level in range(6))
    for (level, index), value in nodes.items():
        assert value == ref.mth(data[index << level : (index + 1) << level])


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(min_value=0, max_value=150),
    chunks=st.lists(st.integers(min_value=0, max_value=40), max_size=12),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_batches_of_any_size_equal_one_by_one(total: int, chunks: list[int], seed: int) -> None:
    data = entries(total, seed)
    single = MemoryNodeStore()
    for item in data:
        append_leaves(single, [hash_leaf(item)])
    batched = build(data, chunks)
    assert batched.size() == single.size() == total
    assert all_nodes(batched) == all_nodes(single)
    for size in range(total + 1):
        assert root(batched, size) == root(single, size)


@settings(max_examples=40, deadline=None)
@given(
    chunks=st.lists(st.integers(min_value=0, max_value=33), min_size=1, max_size=15),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_append_only_one_read_one_write_per_batch(chunks: list[int], seed: int) -> None:
    store = RecordingStore()
    hashes = [hash_leaf(d) for d in entries(sum(chunks), seed)]
    at = 0
    for count in chunks:
        before = dict(store.written)
        gets, puts = len(store.gets), len(store.puts)
        n = store.size()
        assert append_leaves(store, hashes[at : at + count]) == n + count
        if count == 0:
            assert (len(store.gets), len(store.puts)) == (gets, puts)
            continue
        # One read of the old right edge (popcount(n) nodes), one write.
        assert len(store.puts) == puts + 1
        assert len(store.gets) == gets + (1 if n else 0)
        if n:
            assert sorted(store.gets[-1]) == sorted(compact_range(0, n))
            assert len(store.gets[-1]) == n.bit_count()
        batch = store.puts[-1]
        # The batch holds exactly the new leaves and the perfect subtrees they complete.
        assert {i for (level, i) in batch if level == 0} == set(range(n, n + count))
        for level, i in batch:
            end = (i + 1) << level
            assert n < end <= n + count, "only subtrees completed by this batch are written"
        # Old nodes are unchanged (RecordingStore also asserts no key is written twice).
        assert {key: store.written[key] for key in before} == before
        at += count


def test_memory_store_refuses_overwrite_and_gaps_atomically() -> None:
    store = build(entries(5))
    snapshot = all_nodes(store)
    fresh = hash_leaf(b"x")
    with pytest.raises(ValueError, match="already exists"):
        store.put_nodes({(0, 5): fresh, (0, 2): fresh})
    with pytest.raises(ValueError, match="gap"):
        store.put_nodes({(0, 5): fresh, (0, 7): fresh})
    with pytest.raises(ValueError, match="32-byte"):
        store.put_nodes({(0, 5): b"short"})
    assert store.size() == 5
    assert all_nodes(store) == snapshot


def test_memory_store_get_omits_absent_keys() -> None:
    store = build(entries(3))
    got = store.get_nodes([(0, 0), (0, 3), (1, 0), (1, 1), (5, 0), (-1, 0)])
    assert set(got) == {(0, 0), (1, 0)}


def test_root_reads_popcount_nodes_in_one_call() -> None:
    store = RecordingStore()
    append_leaves(store, [hash_leaf(d) for d in entries(1000)])
    for size in [1, 2, 3, 7, 8, 9, 500, 511, 512, 999, 1000]:
        store.gets.clear()
        root(store, size)
        assert len(store.gets) == 1
        assert len(store.gets[0]) == size.bit_count()


def test_append_rejects_bad_leaf_hashes_and_stores_nothing() -> None:
    store = build(entries(3))
    with pytest.raises(ValueError, match="must be 32 bytes"):
        append_leaves(store, [hash_leaf(b"ok"), b"too short"])
    with pytest.raises(ValueError):
        append_leaves(store, [bytearray(32)])  # type: ignore[list-item]
    assert store.size() == 3


def test_root_refuses_sizes_the_store_cannot_answer() -> None:
    store = build(entries(4))
    with pytest.raises(ValueError, match="beyond"):
        root(store, 5)
    with pytest.raises(ValueError):
        root(store, -1)


def test_missing_node_is_reported_not_papered_over() -> None:
    class LossyStore(MemoryNodeStore):
        def get_nodes(self, keys: Sequence[NodeKey]) -> dict[NodeKey, bytes]:
            found = super().get_nodes(keys)
            found.pop((2, 0), None)
            return found

    store = LossyStore()
    append_leaves(store, [hash_leaf(d) for d in entries(6)])
    with pytest.raises(MissingNodeError) as info:
        root(store, 6)
    assert info.value.key == (2, 0)
    with pytest.raises(MissingNodeError):
        append_leaves(store, [hash_leaf(b"next")])
    assert store.size() == 6


@given(st.integers(min_value=0, max_value=5000), st.integers(min_value=0, max_value=5000))
def test_compact_range_covers_the_range_with_aligned_perfect_subtrees(a: int, b: int) -> None:
    begin, end = min(a, b), max(a, b)
    keys = compact_range(begin, end)
    at = begin
    for level, index in keys:
        assert index << level == at, "contiguous, left to right"
        at += 1 << level
    assert at == end
    assert len(keys) <= 2 * max(1, (end - begin).bit_length())
    if begin == 0:
        assert [level for level, _ in keys] == [
            bit for bit in reversed(range(end.bit_length())) if end >> bit & 1
        ]


def test_compact_range_rejects_reversed_range() -> None:
    with pytest.raises(ValueError):
        compact_range(5, 4)
