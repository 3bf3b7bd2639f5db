"""Requests and their answers over the client's one connection (docs/PROTOCOL.md §2.6):
each request carries a ``ref``; the message that completes it, or the ``error`` naming that
``ref``, answers it. :class:`Exchange` is the base of :class:`salon.client.Client`.
"""

from __future__ import annotations

import itertools
from typing import Final

from pydantic import BaseModel

from salon.client.connection import Connection, encode
from salon.client.errors import ClientError, ConnectionLost, ServerError
from salon.client.events import Dispatcher, Subscription
from salon.protocol.messages import Error, Ping, ServerPong

REQUEST_SECONDS: Final = 30.0  # the longest a request waits for its answer


def error_for(message: BaseModel, refs: set[int]) -> bool:
    """Whether ``message`` is the server's ``error`` for one of ``refs``."""
    return isinstance(message, Error) and message.ref in refs


def _raise(error: Error) -> None:
    raise ServerError(str(error.code), error.message, error.ref)


class Exchange:
    """The connection (once :meth:`salon.client.Client.connect` opened it), the handlers
    and subscriptions (:class:`~salon.client.events.Dispatcher`), and the next ``ref``.
    :attr:`lost` is set when the connection ended for good."""

    def __init__(self) -> None:
        self.lost: ConnectionLost | None = None
        self._connection: Connection | None = None
        self._events = Dispatcher()
        self._refs = itertools.count(1)
        self._closing = False

    def _connected(self) -> Connection:
        if self.lost is not None:
            raise self.lost
        if self._connection is None:
            raise ClientError("connect() first")
        return self._connection

    def _send(self, message: BaseModel) -> None:
        """Queue ``message``. :class:`ClientError` for a frame over the server's
        ``max_frame_bytes`` (``welcome.limits``, §7): sent, it would close the connection
        (1009), and every resume would send it again."""
        connection = self._connected()
        frame = encode(message)
        welcome = connection.welcome
        most = welcome.limits.max_frame_bytes if welcome is not None else None
        # At most 4 UTF-8 bytes a character: only a long frame is counted in bytes.
        if most is not None and len(frame) * 4 > most and (size := len(frame.encode())) > most:
            kind = getattr(message, "type", type(message).__name__)
            raise ClientError(
                f"a {kind} of {size} bytes is over the server's max_frame_bytes ({most}): not sent"
            )
        connection.send(frame)

    async def _answer(self, subscription: Subscription, limit: float | None) -> BaseModel:
        message = await subscription.next(limit)
        if isinstance(message, Error):
            _raise(message)
        return message

    async def _barrier(self, message: BaseModel, ref: int) -> None:
        """Send ``message`` (carrying ``ref``) and a ``ping``: the server handles one
        connection's messages in order (§2.6), so the ``pong`` comes after any ``error``."""
        pong_ref = next(self._refs)
        refs = {ref}

        def match(m: BaseModel) -> bool:
            return error_for(m, refs) or (isinstance(m, ServerPong) and m.ref == pong_ref)

        with self._events.subscribe(match) as answers:
            self._send(message)
            self._send(Ping(type="ping", ref=pong_ref))
            await self._answer(answers, REQUEST_SECONDS)
