"""The WebSocket endpoint: the request's task reads; a writer task drains a bounded outbox.

The reader hands each frame to the connection's :class:`Session`. Everything sent goes through
a bounded outbox, so a slow client only ever slows itself: when its outbox overflows it is
disconnected (close 4002) and the room never waits for it.

The writer lives as long as the connection. Starting it only while there is something to
send saves ~1.3 KB per idle connection but cost ~10% of relay throughput (a task per burst);
measured in docs/BENCHMARKS.md.

A connection owns its deadlines (handshake, ping on silence, dead peer): :meth:`Connection.tick`
checks them when the server's sweep asks. How it ended decides what happens to the member's
place: a close frame 1000 or 1001 from the client is a goodbye; anything else (no close frame,
a close the server decided) keeps the place for a resume, with what was still queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Final

from starlette.websockets import WebSocket, WebSocketDisconnect

from salon.core.clock import Clock
from salon.core.session import Session
from salon.core.settings import LimitSettings
from salon.protocol import CloseCode, Outgoing

log = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS: Final = 2.0
"""How long queued messages and the close frame may wait behind a full socket before the
connection is dropped without them."""

GOODBYE_CODES: Final = frozenset({1000, 1001})
"""Close codes with which a client says it is leaving (RFC 6455 7.4.1: normal, going away)."""


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
        self._goodbye = False  # the client closed with 1000 or 1001
        self._dropped = False  # messages were discarded: outbox overflow, or sent after close

    @property
    def closing(self) -> bool:
        return self._close is not None

    def send(self, out: Outgoing) -> None:
        if self._close is not None:
            self._dropped = True  # the member's place learns it missed messages
            return
        if len(self._outbox) >= self._limit:
            self._dropped = True
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
                    # Taken off only once written: a message a dying socket refused is still
                    # in the outbox for the place to keep (see ``run``). The outbox may have
                    # been emptied meanwhile (overflow, or handed to the place).
                    out = self._outbox[0]
                    await self.ws.send_text(out.text)
                    if self._outbox and self._outbox[0] is out:
                        self._outbox.popleft()
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

    def tick(self, now: float, limits: LimitSettings) -> None:
        """Check this connection's deadlines: no hello in time (4000), silence (a ping),
        nothing heard at all (4004)."""
        session = self.session
        if session is None or self.closing:
            return
        if session.version is None:
            if now - self.opened_at >= limits.handshake_seconds:
                self.close(CloseCode.HANDSHAKE_TIMEOUT, "no hello in time")
            return
        silent = now - self.heard_at
        if silent >= limits.dead_after_seconds:
            self.close(CloseCode.DEAD_PEER, "nothing heard in time")
        elif silent >= limits.ping_after_seconds and not self.pinged:
            self.pinged = True
            session.silence()

    async def run(
        self,
        session: Session,
        clock: Clock,
        max_frame_bytes: int,
        opened: Callable[[Connection], None],
        ended: Callable[[Connection], None],
    ) -> None:
        """Read frames until the peer leaves or we close; always leaves the hub tidy.
        ``opened`` and ``ended`` tell the server's registry."""
        self.session = session
        self._reader = asyncio.current_task()
        self._writer = asyncio.create_task(self._write())
        opened(self)
        try:
            await self._read_loop(session, clock, max_frame_bytes)
        except asyncio.CancelledError:
            # Cancelled by our own writer or close deadline, not by a server shutdown.
            if not self._ended:
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            self._reader = None  # reading is over: nothing may cancel this task from here
            ended(self)
            if self._goodbye:
                session.closed()
            elif self.closing:
                # Our own close: the writer still sends what is queued before the close frame.
                session.closed(goodbye=False, dropped=self._dropped)
            else:
                # The peer vanished: what was not written yet is the place's to keep, in order.
                unsent = list(self._outbox)
                self._outbox.clear()
                session.closed(goodbye=False, unsent=unsent)
            self.close(CloseCode.NORMAL, "")
            if self._writer is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._writer
            if self._abort is not None:
                self._abort.cancel()

    async def _read_loop(self, session: Session, clock: Clock, max_bytes: int) -> None:
        while not self.closing:
            event = await self.ws.receive()
            if event["type"] == "websocket.disconnect":
                # Only a close frame from the client carries 1000/1001; a lost connection is
                # reported as 1005/1006, the server's own shutdown as 1012.
                self._goodbye = event.get("code") in GOODBYE_CODES
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
