"""Ledger benchmarks on real databases (SQLite file, PostgreSQL): prints the figures of
docs/benchmarks.md, "Ledger".

    python bench/bench_ledger.py [--backend sqlite postgres] [--events 200000]
                                 [--leaves 1000000] [--pg-url postgresql://...] [--runs 3]

What it measures, on each backend:

1. integration: the integrator catching up N committed events (read their canonical bytes from
   the events table and hash them, append to the tenant trees, one transaction per 10,000), in
   leaves/s; against the baseline of hashing the same bytes alone (leaf hashes and every
   interior node with hashlib, in memory). Also its two halves alone: reading the leaves (the
   canonical JSON written by the database and hashed: by PostgreSQL itself there, by hashlib on
   SQLite), and appending already-hashed leaves to the database node store.
2. proofs at 1M leaves: a tenant tree of `--leaves` synthetic leaves in the database node store
   (built in batches of 50,000: node-store append throughput at scale), then inclusion and
   consistency proofs for random leaves, µs per proof (one query each), and verification.
3. `verify database`: recompute every tree from the N events and check leaves, nodes and
   checkpoints, in events/s, in one process and with 2 worker processes.
4. commit-to-proof-available latency: writes through the recorder with the integrator thread
   of `serve` running, time from the commit until GET /v1/ledger/proofs/inclusion would answer
   (LedgerService.inclusion succeeds); and the same for writes of another process (polling).

The machine is shared: each figure is the best of `--runs` (the least disturbed), with the
median beside it, and the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from consentry.config import Settings
from consentry.domain.events import Action, Evidence, NewEvent, Source
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.ledger.audit import audit_database
from consentry.ledger.checkpoint import SigningKey, generate_private_key
from consentry.ledger.hasher import hash_leaf
from consentry.ledger.integrator import Integrator
from consentry.ledger.proof import consistency_proof, inclusion_proof
from consentry.ledger.service import NotIntegratedError
from consentry.ledger.tree import append_leaves, root
from consentry.ledger.verify import verify_consistency, verify_inclusion
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.services import Services
from consentry.storage import SqlStore, open_store
from consentry.storage.ledger_store import LeafInput, LedgerStore

T0 = datetime(2025, 1, 1, tzinfo=UTC)
KEYS: dict[str, SigningKey] = {}


def signer(tenant: str) -> SigningKey:
    if tenant not in KEYS:
        KEYS[tenant] = SigningKey(f"bench/{tenant}", generate_private_key())
    return KEYS[tenant]


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def best_and_median(samples: list[float]) -> str:
    return f"best {max(samples):>10,.0f}/s   median {statistics.median(samples):>10,.0f}/s"


# --- databases ---------------------------------------------------------------------------------


@contextmanager
def database(backend: str, pg_url: str, name: str) -> Iterator[str]:
    """A new, empty database URL: a SQLite file, or a PostgreSQL schema (dropped afterwards)."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as folder:
            yield f"sqlite:///{folder}/{name}.db"
        return
    import psycopg

    schema = f"bench_{name}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
        try:
            sep = "&" if "?" in pg_url else "?"
            yield f"{pg_url}{sep}options={quote(f'-csearch_path={schema}')}"
        finally:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def raw(url: str, sql: str) -> None:
    """Administrative SQL outside the store (the benchmark resets its ledger between runs)."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        conn.execute(sql)
        conn.commit()
        conn.close()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)


def reset_ledger(url: str) -> None:
    for table in ("ledger_leaves", "ledger_nodes", "ledger_checkpoints"):
        if url.startswith("sqlite"):
            raw(url, f"DROP TRIGGER IF EXISTS {table}_no_delete")
        else:
            raw(url, f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
        raw(url, f"DELETE FROM {table}")
    raw(url, "DELETE FROM reader_offsets WHERE name = 'ledger'")


def fill(store: SqlStore, count: int) -> None:
    """`count` events, three in four for tenant `default`, the rest for `acme`."""
    store.ensure_tenant("default")
    store.ensure_tenant("acme")
    evidence = Evidence(source=Source.BANNER, jurisdiction="DE", ip="203.0.113.0")
    for start in range(0, count, 5000):
        batch: dict[str, list[NewEvent]] = {"default": [], "acme": []}
        for i in range(start, min(count, start + 5000)):
            tenant = "acme" if i % 4 == 3 else "default"
            batch[tenant].append(
                NewEvent(
                    event_id=uuid.uuid4(),
                    tenant=tenant,
                    subject=f"subject-{i}",
                    purpose="analytics",
                    action=Action.GIVEN,
                    legal_basis=LegalBasis.CONSENT,
                    occurred_at=T0 + timedelta(seconds=i),
                    evidence=evidence,
                )
            )
        for tenant, events in batch.items():
            if events:
                store.append(tenant, events)


def hashing_alone(data: list[bytes]) -> None:
    """The baseline: the leaf hashes and every interior node hash, hashlib only, in memory."""
    sha256 = hashlib.sha256
    row = [sha256(b"\x00" + d).digest() for d in data]
    while len(row) > 1:
        row = [sha256(b"\x01" + a + b).digest() for a, b in zip(row[::2], row[1::2], strict=False)]


# --- 1. integration ----------------------------------------------------------------------------


def bench_integration(url: str, events: int, runs: int) -> None:
    store = open_store(url)
    store.migrate()
    started = time.perf_counter()
    fill(store, events)
    print(f"  ({events:,} events committed in {time.perf_counter() - started:.1f} s)")
    ledger = LedgerStore(store)
    data = [row.data for row in ledger.event_bytes_after(0, events)]

    base = []
    for _ in range(runs):
        t = time.perf_counter()
        hashing_alone(data)
        base.append(events / (time.perf_counter() - t))
    whole, cpu = [], []
    for _ in range(runs):
        reset_ledger(url)
        integrator = Integrator(ledger, signer, batch_size=10_000, checkpoint_interval=10)
        t, c = time.perf_counter(), time.process_time()
        assert integrator.catch_up() == events
        whole.append(events / (time.perf_counter() - t))
        cpu.append(events / (time.process_time() - c))
    reads = []
    for _ in range(runs):
        t = time.perf_counter()
        for first in range(0, events, 10_000):
            ledger.leaf_inputs_after(first, 10_000, upto=first + 10_000)
        reads.append(events / (time.perf_counter() - t))
    hashes = [hash_leaf(d) for d in data]
    appends = []
    for _ in range(runs):
        reset_ledger(url)
        t = time.perf_counter()
        for first in range(0, events, 10_000):
            chunk = hashes[first : first + 10_000]
            leaves = [
                LeafInput(first + i + 1, str(uuid.UUID(int=first + i)), h)
                for i, h in enumerate(chunk)
            ]
            with ledger.transaction() as txn:
                append_leaves(txn.node_store("default", leaves), chunk)
        appends.append(events / (time.perf_counter() - t))
    print(f"  hashing the same bytes alone (baseline) {best_and_median(base)}")
    print(
        f"  integration, end to end                 {best_and_median(whole)}"
        f"   = {max(whole) / max(base):.2f} x baseline; {max(cpu):,.0f} leaves per CPU-second"
        " of this process"
    )
    print(f"    reading the leaves alone (JSON, hash) {best_and_median(reads)}")
    print(f"    appending hashed leaves alone         {best_and_median(appends)}")
    reset_ledger(url)
    Integrator(ledger, signer, batch_size=10_000, checkpoint_interval=1).catch_up()
    store.close()


# --- 2. proofs at 1M leaves --------------------------------------------------------------------


def bench_proofs(url: str, leaves: int, proofs: int) -> None:
    store = open_store(url)
    store.migrate()
    ledger = LedgerStore(store)
    rng = random.Random(7)
    t = time.perf_counter()
    for first in range(0, leaves, 50_000):
        chunk = [rng.randbytes(32) for _ in range(min(50_000, leaves - first))]
        items = [
            LeafInput(first + i + 1, str(uuid.UUID(int=first + i)), h) for i, h in enumerate(chunk)
        ]
        with ledger.transaction() as txn:
            append_leaves(txn.node_store("big", items), chunk)
    elapsed = time.perf_counter() - t
    print(
        f"  node store: {leaves:,} leaves appended in {elapsed:.1f} s ({leaves / elapsed:,.0f}/s)"
    )
    # As a running server would be: statistics gathered (autovacuum would, soon after such a
    # bulk load) and the cache of upper levels warm.
    raw(url, "ANALYZE")
    nodes = ledger.node_store("big", leaves)
    top = root(nodes, leaves)
    for _ in range(2000):
        inclusion_proof(nodes, rng.randrange(leaves), leaves)
    indexes = [rng.randrange(leaves) for _ in range(proofs)]
    times, verify_times = [], []
    for index in indexes:
        t = time.perf_counter()
        proof = inclusion_proof(nodes, index, leaves)
        times.append(time.perf_counter() - t)
        leaf = nodes.get_nodes([(0, index)])[(0, index)]
        t = time.perf_counter()
        verify_inclusion(leaf, index, leaves, proof, top)
        verify_times.append(time.perf_counter() - t)
    ctimes = []
    for _ in range(proofs // 4):
        old = rng.randrange(1, leaves)
        t = time.perf_counter()
        proof = consistency_proof(nodes, old, leaves)
        ctimes.append(time.perf_counter() - t)
    verify_consistency(old, leaves, proof, root(nodes, old), top)

    def us(samples: list[float], q: float) -> float:
        return (
            statistics.quantiles(samples, n=100)[int(q) - 1] * 1e6
            if q < 100
            else max(samples) * 1e6
        )

    median, verify_median = statistics.median(times), statistics.median(verify_times)
    print(
        f"  inclusion proof at {leaves:,} leaves: median {median * 1e6:,.0f} µs,"
        f" p99 {us(times, 99):,.0f} µs (verify: median {verify_median * 1e6:,.0f} µs)"
    )
    print(
        f"  consistency proof: median {statistics.median(ctimes) * 1e6:,.0f} µs,"
        f" p99 {us(ctimes, 99):,.0f} µs"
    )
    store.close()


# --- 3. verify database ------------------------------------------------------------------------


def bench_verify(url: str, runs: int) -> None:
    store = open_store(url)
    ledger = LedgerStore(store)
    for workers in (1, 2):
        rates, cpu = [], []
        for _ in range(runs):
            t, c = time.perf_counter(), time.process_time()
            report = audit_database(
                ledger, lambda tenant: [signer(tenant).verifier], workers=workers, database_url=url
            )
            assert report.ok, report.problems[:3]
            rates.append(report.events / (time.perf_counter() - t))
            cpu.append(report.events / (time.process_time() - c))
        extra = f"; {max(cpu):,.0f} events per CPU-second" if workers == 1 else ""
        name = f"{workers} process{'es' if workers > 1 else ''}:"
        print(
            f"  verify database, {name:<13}{best_and_median(rates)}"
            f"   ({report.events:,} events, {report.checkpoints} checkpoints{extra})"
        )
    store.close()


# --- 4. commit to proof available --------------------------------------------------------------


def bench_latency(url: str, writes: int, keys_dir: Path) -> None:
    settings = Settings(database_url=url, signing_keys_dir=keys_dir)
    services = Services.build(settings)
    services.recorder.add_purpose(
        "default", Purpose(id="email", name="Email", legal_basis=LegalBasis.CONSENT)
    )
    request = ConsentRequest(
        subject="s", source=Source.API, events=[EventRequest("email", Action.GIVEN)]
    )

    def measure(write: Callable[[], uuid.UUID]) -> list[float]:
        latencies = []
        for _ in range(writes + 5):
            event_id = write()
            committed = time.perf_counter()
            while True:
                try:
                    services.ledger.inclusion("default", event_id)
                    break
                except NotIntegratedError:
                    if time.perf_counter() - committed > 30:
                        raise
                    time.sleep(0.0005)
            latencies.append(time.perf_counter() - committed)
            time.sleep(0.005)
        return latencies[5:]  # the first ones start the integrator (a server did long ago)

    def report(name: str, latencies: list[float]) -> None:
        q = statistics.quantiles(latencies, n=100)
        print(
            f"  {name}: p50 {q[49] * 1e3:.1f} ms, p99 {q[98] * 1e3:.1f} ms,"
            f" max {max(latencies) * 1e3:.1f} ms ({len(latencies)} writes)"
        )

    background = services.ledger.background()
    services.recorder.listeners.append(background.wake)
    with background:
        report(
            "commit to proof, same process (woken)",
            measure(lambda: services.recorder.record("default", request).events[0].event_id),
        )
    services.recorder.listeners.remove(background.wake)
    other = open_store(url)
    with background:
        report(
            "commit to proof, other process (polled every 200 ms)",
            measure(
                lambda: (
                    other.append(
                        "default",
                        [
                            NewEvent(
                                event_id=uuid.uuid4(),
                                tenant="default",
                                subject="s",
                                purpose="email",
                                action=Action.GIVEN,
                                legal_basis=LegalBasis.CONSENT,
                                occurred_at=datetime.now(UTC),
                                evidence=Evidence(source=Source.API),
                            )
                        ],
                    )
                    .events[0]
                    .event_id
                )
            ),
        )
    other.close()
    services.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--proofs", type=int, default=2000)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--sections",
        nargs="+",
        default=["integration", "verify", "latency", "proofs"],
        help="What to run (verify and latency need integration's database).",
    )
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "CONSENTRY_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    print(
        f"python {platform.python_version()}, SQLite {sqlite3.sqlite_version},"
        f" {platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}"
    )
    print(load())
    for backend in args.backend:
        print(f"\n== {backend} ==")
        sections = set(args.sections)
        with database(backend, args.pg_url, "log") as url:
            if backend == "postgres":
                import psycopg

                with psycopg.connect(args.pg_url) as conn:
                    print(f"  {conn.execute('SHOW server_version').fetchone()[0]}")
            if sections & {"integration", "verify", "latency"}:
                bench_integration(url, args.events, args.runs)
            if "verify" in sections:
                bench_verify(url, args.runs)
            if "latency" in sections:
                with tempfile.TemporaryDirectory() as keys:
                    bench_latency(url, args.writes, Path(keys))
        if "proofs" in sections:
            with database(backend, args.pg_url, "proofs") as url:
                bench_proofs(url, args.leaves, args.proofs)
        print(f"  {load()}")


if __name__ == "__main__":
    main()
