"""The ASGI middleware on a Starlette app, checked by a replica and by the client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from consentry.sdk import Client, ConsentMiddleware, Replica, Rule
from tests.sdk.conftest import LiveServer, free_port


async def newsletter(request: Request) -> JSONResponse:
    decision = request.state.consentry_decision
    assert request.scope["consentry.decision"] is decision
    return JSONResponse({"reason": decision.reason.value, "position": decision.position})


async def public(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def app_with(checker: object) -> TestClient:
    app = Starlette(
        routes=[
            Route("/newsletter", newsletter),
            Route("/public", public),
            Route("/ads/{x}", newsletter),
        ]
    )
    app.add_middleware(
        ConsentMiddleware,
        checker=checker,
        subject="x-user-id",
        rules=[Rule("/newsletter", ("email",)), Rule("/ads/*", ("ads", "email"))],
    )
    return TestClient(app)


@pytest.fixture(params=["replica", "client"])
def checker(request: pytest.FixtureRequest, live: LiveServer) -> Iterator[Replica | Client]:
    client = Client(live.url, live.key)
    client.record("yes", {"email": "given"})
    client.record("no", {"email": "withdrawn"})
    if request.param == "replica":
        with Replica(client=client) as replica:
            yield replica
    else:
        yield client
    client.close()


def test_permitted_reaches_the_handler_with_the_decision(checker: Replica | Client) -> None:
    http = app_with(checker)
    r = http.get("/newsletter", headers={"x-user-id": "yes"})
    assert r.status_code == 200 and r.json() == {"reason": "granted", "position": 1}
    assert http.get("/public").json() == {"ok": True}  # no rule, no check


@pytest.mark.parametrize(
    ("subject", "path", "code"),
    [
        ("no", "/newsletter", "withdrawn"),
        ("new", "/newsletter", "not_given"),
        (None, "/newsletter", "not_given"),
        ("yes", "/ads/1", "not_given"),
    ],
)
def test_denied_gets_403_with_the_reason(
    checker: Replica | Client, subject: str | None, path: str, code: str
) -> None:
    headers = {"x-user-id": subject} if subject else {}
    r = app_with(checker).get(path, headers=headers)
    assert r.status_code == 403
    error = r.json()["error"]
    assert error["status"] == 403 and error["code"] == code and error["message"]


def test_gpc_header_is_passed_on(live: LiveServer) -> None:
    client = Client(live.url, live.key)
    app = Starlette(routes=[Route("/ads", newsletter)])
    app.add_middleware(
        ConsentMiddleware,
        checker=client,
        subject="x-user-id",
        rules={"/ads": ["ads"]},
        jurisdiction_header="x-region",
    )
    http = TestClient(app)
    ok = http.get("/ads", headers={"x-user-id": "p", "x-region": "US-CA"})
    assert ok.status_code == 200 and ok.json()["reason"] == "not_opted_out"
    r = http.get("/ads", headers={"x-user-id": "p", "x-region": "US-CA", "Sec-GPC": "1"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "gpc_opt_out"
    client.close()


def test_checker_down_is_unavailable() -> None:
    client = Client(f"http://127.0.0.1:{free_port()}", "csk_x", retries=0)
    r = app_with(client).get("/newsletter", headers={"x-user-id": "yes"})
    assert r.status_code == 403 and r.json()["error"]["code"] == "unavailable"
    client.close()
