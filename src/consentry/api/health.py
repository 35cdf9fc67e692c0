"""/healthz (the process answers), /readyz (database reachable, schema current), /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from consentry.api.deps import ServicesDep
from consentry.storage.base import SchemaState, StoreUnavailableError

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="The process is up")
def healthz() -> dict[str, str]:
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
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks}, 200 if ready else 503
    )


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
