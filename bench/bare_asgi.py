"""The baseline of bench_http.py: a bare ASGI endpoint returning a constant JSON body."""

from __future__ import annotations

from typing import Any

BODY = (
    b'{"subject":"user-000001","purpose":"email","permitted":true,"reason":"granted",'
    b'"basis":"consent","position":3,"notice_version":null,'
    b'"decided_at":"2026-11-22T07:00:00.000000Z","valid_until":null,"restrictions":[]}'
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":  # drain the body, as a real handler must
        more = True
        while more:
            message = await receive()
            more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
