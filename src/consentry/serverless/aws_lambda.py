"""AWS Lambda behind API Gateway: REST APIs (payload 1.0) and HTTP APIs (payloads 1.0 and 2.0).

Handler: `consentry.serverless.aws_lambda.handler` (install `consentry[lambda]`).

Mangum (maintained, typed; docs/deployment.md says why it was chosen over an adapter of our own)
turns an API Gateway event into an ASGI request for the same app `consentry serve` runs, and its
response back into what API Gateway expects. Around it, this module keeps what a consent API needs:
- one Settings object, read from the environment once per cold start, and one set of Services
  (the database pool, the caches) reused by every invocation of that execution environment;
- the ASGI lifespan off: Mangum would run the app's startup and shutdown around each invocation;
- a named stage's prefix taken off the path (HTTP APIs keep `/<stage>` in it; REST APIs do not);
- answers in the API's one error shape where the app cannot answer: an event that is not an API
  Gateway request, and a cold start that found the database unreachable or its schema not
  current (not kept: the next invocation tries again, e.g. once `consentry migrate` has run);
- signing keys that outlive the instance: keys created in an execution environment's own
  filesystem would sign receipts nobody can verify, so the handler refuses to start without
  CONSENTRY_SIGNING_KEYS or a keys folder on shared storage.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from mangum import Mangum

from consentry.api.app import create_app
from consentry.api.errors import error_body
from consentry.config import Settings
from consentry.services import Services
from consentry.storage.base import SchemaError, StoreUnavailableError

LambdaEvent = dict[str, Any]
LambdaResponse = dict[str, Any]

#: A Lambda execution environment's only writable folder, gone with the environment.
EPHEMERAL = Path("/tmp")


class ServerlessConfigError(ValueError):
    """The settings cannot work in a function (the message says which and what to set)."""


def check_settings(settings: Settings) -> None:
    """Refuse settings that would make each execution environment mint its own signing keys."""
    if settings.signing_keys:
        return
    folder = settings.signing_keys_dir
    if not folder.is_absolute() or folder == EPHEMERAL or EPHEMERAL in folder.parents:
        raise ServerlessConfigError(
            "signing keys must outlive the function's instances: set CONSENTRY_SIGNING_KEYS"
            ' (JSON {tenant: "PRIVATE+KEY+..."}, e.g. from Secrets Manager), or'
            " CONSENTRY_SIGNING_KEYS_DIR to a folder on shared storage (EFS) that the integrator"
            f" uses too; {str(folder)!r} would give every instance keys of its own"
        )


def error_response(status: int, code: str, message: str) -> LambdaResponse:
    """An API Gateway response (payload 1.0 and 2.0 alike) in the API's one error shape."""
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": orjson.dumps(error_body(status, code, message)).decode(),
        "isBase64Encoded": False,
    }


def is_api_gateway_request(event: object) -> bool:
    """A REST API event (payload 1.0) or an HTTP API event (payload 1.0 or 2.0)."""
    if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
        return False
    if event.get("version") == "2.0":
        return isinstance(event["requestContext"].get("http"), dict)
    return isinstance(event.get("httpMethod"), str) and isinstance(event.get("path"), str)


def without_stage(event: LambdaEvent) -> LambdaEvent:
    """The event with a named stage's `/<stage>` prefix taken off its path.

    HTTP APIs keep the stage in the path (`rawPath` and `requestContext.http.path` in payload
    2.0, `path` in 1.0) unless it is `$default`; REST APIs (no `version` field) never do.
    """
    stage = event["requestContext"].get("stage")
    if "version" not in event or not isinstance(stage, str) or stage in ("", "$default"):
        return event
    prefix = f"/{stage}"

    def strip(path: str) -> str:
        if path == prefix:
            return "/"
        return path[len(prefix) :] if path.startswith(prefix + "/") else path

    event = copy.copy(event)
    if event["version"] == "2.0":
        event["rawPath"] = strip(event.get("rawPath") or "/")
        context = copy.copy(event["requestContext"])
        context["http"] = {**context["http"], "path": strip(context["http"].get("path") or "/")}
        event["requestContext"] = context
    else:
        event["path"] = strip(event["path"])
    return event


class ApiGatewayHandler:
    """The API of one execution environment, answering API Gateway events."""

    def __init__(self, app: FastAPI, services: Services) -> None:
        self.app = app
        self.services = services
        # lifespan off: create_app's shutdown would close the store after every invocation.
        self._adapter = Mangum(app, lifespan="off")

    def __call__(self, event: LambdaEvent, context: Any) -> LambdaResponse:
        if not is_api_gateway_request(event):
            return error_response(
                400,
                "unsupported_event",
                "this function answers API Gateway requests (REST API, or HTTP API with payload"
                " format 1.0 or 2.0)",
            )
        return self._adapter(without_stage(event), context)


def build(settings: Settings | None = None, services: Services | None = None) -> ApiGatewayHandler:
    """The handler of one execution environment: settings from the environment unless given."""
    settings = settings if settings is not None else Settings()
    check_settings(settings)
    services = services if services is not None else Services.build(settings)
    try:
        app = create_app(settings, services)
    except BaseException:
        services.close()
        raise
    return ApiGatewayHandler(app, services)


_current: ApiGatewayHandler | None = None
_lock = threading.Lock()


def handler(event: LambdaEvent, context: Any) -> LambdaResponse:
    """Lambda's entry point: builds the API once per cold start, then answers each event."""
    global _current
    current = _current
    if current is None:
        with _lock:
            if _current is None:
                try:
                    _current = build()
                except SchemaError as exc:
                    return error_response(503, "schema_mismatch", str(exc))
                except StoreUnavailableError:
                    return error_response(
                        503, "unavailable", "the consent database is unavailable; retry shortly"
                    )
                except ValueError as exc:  # ServerlessConfigError, invalid settings or URL
                    return error_response(500, "misconfigured", str(exc))
            current = _current
    return current(event, context)


def reset() -> None:
    """Forget this environment's API (closing its services): the next event builds it anew."""
    global _current
    with _lock:
        if _current is not None:
            _current.services.close()
        _current = None
