"""Storage: one protocol (base.py), one module per backend, one shared SQL core (sql.py)."""

from __future__ import annotations

from consentry.storage.base import ConsentStore
from consentry.storage.sql import SqlStore


def open_store(url: str, *, create: bool = True) -> SqlStore:
    """The backend a database URL names: sqlite:///file.db or postgresql://...

    `create=False` refuses a SQLite file that does not exist instead of creating it (commands
    that only read or check a database must not leave an empty one behind).
    """
    if url.startswith("sqlite:"):
        from consentry.storage.sqlite import SqliteStore

        return SqliteStore(url, create=create)
    if url.startswith(("postgresql", "postgres:")):
        from consentry.storage.postgres import PostgresStore

        return PostgresStore(url)
    raise ValueError(
        f"unsupported database URL {url!r}: use sqlite:///path.db or postgresql://host/db"
    )


__all__ = ["ConsentStore", "SqlStore", "open_store"]
