"""Shared helpers of the enforcement benchmarks: a seeded database, a server, a free port."""

from __future__ import annotations

import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from consentry.config import Settings
from consentry.domain.events import Action, Source
from consentry.domain.purposes import LegalBasis, OptOutCategory, Purpose
from consentry.keys import create_key
from consentry.recording.service import ConsentRequest, EventRequest
from consentry.services import Services
from consentry.storage import open_store
from consentry.storage.base import Role

PURPOSES = ("email", "analytics", "ads")


def machine() -> str:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"nproc={os.cpu_count()} cpu={model!r} python={platform.python_version()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def seed(db_url: str, subjects: int, *, seed_value: int = 7) -> tuple[Services, str]:
    """A migrated database with three purposes and `subjects` people; returns a checker key."""
    store = open_store(db_url)
    store.migrate()
    store.ensure_tenant("default")
    services = Services.build(Settings(database_url=db_url), store)
    services.recorder.add_purpose("default", Purpose("email", "Email", LegalBasis.CONSENT))
    services.recorder.add_purpose("default", Purpose("analytics", "Analytics", LegalBasis.CONSENT))
    services.recorder.add_purpose(
        "default",
        Purpose(
            "ads",
            "Ads",
            LegalBasis.CONSENT,
            opt_out_category=OptOutCategory.TARGETED_ADVERTISING,
        ),
    )
    rnd = random.Random(seed_value)
    for i in range(subjects):
        events = [
            EventRequest("email", rnd.choice([Action.GIVEN, Action.REFUSED, Action.WITHDRAWN])),
            EventRequest("analytics", rnd.choice([Action.GIVEN, Action.REFUSED])),
        ]
        services.recorder.record(
            "default",
            ConsentRequest(f"user-{i:06d}", Source.API, events, jurisdiction="DE"),
        )
    key = create_key(store, "default", Role.ADMIN).key
    return services, key


@contextmanager
def server(
    args: list[str], env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[str]:
    """uvicorn in a subprocess on a free port; yields its base URL."""
    port = port or free_port()
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        *args,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proc = subprocess.Popen(cmd, env={**os.environ, **(env or {})}, cwd=Path(__file__).parent)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(f"server exited: {' '.join(cmd)}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
