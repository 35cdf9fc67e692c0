"""The Python client of a Consentry server: checks and recording over HTTP (httpx).

Why these defaults: a consent check sits on the path of a marketing send or an ad call, so it
must answer quickly or not at all. Connections are pooled; timeouts are short; idempotent calls
(checks, and recording, which always carries an Idempotency-Key) are retried with exponential
backoff and jitter on transport errors and 429/502/503/504. When no answer can be had, a check
returns Decision(permitted=False, reason=unavailable) (DESIGN.md invariant 5): callers that do
`if client.check(...).permitted:` are never permitted by accident. Pass `raise_errors=True` to get
an exception instead. Recording always raises on failure: a write that did not happen must not
look like one that did.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

from consentry.domain.decide import Decision, Reason, unavailable
from consentry.domain.events import format_time, parse_time
from consentry.domain.purposes import LegalBasis

log = logging.getLogger("consentry.sdk")

RETRY_STATUSES = frozenset({429, 502, 503, 504})
MAX_RETRY_AFTER = 2.0


class ConsentryError(Exception):
    """The server answered with an error (its code and message), or could not be reached."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class ConsentryUnavailable(ConsentryError):
    """No answer could be had: the server or its database is down, or the call timed out."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a write returns: its read-your-writes token and the committed events."""

    token: int
    events: tuple[dict[str, Any], ...]
    replayed: bool = False


def decision_from_dict(data: Mapping[str, Any]) -> Decision:
    """The inverse of serialize.decision_to_dict."""
    return Decision(
        subject=data["subject"],
        purpose=data["purpose"],
        permitted=bool(data["permitted"]),
        reason=Reason(data["reason"]),
        basis=LegalBasis(data["basis"]) if data.get("basis") else None,
        position=data.get("position"),
        notice_version=data.get("notice_version"),
        decided_at=parse_time(data["decided_at"]),
        valid_until=parse_time(data["valid_until"]) if data.get("valid_until") else None,
        restrictions=tuple(data.get("restrictions") or ()),
    )


def _error_of(response: httpx.Response) -> ConsentryError:
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
    except Exception:
        code, message = "error", response.text[:200] or response.reason_phrase
    kind = ConsentryUnavailable if response.status_code >= 500 else ConsentryError
    return kind(response.status_code, code, message)


class _Retrying:
    """Backoff and response handling shared by the sync and async clients."""

    retries: int
    backoff: float

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        if response is not None:
            after = response.headers.get("retry-after", "")
            if after.replace(".", "", 1).isdigit():
                return min(float(after), MAX_RETRY_AFTER)
        return float(self.backoff * (2**attempt) * (0.5 + random.random()))

    @staticmethod
    def _retryable(response: httpx.Response) -> bool:
        return response.status_code in RETRY_STATUSES


