"""Helpers of the storage contract suite: event factories and raw driver access.

`raw_sql` talks to the test database through the driver alone (sqlite3 or psycopg, same URL as the
store), which is how the suite proves that the DATABASE enforces an invariant, not only our code.
"""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consentry.domain.events import Action, Actor, Evidence, NewEvent, Source
from consentry.domain.purposes import LegalBasis
from consentry.storage import SqlStore
from consentry.storage.sqlite import sqlite_path

BASE_TIME = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
_clock = itertools.count()

NewEventFactory = Callable[..., NewEvent]
RawSql = Callable[..., list[tuple[Any, ...]]]


def make_event(
    subject: str = "alice",
    purpose: str = "analytics",
    action: Action = Action.GIVEN,
    *,
    tenant: str = "default",
    occurred_at: datetime | None = None,
    event_id: uuid.UUID | None = None,
    legal_basis: LegalBasis = LegalBasis.CONSENT,
    evidence: Evidence | None = None,
    expires_at: datetime | None = None,
) -> NewEvent:
    """A valid event; each call without `occurred_at` gets a later legal time than the last."""
    if occurred_at is None:
        occurred_at = BASE_TIME + timedelta(seconds=next(_clock))
    return NewEvent(
        event_id=event_id or uuid.uuid4(),
        tenant=tenant,
        subject=subject,
        purpose=purpose,
        action=action,
        legal_basis=legal_basis,
        occurred_at=occurred_at,
        evidence=evidence or Evidence(source=Source.API, actor=Actor.SUBJECT),
        expires_at=expires_at,
    )


@pytest.fixture
def new_event() -> NewEventFactory:
    """`make_event` as a fixture: new_event("bob", "ads", Action.WITHDRAWN, occurred_at=...)."""
    return make_event


@pytest.fixture
def backend(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite:") else "postgres"


def run_raw_sql(url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one statement through a new driver connection, committed; return its rows."""
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(sqlite_path(url), isolation_level=None, timeout=10)
        try:
            cur = conn.execute(sql, tuple(params))
            return [tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as pg:
        cur2 = pg.execute(sql.replace("?", "%s"), tuple(params) or None)
        return [tuple(r) for r in cur2.fetchall()] if cur2.description else []


@pytest.fixture
def raw_sql(db_url: str) -> RawSql:
    """raw_sql("SELECT ... WHERE x = ?", (1,)) on the test database, bypassing the store."""

    def run(sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return run_raw_sql(db_url, sql, params)

    return run


@pytest.fixture
def tables_dump(raw_sql: RawSql) -> Callable[[], dict[str, list[tuple[Any, ...]]]]:
    """Every row the log writes (events, state, subjects, head, idempotency), for before/after."""

    def dump() -> dict[str, list[tuple[Any, ...]]]:
        return {
            "events": raw_sql("SELECT * FROM events ORDER BY position"),
            "state": raw_sql("SELECT * FROM state ORDER BY tenant, subject, purpose"),
            "subjects": raw_sql("SELECT * FROM subjects ORDER BY tenant, subject"),
            "log_head": raw_sql("SELECT * FROM log_head"),
            "idempotency_keys": raw_sql("SELECT * FROM idempotency_keys ORDER BY tenant, key"),
        }

    return dump


@pytest.fixture
def second_tenant(store: SqlStore) -> str:
    """A second tenant beside `default`, for isolation tests."""
    store.ensure_tenant("other")
    return "other"
