"""Used preference links (storage/token_uses.py, migration 0008), on every backend."""

from __future__ import annotations

import time

from consentry.storage import SqlStore
from consentry.storage.token_uses import KEEP_AFTER_EXPIRY_SECONDS, TokenUses


def test_a_token_is_claimed_once_per_tenant(store: SqlStore) -> None:
    uses = TokenUses(store)
    store.ensure_tenant("acme")
    later = int(time.time()) + 3600
    assert not uses.used("default", "t-1")
    assert uses.claim("default", "t-1", later)
    assert uses.used("default", "t-1")
    assert not uses.claim("default", "t-1", later)
    assert uses.claim("acme", "t-1", later), "another tenant's id is another token"


def test_expired_ids_are_forgotten(store: SqlStore) -> None:
    uses = TokenUses(store)
    long_ago = int(time.time()) - KEEP_AFTER_EXPIRY_SECONDS - 60
    assert uses.claim("default", "old", long_ago)
    assert uses.claim("default", "new", int(time.time()) + 60)  # a claim sweeps the expired
    assert not uses.used("default", "old") and uses.used("default", "new")