class Client(_Retrying):
    """A pooled, retrying client; thread-safe (httpx.Client is)."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 2.0,
        connect_timeout: float = 0.5,
        retries: int = 2,
        backoff: float = 0.05,
        max_connections: int = 32,
        raise_errors: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff = backoff
        self.raise_errors = raise_errors
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self.http = httpx.Client(
            base_url=self.base_url,
            headers=self._headers,
            timeout=self._timeout,
            limits=self._limits,
            transport=transport,
        )
        self._async: httpx.AsyncClient | None = None
        self._async_loop: asyncio.AbstractEventLoop | None = None

    # Plumbing --------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """One idempotent call with retries; the decoded JSON, or ConsentryError."""
        response: httpx.Response | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self.http.request(
                    method,
                    path,
                    params=params,
                    json=json,
                    headers=headers,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise ConsentryUnavailable(
                        0, "unavailable", f"{method} {path}: {exc!r}"
                    ) from exc
                time.sleep(self._delay(attempt, None))
                continue
            if response.is_success:
                return response.json()
            if not self._retryable(response) or attempt == self.retries:
                raise _error_of(response)
            time.sleep(self._delay(attempt, response))
        raise AssertionError("unreachable")  # pragma: no cover

    def _fail(self, exc: ConsentryError, checks: Sequence[tuple[str, str]]) -> list[Decision]:
        if self.raise_errors:
            raise exc
        log.warning("consent check failed, answering unavailable (not permitted): %s", exc)
        now = datetime.now(UTC)
        return [unavailable(s, p, now) for s, p in checks]

    # Checks -------------------------------------------------------------------------------------
    def check(
        self,
        subject: str,
        purpose: str,
        *,
        min_token: int | str | None = None,
        jurisdiction: str | None = None,
        gpc: bool = False,
    ) -> Decision:
        """May we process `subject`'s data for `purpose`? unavailable (denied) on any failure."""
        params: dict[str, Any] = {"subject": subject, "purpose": purpose}
        if min_token is not None:
            params["min_token"] = str(min_token)
        if jurisdiction:
            params["jurisdiction"] = jurisdiction
        headers = {"Sec-GPC": "1"} if gpc else None
        try:
            data = self.request("GET", "/v1/decisions", params=params, headers=headers)
            return decision_from_dict(data)
        except ConsentryError as exc:
            return self._fail(exc, [(subject, purpose)])[0]

    def check_many(
        self,
        checks: Sequence[tuple[str, str]],
        *,
        min_token: int | str | None = None,
        jurisdiction: str | None = None,
        gpc: bool = False,
    ) -> list[Decision]:
        """Many checks in one request (up to the server's max_batch_checks)."""
        if not checks:
            return []
        body = _batch_body(checks, min_token, jurisdiction)
        headers = {"Sec-GPC": "1"} if gpc else None
        try:
            data = self.request("POST", "/v1/decisions", json=body, headers=headers)
            return [decision_from_dict(d) for d in data["decisions"]]
        except ConsentryError as exc:
            return self._fail(exc, checks)

    # Recording ----------------------------------------------------------------------------------
    def record(
        self,
        subject: str,
        choices: Mapping[str, str],
        *,
        source: str = "api",
        jurisdiction: str | None = None,
        notice: tuple[str, int] | None = None,
        occurred_at: datetime | None = None,
        actor: str | None = None,
        ip: str | None = None,
        user_agent: str | None = None,
        idempotency_key: str | None = None,
        gpc: bool = False,
    ) -> Recorded:
        """Record `subject`'s choices ({purpose: action}); raises ConsentryError on failure.

        Safe to retry: every call carries an Idempotency-Key (a new one unless given), so a retry
        after a lost response writes nothing twice.
        """
        body: dict[str, Any] = {
            "subject": subject,
            "source": source,
            "events": [{"purpose": p, "action": str(a)} for p, a in choices.items()],
        }
        if jurisdiction:
            body["jurisdiction"] = jurisdiction
        if notice:
            body["notice"] = {"id": notice[0], "version": notice[1]}
        if occurred_at:
            body["occurred_at"] = format_time(occurred_at)
        if actor:
            body["actor"] = actor
        if ip or user_agent:
            body["evidence"] = {k: v for k, v in (("ip", ip), ("user_agent", user_agent)) if v}
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        if gpc:
            headers["Sec-GPC"] = "1"
        data = self.request("POST", "/v1/consents", json=body, headers=headers)
        return Recorded(int(data["token"]), tuple(data["events"]))

    # Async, for ASGI middleware --------------------------------------------------------------
    def _async_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._async is None or self._async_loop is not loop:
            self._async = httpx.AsyncClient(
                base_url=self.base_url,
                headers=self._headers,
                timeout=self._timeout,
                limits=self._limits,
            )
            self._async_loop = loop
        return self._async

    async def arequest(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        http = self._async_client()
        response: httpx.Response | None = None
        for attempt in range(self.retries + 1):
            try:
                response = await http.request(
                    method, path, params=params, json=json, headers=headers
                )
            except httpx.TransportError as exc:
                if attempt == self.retries:
                    raise ConsentryUnavailable(
                        0, "unavailable", f"{method} {path}: {exc!r}"
                    ) from exc
                await asyncio.sleep(self._delay(attempt, None))
                continue
            if response.is_success:
                return response.json()
            if not self._retryable(response) or attempt == self.retries:
                raise _error_of(response)
            await asyncio.sleep(self._delay(attempt, response))
        raise AssertionError("unreachable")  # pragma: no cover

    async def acheck_many(
        self,
        checks: Sequence[tuple[str, str]],
        *,
        min_token: int | str | None = None,
        jurisdiction: str | None = None,
        gpc: bool = False,
    ) -> list[Decision]:
        if not checks:
            return []
        body = _batch_body(checks, min_token, jurisdiction)
        headers = {"Sec-GPC": "1"} if gpc else None
        try:
            data = await self.arequest("POST", "/v1/decisions", json=body, headers=headers)
            return [decision_from_dict(d) for d in data["decisions"]]
        except ConsentryError as exc:
            return self._fail(exc, checks)

    async def acheck(
        self,
        subject: str,
        purpose: str,
        *,
        min_token: int | str | None = None,
        jurisdiction: str | None = None,
        gpc: bool = False,
    ) -> Decision:
        found = await self.acheck_many(
            [(subject, purpose)], min_token=min_token, jurisdiction=jurisdiction, gpc=gpc
        )
        return found[0]

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
            self._async = None

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _unreachable(method: str, path: str, exc: Exception) -> ConsentryUnavailable:
    return ConsentryUnavailable(0, "unavailable", f"{method} {path}: {exc!r}")


def _batch_body(
    checks: Sequence[tuple[str, str]], min_token: int | str | None, jurisdiction: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"checks": [{"subject": s, "purpose": p} for s, p in checks]}
    if min_token is not None:
        body["min_token"] = str(min_token)
    if jurisdiction:
        body["jurisdiction"] = jurisdiction
    return body
