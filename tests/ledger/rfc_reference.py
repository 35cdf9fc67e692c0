"""A deliberately naive, recursive transcription of RFC 9162 §2.1, to check the real code against.

MTH, PATH and PROOF are written exactly as the RFC states them, with no node store, no caching
and no cleverness, so that a bug in the iterative, store-backed implementation cannot hide
behind the same bug here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """k: the largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(entries: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over raw entries."""
    n = len(entries)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf(entries[0])
    k = split(n)
    return node(mth(entries[:k]), mth(entries[k:]))


def path(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """PATH(m, D[n]): the audit path of entry m."""
    n = len(entries)
    if n == 1:
        return []
    k = split(n)
    if m < k:
        return [*path(m, entries[:k]), mth(entries[k:])]
    return [*path(m - k, entries[k:]), mth(entries[:k])]


def proof(m: int, entries: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) = SUBPROOF(m, D[n], true)."""
    return subproof(m, entries, True)


def subproof(m: int, entries: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(entries)
    if m == n:
        return [] if whole else [mth(entries)]
    k = split(n)
    if m <= k:
        return [*subproof(m, entries[:k], whole), mth(entries[k:])]
    return [*subproof(m - k, entries[k:], False), mth(entries[:k])]
