"""DESIGN.md's storage invariants 1-4, on every backend.

1. Append-only, enforced by the database: raw SQL through the driver cannot change the log.
2. Atomic: a request that fails anywhere inside its transaction leaves no trace.
3. Gapless order (single writer here; many concurrent writers in test_concurrency.py).
4. Latest by legal time: the state is the greatest occurred_at, ties by position.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consentry.domain.errors import ConflictError
from consentry.domain.events import Action, NewEvent, RecordedEvent
from consentry.domain.history import latest_per_purpose
from consentry.domain.notices import Notice
from consentry.storage import SqlStore
from consentry.storage.postgres import PostgresStore
from consentry.storage.sql import Cursor
from consentry.storage.sqlite import SqliteStore

NewEventFactory = Callable[..., NewEvent]
RawSql = Callable[..., list[tuple[Any, ...]]]
Dump = Callable[[], dict[str, list[tuple[Any, ...]]]]

T0 = datetime(2024, 1, 1, tzinfo=UTC)


# 1. Append-only ----------------------------------------------------------------------------


def add_notice(store: SqlStore) -> None:
    store.add_notice(
        "default",
        Notice("privacy", 1, "We use cookies.", ("ads",), published_at=T0, material=False),
    )


def tampering(backend: str) -> list[str]:
    """Raw statements that would rewrite or erase the log, for the backend's SQL dialect."""
    statements = [
        "UPDATE events SET action = 'withdrawn' WHERE position = 1",
        "UPDATE events SET occurred_at = recorded_at",
        "DELETE FROM events WHERE position = 2",
        "DELETE FROM events",
        "INSERT INTO events SELECT * FROM events WHERE position = 1"
        " ON CONFLICT (position) DO UPDATE SET action = 'refused'",
        "UPDATE notices SET text = 'We use no cookies.'",
        "DELETE FROM notices",
        "INSERT INTO notices SELECT * FROM notices WHERE true"
        " ON CONFLICT (tenant, id, version) DO UPDATE SET text = 'forged'",
    ]
    if backend == "postgres":
        statements += [
            "TRUNCATE events",
            "TRUNCATE notices",
            "TRUNCATE events, state, subjects",
            "TRUNCATE tenants CASCADE",  # would take notices with it
        ]
    else:
        # REPLACE deletes the colliding row without firing delete triggers (unless
        # recursive_triggers is on): the schema must refuse the colliding insert itself.
        statements += [
            "REPLACE INTO events SELECT * FROM events WHERE position = 1",
            "INSERT OR REPLACE INTO events (position, event_id, tenant, subject,"
            " subject_version, purpose, action, legal_basis, occurred_at, recorded_at, source,"
            " actor) SELECT 1, 'forged', tenant, subject, subject_version + 100, purpose,"
            " 'refused', legal_basis, occurred_at, recorded_at, source, actor"
            " FROM events WHERE position = 2",
            "INSERT OR REPLACE INTO events SELECT position + 100, event_id, tenant, subject,"
            " subject_version + 100, purpose, 'refused', legal_basis, occurred_at, recorded_at,"
            " source, actor, jurisdiction, notice_id, notice_version, notice_hash, ip,"
            " user_agent, raw_signal, expires_at FROM events WHERE position = 1",
            "REPLACE INTO notices SELECT * FROM notices",
            "UPDATE OR REPLACE events SET position = 1 WHERE position = 2",
        ]
    return statements


def test_database_rejects_changes_to_events_and_notices(
    store: SqlStore, new_event: NewEventFactory, raw_sql: RawSql, backend: str
) -> None:
    add_notice(store)
    store.append("default", [new_event("alice"), new_event("bob")])
    store.append("default", [new_event("alice", "ads")])
    events_before = raw_sql("SELECT * FROM events ORDER BY position")
    notices_before = raw_sql("SELECT * FROM notices")
    canonical = [e.canonical_bytes() for e in store.events_after(0, 10)]

    for sql in tampering(backend):
        with pytest.raises(Exception, match="append-only"):
            raw_sql(sql)

    assert raw_sql("SELECT * FROM events ORDER BY position") == events_before
    assert raw_sql("SELECT * FROM notices") == notices_before
    assert [e.canonical_bytes() for e in store.events_after(0, 10)] == canonical


def test_append_only_triggers_exist_in_schema(
    store: SqlStore, raw_sql: RawSql, backend: str
) -> None:
    """The triggers belong to the migrated schema, not to anything the test set up."""
    if backend == "sqlite":
        rows = raw_sql("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'")
    else:
        rows = raw_sql(
            "SELECT event_object_table FROM information_schema.triggers"
            " WHERE trigger_schema = current_schema()"
        )
        rows += raw_sql(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid"
            " WHERE c.relnamespace = current_schema()::regnamespace AND t.tgtype & 32 = 32"
        )  # TRUNCATE triggers are not in information_schema
    tables = {r[0] for r in rows}
    assert {"events", "notices"} <= tables


