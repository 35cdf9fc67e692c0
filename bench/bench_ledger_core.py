"""Micro benchmark of the ledger core on MemoryNodeStore; prints medians.

    python bench/bench_ledger_core.py [--leaves 1000000] [--runs 3]

What it measures and why:

* appending N leaf hashes in batches (leaves/s), for a few batch sizes, against a baseline of
  hashlib alone computing the same N-1 interior SHA-256 hashes over the same 65-byte inputs:
  the ratio is the cost of our bookkeeping (store, dicts, slicing) on top of the hashing that
  no implementation can avoid;
* inclusion and consistency proof generation and verification at N leaves (µs per proof),
  and ``root`` at a past size, which an API answers per request.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from consentry.ledger.proof import consistency_proof, inclusion_proof
from consentry.ledger.tree import MemoryNodeStore, append_leaves, root
from consentry.ledger.verify import verify_consistency, verify_inclusion


def timed(fn: Callable[[], object]) -> float:
    gc.collect()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def baseline_hashing(leaves: list[bytes]) -> None:
    """The N-1 node hashes of a perfect-as-possible tree, level by level, hashlib only."""
    sha256 = hashlib.sha256
    row = leaves
    while len(row) > 1:
        pairs = zip(row[::2], row[1::2], strict=False)
        row = [sha256(b"\x01" + left + right).digest() for left, right in pairs]


def append_all(leaves: list[bytes], batch: int) -> MemoryNodeStore:
    store = MemoryNodeStore()
    for start in range(0, len(leaves), batch):
        append_leaves(store, leaves[start : start + batch])
    return store


def per_call_us(samples: list[float]) -> float:
    return statistics.median(samples) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--proofs", type=int, default=2000)
    args = parser.parse_args()
    n: int = args.leaves

    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    rng = random.Random(42)
    leaves = [rng.randbytes(32) for _ in range(n)]

    base = statistics.median(timed(lambda: baseline_hashing(leaves)) for _ in range(args.runs))
    print(f"\nbaseline: hashlib SHA-256 of the {n - 1:,} interior nodes alone")
    print(f"  {base:.3f} s  ({n / base:,.0f} leaves/s)")

    print(f"\nappend {n:,} leaf hashes to MemoryNodeStore (median of {args.runs} runs)")
    store = MemoryNodeStore()
    for batch in (100, 1_000, 10_000, 100_000):
        runs = [timed(lambda b=batch: append_all(leaves, b)) for _ in range(args.runs)]
        took = statistics.median(runs)
        print(
            f"  batch {batch:>7,}: {took:.3f} s  {n / took:>11,.0f} leaves/s"
            f"  ({took / base:.2f}x the hashlib baseline)"
        )
    store = append_all(leaves, 10_000)

    print(f"\nproofs at tree size {n:,} (median of {args.proofs} random cases)")
    tree_root = root(store, n)
    indexes = [rng.randrange(n) for _ in range(args.proofs)]
    gen: list[float] = []
    ver: list[float] = []
    for index in indexes:
        t0 = time.perf_counter()
        proof = inclusion_proof(store, index, n)
        t1 = time.perf_counter()
        verify_inclusion(leaves[index], index, n, proof, tree_root)
        t2 = time.perf_counter()
        gen.append(t1 - t0)
        ver.append(t2 - t1)
    print(f"  inclusion proof:   generate {per_call_us(gen):6.1f} µs", end="")
    print(f"   verify {per_call_us(ver):6.1f} µs")

    roots: dict[int, bytes] = {}
    gen, ver, root_times = [], [], []
    for _ in range(args.proofs):
        size1 = rng.randrange(1, n)
        t0 = time.perf_counter()
        roots[size1] = root(store, size1)
        t1 = time.perf_counter()
        proof = consistency_proof(store, size1, n)
        t2 = time.perf_counter()
        verify_consistency(size1, n, proof, roots[size1], tree_root)
        t3 = time.perf_counter()
        root_times.append(t1 - t0)
        gen.append(t2 - t1)
        ver.append(t3 - t2)
    print(f"  consistency proof: generate {per_call_us(gen):6.1f} µs", end="")
    print(f"   verify {per_call_us(ver):6.1f} µs")
    print(f"  root at a past size:        {per_call_us(root_times):6.1f} µs")


if __name__ == "__main__":
    main()
