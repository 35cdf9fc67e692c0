"""ASGI enforcement: a route that needs a purpose is reached only with the subject's consent.

Pure ASGI, so it wraps FastAPI, Starlette or any ASGI app alike. It is told two things: how to
find the subject in a request (a header name, or a function of the ASGI scope) and which purposes
each route needs (rules by path, or a function of the scope). For a request that matches a rule:

- every needed purpose is checked (a Replica answers in microseconds in process; a Client asks
  the server, in one batch per request);
- a denial answers 403 in Consentry's error shape, the reason as its code:
  {"error": {"status": 403, "code": "withdrawn", "message": "...", "details": [...]}};
- anything that prevents an answer (no subject, the checker failing) is a denial too, with code
  `not_given` (no subject: nobody's consent can be assumed) or `unavailable`: fail closed;
- a permitted request reaches the app with the decisions in the scope: scope["consentry.decision"]
  (the first needed purpose's), scope["consentry.decisions"] ({purpose: Decision}), and the same
  under scope["state"] (so Starlette's request.state.consentry_decisions works).

A `Sec-GPC: 1` request header is passed on as the GPC signal, and a read-your-writes token can be
taken from a header (`token_header`) so that a request that follows a write sees it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from consentry.domain.decide import Decision, Reason, Signals, unavailable
from consentry.sdk.client import Client
from consentry.signals.gpc import sec_gpc_opt_out

log = logging.getLogger("consentry.sdk.middleware")

SubjectFinder = Callable[[Scope], "str | Awaitable[str | None] | None"]
PurposeFinder = Callable[[Scope], Sequence[str]]


class Checker(Protocol):
    """What answers checks in process (Replica); a Client is used through its async calls."""

    def check_many(
        self,
        checks: Sequence[tuple[str, str]],
        token: int | None = None,
        signals: Signals | None = None,
    ) -> list[Decision]: ...


@dataclass(frozen=True, slots=True)
class Rule:
    """Requests to `path` (exact, or a prefix when it ends with '*') need `purposes`."""

    path: str
    purposes: tuple[str, ...]
    methods: frozenset[str] | None = None

    def matches(self, path: str, method: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path == self.path


def rules_from(spec: Mapping[str, Sequence[str]] | Sequence[Rule]) -> list[Rule]:
    if isinstance(spec, Mapping):
        return [Rule(path, tuple(purposes)) for path, purposes in spec.items()]
    return list(spec)


class ConsentMiddleware:
    """Enforce consent per route; see the module docstring for the contract."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        checker: Checker | Client,
        subject: str | SubjectFinder,
        rules: Mapping[str, Sequence[str]] | Sequence[Rule] | None = None,
        purposes: PurposeFinder | None = None,
        token_header: str | None = "consentry-token",
        jurisdiction_header: str | None = None,
    ) -> None:
        if (rules is None) == (purposes is None):
            raise ValueError("give either rules (by path) or purposes (a function of the scope)")
        self.app = app
        self.checker = checker
        self._subject_header = subject.lower().encode() if isinstance(subject, str) else None
        self._subject_fn = None if isinstance(subject, str) else subject
        self._rules = rules_from(rules) if rules is not None else []
        self._purposes_fn = purposes
        self._token_header = token_header.lower().encode() if token_header else None
        self._jurisdiction_header = (
            jurisdiction_header.lower().encode() if jurisdiction_header else None
        )

    def needed(self, scope: Scope) -> Sequence[str]:
        if self._purposes_fn is not None:
            return self._purposes_fn(scope)
        path, method = scope.get("path", ""), scope.get("method", "")
        for rule in self._rules:
            if rule.matches(path, method):
                return rule.purposes
        return ()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        needed = self.needed(scope)
        if not needed:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        subject = await self._find_subject(scope, headers)
        if not subject:
            await _deny(send, Reason.NOT_GIVEN, "no subject identified in this request", [])
            return
        token = _int(headers.get(self._token_header)) if self._token_header else None
        jurisdiction = (
            headers.get(self._jurisdiction_header, b"").decode("latin-1") or None
            if self._jurisdiction_header
            else None
        )
        gpc = sec_gpc_opt_out(headers.get(b"sec-gpc"))
        decisions = await self._check(subject, needed, token, gpc, jurisdiction)
        denied = [d for d in decisions if not d.permitted]
        if denied:
            first = denied[0]
            await _deny(
                send,
                first.reason,
                f"processing for {', '.join(d.purpose for d in denied)} is not permitted"
                f" ({first.reason.value})",
                [
                    {"purpose": d.purpose, "reason": d.reason.value, "position": d.position}
                    for d in denied
                ],
            )
            return
        by_purpose = {d.purpose: d for d in decisions}
        scope["consentry.decision"] = decisions[0]
        scope["consentry.decisions"] = by_purpose
        state = scope.setdefault("state", {})
        state["consentry_decision"] = decisions[0]
        state["consentry_decisions"] = by_purpose
        await self.app(scope, receive, send)

    async def _find_subject(self, scope: Scope, headers: dict[bytes, bytes]) -> str | None:
        if self._subject_header is not None:
            raw = headers.get(self._subject_header)
            return raw.decode("utf-8", "replace") if raw else None
        assert self._subject_fn is not None
        try:
            found = self._subject_fn(scope)
            if inspect.isawaitable(found):
                found = await found
            return found
        except Exception:
            log.exception("the subject finder failed; denying")
            return None

    async def _check(
        self,
        subject: str,
        purposes: Sequence[str],
        token: int | None,
        gpc: bool,
        jurisdiction: str | None,
    ) -> list[Decision]:
        checks = [(subject, p) for p in purposes]
        try:
            if isinstance(self.checker, Client):
                return await self.checker.acheck_many(
                    checks, min_token=token, jurisdiction=jurisdiction, gpc=gpc
                )
            signals = Signals(gpc=gpc, jurisdiction=jurisdiction) if gpc or jurisdiction else None
            return self.checker.check_many(checks, token, signals)
        except Exception:
            log.exception("consent check failed; denying")
            now = datetime.now(UTC)
            return [unavailable(subject, p, now) for p in purposes]


def _headers(scope: Scope) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for name, value in scope.get("headers", ()):
        out[name] = out[name] + b"," + value if name in out else value
    return out


def _int(raw: bytes | None) -> int | None:
    if raw is None or not raw.strip().isdigit():
        return None
    return int(raw)


async def _deny(send: Send, reason: Reason, message: str, details: list[dict[str, Any]]) -> None:
    error: dict[str, Any] = {"status": 403, "code": reason.value, "message": message}
    if details:
        error["details"] = details
    body = orjson.dumps({"error": error})
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = ["Checker", "ConsentMiddleware", "Rule"]
