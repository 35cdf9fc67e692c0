"""One JSON error shape for the whole API, converted once, here.

    {"error": {"status": 422, "code": "validation_error", "message": "...", "details": [...]}}

Every failure leaves through these handlers: a client can always parse an error the same way, and
an unexpected exception becomes a 500 in that shape without leaking internals.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from consentry.decisions.service import TokenAheadError
from consentry.domain.errors import ConflictError, DomainError, NotFoundError, ValidationError
from consentry.keys import AuthenticationError, PermissionDeniedError
from consentry.storage.base import SchemaError, StoreUnavailableError

log = logging.getLogger("consentry.api")

_STATUS: list[tuple[type[Exception], int]] = [
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (ConflictError, 409),
    (TokenAheadError, 409),
    (ValidationError, 422),
    (DomainError, 400),
]

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


def error_body(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"status": status, "code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, details), status, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    details = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        details.append({"field": ".".join(loc) or "body", "message": err.get("msg", "invalid")})
    return details


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def on_validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = _validation_details(exc)
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details[:5])
        return error_response(422, "validation_error", f"invalid request: {summary}", details)

    @app.exception_handler(DomainError)
    async def on_domain(_: Request, exc: DomainError) -> JSONResponse:
        status = next(s for t, s in _STATUS if isinstance(exc, t))
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        details = [dict(d) for d in exc.details] or None
        return error_response(status, exc.code, str(exc), details, headers=headers)

    @app.exception_handler(StoreUnavailableError)
    async def on_unavailable(_: Request, exc: StoreUnavailableError) -> JSONResponse:
        log.warning("database unavailable: %s", exc)
        return error_response(
            503,
            "unavailable",
            "the consent database is unavailable; retry shortly",
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(SchemaError)
    async def on_schema(_: Request, exc: SchemaError) -> JSONResponse:
        return error_response(503, "schema_mismatch", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=exc.headers)

    @app.exception_handler(Exception)
    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error", exc_info=exc)
        return error_response(500, "internal_error", "an unexpected error occurred; see logs")
