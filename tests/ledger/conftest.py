"""Helpers of the ledger's integration tests: events on a real store, raw SQL as an admin."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consentry.domain.events import Action, Actor, Evidence, NewEvent, RecordedEvent, Source
from consentry.domain.purposes import LegalBasis
from consentry.ledger.hasher import hash_leaf
from consentry.ledger.tree import MemoryNodeStore, append_leaves
from consentry.storage import SqlStore
from tests.storage.conftest import run_raw_sql

T0 = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
ACTIONS = [Action.GIVEN, Action.REFUSED, Action.WITHDRAWN, Action.GIVEN]


def event(tenant: str, i: int, **evidence: Any) -> NewEvent:
    """The i-th test event: fields vary with i (some optional ones set, some not)."""
    return NewEvent(
        event_id=uuid.uuid4(),
        tenant=tenant,
        subject=f"subject-{i % 7}",
        purpose=("email", "ads", "analytics")[i % 3],
        action=ACTIONS[i % 4],
        legal_basis=LegalBasis.CONSENT,
        occurred_at=T0 + timedelta(seconds=i, microseconds=i),
        evidence=Evidence(
            source=Source.BANNER if i % 2 else Source.API,
            actor=Actor.SUBJECT,
            jurisdiction="DE" if i % 5 else None,
            ip="203.0.113.0" if i % 3 else None,
            user_agent="Mozilla/5.0 « test »" if i % 4 == 1 else None,
            **evidence,
        ),
        expires_at=T0 + timedelta(days=395) if i % 6 == 0 else None,
    )


def fill(
    store: SqlStore, count: int, tenants: Sequence[str] = ("default",), start: int = 0
) -> None:
    """Append `count` events, one request each, tenants taking turns."""
    for i in range(start, start + count):
        tenant = tenants[i % len(tenants)]
        if not store.tenant_exists(tenant):
            store.ensure_tenant(tenant)
        store.append(tenant, [event(tenant, i)])


def reference_tree(store: SqlStore, tenant: str) -> MemoryNodeStore:
    """The tenant's tree computed the slow, obvious way: domain canonical bytes in memory."""
    events: list[RecordedEvent] = store.events_after(-(2**62), 10**9, tenant)
    tree = MemoryNodeStore()
    append_leaves(tree, [hash_leaf(e.canonical_bytes()) for e in events])
    return tree


def drop_append_only(db_url: str) -> None:
    """What an administrator with the database's credentials can do: remove the triggers."""
    if db_url.startswith("sqlite:"):
        for name in (
            "events_no_update",
            "events_no_delete",
            "events_no_replace",
            "ledger_leaves_no_update",
            "ledger_leaves_no_delete",
            "ledger_nodes_no_update",
            "ledger_nodes_no_delete",
        ):
            run_raw_sql(db_url, f"DROP TRIGGER IF EXISTS {name}")
    else:
        for table in ("events", "ledger_leaves", "ledger_nodes"):
            run_raw_sql(db_url, f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")


@pytest.fixture
def sql(db_url: str) -> Any:
    def run(statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return run_raw_sql(db_url, statement, params)

    return run
