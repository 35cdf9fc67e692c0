"""Versioned migrations on every backend: status, apply, re-apply, refuse a newer schema, and a
failed migration that leaves nothing half-applied."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from consentry.domain.events import NewEvent, parse_time
from consentry.storage import SqlStore, open_store
from consentry.storage.base import SchemaError, SchemaState, SchemaStatus
from consentry.storage.sql import Migration, load_migrations

NewEventFactory = Callable[..., NewEvent]
RawSql = Callable[..., list[tuple[Any, ...]]]


@pytest.fixture
def fresh_store(db_url: str) -> Iterator[SqlStore]:
    """A store on an empty database: nothing migrated yet."""
    s = open_store(db_url)
    try:
        yield s
    finally:
        s.close()


def table_exists(raw_sql: RawSql, backend: str, name: str) -> bool:
    if backend == "sqlite":
        return bool(raw_sql("SELECT 1 FROM sqlite_master WHERE name = ?", (name,)))
    return raw_sql("SELECT to_regclass(?) IS NOT NULL", (name,)) == [(True,)]


def with_extra_migration(db_url: str, sql: str) -> SqlStore:
    """A store of a newer Consentry: one migration more than this code ships."""
    s = open_store(db_url)
    version = s.latest_version + 1
    s.migrations = [*s.migrations, Migration(version, f"{version:04d}_test.sql", sql)]
    s.latest_version = version
    return s


def test_fresh_database_is_empty_then_current(
    fresh_store: SqlStore, raw_sql: RawSql, backend: str
) -> None:
    latest = fresh_store.latest_version
    assert fresh_store.schema_status() == SchemaStatus(SchemaState.EMPTY, 0, latest)
    with pytest.raises(SchemaError, match="consentry migrate"):
        fresh_store.require_current_schema()

    applied = fresh_store.migrate()
    assert applied == [m.version for m in fresh_store.migrations]
    assert applied[-1] == latest
    assert fresh_store.schema_status() == SchemaStatus(SchemaState.CURRENT, latest, latest)
    fresh_store.require_current_schema()
    for table in ("events", "state", "subjects", "notices", "tenants", "api_keys"):
        assert table_exists(raw_sql, backend, table), table
    assert fresh_store.head() == 0


def test_migrate_again_is_a_no_op(
    store: SqlStore, new_event: NewEventFactory, raw_sql: RawSql
) -> None:
    recorded = store.append("default", [new_event("alice"), new_event("bob")]).events
    versions = raw_sql("SELECT version, name FROM schema_migrations ORDER BY version")
    assert store.migrate() == []
    assert store.migrate() == []
    assert raw_sql("SELECT version, name FROM schema_migrations ORDER BY version") == versions
    assert store.schema_status().state is SchemaState.CURRENT
    assert store.events_after(0, 10) == list(recorded)
    assert store.tenant_exists("default")


def test_newer_schema_is_ahead_and_refused(
    store: SqlStore, new_event: NewEventFactory, raw_sql: RawSql
) -> None:
    store.append("default", [new_event()])
    newer = store.latest_version + 1
    raw_sql(
        "INSERT INTO schema_migrations (version, name, applied_at)"
        " VALUES (?, 'from_the_future.sql', CURRENT_TIMESTAMP)",
        (newer,),
    )
    status = store.schema_status()
    assert status == SchemaStatus(SchemaState.AHEAD, newer, store.latest_version)
    with pytest.raises(SchemaError, match="newer"):
        store.migrate()
    with pytest.raises(SchemaError, match="newer"):
        store.require_current_schema()
    assert store.schema_status() == status, "a refused migrate changes nothing"
    assert store.head() == 1


def test_older_schema_is_behind_and_migrates_forward(
    store: SqlStore, db_url: str, new_event: NewEventFactory, raw_sql: RawSql, backend: str
) -> None:
    recorded = store.append("default", [new_event()]).events
    newer = with_extra_migration(db_url, "CREATE TABLE extra_facts (id INTEGER PRIMARY KEY);")
    try:
        old, latest = store.latest_version, newer.latest_version
        assert newer.schema_status() == SchemaStatus(SchemaState.BEHIND, old, latest)
        with pytest.raises(SchemaError, match="consentry migrate"):
            newer.require_current_schema()
        assert newer.migrate() == [latest], "only the pending migration is applied"
        assert newer.schema_status() == SchemaStatus(SchemaState.CURRENT, latest, latest)
        assert table_exists(raw_sql, backend, "extra_facts")
        assert newer.events_after(0, 10) == list(recorded), "data survives a migration"
        # ...and the older code now refuses the newer schema.
        assert store.schema_status().state is SchemaState.AHEAD
    finally:
        newer.close()


def test_failed_migration_leaves_nothing_half_applied(
    store: SqlStore, db_url: str, raw_sql: RawSql, backend: str
) -> None:
    newer = with_extra_migration(
        db_url,
        "CREATE TABLE half_done (id INTEGER PRIMARY KEY);\n"
        "INSERT INTO half_done (id) VALUES (1);\n"
        "INSERT INTO no_such_table (id) VALUES (1);\n",
    )
    try:
        with pytest.raises(SchemaError):
            newer.migrate()
        assert not table_exists(raw_sql, backend, "half_done")
        assert newer.schema_status().state is SchemaState.BEHIND
        assert store.schema_status().state is SchemaState.CURRENT
        store.ensure_tenant("still-works")
    finally:
        newer.close()


def test_dialects_ship_the_same_migrations() -> None:
    """Both backends are one protocol: the same versions, and the same tables in each."""
    sqlite, postgres = load_migrations("sqlite"), load_migrations("postgres")
    assert [(m.version, m.name) for m in sqlite] == [(m.version, m.name) for m in postgres]
    versions = [m.version for m in sqlite]
    # Numbers are reserved per branch (migrate() applies any not yet applied, in order), so a
    # branch may land 0008 before 0005: unique and increasing, not necessarily contiguous.
    assert versions == sorted(set(versions)) and versions[0] == 1, "unique versions from 1"

    def tables(ms: list[Migration]) -> set[str]:
        """The tables the migrations leave, following SQLite's rebuilds (create, drop, rename)."""
        found: set[str] = set()
        statement = r"CREATE TABLE (\w+)|DROP TABLE (\w+)|ALTER TABLE (\w+) RENAME TO (\w+)"
        for m in ms:
            for created, dropped, old, new in re.findall(statement, m.sql):
                found = (found | {created, new}) - {dropped, old, ""}
        return found

    assert tables(sqlite) == tables(postgres)
    for ms in (sqlite, postgres):
        triggers = " ".join(m.sql for m in ms)
        assert re.search(r"TRIGGER \w+ BEFORE (UPDATE|DELETE)[\w ]* ON events", triggers)
        assert re.search(r"TRIGGER \w+ BEFORE (UPDATE|DELETE)[\w ]* ON notices", triggers)


