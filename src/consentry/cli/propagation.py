"""Propagation commands: the relay, the commands processor, and dead-letter replay.

    consentry relay                     # publish the log to Kafka (hot standby if one runs)
    consentry relay --once              # publish what is committed now, then exit
    consentry commands                  # execute the commands topic
    consentry dlq replay --dry-run      # list dead letters; without --dry-run, re-deliver them

Kafka is CONSENTRY_KAFKA_BOOTSTRAP_SERVERS (or --bootstrap-servers); see docs/events.md.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from consentry.cli.core import DatabaseUrl, _fail, _print_json, _services, _settings, app, out
from consentry.cli.exits import ExitCode
from consentry.config import Settings
from consentry.services import Services
from consentry.storage import open_store

if TYPE_CHECKING:
    from consentry.propagation.lag import LagMetrics
    from consentry.propagation.relay import Relay

BootstrapServers = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers",
        help="Kafka brokers; overrides CONSENTRY_KAFKA_BOOTSTRAP_SERVERS.",
        show_default=False,
    ),
]
MetricsPort = Annotated[
    int | None,
    typer.Option(help="Serve Prometheus metrics on this port (0.0.0.0).", show_default=False),
]

dlq_app = typer.Typer(help="Dead letters: list and re-deliver them.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")


def _kafka_settings(database_url: str | None, bootstrap_servers: str | None) -> Settings:
    settings = _settings(database_url, kafka_bootstrap_servers=bootstrap_servers)
    if not settings.kafka_bootstrap_servers:
        raise _fail(
            "Kafka is not configured: set CONSENTRY_KAFKA_BOOTSTRAP_SERVERS or pass"
            " --bootstrap-servers host:port",
            ExitCode.SETTINGS,
        )
    return settings


@contextmanager
def _until_signalled() -> Iterator[threading.Event]:
    """An event set by SIGINT or SIGTERM, so long-running commands stop cleanly."""
    stop = threading.Event()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        stop.set()

    for s in previous:
        signal.signal(s, handler)
    try:
        yield stop
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _logging() -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )


def _metrics(port: int | None) -> Any:
    from consentry.propagation.lag import LagMetrics

    metrics = LagMetrics()
    if port is not None:
        from prometheus_client import start_http_server

        start_http_server(port, registry=metrics.registry)
    return metrics


@dataclass
class RelayThread:
    """The relay running beside the API in `serve`."""

    relay: Relay
    thread: threading.Thread
    stop_event: threading.Event

    @property
    def metrics(self) -> LagMetrics:
        return self.relay.metrics

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        self.relay.wake()
        self.thread.join(timeout)


def start_relay(settings: Settings, services: Services) -> RelayThread | None:
    """`serve`'s relay thread, when Kafka is configured (unless CONSENTRY_RELAY_IN_SERVE=false).

    With one worker it shares the API's store and each commit wakes it; with several, the API
    runs in other processes, so it opens its own store and relies on NOTIFY (PostgreSQL) or
    polling. Either way it is a hot standby while another relay holds the lease.
    """
    from consentry.propagation.relay import Relay

    if not settings.kafka_bootstrap_servers or not settings.relay_in_serve:
        return None
    store = services.store if settings.workers == 1 else open_store(settings.database_url)
    the_relay = Relay.from_settings(settings, store)
    services.recorder.listeners.append(lambda tenant, result: the_relay.wake())
    stop = threading.Event()
    thread = threading.Thread(
        target=the_relay.run, args=(stop,), name="consentry-relay", daemon=True
    )
    thread.start()
    return RelayThread(the_relay, thread, stop)


@app.command()
def relay(
    database_url: DatabaseUrl = None,
    bootstrap_servers: BootstrapServers = None,
    once: Annotated[bool, typer.Option(help="Publish what is committed now, then exit.")] = False,
    metrics_port: MetricsPort = None,
) -> None:
    """Publish every committed event, in order, to the events topic (at least once).

    One relay per database is active; start several and the others wait as hot standbys. On
    PostgreSQL a NOTIFY from the append wakes it; otherwise it polls.

    Example: CONSENTRY_KAFKA_BOOTSTRAP_SERVERS=kafka:9092 consentry relay
    """
    from consentry.propagation.publisher import PublishError
    from consentry.propagation.relay import Relay

    settings = _kafka_settings(database_url, bootstrap_servers)
    _logging()
    with _services(settings.database_url) as services:
        the_relay = Relay.from_settings(settings, services.store, metrics=_metrics(metrics_port))
        if once:
            try:
                count = the_relay.drain(timeout=max(60.0, settings.relay_delivery_timeout_seconds))
            except (PublishError, TimeoutError) as exc:
                raise _fail(f"the relay could not publish: {exc}", ExitCode.BROKER) from exc
            out.print(f"Published {count} events; position {the_relay.position}.")
            return
        with _until_signalled() as stop:
            out.print(
                f"Relaying {settings.database_url} to {settings.kafka_events_topic}"
                f" on {settings.kafka_bootstrap_servers} (Ctrl-C stops)"
            )
            the_relay.run(stop)


@app.command()
def commands(
    database_url: DatabaseUrl = None,
    bootstrap_servers: BootstrapServers = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Execute the commands topic (withdraw_all, record), each at most once per command id.

    Invalid commands go to the dead-letter topic with the reason; see `consentry dlq`.

    Example: consentry commands --bootstrap-servers kafka:9092
    """
    from consentry.propagation.commands import CommandConsumer, CommandProcessor

    settings = _kafka_settings(database_url, bootstrap_servers)
    _logging()
    with _services(settings.database_url) as services:
        processor = CommandProcessor(services.store, services.recorder, services.catalog)
        consumer = CommandConsumer.from_settings(
            settings, processor, metrics=_metrics(metrics_port)
        )
        with _until_signalled() as stop:
            out.print(
                f"Executing {settings.kafka_commands_topic} on {settings.kafka_bootstrap_servers}"
                f" (group {settings.kafka_commands_group}; Ctrl-C stops)"
            )
            try:
                consumer.run(stop)
            finally:
                consumer.close()
        out.print(f"Commands: {processor.outcomes or 'none'}")


