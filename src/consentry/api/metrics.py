"""Prometheus metrics of one app, in a registry of its own (no global state at import)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "consentry_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "consentry_http_request_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
        )
        self.events_recorded = Counter(
            "consentry_events_recorded_total",
            "Consent events committed, by action",
            ["action"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "consentry_decisions_total",
            "Decisions answered, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.log_head = Gauge(
            "consentry_log_head_position",
            "Highest committed log position seen by this process",
            registry=self.registry,
        )
