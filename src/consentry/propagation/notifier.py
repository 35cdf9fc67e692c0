"""Wakes long-polling feed readers the moment a write commits in this process.

Writes run in worker threads; feed readers wait on the event loop. `notify` is called by the
recorder after each commit and resolves every waiting future on its own loop. Writes committed by
another process are not seen here, so waiters also wake on a short poll interval (the caller's
timeout), which bounds the delay for those.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading


class ChangeNotifier:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = set()
        self.position = 0

    def notify(self, position: int) -> None:
        """A write up to `position` has committed: wake everyone waiting."""
        with self._lock:
            self.position = max(self.position, position)
            waiters = list(self._waiters)
            self._waiters.clear()
        for loop, future in waiters:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(_resolve, future)

    async def wait(self, timeout: float) -> None:
        """Return on the next notification, or after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        entry = (loop, future)
        with self._lock:
            self._waiters.add(entry)
        try:
            await asyncio.wait_for(future, timeout)
        except TimeoutError:
            pass
        finally:
            with self._lock:
                self._waiters.discard(entry)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
