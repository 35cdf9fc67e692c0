"""/healthz (the process answers), /readyz (database reachable, schema current), /metrics
(behind a bearer token when CONSENTRY_METRICS_TOKEN is set)."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from consentry.api.deps import ServicesDep
from consentry.keys import AuthenticationError
from consentry.services import Services
from consentry.storage.base import SchemaState, StoreUnavailableError

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
async def healthz() -> dict[str, str]:
    # On the event loop, not in the thread pool: it must answer while every worker thread is
    # busy waiting on a slow database, since that is when it is asked.
    return {"status": "ok"}


@router.get("/readyz", summary="The database is reachable and its schema is current")
def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        services.store.ping()
        status = services.store.schema_status()
        checks["database"] = "ok"
        checks["schema"] = (
            "ok"
            if status.state is SchemaState.CURRENT
            else f"{status.state.value} (version {status.version}, needs {status.latest})"
        )
    except StoreUnavailableError as exc:
        checks["database"] = f"unavailable: {exc}"
    ready = all(v == "ok" for v in checks.values())
    verdict = "ready" if ready else "not_ready"
    if ready and services.settings.kafka_bootstrap_servers:
        # Propagation lag degrades, never fails, readiness: the API must keep recording while
        # Kafka or the relay is down (docs/events.md).
        checks["propagation"] = _propagation(services)
        verdict = "ready" if checks["propagation"] == "ok" else "degraded"
    return JSONResponse({"status": verdict, "checks": checks}, 200 if ready else 503)


def _propagation(services: Services) -> str:
    """Commit-to-publish lag read from the log, so it is right whichever process relays."""
    from consentry.propagation.lag import relay_backlog_seconds
    from consentry.propagation.relay import relay_name

    settings = services.settings
    try:
        lag = relay_backlog_seconds(services.store, relay_name(settings.kafka_events_topic))
    except StoreUnavailableError as exc:
        return f"unknown: {exc}"
    if lag > settings.propagation_lag_threshold_seconds:
        return (
            f"lagging: the oldest unpublished event was committed {lag:.1f} s ago"
            f" (threshold {settings.propagation_lag_threshold_seconds:g} s)"
        )
    return "ok"


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    """Open unless CONSENTRY_METRICS_TOKEN is set; then `Authorization: Bearer <token>`."""
    token = request.app.state.settings.metrics_token
    if token is not None:
        expected = f"Bearer {token.get_secret_value()}".encode()
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            raise AuthenticationError("/metrics needs Authorization: Bearer <metrics token>")
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
