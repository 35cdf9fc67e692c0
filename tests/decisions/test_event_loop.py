"""Nothing that waits or touches the database runs on the event loop (issue 10, item 12).

A real uvicorn server, one worker. Checks that must wait (a min_token the log has not reached;
a key lookup while PostgreSQL is down) are sent first and seen waiting inside the server; then
/healthz is asked, and must be answered while every one of them is still waiting. The proof is
the order of the answers, not a timing threshold: each waiting check lasts seconds.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from consentry.config import Settings
from consentry.keys import create_key
from consentry.services import Services
from consentry.storage import open_store
from consentry.storage.base import Role, StoreUnavailableError
from tests.decisions.conftest import ThrowawayPostgres
from tests.sdk.conftest import LiveServer, start_server

CHECKS = 5


class Race:
    """Requests sent from threads; `finished` lists them in the order their answers came."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.finished: list[str] = []
        self.statuses: dict[str, int] = {}
        # Everything that happened, in order: ("done", request name) here, and whatever the
        # test adds from inside the server (below: the database reads).
        self.log: list[tuple[str, object]] = []
        self.lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def send(self, name: str, path: str, headers: dict[str, str] | None = None) -> None:
        def run() -> None:
            try:
                r = httpx.get(self.url + path, headers=headers, timeout=60)
                status = r.status_code
            except httpx.HTTPError:
                status = -1
            with self.lock:
                self.finished.append(name)
                self.statuses[name] = status
                self.log.append(("done", name))

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self) -> None:
        for t in self._threads:
            t.join(60)


def entered(calls: list[Any], target: Callable[..., Any]) -> Callable[..., Any]:
    """`target`, noting each call (from whichever thread) before it runs."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return target(*args, **kwargs)

    return wrapper


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def healthz_answers_first(live: LiveServer, race: Race, waiting: Callable[[], bool]) -> None:
    assert wait_until(waiting), "the checks never reached the server"
    race.send("healthz", "/healthz")
    race.join()
    assert race.statuses["healthz"] == 200
    assert race.finished[0] == "healthz", (
        f"/healthz waited for the checks (answers in order {race.finished}): they ran on the"
        " event loop"
    )


@pytest.fixture
def live_on(db_url: str, store: Any, tmp_path: Path) -> Iterator[LiveServer]:
    settings = Settings(
        database_url=db_url, min_token_wait_ms=3000, signing_keys_dir=tmp_path / "keys"
    )
    server = start_server(Services.build(settings, store))
    httpx.post(
        server.url + "/v1/purposes",
        json={"id": "email", "name": "Email", "legal_basis": "consent"},
        headers={"Authorization": f"Bearer {server.key}"},
    ).raise_for_status()
    try:
        yield server
    finally:
        server.stop()


def test_checks_waiting_for_a_token_do_not_stall_the_server(
    live_on: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On SQLite, 5 checks with an unreachable min_token stalled /healthz for 9.8 s."""
    decisions = live_on.services.decisions
    calls: list[Any] = []
    monkeypatch.setattr(decisions, "wait_for", entered(calls, decisions.wait_for))
    auth = {"Authorization": f"Bearer {live_on.key}"}
    race = Race(live_on.url)
    for n in range(CHECKS):
        race.send(f"check{n}", f"/v1/decisions?subject=s&purpose=email&min_token={10**6 + n}", auth)
    # Every check is inside the server, waiting for its token (or one holds the loop, and the
    # others cannot get in: then healthz cannot either, and comes after it).
    healthz_answers_first(
        live_on,
        race,
        lambda: {c[0] for c in calls} >= {10**6 + n for n in range(CHECKS)} or bool(race.finished),
    )
    assert all(race.statuses[f"check{n}"] == 409 for n in range(CHECKS)), race.statuses


@pytest.mark.postgres
def test_key_lookups_while_postgres_is_down_do_not_stall_the_server(
    throwaway_pg: ThrowawayPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the database down, key lookups on the loop stalled everything for 15-40 s."""
    store = open_store(throwaway_pg.url)
    store.migrate()
    store.ensure_tenant("default")
    services = Services.build(
        Settings(database_url=throwaway_pg.url, signing_keys_dir=tmp_path / "keys"), store
    )
    live = start_server(services)
    try:
        keys = [create_key(store, "default", Role.CHECKER).key for _ in range(CHECKS)]
        throwaway_pg.stop()
        # The pool's connections died with the server; the first use fails at once and purges
        # them (storage/postgres.py). Done here, so that the reads below wait on the pool.
        with contextlib.suppress(StoreUnavailableError):
            store.ping()
        race = Race(live.url)
        real_read = store._read

        @contextlib.contextmanager
        def read() -> Iterator[Any]:
            token = object()
            with race.lock:
                race.log.append(("read", token))
            try:
                with real_read() as cursor:
                    yield cursor
            finally:
                with race.lock:
                    race.log.append(("read done", token))

        monkeypatch.setattr(store, "_read", read)
        for n, key in enumerate(keys):  # never used: each must be looked up in the database
            race.send(
                f"check{n}",
                "/v1/decisions?subject=s&purpose=email",
                {"Authorization": f"Bearer {key}"},
            )
        # Some check is waiting for the database (the key cache then refuses the others at
        # once: api/deps.py). /healthz must be answered while that read still waits.
        assert wait_until(lambda: any(kind == "read" for kind, _ in race.log)), "no read"
        race.send("healthz", "/healthz")
        race.join()
        assert race.statuses["healthz"] == 200
        at = race.log.index(("done", "healthz"))
        pending = {t for kind, t in race.log[:at] if kind == "read"} - {
            t for kind, t in race.log[:at] if kind == "read done"
        }
        assert pending, f"/healthz waited for the database reads (events {race.log})"
        assert all(race.statuses[f"check{n}"] == 503 for n in range(CHECKS)), race.statuses

        throwaway_pg.start()  # and the server recovers: the keys resolve, the checks answer
        ok = [
            wait_until(
                lambda key=key: (
                    httpx.get(
                        live.url + "/v1/decisions?subject=s&purpose=email",
                        headers={"Authorization": f"Bearer {key}"},
                    ).status_code
                    == 422
                ),  # unknown purpose email: the database answered
                timeout=30,
            )
            for key in keys
        ]
        assert all(ok)
    finally:
        live.stop()
        services.close()
