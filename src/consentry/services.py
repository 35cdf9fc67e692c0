"""The composition root: build the services of one Consentry from its Settings, once.

The API, the CLI and the workers share this, so each gets the same wiring.
"""

from __future__ import annotations

from dataclasses import dataclass

from consentry.config import Settings
from consentry.decisions.service import DecisionService
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

    @classmethod
    def build(cls, settings: Settings, store: SqlStore | None = None) -> Services:
        store = store or open_store(settings.database_url)
        catalog = Catalog(store)
        return cls(
            settings=settings,
            store=store,
            catalog=catalog,
            recorder=Recorder(store, settings, catalog),
            decisions=DecisionService(store, settings, catalog),
            keyring=TenantKeyring(
                settings.signing_keys_dir, settings.ledger_origin, dict(settings.signing_keys)
            ),
        )

    def close(self) -> None:
        self.store.close()