def test_the_store_itself_can_still_append_after_rejections(
    store: SqlStore, new_event: NewEventFactory, raw_sql: RawSql
) -> None:
    store.append("default", [new_event()])
    with pytest.raises(Exception, match="append-only"):
        raw_sql("DELETE FROM events")
    assert store.append("default", [new_event()]).token == 2


# 2. Atomicity --------------------------------------------------------------------------------


class InjectedFailure(RuntimeError):
    """Raised inside the append transaction by the failing store below."""


class FailAfter:
    """A cursor that executes `stage`'s statement and then fails, mid-transaction."""

    def __init__(self, cur: Cursor, stage: str) -> None:
        self._cur = cur
        self._stage = stage

    def _maybe_fail(self, sql: str) -> None:
        if self._stage and sql.lstrip().startswith(self._stage):
            raise InjectedFailure(f"injected failure after {self._stage!r}")

    def execute(self, sql: str, params: Sequence[Any] = (), /) -> Any:
        result = self._cur.execute(sql, params)
        self._maybe_fail(sql)
        return result

    def executemany(self, sql: str, params: Sequence[Sequence[Any]], /) -> Any:
        result = self._cur.executemany(sql, params)
        self._maybe_fail(sql)
        return result

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()


class FailingSqliteStore(SqliteStore):
    fail_after = ""

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        with super()._write() as cur:
            yield FailAfter(cur, self.fail_after)


class FailingPostgresStore(PostgresStore):
    fail_after = ""

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        with super()._write() as cur:
            yield FailAfter(cur, self.fail_after)


@pytest.fixture
def failing_store(
    db_url: str, store: SqlStore
) -> Iterator[FailingSqliteStore | FailingPostgresStore]:
    """A second store on the same database whose writes fail where a test says."""
    failing = (
        FailingSqliteStore(db_url)
        if isinstance(store, SqliteStore)
        else FailingPostgresStore(db_url)
    )
    try:
        yield failing
    finally:
        failing.close()


# The statements of one append, in the order it runs them: fail right after each.
APPEND_STAGES = [
    "INSERT INTO events",
    "INSERT INTO state",
    "INSERT INTO subjects",
    "UPDATE log_head",
    "INSERT INTO idempotency_keys",
]


@pytest.mark.parametrize("stage", APPEND_STAGES)
def test_failure_inside_append_leaves_nothing(
    store: SqlStore,
    failing_store: FailingSqliteStore | FailingPostgresStore,
    new_event: NewEventFactory,
    tables_dump: Dump,
    stage: str,
) -> None:
    earlier = store.append("default", [new_event("alice", "ads"), new_event("bob", "ads")])
    before = tables_dump()
    failing_store.fail_after = stage
    doomed = [
        new_event("alice", "ads", Action.WITHDRAWN),
        new_event("carol", "ads"),
        new_event("alice", "email"),
    ]
    with pytest.raises(InjectedFailure):
        failing_store.append("default", doomed, idempotency_key="k", request_hash="h")

    assert tables_dump() == before, "no event, state, version, head or idempotency record"
    assert store.head() == 2
    assert store.get_events("default", [e.event_id for e in doomed]) == []
    assert store.subject_state("default", "alice") == [earlier.events[0]]
    assert store.subject_history("default", "carol") == []

    # The same request then succeeds as if nothing had happened: no id, key or version is
    # taken by the failed attempt.
    done = store.append("default", doomed, idempotency_key="k", request_hash="h")
    assert not done.replayed
    assert [e.position for e in done.events] == [3, 4, 5]
    assert [e.subject_version for e in done.events] == [2, 1, 3]
    assert {e.purpose: e.action for e in store.subject_state("default", "alice")} == {
        "ads": Action.WITHDRAWN,
        "email": Action.GIVEN,
    }


def test_colliding_event_id_midway_leaves_nothing(
    store: SqlStore, new_event: NewEventFactory, tables_dump: Dump
) -> None:
    """A batch whose second event reuses the id of an existing, different event fails whole."""
    existing = new_event("bob", "ads")
    store.append("default", [existing])
    before = tables_dump()
    batch = [
        new_event("alice", "ads"),
        new_event("alice", "email", Action.REFUSED, event_id=existing.event_id),
        new_event("carol", "ads"),
    ]
    with pytest.raises(ConflictError):
        store.append("default", batch, idempotency_key="k2", request_hash="h2")
    assert tables_dump() == before
    assert store.subject_history("default", "alice") == []
    assert store.append("default", [new_event("alice")]).events[0].subject_version == 1


