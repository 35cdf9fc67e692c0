"""Private servers for tests that hang or stop them (never the shared ones): a redis-server, and
a throwaway PostgreSQL cluster (initdb as the postgres user, on a free port, removed after)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import service_missing


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateRedis:
    """redis-server on a free port, started and stopped by the test that owns it."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.1):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("private redis-server did not start")

    def pause(self) -> None:
        """SIGSTOP: the server hangs (connections are accepted by the kernel, never answered)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT: the server carries on with the data it had when it hung."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        service_missing("redis-server", "not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class ThrowawayPostgres:
    def __init__(self, root: Path) -> None:
        self.data = root / "pgdata"
        self.log = root / "server.log"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def init(self) -> None:
        shutil.chown(self.data.parent, "postgres")
        self._as_postgres("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        """Start on the same port again; a restart retries while the port is briefly taken
        (an outgoing connection of another process may hold it as its ephemeral port)."""
        opts = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1 -c fsync=off"
        command = ("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w", "start")
        for attempt in range(10):
            try:
                self._as_postgres(*command)
                return
            except subprocess.CalledProcessError as exc:
                if attempt == 9:
                    tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
                    raise RuntimeError(f"PostgreSQL did not start: {tail}") from exc
                time.sleep(0.5)

    def stop(self) -> None:
        self._as_postgres("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")


@pytest.fixture
def throwaway_pg() -> Iterator[ThrowawayPostgres]:
    if shutil.which("initdb") is None or shutil.which("runuser") is None:
        service_missing("initdb", "PostgreSQL server binaries are not installed")
    # A folder of its own under /tmp (the postgres user cannot enter pytest's tmp_path), unique
    # across concurrent runs: a name derived from the test's would be shared by them.
    root = Path(tempfile.mkdtemp(prefix="consentry-pg-"))
    pg = ThrowawayPostgres(root)
    try:
        pg.init()
        pg.start()
    except (subprocess.CalledProcessError, RuntimeError, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        service_missing("a throwaway PostgreSQL", exc)
    try:
        yield pg
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            pg.stop()
        shutil.rmtree(root, ignore_errors=True)
