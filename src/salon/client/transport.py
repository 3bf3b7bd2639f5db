"""The one seam between the SDK and the network: a text-frame transport.

:class:`Client` talks to the server through a :class:`Transport` made by a :data:`Connector`.
The default connector opens a real WebSocket (RFC 6455) with ``websockets``; tests pass an
in-memory one (``tests/unit/test_client_*.py``).
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Final, Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus


class TransportClosed(Exception):
    """The transport ended. ``code`` is the close code received (RFC 6455 §7.1.5), 1006 when
    the connection ended without a close frame, ``None`` when it never opened."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"closed with {code}: {reason}" if reason else f"closed with {code}")
        self.code = code
        self.reason = reason


class ConnectFailed(Exception):
    """The transport could not be opened: no route, refused, TLS failure, or an HTTP status
    instead of the upgrade (403, 429, 503, §1.1). ``retry_after`` is the server's
    ``Retry-After`` in seconds when it sent one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Transport(Protocol):
    """One connection carrying text frames, each one JSON message (PROTOCOL.md §1.1)."""

    async def send(self, text: str) -> None:
        """Send one text frame; :class:`TransportClosed` when the connection is gone."""

    async def recv(self) -> str:
        """The next text frame; :class:`TransportClosed` when the connection ended."""

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` (RFC 6455 §7.4); returns once closed. Never raises."""

    def abort(self) -> None:
        """Drop the connection at once without a close frame (the server sees a loss, §2.7)."""


Connector = Callable[[str, "ssl.SSLContext | None"], Awaitable[Transport]]
"""``connector(url, ssl_context)`` opens a transport to ``url`` (``wss://host:port/ws``), or
raises :class:`ConnectFailed`."""


class WebSocketTransport:
    """A :class:`Transport` over a ``websockets`` client connection."""

    def __init__(self, connection: ClientConnection) -> None:
        self._connection = connection

    async def send(self, text: str) -> None:
        try:
            await self._connection.send(text)
        except ConnectionClosed as closed:
            raise _closed(closed) from None

    async def recv(self) -> str:
        while True:
            try:
                frame = await self._connection.recv()
            except ConnectionClosed as closed:
                raise _closed(closed) from None
            if isinstance(frame, str):
                return frame
            # The server sends text frames only (§1.1); a binary one is skipped.

    async def close(self, code: int = 1000, reason: str = "") -> None:
        await self._connection.close(code, reason)

    def abort(self) -> None:
        transport = self._connection.transport
        if transport is not None:
            transport.abort()


def _closed(closed: ConnectionClosed) -> TransportClosed:
    received = closed.rcvd
    if received is None:
        return TransportClosed(1006, "no close frame")
    return TransportClosed(received.code, received.reason)


async def connect_websocket(url: str, ssl_context: ssl.SSLContext | None) -> Transport:
    """Open ``url`` with ``websockets``: no compression (the server negotiates none, §1.1),
    no WebSocket-level pings (liveness is the protocol's own, §2.3), frames up to 1 MiB
    (the server's are far smaller), 10 s to open. Raises :class:`ConnectFailed`."""
    try:
        if url.startswith("wss:") and ssl_context is not None:
            connection = await connect(url, ssl=ssl_context, **_OPTIONS)
        else:
            connection = await connect(url, **_OPTIONS)
    except InvalidStatus as refused:
        response = refused.response
        retry = response.headers.get("Retry-After")
        seconds = (
            float(retry) if retry is not None and retry.isascii() and retry.isdigit() else None
        )
        raise ConnectFailed(f"HTTP {response.status_code} from {url}", seconds) from None
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        raise ConnectFailed(f"cannot connect to {url}: {exc}") from None
    return WebSocketTransport(connection)


_OPTIONS: Final[dict[str, Any]] = {
    "compression": None,
    "ping_interval": None,
    "open_timeout": 10.0,
    "close_timeout": 2.0,
    "max_size": 2**20,
}
