"""The HTTP change feed and the state snapshot: propagation without Kafka.

A reader bootstraps from /v1/snapshot, then follows /v1/changes (long-poll) or
/v1/changes/stream (server-sent events) from the snapshot's position. Events are CloudEvents, the
same envelope as on Kafka. `next` is the position to ask after next time: it moves past other
tenants' positions too, so a reader can compare it with a write's token (read-your-writes).

The feed is for deciding, so it carries what deciding needs: a key whose role may not read
history (a checker) gets every event with its personal evidence (IP, user agent, raw signal)
null (keys.may_read_evidence).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from consentry.api.deps import ServicesDep, needs
from consentry.domain.events import RecordedEvent
from consentry.keys import Scope, may_read_evidence
from consentry.propagation.envelope import envelope
from consentry.propagation.notifier import ChangeNotifier
from consentry.serialize import event_to_dict
from consentry.services import Services
from consentry.storage.base import ApiKey

router = APIRouter(prefix="/v1", tags=["changes"])

MAX_LIMIT = 10_000
MAX_POSITION = 2**63 - 1
MAX_WAIT_SECONDS = 60.0
POLL_SECONDS = 0.25
KEEPALIVE_SECONDS = 15.0


def _page(
    services: Services, tenant: str, after: int, limit: int
) -> tuple[list[RecordedEvent], int]:
    """Events after `after` and the next position. The head is read before the events, so
    every position up to it is committed and `next` never skips a later commit. Without
    events `next` is the head, even below `after`: a reader ahead of this log (a database
    restored from a backup, another installation) learns it is following another log."""
    head = services.store.head()
    events = services.store.events_after(after, limit, tenant)
    if not events:
        return events, head
    last = events[-1].position
    return events, max(last, head) if len(events) < limit else last


@router.get(
    "/changes",
    summary="Events after a position, long-polling up to `wait` seconds when there are none",
)
async def changes(
    request: Request,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.CHANGES_READ))],
    after: Annotated[
        int, Query(ge=0, le=MAX_POSITION, description="Last position seen (0 = start)")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_SECONDS)] = 0,
) -> dict[str, Any]:
    notifier: ChangeNotifier = request.app.state.notifier
    deadline = time.monotonic() + wait
    while True:
        events, next_position = await run_in_threadpool(_page, services, key.tenant, after, limit)
        remaining = deadline - time.monotonic()
        if events or remaining <= 0 or next_position < after:
            break
        await notifier.wait(min(remaining, POLL_SECONDS))
    shown = may_read_evidence(key)
    return {
        "events": [envelope(event_to_dict(e, evidence=shown)) for e in events],
        "next": next_position,
    }


@router.get(
    "/changes/stream",
    summary="Server-sent events: every event after a position, as it commits",
    response_class=StreamingResponse,
)
async def change_stream(
    request: Request,
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.CHANGES_READ))],
    after: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    last_event_id: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    if last_event_id and last_event_id.isdigit() and len(last_event_id) < 19:
        after = max(after, int(last_event_id))
    notifier: ChangeNotifier = request.app.state.notifier
    shown = may_read_evidence(key)

    async def stream() -> AsyncIterator[bytes]:
        position = after
        last_sent = time.monotonic()
        yield b"retry: 1000\n\n"
        while not await request.is_disconnected():
            events, next_position = await run_in_threadpool(
                _page, services, key.tenant, position, 1000
            )
            for e in events:
                yield (
                    b"id: "
                    + str(e.position).encode()
                    + b"\nevent: consent\ndata: "
                    + orjson.dumps(envelope(event_to_dict(e, evidence=shown)))
                    + b"\n\n"
                )
            if next_position != position:
                # Tell the reader how far the log is known, even without events of its own.
                yield b"id: " + str(next_position).encode() + b"\nevent: position\ndata: {}\n\n"
                position = next_position
                last_sent = time.monotonic()
            elif time.monotonic() - last_sent > KEEPALIVE_SECONDS:
                yield b": keepalive\n\n"
                last_sent = time.monotonic()
            if not events:
                await notifier.wait(POLL_SECONDS)
            else:
                await asyncio.sleep(0)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/snapshot",
    summary="The current state of every subject, paged by subject, to bootstrap a replica",
    description="Take `position` from the first page and follow /v1/changes after it: events"
    " committed while paging are delivered again and applied by the latest-legal-time rule,"
    " so the replica converges.",
)
def snapshot(
    services: ServicesDep,
    key: Annotated[ApiKey, Depends(needs(Scope.CHANGES_READ))],
    after_subject: Annotated[str, Query(max_length=256)] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Subjects per page")] = 1000,
) -> dict[str, Any]:
    position = services.store.head()
    rows = services.store.state_snapshot(key.tenant, after_subject, limit)
    subjects = len({e.subject for e in rows})
    return {
        "position": position,
        "entries": [event_to_dict(e, evidence=may_read_evidence(key)) for e in rows],
        "next_subject": rows[-1].subject if subjects == limit else None,
    }
