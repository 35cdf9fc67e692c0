"""The write path: one consent per durable commit, against a raw INSERT + COMMIT of the same row.

    python bench/bench_write.py [--n 2000] [--pg postgresql://postgres@127.0.0.1/test]

For each backend it measures, in the same run:
- baseline: a raw INSERT of an event-sized row and a COMMIT, through the bare driver;
- Store.append: one request of one event (events + state + subject version + head, one commit);
- Store.append of 10 events per request (the batch a banner sends).
Prints medians of 3 rounds and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from consentry.domain.events import Action, Evidence, NewEvent, Source
from consentry.domain.purposes import LegalBasis
from consentry.storage import SqlStore, open_store

ROW = "x" * 200


def event(subject: str, purpose: str = "email") -> NewEvent:
    return NewEvent(
        uuid.uuid4(),
        "default",
        subject,
        purpose,
        Action.GIVEN,
        LegalBasis.CONSENT,
        datetime.now(UTC),
        Evidence(Source.API, jurisdiction="DE"),
    )


def rate(n: int, fn: Callable[[int], None]) -> float:
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return n / (time.perf_counter() - started)


def median_rate(n: int, make: Callable[[], Callable[[int], None]]) -> float:
    return statistics.median(rate(n, make()) for _ in range(3))


def sqlite_baseline(folder: Path) -> Callable[[], Callable[[int], None]]:
    def make() -> Callable[[int], None]:
        conn = sqlite3.connect(folder / f"raw-{uuid.uuid4().hex}.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, event_id TEXT, body TEXT)")

        def one(i: int) -> None:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (event_id, body) VALUES (?, ?)", (str(uuid.uuid4()), ROW))
            conn.execute("COMMIT")

        return one

    return make


def pg_baseline(url: str) -> Callable[[], Callable[[int], None]]:
    def make() -> Callable[[int], None]:
        conn = psycopg.connect(url, autocommit=True)
        conn.execute("DROP TABLE IF EXISTS bench_raw")
        conn.execute("CREATE TABLE bench_raw (id BIGSERIAL PRIMARY KEY, event_id UUID, body TEXT)")

        def one(i: int) -> None:
            with conn.transaction():
                conn.execute(
                    "INSERT INTO bench_raw (event_id, body) VALUES (%s, %s)", (uuid.uuid4(), ROW)
                )

        return one

    return make


def store_append(
    url_for: Callable[[], str], per_request: int
) -> Callable[[], Callable[[int], None]]:
    def make() -> Callable[[int], None]:
        store: SqlStore = open_store(url_for())
        store.migrate()
        store.ensure_tenant("default")

        def one(i: int) -> None:
            subject = f"s{i % 500}"
            store.append("default", [event(subject, f"p{k}") for k in range(per_request)])

        return one

    return make


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="requests per round")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1/test")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())

    def sqlite_url() -> str:
        return f"sqlite:///{folder / f'store-{uuid.uuid4().hex}.db'}"

    def pg_url() -> str:
        schema = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(args.pg, autocommit=True) as c:
            c.execute(f"CREATE SCHEMA {schema}")
        return f"{args.pg}?options=-csearch_path%3D{schema}"

    rows = []
    for name, baseline, url_for in [
        ("sqlite", sqlite_baseline(folder), sqlite_url),
        ("postgres", pg_baseline(args.pg), pg_url),
    ]:
        base = median_rate(args.n, baseline)
        one = median_rate(args.n, store_append(url_for, 1))
        ten = median_rate(args.n // 5, store_append(url_for, 10))
        rows.append((name, base, one, ten))
    print(
        f"{'backend':<9} {'raw INSERT+COMMIT/s':>20} {'append 1 ev/s':>14} {'ratio':>6}"
        f" {'append 10 ev: req/s':>20} {'events/s':>9}"
    )
    for name, base, one, ten in rows:
        print(
            f"{name:<9} {base:>20,.0f} {one:>14,.0f} {one / base:>6.2f} {ten:>20,.0f}"
            f" {ten * 10:>9,.0f}"
        )


if __name__ == "__main__":
    main()
