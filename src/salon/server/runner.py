"""The uvicorn server for a Settings object: what ``salon serve`` runs and the tests start."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import signal
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import Request
from websockets.protocol import State

from salon.core.clock import Clock
from salon.core.settings import Settings
from salon.server.app import create_app
from salon.server.connection import CLOSE_CODE_KEY, FRAMES_KEY
from salon.server.logs import scrub_uvicorn
from salon.server.process import HeapTidy, freeze_startup_objects
from salon.server.state import ServerState
from salon.server.tls import ensure_self_signed
from salon.server.transport import RequestDeadline, SalonConfig

log = logging.getLogger(__name__)


class SansIOProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, made safe to shut down and quiet on refusals,
    and offering the connection a way to write several frames at once (:meth:`write_texts`).

    uvicorn 0.54's ``shutdown()`` sends close 1012 unless *it* sent a close; when the client
    closed first, the websockets state is already CLOSING, ``send_close`` raises InvalidState
    and the server's graceful shutdown aborts before our lifespan cleanup. Only send the
    close frame on a connection that is still open.
    """

    def shutdown(self) -> None:
        if self.handshake_complete and not self.close_sent and self.conn.state is not State.OPEN:
            self.stop_keepalive()
            self.transport.close()
            return
        super().shutdown()

    def handle_connect(self, event: Request) -> None:
        """Also offer this protocol as the connection's :class:`~salon.server.connection.
        FrameWriter` (the ``salon.frames`` scope extension) once the upgrade is accepted."""
        super().handle_connect(event)
        if self.handshake_initiated and not self.close_sent:
            self.scope["extensions"][FRAMES_KEY] = self  # type: ignore[assignment]

    async def ready(self) -> None:
        await self.writable.wait()

    def write_texts(self, texts: list[str]) -> None:
        """The frames of ``texts`` in one ``transport.write`` (see :class:`~salon.server.
        connection.FrameWriter`); what ``websocket.send`` checks, checked once."""
        if self.disconnected or self.close_sent or not self.handshake_complete:
            raise ClientDisconnected()
        conn = self.conn
        if conn.state is not State.OPEN:
            raise ClientDisconnected()
        for text in texts:
            conn.send_text(text.encode())
        self.transport.write(b"".join(conn.data_to_send()))

    def handle_close(self, event: Any) -> None:
        """Also note the client's close code in the ASGI scope (:data:`~salon.server.
        connection.CLOSE_CODE_KEY`): a write that fails because that close frame came
        meanwhile still tells a goodbye (1000/1001) from a loss."""
        if not self.close_sent and self.conn.close_rcvd is not None:
            self.scope[CLOSE_CODE_KEY] = self.conn.close_rcvd.code  # type: ignore[typeddict-unknown-key]
        super().handle_close(event)

    async def send(self, message: Any) -> None:
        """A refused handshake (the ASGI ``websocket.http.response`` extension: Salon's 503
        while draining) is a finished HTTP exchange, but uvicorn 0.54 never marks it so and
        logs "ASGI callable returned without completing handshake" at ERROR for each one.
        Mark it finished once the response's last body part is written."""
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True


class HandledProtocolErrors(logging.Filter):
    """Records of trouble that is handled, and that any client can cause at will, kept at INFO
    without a traceback (one per connection in the log at WARNING or ERROR is log noise a
    stranger drives):

    - uvicorn logs a text frame that is not UTF-8 at ERROR with a traceback, though it handles
      it as RFC 6455 8.1 asks (close 1007);
    - asyncio logs "SSL connection is closed" at WARNING for writes into a TLS connection the
      client has closed, which the connection's writer makes until it learns of the close
      (and then keeps what it could not send for the member's resume)."""

    MESSAGES = frozenset(
        {"Invalid UTF-8 sequence received from client.", "SSL connection is closed"}
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in self.MESSAGES:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.exc_info, record.exc_text = None, None
        return True


def _quiet_handled_protocol_errors() -> None:
    for name in ("uvicorn.error", "asyncio"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, HandledProtocolErrors) for f in logger.filters):
            logger.addFilter(HandledProtocolErrors())