def test_a_migration_merged_out_of_order_is_still_applied(db_url: str) -> None:
    """A database at versions {1, 3} (say 2 came from a branch merged later) is behind, and
    migrate applies 2 only."""
    s = open_store(db_url)
    try:
        base = s.latest_version
        s.migrate()
        late = Migration(base + 1, f"{base + 1:04d}_late.sql", "CREATE TABLE late_one (x INTEGER);")
        newer = Migration(base + 2, f"{base + 2:04d}_new.sql", "CREATE TABLE new_one (x INTEGER);")
        s.migrations = [*s.migrations, newer]
        s.latest_version = base + 2
        assert s.migrate() == [base + 2]
        s.migrations = sorted([*s.migrations, late], key=lambda m: m.version)
        status = s.schema_status()
        assert status.state is SchemaState.BEHIND and status.version == base + 2
        assert s.migrate() == [base + 1]
        assert s.schema_status().state is SchemaState.CURRENT
    finally:
        s.close()


def test_0005_keeps_the_log_and_the_notices_and_scopes_event_ids_by_tenant(
    db_url: str, new_event: NewEventFactory, raw_sql: RawSql, backend: str
) -> None:
    """Issue 10 #3/#16/#4 on a database written before 0005: its events survive the rebuild
    unchanged, its notices are taken as recorded when published, and event ids become unique
    per tenant."""
    old = open_store(db_url)
    try:
        old.migrations = [m for m in old.migrations if m.version < 5]
        old.latest_version = 4
        old.migrate()
        old.ensure_tenant("default")
        old.ensure_tenant("other")
        recorded = old.append("default", [new_event("alice"), new_event("bob", "ads")]).events
        published = "2024-03-01T10:00:00.000001Z"
        raw_sql(
            "INSERT INTO notices (tenant, id, version, text, content_hash, purposes, material,"
            " grace_days, published_at) VALUES ('default', 'privacy', 1, 'We use cookies.',"
            " 'sha256:00', '[\"analytics\"]', 0, 30, ?)",
            (published,),
        )
        with pytest.raises(Exception, match=r"duplicate|UNIQUE|append-only"):
            old.append("other", [new_event(tenant="other", event_id=recorded[0].event_id)])
    finally:
        old.close()

    store = open_store(db_url)
    try:
        assert 5 in store.migrate()
        assert store.schema_status().state is SchemaState.CURRENT
        assert store.events_after(0, 10) == list(recorded)
        (notice,) = store.get_notices("default")
        assert notice.recorded_at == notice.published_at == parse_time(published)
        reused = store.append("other", [new_event(tenant="other", event_id=recorded[0].event_id)])
        assert not reused.replayed and reused.events[0].position == 3
        assert store.get_events("default", [recorded[0].event_id]) == [recorded[0]]
        for sql in ("UPDATE events SET action = 'refused'", "DELETE FROM notices"):
            with pytest.raises(Exception, match="append-only"):
                raw_sql(sql)
    finally:
        store.close()
