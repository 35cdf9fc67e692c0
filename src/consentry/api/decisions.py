"""The decision endpoints: may we process this subject's data for this purpose, now?

Two layers serve the same two routes:

- `FastDecisions`, a pure ASGI middleware mounted in front of FastAPI's router, answers the
  well-formed requests: one header scan, the cached key, the service's cached answers and their
  pre-serialized bodies. FastAPI with pydantic response models costs ~380 us a request here; the
  check endpoints are the hottest of the API, so they skip it (DESIGN.md, Performance stance).
- The FastAPI routes below stay the reference: they define the OpenAPI documentation, and every
  request the fast path does not recognise as well-formed (a missing or invalid parameter, an
  unknown header combination, a body pydantic rejects) is handed to them untouched, so errors
  come out exactly as they do everywhere else in the API.

Failures of the service itself (unknown purpose, token ahead, database unavailable) are answered
by the fast path in the one error shape, with the status the error handlers would give.

A request with `Sec-GPC: 1` (exactly "1") that names its subject also records that subject's
GPC opt-out once (decisions/gpc.py); a batch records it only when it concerns one subject, since
one browser's header speaks for one person.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from datetime import UTC, date
from typing import Annotated, Any
from urllib.parse import unquote_plus

import orjson
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.api.deps import KeyCache, ServicesDep, needs
from consentry.api.errors import _STATUS, error_body
from consentry.api.metrics import Metrics
from consentry.decisions.local import Answer
from consentry.decisions.service import TOKEN_POLL_SECONDS, TokenPending, parse_token
from consentry.domain.decide import NO_SIGNALS, Reason, Signals
from consentry.domain.errors import DomainError
from consentry.domain.events import format_time
from consentry.domain.inputs import check_subject, is_valid_subject
from consentry.keys import Scope as KeyScope
from consentry.keys import require
from consentry.propagation.notifier import ChangeNotifier
from consentry.recording.schema import DecisionsBody, rule
from consentry.serialize import decision_to_dict
from consentry.services import Services
from consentry.signals.gpc import WELL_KNOWN_PATH, GPCSupport, sec_gpc_opt_out
from consentry.storage.base import ApiKey, StoreUnavailableError

log = logging.getLogger("consentry.api")

router = APIRouter(prefix="/v1", tags=["decisions"])
wellknown = APIRouter(tags=["signals"])

PATH = "/v1/decisions"
MAX_SUBJECT = 256
MAX_PURPOSE = 64
MAX_JURISDICTION = 8
MAX_BODY_BYTES = 1_048_576  # as ObserveMiddleware; larger bodies go through it and get 413


def _signals(gpc: bool, jurisdiction: str | None) -> Signals:
    if not gpc and jurisdiction is None:
        return NO_SIGNALS
    return Signals(gpc=gpc, jurisdiction=jurisdiction)


_MARK = "\u2063decided_at\u2063"
_MARK_JSON = orjson.dumps(_MARK)


def body_of(answer: Answer, decided_at: bytes) -> bytes:
    """The JSON of a decision, with `decided_at` (quoted) spliced in.

    A cached answer stays right until its deadline, but its decided_at would age; keeping the
    body in two halves around decided_at costs one join, against ~10 us to serialize again.
    """
    halves = answer.body
    if halves is None:
        data = decision_to_dict(answer.decision)
        data["decided_at"] = _MARK
        head, _, tail = orjson.dumps(data).partition(_MARK_JSON)
        halves = (head, tail)
        if answer.deadline is not None:
            answer.body = halves
    return halves[0] + decided_at + halves[1]


def _now_json(services: Services) -> bytes:
    """format_time's form (UTC, microseconds, Z) at a fraction of strftime's cost."""
    now = services.decisions.clock().astimezone(UTC)
    if now.year < 1000:
        return b'"' + format_time(now).encode() + b'"'
    return b'"' + now.replace(tzinfo=None).isoformat(timespec="microseconds").encode() + b'Z"'


def _count(app_state: Any, answers: list[Answer]) -> None:
    counter = app_state.metrics.decisions
    children: dict[Reason, Any] | None = getattr(app_state, "decision_counters", None)
    if children is None:
        children = {r: counter.labels(r.value) for r in Reason}
        app_state.decision_counters = children
    if len(answers) == 1:
        children[answers[0].decision.reason].inc()
        return
    for reason, n in Counter([a.decision.reason for a in answers]).items():
        children[reason].inc(n)


def _observe_gpc(services: Services, tenant: str, subject: str, jurisdiction: str | None) -> None:
    try:
        services.gpc.observe(tenant, subject, jurisdiction=jurisdiction)
    except StoreUnavailableError:
        raise
    except DomainError as exc:  # a catalogue the opt-out does not fit: the decision still holds
        log.warning("a GPC opt-out was not recorded: %s", exc)  # no subject in logs: PII


# The reference routes (OpenAPI, and every request the fast path hands over) ----------------
@router.get(
    "/decisions",
    summary="One decision, with its reason and the event behind it",
    description="`Sec-GPC: 1` makes opt-out purposes answer gpc_opt_out and, in an opt-out"
    " regime, records the subject's GPC opt-out once.",
)
def get_decision(
    request: Request,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(KeyScope.DECIDE))],
    subject: Annotated[str, Query(min_length=1, max_length=MAX_SUBJECT), rule(check_subject)],
    purpose: Annotated[str, Query(min_length=1, max_length=MAX_PURPOSE)],
    min_token: Annotated[str | None, Query(description="a token from a write")] = None,
    jurisdiction: Annotated[str | None, Query(max_length=MAX_JURISDICTION)] = None,
) -> dict[str, Any]:
    gpc = sec_gpc_opt_out(request.headers.getlist("sec-gpc"))
    token = parse_token(min_token)
    if gpc:
        _observe_gpc(services, key.tenant, subject, jurisdiction)
    answers = services.decisions.answers(
        key.tenant, [(subject, purpose)], min_token=token, signals=_signals(gpc, jurisdiction)
    )
    _count(request.app.state, answers)
    return decision_to_dict(answers[0].decision)


@router.post("/decisions", summary="Many decisions in one request")
def post_decisions(
    body: DecisionsBody,
    request: Request,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(KeyScope.DECIDE))],
) -> dict[str, Any]:
    gpc = sec_gpc_opt_out(request.headers.getlist("sec-gpc"))
    token = parse_token(body.min_token)
    subjects = {c.subject for c in body.checks}
    if gpc and len(subjects) == 1:
        _observe_gpc(services, key.tenant, next(iter(subjects)), body.jurisdiction)
    answers = services.decisions.answers(
        key.tenant,
        [(c.subject, c.purpose) for c in body.checks],
        min_token=token,
        signals=_signals(gpc, body.jurisdiction),
    )
    _count(request.app.state, answers)
    return {"decisions": [decision_to_dict(a.decision) for a in answers]}


@wellknown.get(
    WELL_KNOWN_PATH,
    summary="Global Privacy Control support (W3C GPC): this server honours Sec-GPC",
)
def gpc_json(request: Request) -> Response:
    updated = date.fromisoformat(request.app.state.settings.gpc_last_update)
    body = GPCSupport(gpc=True, last_update=updated).to_json()
    return Response(body, media_type="application/json")


# The fast path --------------------------------------------------------------------------------
class FastPathAPI(FastAPI):
    """FastAPI with FastDecisions in front of everything, its own __call__ included.

    Outermost, because FastAPI's own layers (its per-request telemetry probe, the error, body
    limit and observe middleware) cost more than a cached check; the fast path does their duties
    itself for the requests it answers (body limit: it hands large bodies over; errors: the one
    shape; metrics: the same series as ObserveMiddleware). Everything else, and every request
    handed over, goes through FastAPI.__call__ as usual.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._fast = FastDecisions(super().__call__)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH:
            scope["app"] = self
            await self._fast(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def _failure(exc: Exception) -> tuple[int, tuple[tuple[bytes, bytes], ...], bytes]:
    """Status, headers and body of a failure, as the API's error handlers would answer it."""
    if isinstance(exc, StoreUnavailableError):
        log.warning("database unavailable: %s", exc)
        message = "the consent database is unavailable; retry shortly"
        return 503, ((b"retry-after", b"1"),), orjson.dumps(error_body(503, "unavailable", message))
    if isinstance(exc, DomainError):
        status = next(s for t, s in _STATUS if isinstance(exc, t))
        return status, (), orjson.dumps(error_body(status, exc.code, str(exc)))
    log.exception("unexpected error in the decision fast path", exc_info=exc)
    message = "an unexpected error occurred; see logs"
    return 500, (), orjson.dumps(error_body(500, "internal_error", message))


class _Handover(Exception):
    """Not a request the fast path answers: FastAPI's route takes it as it came."""


class FastDecisions:
    """Pure ASGI: answers well-formed GET/POST /v1/decisions; `app` takes every other request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "GET":
            await self._serve(scope, receive, send, b"")
        elif method == "POST" and _small_body(scope):
            body = await _read_body(receive)
            await self._serve(scope, _replay(body), send, body)
        else:
            await self.app(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
        started = time.perf_counter()
        state = scope["app"].state
        services: Services = state.services
        authorization = None
        gpc_values: list[bytes] = []
        content_type = b""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"sec-gpc":
                gpc_values.append(value)
            elif name == b"content-type":
                content_type = value
        gpc = sec_gpc_opt_out(gpc_values) if gpc_values else False
        try:
            if scope["method"] == "GET":
                subject, purpose, min_token, jurisdiction = _query(scope["query_string"])
                checks = [(subject, purpose)]
                gpc_subject = subject if gpc else None
            else:
                if not content_type.startswith(b"application/json"):
                    raise _Handover
                checks, min_token, jurisdiction = _batch(body)
                subjects = {s for s, _ in checks}
                gpc_subject = next(iter(subjects)) if gpc and len(subjects) == 1 else None
            token = parse_token(min_token)
        except (_Handover, DomainError):
            # Parameter errors: the reference route words them.
            await self._hand_over(scope, receive, send)
            return
        signals = _signals(gpc, jurisdiction)
        key_cache: KeyCache = state.key_cache
        decisions = services.decisions
        deadline = decisions.token_deadline() if token is not None else 0.0

        def work() -> bytes:
            """Everything that may touch the database or Redis, or wait: in a worker thread."""
            try:
                key = key_cache.resolve(services, authorization)
                require(key, KeyScope.DECIDE)
            except DomainError:
                raise _Handover from None  # authentication errors: the reference route words them
            decisions.check_batch(checks)
            decisions.wait_for(token, deadline, block=False)  # TokenPending: wait on the loop
            if gpc_subject is not None:
                _observe_gpc(services, key.tenant, gpc_subject, jurisdiction)
            answers = decisions.answers(key.tenant, checks, min_token=token, signals=signals)
            _count(state, answers)
            now = _now_json(services)
            if scope["method"] == "GET":
                return body_of(answers[0], now)
            return b'{"decisions":[' + b",".join([body_of(a, now) for a in answers]) + b"]}"

        status: int = 200
        headers: tuple[tuple[bytes, bytes], ...] = ()
        notifier: ChangeNotifier = state.notifier
        try:
            # Nothing that waits or touches a database or Redis runs on the event loop: a slow
            # or unreachable database, or a min_token not reached yet, must not stall every
            # other request of this worker (/healthz included). A token is waited for here,
            # woken by this process's commits or after a short poll for other processes'.
            while True:
                try:
                    payload = await run_in_threadpool(work)
                    break
                except TokenPending:
                    await notifier.wait(TOKEN_POLL_SECONDS)
        except _Handover:
            await self._hand_over(scope, receive, send)
            return
        except Exception as exc:
            status, headers, payload = _failure(exc)
        await self._send(send, status, headers, payload, scope["method"], state, started)

    async def _send(
        self,
        send: Send,
        status: int,
        headers: tuple[tuple[bytes, bytes], ...],
        payload: bytes,
        method: str,
        state: Any,
        started: float,
    ) -> None:
        self._observe(state.metrics, method, status, started)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _hand_over(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def _observe(self, metrics: Metrics, method: str, status: int, started: float) -> None:
        """What ObserveMiddleware records for every other route, with children resolved once."""
        key = (method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                metrics.requests.labels(method, PATH, str(status)),
                metrics.latency.labels(method, PATH),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(time.perf_counter() - started)


def _query(raw: bytes) -> tuple[str, str, str | int | None, str | None]:
    """The GET parameters, or _Handover for anything FastAPI should word an error about."""
    text = raw.decode("latin-1")
    values: dict[str, str] = {}
    for pair in text.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        if "%" in pair or "+" in pair:  # decoded as Starlette decodes them
            name, value = unquote_plus(name), unquote_plus(value)
        if name in values:
            raise _Handover  # repeated: FastAPI's rule (the last wins) applies; let it
        values[name] = value
    subject = values.get("subject")
    purpose = values.get("purpose")
    jurisdiction = values.get("jurisdiction")
    if (
        not subject
        or not purpose
        or not is_valid_subject(subject)  # the subject rule (domain/inputs.py)
        or len(purpose) > MAX_PURPOSE
        or (jurisdiction is not None and len(jurisdiction) > MAX_JURISDICTION)
        or not raw.isascii()
    ):
        raise _Handover
    return subject, purpose, values.get("min_token"), jurisdiction


def _batch(body: bytes) -> tuple[list[tuple[str, str]], str | int | None, str | None]:
    """DecisionsBody's rules, checked by hand (pydantic costs ~0.5 us a check); anything they
    would reject is handed over, so pydantic words the error exactly as elsewhere."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _Handover from None
    if type(data) is not dict or not data.keys() <= _BATCH_FIELDS:
        raise _Handover
    items = data.get("checks")
    if type(items) is not list or not items:
        raise _Handover
    checks = []
    for item in items:
        if type(item) is not dict or len(item) != 2:
            raise _Handover
        subject, purpose = item.get("subject"), item.get("purpose")
        if (
            type(subject) is not str
            or type(purpose) is not str
            or not is_valid_subject(subject)  # the subject rule (domain/inputs.py)
            or not 0 < len(purpose) <= MAX_PURPOSE
        ):
            raise _Handover
        checks.append((subject, purpose))
    token = data.get("min_token")
    if token is not None and type(token) not in (str, int):  # StrictStr | StrictInt: no bool
        raise _Handover
    jurisdiction = data.get("jurisdiction")
    if jurisdiction is not None and (
        type(jurisdiction) is not str or len(jurisdiction) > MAX_JURISDICTION
    ):
        raise _Handover
    return checks, token, jurisdiction


_BATCH_FIELDS = frozenset(DecisionsBody.model_fields)


def _small_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.isdigit() and int(value) <= MAX_BODY_BYTES
        if name == b"transfer-encoding":
            return False
    return True


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


__all__ = ["FastDecisions", "router", "wellknown"]