@dlq_app.command("replay")
def dlq_replay(
    topic: Annotated[
        str | None,
        typer.Option(help="Only letters from this original topic.", show_default=False),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(help="At most this many letters.", show_default=False)
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="List what would be replayed; send and commit nothing.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    bootstrap_servers: BootstrapServers = None,
) -> None:
    """Re-deliver dead letters to the topics they came from, each once.

    Consumers that had applied an event recognise the copy; the one that failed applies it now.
    A replayed command runs if it is now valid, and still at most once per command id.

    Example: consentry dlq replay --topic consentry.commands --dry-run
    """
    from consentry.propagation.consumer import replay_dead_letters
    from consentry.propagation.kafka import client_config, quiet_logger

    settings = _kafka_settings(None, bootstrap_servers)
    try:
        report = replay_dead_letters(
            client_config(settings, logger=quiet_logger()),  # its failure is the line below
            settings.kafka_dead_letter_topic,
            only_topic=topic,
            limit=limit,
            dry_run=dry_run,
        )
    except Exception as exc:  # the broker's errors, shown as one line
        raise _fail(f"replay failed: {exc}", ExitCode.BROKER) from exc
    if as_json:
        _print_json(
            {
                "dry_run": dry_run,
                "replayed": report.replayed,
                "skipped": report.skipped,
                "by_topic": report.by_topic,
                "letters": report.messages,
            }
        )
        return
    verb = "Would replay" if dry_run else "Replayed"
    for m in report.messages:
        out.print(
            f"{m['topic']}[{m['partition']}]@{m['offset']} (group {m['group']}): {m['error']}",
            highlight=False,
        )
    out.print(f"{verb} {report.replayed} dead letters {report.by_topic or ''}")
