"""Preparing a database for use: schema, the `default` tenant, and the first admin key."""

from __future__ import annotations

from dataclasses import dataclass

from consentry.keys import IssuedKey, create_key
from consentry.storage.base import ConsentStore, Role, SchemaError, SchemaState

DEFAULT_TENANT = "default"


@dataclass(frozen=True, slots=True)
class Prepared:
    created_schema: bool
    admin_key: IssuedKey | None


def prepare(store: ConsentStore, *, create_if_empty: bool) -> Prepared:
    """Make the database usable, or raise SchemaError saying which command to run.

    An empty database gets the schema when `create_if_empty` (what `serve` does on first start);
    an older or newer one is never changed here. A database with no API key at all gets an admin
    key for the `default` tenant, returned once so the caller can show it: the only time the
    clear key exists.
    """
    status = store.schema_status()
    created = False
    if status.state is SchemaState.EMPTY and create_if_empty:
        store.migrate()
        created = True
    elif status.state is not SchemaState.CURRENT:
        store.require_current_schema()
        raise SchemaError(f"the database schema is {status.state.value}: run `consentry migrate`")
    store.ensure_tenant(DEFAULT_TENANT)
    admin = None
    if store.count_api_keys() == 0:
        admin = create_key(store, DEFAULT_TENANT, Role.ADMIN, label="first admin key")
    return Prepared(created, admin)