class DrainingServer(uvicorn.Server):
    """uvicorn, with a drain on the first SIGTERM (docs/PROTOCOL.md §2.9).

    The first SIGTERM makes the server not ready and refuses new sockets; members are told
    (``server_draining``) and closed with 1012, spread out; uvicorn's own shutdown starts
    when none is left or at ``drain_seconds``. A second SIGTERM, or SIGINT, exits at once.

    It also keeps the memory of closed connections from lingering (salon.server.process):
    what exists once it listens is frozen out of the garbage collector, and a
    :class:`HeapTidy` is told the number of open connections once a second.
    """

    def __init__(self, config: uvicorn.Config, app: FastAPI, parent: int | None = None) -> None:
        super().__init__(config)
        self._app = app
        self._drain: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._heap = HeapTidy()
        self._parent = parent  # ``serve --workers``: the supervisor's pid; None: none

    async def startup(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)
        freeze_startup_objects()

    async def on_tick(self, counter: int) -> bool:
        if counter % 10 == 0:  # uvicorn ticks every 0.1 s
            self._heap.observe(len(self.server_state.connections))
            if self._parent is not None and os.getppid() != self._parent:
                # The supervisor is gone (killed outright): drain as on its SIGTERM, once.
                log.warning("the supervising salon serve (pid %d) is gone: draining", self._parent)
                self._parent = None
                self.handle_exit(signal.SIGTERM, None)
        return await super().on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        state: ServerState | None = getattr(self._app.state, "salon", None)
        if sig != signal.SIGTERM or self._drain is not None or state is None or not self._loop:
            if self._drain is not None:
                self.force_exit = True  # the second signal: no more waiting
            super().handle_exit(sig, frame)
            return
        self._captured_signals.append(sig)  # re-raised after shutdown, as uvicorn does
        self._loop.call_soon_threadsafe(self._start_drain, state)

    def _start_drain(self, state: ServerState) -> None:
        # A context of its own: a signal arrives in whatever context was current, and the
        # drain's log lines are no connection's (salon.server.logs).
        drain = self._drain_then_exit(state)
        self._drain = asyncio.create_task(drain, context=contextvars.Context())

    async def _drain_then_exit(self, state: ServerState) -> None:
        try:
            await state.drain()
        finally:
            self.should_exit = True


class ConfigError(ValueError):
    """Settings that cannot be served; the message says which."""


def tls_files(settings: Settings) -> tuple[str, str] | None:
    """(cert, key) to serve with, making a self-signed pair on first start; None for --http."""
    if settings.http:
        return None
    if (settings.cert is None) != (settings.key is None):
        raise ConfigError("give both --cert and --key, or neither")
    if settings.cert is not None and settings.key is not None:
        return str(settings.cert), str(settings.key)
    cert, key = ensure_self_signed(settings.data_dir)
    return str(cert), str(key)


def uvicorn_config(settings: Settings, clock: Clock | None = None) -> uvicorn.Config:
    tls = tls_files(settings)
    ssl: dict[str, Any] = {"ssl_certfile": tls[0], "ssl_keyfile": tls[1]} if tls else {}
    config = SalonConfig(
        create_app(settings, clock),
        host=settings.host,
        port=settings.port,
        http=RequestDeadline,
        ws=SansIOProtocol,
        ws_max_size=settings.limits.max_frame_bytes,
        ws_per_message_deflate=False,  # costs 2-4x CPU and memory per connection; SDP is small
        ws_ping_interval=None,  # the protocol pings on silence itself
        proxy_headers=settings.http,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=settings.log_level,
        # uvicorn's loggers keep no handlers of their own: their records reach the root
        # logger, formatted like Salon's (salon.server.logs.configure_logging).
        log_config=None,
        server_header=False,
        tls_handshake_seconds=settings.limits.tls_handshake_seconds,
        request_seconds=settings.limits.request_seconds,
        **ssl,
    )
    _quiet_handled_protocol_errors()  # after the Config set uvicorn's logging up
    scrub_uvicorn()  # after the Config set uvicorn's log levels
    return config


def serving(
    settings: Settings, clock: Clock | None = None, parent: int | None = None
) -> DrainingServer:
    """The server ``salon serve`` runs: uvicorn with Salon's app and its drain. ``parent``:
    the pid of the ``salon serve --workers`` that started this process; it drains by itself
    when that one is gone."""
    config = uvicorn_config(settings, clock)
    assert isinstance(config.app, FastAPI)
    return DrainingServer(config, config.app, parent)
