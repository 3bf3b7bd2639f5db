"""Delivering server messages inside the SDK: to requests waiting for an answer
(:class:`Subscription`), and to the application's handlers (:class:`Dispatcher`).

The reader task never runs application code: it puts each message into every matching
subscription and queues the handlers, which a task of their own runs one at a time, in order
of arrival. So a handler may await the client (``await client.accept(call)`` inside an
``IncomingCall`` handler) without stopping the reader that brings the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from salon.client.errors import ConnectionLost

logger = logging.getLogger("salon.client")

Callback = Callable[..., Awaitable[None] | None]


class Subscription:
    """The messages that match ``match``, from its creation until :meth:`close`."""

    def __init__(self, owner: Dispatcher, match: Callable[[BaseModel], bool]) -> None:
        self._owner = owner
        self._match = match
        self._queue: asyncio.Queue[BaseModel | ConnectionLost] = asyncio.Queue()

    def offer(self, message: BaseModel) -> None:
        if self._match(message):
            self._queue.put_nowait(message)

    def fail(self, error: ConnectionLost) -> None:
        self._queue.put_nowait(error)

    async def next(self, limit: float | None) -> BaseModel:
        """The next matching message; ``TimeoutError`` after ``limit`` seconds (``None``:
        no limit), :class:`ConnectionLost` when the connection ended for good."""
        async with asyncio.timeout(limit):
            item = await self._queue.get()
        if isinstance(item, ConnectionLost):
            self._queue.put_nowait(item)  # every later call fails the same way
            raise item
        return item

    def close(self) -> None:
        self._owner.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Dispatcher:
    """Subscriptions and the application's handlers, with the task that runs the handlers."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._handlers: list[tuple[type[BaseModel], Callback]] = []
        self._jobs: asyncio.Queue[tuple[Callback, tuple[Any, ...]] | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._lost: ConnectionLost | None = None

    def subscribe(self, match: Callable[[BaseModel], bool]) -> Subscription:
        subscription = Subscription(self, match)
        if self._lost is not None:
            subscription.fail(self._lost)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with contextlib.suppress(ValueError):
            self._subscriptions.remove(subscription)

    def add_handler(self, kind: type[BaseModel], handler: Callback) -> None:
        self._handlers.append((kind, handler))

    def deliver(self, message: BaseModel, *, to_handlers: bool = True) -> None:
        """Give ``message`` to the matching subscriptions now, and queue its handlers."""
        for subscription in list(self._subscriptions):
            subscription.offer(message)
        if to_handlers:
            for kind, handler in self._handlers:
                if isinstance(message, kind):
                    self.call_soon(handler, message)

    def call_soon(self, callback: Callback, *args: Any) -> None:
        """Queue ``callback(*args)`` after the handlers already queued."""
        self._jobs.put_nowait((callback, args))

    def fail(self, error: ConnectionLost) -> None:
        """The connection ended for good: every subscription, now and later, raises."""
        self._lost = error
        for subscription in list(self._subscriptions):
            subscription.fail(error)

    def running_here(self) -> bool:
        """Whether the caller runs in the handlers' task (inside a handler)."""
        return self._task is not None and self._task is asyncio.current_task()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="salon client handlers")

    async def stop(self, limit: float = 10) -> None:
        """Run what is queued, then stop. Called from a handler, it returns at once and the
        task stops after that handler."""
        self._jobs.put_nowait(None)
        task = self._task
        if task is None or task is asyncio.current_task():
            return
        try:
            async with asyncio.timeout(limit):
                await asyncio.shield(task)
        except TimeoutError:
            logger.warning("handlers still running after %s s: cancelled", limit)
            task.cancel()

    async def _run(self) -> None:
        while True:
            job = await self._jobs.get()
            if job is None:
                return
            callback, args = job
            try:
                result = callback(*args)
                if inspect.iscoroutine(result):  # a task or future it started runs on alone
                    await result
            except Exception:
                logger.exception("a handler of the Salon client failed")
