"""Settings: one typed object, built once (from the environment, prefix CONSENTRY_) and passed down.

Nothing in Consentry reads configuration at import time; `Settings()` is built by the CLI or by
`create_app(settings)` and handed to whoever needs it. docs/configuration.md lists every field.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from consentry.domain.events import EvidencePolicy
from consentry.domain.regimes import Regime

DATABASE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://", "postgresql+")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class RateLimit(BaseModel):
    """A token bucket: `per_second` sustained, up to `burst` at once (JSON in the environment)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_second: float = Field(gt=0, description="Requests per second, sustained.")
    burst: int = Field(ge=1, description="Requests allowed at once before the rate applies.")


class Settings(BaseSettings):
    """Every setting of a Consentry server; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="CONSENTRY_", extra="ignore")

    database_url: str = Field(
        "sqlite:///consentry.db",
        description="Where the log lives: sqlite:///path.db (embedded) or postgresql://...",
    )
    host: str = Field("127.0.0.1", description="Address `consentry serve` listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port `consentry serve` listens on.")
    workers: int = Field(1, ge=1, description="uvicorn worker processes for `serve`.")
    redis_url: str | None = Field(
        None, description="Redis for the shared decision cache; unset = database only."
    )
    redis_ttl_seconds: float = Field(
        3600.0, gt=0, description="How long a subject's state (and its floor) stays in Redis."
    )
    redis_timeout_ms: int = Field(
        250, ge=1, description="Redis socket timeout; past it the check reads the database."
    )
    redis_retry_seconds: float = Field(
        1.0, ge=0, description="After a Redis failure, read the database alone for this long."
    )
    local_cache: bool = Field(
        True,
        description="Keep subjects' state and decisions in process (exact; see"
        " docs/enforcement.md).",
    )
    local_cache_subjects: int = Field(
        100_000, ge=1, description="Most subjects the in-process cache keeps."
    )
    local_sync_interval_ms: int = Field(
        0,
        ge=0,
        description="0: every check first learns other processes' writes (exact). N: at most"
        " every N ms (their writes may be seen up to N ms late; this process's own never are).",
    )
    gpc_last_update: str = Field(
        "2026-11-22", description="lastUpdate of /.well-known/gpc.json (RFC 3339 date)."
    )
    default_regime: Regime = Field(
        Regime.OPT_IN,
        description="Regime of a jurisdiction that is unknown or not given (opt_in is safe).",
    )
    evidence_policy: EvidencePolicy = Field(
        EvidencePolicy.TRUNCATED,
        description="How much IP address and user agent to keep: full, truncated or none.",
    )
    max_batch_events: int = Field(
        100, ge=1, le=10_000, description="Most events one POST /v1/consents may carry."
    )
    max_batch_checks: int = Field(
        1000, ge=1, le=100_000, description="Most checks one POST /v1/decisions may carry."
    )
    max_clock_skew_seconds: int = Field(
        300,
        ge=0,
        le=86_400,
        description="How far in the future an occurred_at may be before it is refused.",
    )
    min_token_wait_ms: int = Field(
        2000,
        ge=0,
        description="How long a check with a min_token newer than what is known may wait.",
    )
    log_level: str = Field("info", description="uvicorn log level for `serve`.")
    signing_keys_dir: Path = Field(
        Path("consentry-keys"),
        description="Folder of each tenant's Ed25519 signing key (created on first use, 0600).",
    )
    signing_keys: dict[str, str] = Field(
        default_factory=dict,
        description='JSON {tenant: "PRIVATE+KEY+..."}: keys from a secret store instead of files.',
    )
    ledger_origin: str = Field(
        "consentry", description="Names the log in checkpoints: '<origin>/<tenant>'."
    )
    # The ledger's integrator (docs/ledger.md).
    ledger_integrator: bool = Field(
        True, description="`serve` runs the ledger integrator in a thread."
    )
    ledger_batch_size: int = Field(
        10_000, ge=1, le=1_000_000, description="Most events the integrator adds per transaction."
    )
    ledger_poll_interval_ms: int = Field(
        200,
        ge=1,
        description="How often the integrator looks for events committed by other processes"
        " (this process's own writes wake it at once).",
    )
    ledger_checkpoint_interval_seconds: float = Field(
        10.0,
        ge=0,
        description="Store a signed checkpoint per tenant at most this often (0: every batch).",
    )
    # Collection (banner, preference center, demo): docs/collection.md.
    jurisdiction_header: str = Field(
        "X-Consentry-Jurisdiction",
        description="Request header (set by a trusted proxy or CDN, e.g. CF-IPCountry) naming the"
        " visitor's jurisdiction; it picks the banner's opt-in or opt-out variant.",
    )
    demo: bool = Field(
        False,
        description="Serve the demo site at /demo, on a tenant of its own (`serve --demo`).",
    )
    # Limits of the public (unauthenticated) endpoints: docs/collection.md#limits.
    rate_limit: bool = Field(True, description="Limit the public endpoints per client and site.")
    rate_limit_client: RateLimit = Field(
        RateLimit(per_second=10, burst=100),
        description="Every public request of one client (IP address; IPv6 by /64).",
    )
    rate_limit_client_writes: RateLimit = Field(
        RateLimit(per_second=1, burst=20),
        description="Public requests of one client that record (POST): banner, preference center.",
    )
    rate_limit_site: RateLimit = Field(
        RateLimit(per_second=500, burst=2000),
        description="Every public request that names one site (tenant), whoever sends it.",
    )
    rate_limit_site_writes: RateLimit = Field(
        RateLimit(per_second=100, burst=500),
        description="Public requests that record for one site (tenant), whoever sends them.",
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or networks (CIDR) of proxies whose X-Forwarded-For is believed;"
        " empty: the header is never trusted.",
    )
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token /metrics requires; unset: /metrics is open."
    )
    # Propagation (docs/events.md) -----------------------------------------------------------
    kafka_bootstrap_servers: str | None = Field(
        None,
        description="Kafka brokers (host:port,...); unset = no Kafka, the HTTP change feed only.",
    )
    kafka_events_topic: str = Field(
        "consentry.events", description="Topic the relay publishes every committed event to."
    )
    kafka_commands_topic: str = Field(
        "consentry.commands", description="Topic `consentry commands` reads commands from."
    )
    kafka_dead_letter_topic: str = Field(
        "consentry.dlq", description="Where invalid commands and failed messages are sent."
    )
    kafka_commands_group: str = Field(
        "consentry-commands", description="Consumer group of `consentry commands`."
    )
    kafka_topic_partitions: int = Field(
        12, ge=1, description="Partitions of the topics Consentry creates when they are missing."
    )
    kafka_replication_factor: int = Field(
        -1, ge=-1, description="Replication of created topics; -1 = the broker's default."
    )
    kafka_create_topics: bool = Field(
        True, description="Create missing topics at start-up (off where ACLs forbid it)."
    )
    kafka_client_config: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="Extra librdkafka settings (a JSON object of strings, numbers or booleans),"
        " e.g. security.protocol, sasl.*.",
    )
    cloudevents_source: str = Field(
        "/consentry", description="CloudEvents `source` prefix naming this installation."
    )
    relay_batch_size: int = Field(
        5000, ge=1, le=100_000, description="Most events the relay publishes per round."
    )
    relay_poll_interval_seconds: float = Field(
        0.1,
        gt=0,
        description="How often the relay looks for new events when not woken by a NOTIFY.",
    )
    relay_delivery_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A batch not acknowledged in this time is retried with a new producer.",
    )
    relay_in_serve: bool = Field(
        True, description="`serve` runs the relay in a thread when Kafka is configured."
    )
    propagation_lag_threshold_seconds: float = Field(
        5.0,
        gt=0,
        description="Commit-to-publish or -apply lag above which a warning is logged and"
        " /readyz reports degraded.",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValueError(f"trusted_proxies: {item!r} is not an address or network") from exc
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(DATABASE_SCHEMES):
            raise ValueError("use sqlite:///path.db or postgresql://host/database")
        if value.startswith("sqlite:") and not value[len("sqlite:///") :]:
            raise ValueError("the sqlite URL names no file; e.g. sqlite:///consentry.db")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(REDIS_SCHEMES):
            raise ValueError("use redis://host:port/db, rediss://... or unix:///path")
        return value or None
