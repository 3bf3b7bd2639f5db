"""Deadlines for the bytes that come before a WebSocket: the TLS handshake and the HTTP
request, head and body (the slow-loris defence; docs/PROTOCOL.md §1.1, docs/DEPLOY.md "Deadlines and
file descriptors").

uvicorn gives neither: it calls ``loop.create_server(..., ssl=...)`` without an
``ssl_handshake_timeout`` (so the loop's default, 60 s, applies), and its HTTP protocol has
no deadline for a request head that trickles in (its keep-alive timer is cancelled by the
first byte of the next request). Two small subclasses add them:

- :class:`DeadlineLoop`, a uvloop loop whose ``create_server`` fills in
  ``ssl_handshake_timeout`` (the asyncio parameter, counted from TCP accept to the end of
  the TLS handshake) when the caller gave none;
- :class:`RequestDeadline`, uvicorn's httptools protocol with a timer armed when the
  connection is made (after TLS) and again when a response ends on a keep-alive
  connection, and disarmed when the request (RFC 9112: request line, header fields and the
  body, if any) is complete, or when its head asks for the WebSocket upgrade. When it fires
  the connection is aborted: nothing is owed to a client that has not finished asking.

Both are pinned by tests/integration/test_slowloris.py against the real server.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


class DeadlineLoop(uvloop.Loop):
    """uvloop's loop, with a TLS handshake deadline for every server it creates.

    ``tls_handshake_seconds`` counts from the TCP accept: a client that sends nothing, or
    part of a ClientHello, is aborted when it runs out (RFC 8446 leaves the deadline to the
    server). uvloop logs such an abort at DEBUG only. It also bounds the TLS closing
    handshake (``ssl_shutdown_timeout``).
    """

    def __init__(self, tls_handshake_seconds: float) -> None:
        super().__init__()
        self.tls_handshake_seconds = tls_handshake_seconds

    async def create_server(  # type: ignore[override]  # forwards all of asyncio's arguments
        self, protocol_factory: Callable[[], asyncio.BaseProtocol], *args: Any, **kwargs: Any
    ) -> asyncio.AbstractServer:
        if kwargs.get("ssl") is not None:
            # The closing handshake too: a peer that never answers our close_notify is cut
            # after this long, not the loop's default 30 s.
            for deadline in ("ssl_handshake_timeout", "ssl_shutdown_timeout"):
                if kwargs.get(deadline) is None:
                    kwargs[deadline] = self.tls_handshake_seconds
        return await super().create_server(protocol_factory, *args, **kwargs)


class SalonConfig(uvicorn.Config):
    """uvicorn's Config, carrying Salon's two transport deadlines (seconds, > 0).

    ``get_loop_factory`` is what ``uvicorn.Server.run`` calls to make its loop (uvicorn
    0.54); here it always makes a :class:`DeadlineLoop`, whatever ``loop`` says (uvloop is a
    dependency). The TLS tests of tests/integration/test_slowloris.py fail without it.
    """

    def __init__(
        self, *args: Any, tls_handshake_seconds: float, request_seconds: float, **kw: Any
    ) -> None:
        super().__init__(*args, **kw)
        self.tls_handshake_seconds = tls_handshake_seconds
        self.request_seconds = request_seconds

    def get_loop_factory(self) -> Callable[[], asyncio.AbstractEventLoop]:
        seconds = self.tls_handshake_seconds
        return lambda: DeadlineLoop(seconds)


class RequestDeadline(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1 protocol, with a deadline for each request: its head
    and its body (Salon's bodies are small, ``max_body_bytes``: a body that trickles in is a
    slow-loris too, and the REST body check reads it before routing).

    Armed when the connection is made (for TLS: once the handshake is done) and when a
    response completes on a keep-alive connection; disarmed when the request is complete, or
    when its head asks for the WebSocket upgrade (the ``hello`` deadline follows), so a long
    response is not cut. uvicorn's own ``timeout_keep_alive`` still ends a keep-alive
    connection that sends nothing at all.

    This leans on uvicorn 0.54's httptools protocol, which is not a public API: its parser
    callbacks ``on_headers_complete``, ``on_message_complete`` and ``on_response_complete``,
    ``_should_upgrade`` and its ``timeout_keep_alive_task`` attribute.
    tests/integration/test_slowloris.py fails if any of them changes meaning.
    """

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        seconds = config.request_seconds if isinstance(config, SalonConfig) else 10.0
        self._request_seconds = seconds
        self._request_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if not self.loop.is_closed():  # a TLS handshake may complete while the server stops
            self._arm_request_deadline()

    def on_headers_complete(self) -> None:
        if self.parser.should_upgrade() and self._should_upgrade():
            self._disarm_request_deadline()  # a WebSocket: no body; its own deadlines follow
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm_request_deadline()  # the whole request is in
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn armed its keep-alive timer: the connection now waits for a next request.
        if self.timeout_keep_alive_task is not None:
            self._arm_request_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_request_deadline()
        super().connection_lost(exc)

    def _arm_request_deadline(self) -> None:
        self._disarm_request_deadline()
        self._request_deadline = self.loop.call_later(self._request_seconds, self._request_too_slow)

    def _disarm_request_deadline(self) -> None:
        if self._request_deadline is not None:
            self._request_deadline.cancel()
            self._request_deadline = None

    def _request_too_slow(self) -> None:
        self._request_deadline = None
        if not self.transport.is_closing():
            log.debug("request not complete in %.1f s: connection aborted", self._request_seconds)
            self.transport.abort()