def test_failed_catalogue_write_leaves_nothing(
    store: SqlStore, failing_store: FailingSqliteStore | FailingPostgresStore, raw_sql: RawSql
) -> None:
    failing_store.fail_after = "INSERT INTO notices"
    with pytest.raises(InjectedFailure):
        add_notice(failing_store)
    assert raw_sql("SELECT COUNT(*) FROM notices") == [(0,)]
    assert store.get_notices("default") == []


# 3. Gapless order (one writer; see test_concurrency.py for many) ----------------------------


def test_positions_gapless_and_versions_per_subject(
    store: SqlStore, new_event: NewEventFactory
) -> None:
    subjects = ["a", "b", "c"]
    for i in range(20):
        store.append("default", [new_event(subjects[(i + j) % 3]) for j in range(1 + i % 3)])
    log = store.events_after(0, 1000)
    assert [e.position for e in log] == list(range(1, len(log) + 1))
    assert store.head() == len(log)
    for s in subjects:
        assert [e.subject_version for e in log if e.subject == s] == list(
            range(1, sum(e.subject == s for e in log) + 1)
        )
    assert all(a.recorded_at <= b.recorded_at for a, b in pairwise(log))


# 4. Latest by legal time -------------------------------------------------------------------


def test_late_older_event_is_kept_but_does_not_override(
    store: SqlStore, new_event: NewEventFactory
) -> None:
    withdrawn = store.append(
        "default",
        [new_event("alice", "ads", Action.WITHDRAWN, occurred_at=T0 + timedelta(hours=2))],
    ).events[0]
    # An offline phone reports, later, a consent the person gave before withdrawing.
    late = store.append(
        "default", [new_event("alice", "ads", Action.GIVEN, occurred_at=T0 + timedelta(hours=1))]
    ).events[0]
    assert late.position > withdrawn.position
    assert store.subject_history("default", "alice") == [withdrawn, late]
    assert store.subject_state("default", "alice") == [withdrawn]

    # ...and a newer decision still takes over.
    newer = store.append(
        "default", [new_event("alice", "ads", Action.GIVEN, occurred_at=T0 + timedelta(hours=3))]
    ).events[0]
    assert store.subject_state("default", "alice") == [newer]


def test_equal_legal_times_are_broken_by_position(
    store: SqlStore, new_event: NewEventFactory
) -> None:
    same = T0 + timedelta(minutes=5)
    store.append("default", [new_event("alice", "ads", Action.GIVEN, occurred_at=same)])
    second = store.append(
        "default", [new_event("alice", "ads", Action.REFUSED, occurred_at=same)]
    ).events[0]
    assert store.subject_state("default", "alice") == [second]
    # Within one request too: the later event of the batch wins the tie...
    batch = store.append(
        "default",
        [
            new_event("bob", "ads", Action.REFUSED, occurred_at=same),
            new_event("bob", "ads", Action.GIVEN, occurred_at=same),
        ],
    ).events
    assert store.subject_state("default", "bob") == [batch[1]]
    # ...and an older event later in a batch does not.
    batch = store.append(
        "default",
        [
            new_event("carol", "ads", Action.GIVEN, occurred_at=same),
            new_event("carol", "ads", Action.WITHDRAWN, occurred_at=same - timedelta(seconds=1)),
        ],
    ).events
    assert store.subject_state("default", "carol") == [batch[0]]


PURPOSES = ["ads", "email", "analytics"]
ACTIONS = [Action.GIVEN, Action.REFUSED, Action.WITHDRAWN]


@st.composite
def event_batches(draw: st.DrawFn) -> list[list[tuple[str, Action, int]]]:
    """Requests of (purpose, action, occurred_at offset in s): few distinct times, many ties."""
    item = st.tuples(st.sampled_from(PURPOSES), st.sampled_from(ACTIONS), st.integers(0, 6))
    return draw(st.lists(st.lists(item, min_size=1, max_size=4), min_size=1, max_size=6))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batches=event_batches())
def test_state_is_latest_per_purpose_of_history(
    store: SqlStore, new_event: NewEventFactory, batches: list[list[tuple[str, Action, int]]]
) -> None:
    subject = "h-" + uuid.uuid4().hex  # examples share the store: one fresh subject each
    appended: list[RecordedEvent] = []
    for batch in batches:
        result = store.append(
            "default",
            [
                new_event(subject, purpose, action, occurred_at=T0 + timedelta(seconds=offset))
                for purpose, action, offset in batch
            ],
        )
        appended.extend(result.events)
        state = {e.purpose: e for e in store.subject_state("default", subject)}
        assert state == latest_per_purpose(appended)
    history = store.subject_history("default", subject)
    assert history == appended
    assert {e.purpose: e for e in store.subject_state("default", subject)} == latest_per_purpose(
        history
    )
