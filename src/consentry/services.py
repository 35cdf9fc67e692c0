"""The composition root: build the services of one Consentry from its Settings, once.

The API, the CLI and the workers share this, so each gets the same wiring.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from consentry.config import Settings
from consentry.decisions.cache import RedisStateCache
from consentry.decisions.gpc import GpcRecorder
from consentry.decisions.local import StateReader
from consentry.decisions.service import DecisionService
from consentry.ledger.service import LedgerService
from consentry.recording.service import Recorder
from consentry.signing import TenantKeyring
from consentry.storage import SqlStore, open_store
from consentry.storage.catalog import Catalog


@dataclass
class Services:
    settings: Settings
    store: SqlStore
    catalog: Catalog
    recorder: Recorder
    decisions: DecisionService
    keyring: TenantKeyring
    gpc: GpcRecorder

    @classmethod
    def build(cls, settings: Settings, store: SqlStore | None = None) -> Services:
        store = store or open_store(settings.database_url)
        catalog = Catalog(store)
        recorder = Recorder(store, settings, catalog)
        decisions = DecisionService(store, settings, catalog)
        decisions.reader = StateReader(
            store,
            decisions.regime,
            local=settings.local_cache,
            redis=_redis_cache(settings),
            max_subjects=settings.local_cache_subjects,
            sync_interval=settings.local_sync_interval_ms / 1000,
        )
        # Caches are invalidated after the commit and before the write is acknowledged.
        recorder.listeners.append(decisions.reader.on_commit)
        return cls(
            settings=settings,
            store=store,
            catalog=catalog,
            recorder=recorder,
            decisions=decisions,
            keyring=TenantKeyring(
                settings.signing_keys_dir, settings.ledger_origin, dict(settings.signing_keys)
            ),
            gpc=GpcRecorder(recorder, catalog, decisions),
        )

    @cached_property
    def ledger(self) -> LedgerService:
        """Receipts, checkpoints, proofs and the integrator (docs/ledger.md)."""
        s = self.settings
        return LedgerService(
            self.store,
            self.keyring,
            batch_size=s.ledger_batch_size,
            checkpoint_interval=s.ledger_checkpoint_interval_seconds,
            poll_interval=s.ledger_poll_interval_ms / 1000,
        )

    def close(self) -> None:
        reader = self.decisions.reader
        if reader is not None and reader.redis is not None:
            reader.redis.close()
        self.store.close()


def _redis_cache(settings: Settings) -> RedisStateCache | None:
    if not settings.redis_url:
        return None
    return RedisStateCache(
        settings.redis_url,
        ttl_seconds=settings.redis_ttl_seconds,
        timeout_seconds=settings.redis_timeout_ms / 1000,
        retry_seconds=settings.redis_retry_seconds,
    )
