"""The WebSocket endpoint: the request's task reads; a writer task drains a bounded outbox.

The reader hands each frame to the connection's :class:`Session`. Everything sent goes through
a bounded outbox, so a slow client only ever slows itself: when its outbox overflows it is
disconnected (close 4002) and the room never waits for it.

The writer lives as long as the connection. Starting it only while there is something to
send saves ~1.3 KB per idle connection but cost ~10% of relay throughput (a task per burst);
measured in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import TYPE_CHECKING, Final

from starlette.websockets import WebSocket, WebSocketDisconnect

from salon.core.session import Session
from salon.protocol import CloseCode, Outgoing

if TYPE_CHECKING:
    from salon.server.state import ServerState

log = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS: Final = 2.0
"""How long queued messages and the close frame may wait behind a full socket before the
connection is dropped without them."""


class Connection:
    """A :class:`~salon.core.session.Transport` over one accepted WebSocket."""

    def __init__(self, ws: WebSocket, outbox_limit: int, now: float) -> None:
        self.ws = ws
        self.session: Session | None = None
        self.opened_at = now
        self.heard_at = now
        self.pinged = False
        self._outbox: deque[Outgoing] = deque()
        self._limit = outbox_limit
        self._wake = asyncio.Event()
        self._close: tuple[CloseCode, str] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._abort: asyncio.TimerHandle | None = None
        self._ended = False  # we stopped the reader ourselves (peer gone or not reading)

    @property
    def closing(self) -> bool:
        return self._close is not None

    def send(self, out: Outgoing) -> None:
        if self._close is not None:
            return
        if len(self._outbox) >= self._limit:
            self._outbox.clear()
            self.close(CloseCode.SLOW_CONSUMER, "outbox overflow: messages not read in time")
            return
        self._outbox.append(out)
        self._wake.set()

    def close(self, code: CloseCode, reason: str) -> None:
        """Send what is queued, then the close frame; a peer that does not take them within
        the grace period (it is not reading) is dropped without them."""
        if self._close is None:
            self._close = (code, reason)
            self._wake.set()
            loop = asyncio.get_running_loop()
            self._abort = loop.call_later(CLOSE_GRACE_SECONDS, self._drop)

    async def _write(self) -> None:
        """Drain the outbox in order; once closing, send the close frame."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._outbox:
                    await self.ws.send_text(self._outbox.popleft().text)
                if self._close is not None:
                    code, reason = self._close
                    await self.ws.close(code, reason)
                    self._stop_reader()
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._stop_reader()  # the peer is gone (uvicorn's ClientDisconnected is an OSError)

    def _drop(self) -> None:
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        self._stop_reader()

    def _stop_reader(self) -> None:
        self._ended = True
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()

    async def run(self, session: Session, state: ServerState) -> None:
        """Read frames until the peer leaves or we close; always leaves the hub tidy."""
        self.session = session
        self._reader = asyncio.current_task()
        self._writer = asyncio.create_task(self._write())
        state.connections.add(self)
        try:
            await self._read_loop(session, state)
        except asyncio.CancelledError:
            # Cancelled by our own writer or close deadline, not by a server shutdown.
            if not self._ended:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            self._reader = None  # reading is over: nothing may cancel this task from here
            state.connections.discard(self)
            session.closed()
            self.close(CloseCode.NORMAL, "")
            if self._writer is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._writer
            if self._abort is not None:
                self._abort.cancel()

    async def _read_loop(self, session: Session, state: ServerState) -> None:
        clock = state.clock
        max_bytes = state.settings.limits.max_frame_bytes
        while not self.closing:
            event = await self.ws.receive()
            if event["type"] == "websocket.disconnect":
                return
            self.heard_at = clock.monotonic()
            self.pinged = False
            text = event.get("text")
            frame: str | bytes = text if text is not None else event.get("bytes") or b""
            # The WebSocket layer enforces this too (uvicorn's ws_max_size); checked here as
            # well so the limit holds under any ASGI server. len() of str counts characters,
            # which is never more than its UTF-8 bytes.
            if len(frame) > max_bytes:
                self.close(CloseCode.MESSAGE_TOO_BIG, "frame too big")
                return
            await session.receive(frame)
