"""An asyncio event loop in a thread of its own, for synchronous test code.

websockets' threaded client reads its socket in a background thread while the caller's
thread writes it; over TLS CPython's ``ssl`` objects do not take that and fail now and then
with ``[SSL] internal error`` (cpython#151508). Tests that drive a TLS WebSocket from
synchronous code run websockets' asyncio client in this loop instead: every read and write
of the connection happens on the loop's one thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")


async def _awaited(job: Awaitable[T]) -> T:
    return await job


class LoopThread:
    """``run(job, timeout)`` awaits an awaitable on the loop and returns its result (after
    ``timeout`` seconds it cancels it and raises ``TimeoutError``); ``submit(job)`` starts
    awaiting one and returns its future; ``stop()`` cancels what still runs and ends the loop
    (again: nothing)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def submit(self, job: Awaitable[T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(_awaited(job), self._loop)

    def run(self, job: Awaitable[T], timeout: float) -> T:
        future = self.submit(job)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()  # nothing keeps running on the loop after its caller gave up
            raise

    @property
    def stopped(self) -> bool:
        return self._loop.is_closed()

    def stop(self) -> None:
        if self._loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self.run(self._cancel_all(), 5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _cancel_all(self) -> None:
        """Cancel what still runs on the loop (and wait for it), so that nothing is
        destroyed pending."""
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._loop.shutdown_asyncgens()
