"""The WebSocket endpoint: the request's task reads; a writer task drains a bounded outbox.

The reader hands each frame to the connection's :class:`Session` (with several server
processes, to its :class:`~salon.server.front.Front`, which may pipe it to the process holding
the member). Everything sent goes through a bounded outbox, so a slow client only ever slows
itself: when its outbox overflows it is disconnected (close 4002) and the room never waits
for it.

Under Salon's own WebSocket protocol (:class:`salon.server.runner.SansIOProtocol`) the writer
hands everything queued to the socket in one write (a burst: one ``send(2)`` instead of one per
message through ASGI's ``websocket.send``); measured in docs/BENCHMARKS.md. The writer lives as
long as the connection. Starting it only while there is something to
send saves ~1.3 KB per idle connection but cost ~10% of relay throughput (a task per burst);
measured in docs/BENCHMARKS.md.

A connection owns its deadlines (handshake, ping on silence, dead peer): :meth:`Connection.tick`
checks them when the server's sweep asks. How it ended decides what happens to the member's
place: a close frame 1000 or 1001 from the client is a goodbye; anything else (no close frame,
a close the server decided) keeps the place for a resume, with what was still queued.

A connection reports to the server's :class:`~salon.server.metrics.Metrics`: how long each
relayed ``signal`` took from its frame's arrival to being written here, how long the
handshake took until ``welcome`` was written, and how it closed. It also names itself and its
member and room to the log (:mod:`salon.server.logs`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import Final, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect

from salon.core.clock import Clock
from salon.core.hub import Hub
from salon.core.place import Place
from salon.core.settings import LimitSettings
from salon.protocol import CloseCode, Outgoing
from salon.protocol.messages import SignalRelay, Welcome
from salon.server.logs import CONN, MEMBER, ROOM, new_id
from salon.server.metrics import Metrics

log = logging.getLogger(__name__)

CLOSE_GRACE_SECONDS: Final = 2.0
"""How long queued messages and the close frame may wait behind a full socket before the
connection is dropped without them."""

CLOSE_CODE_KEY: Final = "salon.close_code"
"""Where in the ASGI scope the WebSocket protocol notes the code of the client's close frame
as it arrives (:class:`salon.server.runner.SansIOProtocol`): a write that fails because the
client closed meanwhile reads it there, since the reader is stopped before it could read the
close itself."""

GOODBYE_CODES: Final = frozenset({1000, 1001})
"""Close codes with which a client says it is leaving (RFC 6455 7.4.1: normal, going away)."""

ABNORMAL_CLOSURE: Final = 1006
"""The code of a connection that ended without a close frame (RFC 6455 7.1.5)."""

IDLE_REASON: Final = "no room joined in time"
"""The reason of the close (4000) of a greeted member idle for ``idle_greeted_seconds``:
here, or by its home when the member is piped (:meth:`salon.server.pipes.Pipes.tick`)."""

_READER: ContextVar[Connection | None] = ContextVar("salon_reader", default=None)
"""The connection whose frame is being handled in this context: a ``signal`` relayed
meanwhile came in on it (at its ``arrived`` time)."""


FRAMES_KEY: Final = "salon.frames"
"""The ASGI scope extension under which the WebSocket protocol offers its own
:class:`FrameWriter` (:class:`salon.server.runner.SansIOProtocol`); without it a connection
writes one ``websocket.send`` at a time."""

BURST_MESSAGES: Final = 64
BURST_CHARS: Final = 256 * 1024
"""A burst is at most ``BURST_MESSAGES`` messages, and ends with the message that reaches
``BURST_CHARS`` characters (one message may be larger alone)."""


class FrameWriter(Protocol):
    """Text frames written straight into the socket, several in one write (one ``send(2)``
    for a burst instead of one ``websocket.send`` each), bypassing ASGI's per-message path."""

    async def ready(self) -> None:
        """Wait while the transport has paused writing (its buffer went over the high-water
        mark and has not drained below the low-water mark yet)."""

    def write_texts(self, texts: list[str]) -> None:
        """Frame each text as one WebSocket text message (RFC 6455 5.6) and write them all at
        once. Raises, writing nothing, when the connection is closing or gone:
        :class:`OSError` (uvicorn's ``ClientDisconnected``), or :class:`RuntimeError` from a
        transport already closed."""


class Receiver(Protocol):
    """What a connection hands its frames to: the member's :class:`~salon.core.session.Session`
    here, or, when several processes share the deployment, the connection's
    :class:`~salon.server.front.Front` (which pipes them to the process holding the member)."""

    @property
    def hub(self) -> Hub: ...

    @property
    def version(self) -> int | None:
        """The protocol version once greeted, else None."""

    @property
    def place(self) -> Place | None:
        """The member's place when it lives in this process, else None."""

    async def receive(self, frame: str | bytes) -> None:
        """Handle one frame; never raises."""

    def closed(
        self,
        *,
        goodbye: bool = True,
        unsent: list[Outgoing] | None = None,
        dropped: bool = False,
    ) -> None:
        """The connection is gone (see :meth:`~salon.core.session.Session.closed`)."""

    def silence(self) -> None:
        """Nothing heard for a while: ask for a sign of life."""


class Connection:
    """A :class:`~salon.core.session.Transport` over one accepted WebSocket."""

    def __init__(
        self,
        ws: WebSocket,
        outbox_limit: int,
        now: float,
        metrics: Metrics | None = None,
        upgraded_at: float | None = None,
    ) -> None:
        """``now``: the clock's monotonic time; ``metrics``: where to report (None: nowhere);
        ``upgraded_at``: ``time.perf_counter()`` when the upgrade request reached the app."""
        self.id = new_id()  # in every log line about this connection
        self.ws = ws
        self._frames: FrameWriter | None = ws.scope.get("extensions", {}).get(FRAMES_KEY)
        self.session: Receiver | None = None
        self.opened_at = now
        self.heard_at = now
        self.pinged = False
        self.idle_since: float | None = None  # greeted and unoccupied since (Hub.occupied)
        self._outbox: deque[Outgoing] = deque()
        self._writing: Outgoing | None = None  # the message being written, if any
        self._unsent: list[Outgoing] = []  # what a close took back for the member's place
        self._limit = outbox_limit
        self._wake = asyncio.Event()
        self._close: tuple[CloseCode, str] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._abort: asyncio.TimerHandle | None = None
        self._ended = False  # we stopped the reader ourselves (peer gone or not reading)
        self._goodbye = False  # the client closed with 1000 or 1001
        self._dropped = False  # messages were discarded: outbox overflow, or sent after close
        self._peer_code: int | None = None  # the close code the connection ended with
        # Metrics: the arrival (perf_counter) of each signal relay in the outbox, in order
        # (NaN: not timed: kept while away, or sent outside a frame), and the handshake's start
        # until welcome is written.
        self._metrics = metrics
        self._stamps: deque[float] = deque()
        self._upgraded_at = upgraded_at if metrics is not None else None
        self.arrived = 0.0  # perf_counter when the frame being handled arrived
        self._place: Place | None = None  # the member and room the log was last told
        self._room: str | None = None

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
            self._stamps.clear()
            self.close(CloseCode.SLOW_CONSUMER, "outbox overflow: messages not read in time")
            return
        self._outbox.append(out)
        if self._metrics is not None and type(out.message) is SignalRelay:
            # A relay comes from another connection's frame; one kept while this member was
            # away arrives with its own resume (this connection's frame): not timed.
            sender = _READER.get()
            if sender is None or sender is self:
                self._stamps.append(math.nan)
            else:
                self._stamps.append(sender.arrived)
        self._wake.set()

    def close(self, code: CloseCode, reason: str) -> None:
        """Send what is queued, then the close frame; a peer that does not take them within
        the grace period (it is not reading) is dropped without them."""
        if self._close is None:
            self._close = (code, reason)
            self._wake.set()
            loop = asyncio.get_running_loop()
            self._abort = loop.call_later(CLOSE_GRACE_SECONDS, self._drop)

    def replace(self, code: CloseCode, reason: str) -> tuple[list[Outgoing], bool]:
        """A newer connection took the member's place (:meth:`Transport.replace`): close
        with ``code`` and give up every queued message but one being written (it may be half
        in the socket already). Returns them, oldest first, and whether messages were
        discarded (an overflow, or sends after a close)."""
        unsent = self._unsent + self._take_unsent()  # a dead peer's queue, taken already
        self._unsent = []
        dropped = self._dropped
        self.close(code, reason)
        return unsent, dropped

    def _take_unsent(self) -> list[Outgoing]:
        """Take every queued message but one being written off the outbox, in order."""
        begun = 1 if self._outbox and self._outbox[0] is self._writing else 0
        unsent = list(self._outbox)[begun:]
        while len(self._outbox) > begun:
            self._outbox.pop()
        while len(self._stamps) > begun:
            self._stamps.pop()
        return unsent

    async def _write(self) -> None:
        """Drain the outbox in order; once closing, send the close frame."""
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._frames is not None:
                    await self._write_bursts(self._frames)
                while self._outbox:
                    # Taken off only once written: a message a dying socket refused is still
                    # in the outbox for the place to keep (see ``run``). The outbox may have
                    # been emptied meanwhile (overflow, or handed to the place).
                    out = self._writing = self._outbox[0]
                    await self.ws.send_text(out.text)
                    self._writing = None
                    if self._outbox and self._outbox[0] is out:
                        self._outbox.popleft()
                        if self._metrics is not None:
                            self._written(out)
                if self._close is not None:
                    code, reason = self._close
                    await self.ws.close(code, reason)
                    self._stop_reader()
                    return
        except (WebSocketDisconnect, RuntimeError, OSError):
            # The peer is gone (uvicorn's ClientDisconnected is an OSError); a goodbye if its
            # close frame said so (§2.7), whichever of the two we learnt of first.
            said = self.ws.scope.get(CLOSE_CODE_KEY)
            if isinstance(said, int):
                self._peer_code = said
                self._goodbye = said in GOODBYE_CODES
            if self._close is not None:
                # Closing already: ``run`` hands the place ``_unsent`` (not the outbox, as
                # for a peer that vanished), so what the socket refused goes there, in order.
                self._unsent += self._outbox
                self._outbox.clear()
                self._stamps.clear()
            self._stop_reader()

    async def _write_bursts(self, frames: FrameWriter) -> None:
        """Drain the outbox through the WebSocket protocol's own writer: what is queued goes
        to the socket in one write, up to ``BURST_MESSAGES`` messages, and no more once
        ``BURST_CHARS`` characters are reached. Between the wait for room in the socket's
        buffer and the write nothing awaits, so a message is never half-written when a newer
        connection takes the place: the outbox holds exactly what was not handed to the
        socket yet."""
        while self._outbox:
            await frames.ready()
            outbox = self._outbox
            texts: list[str] = []
            chars = 0
            for out in outbox:  # no await until the burst is off the outbox
                texts.append(out.text)
                chars += len(out.text)
                if len(texts) == BURST_MESSAGES or chars >= BURST_CHARS:
                    break
            if not texts:
                return  # emptied while waiting (an overflow, or handed to the place)
            frames.write_texts(texts)  # raises when the peer is gone: all of it stays queued
            for _ in texts:
                out = outbox.popleft()
                if self._metrics is not None:
                    self._written(out)

    def _written(self, out: Outgoing) -> None:
        """Time what was just written: a relay since its frame arrived, the welcome since the
        upgrade request."""
        assert self._metrics is not None
        kind = type(out.message)
        if kind is SignalRelay:
            arrived = self._stamps.popleft() if self._stamps else math.nan
            if not math.isnan(arrived):
                self._metrics.relay_latency.observe(time.perf_counter() - arrived)
        elif kind is Welcome and self._upgraded_at is not None:
            self._metrics.handshake.observe(time.perf_counter() - self._upgraded_at)
            self._upgraded_at = None

    def _drop(self) -> None:
        # Not written within the grace: what was not begun is the place's to keep.
        self._unsent += self._take_unsent()
        if self._writer is not None and not self._writer.done():
            self._writer.cancel()
        self._stop_reader()

    def _stop_reader(self) -> None:
        self._ended = True
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()

    def tick(self, now: float, limits: LimitSettings) -> None:
        """Check this connection's deadlines: no hello in time (4000), greeted but idle too
        long (4000), silence (a ping), nothing heard at all (4004). For a piped member (its
        place at another process) the idle rule is its home's, which alone knows whether it
        is occupied (:meth:`salon.server.pipes.Pipes.tick`): it closes the socket through
        this front; the others hold here, where the socket is read."""
        session = self.session
        if session is None or self.closing:
            return
        if session.version is None:
            if now - self.opened_at >= limits.handshake_seconds:
                self.close(CloseCode.HANDSHAKE_TIMEOUT, "no hello in time")
            return
        if self._idle_too_long(session, now, limits.idle_greeted_seconds):
            self.close(CloseCode.HANDSHAKE_TIMEOUT, IDLE_REASON)
            return
        silent = now - self.heard_at
        if silent >= limits.dead_after_seconds:
            # Nothing queued is written to a peer that is gone: it is the place's to keep.
            self._unsent = self._take_unsent()
            self.close(CloseCode.DEAD_PEER, "nothing heard in time")
        elif silent >= limits.ping_after_seconds and not self.pinged:
            self.pinged = True
            session.silence()

    def _idle_too_long(self, session: Receiver, now: float, limit: float) -> bool:
        """Whether the greeted member has been unoccupied (in no room, lobby or call, not
        reachable, watching no presence) for ``limit`` seconds."""
        place = session.place
        if place is None or session.hub.occupied(place):
            self.idle_since = None
            return False
        if self.idle_since is None:
            self.idle_since = now
        return now - self.idle_since >= limit

    async def run(
        self,
        session: Receiver,
        clock: Clock,
        max_frame_bytes: int,
        opened: Callable[[Connection], None],
        ended: Callable[[Connection], None],
    ) -> None:
        """Read frames until the peer leaves or we close; always leaves the hub tidy.
        ``opened`` and ``ended`` tell the server's registry."""
        self.session = session
        self._reader = asyncio.current_task()
        # Set in the reader's context before the writer task copies it: both log with the id.
        CONN.set(self.id)
        _READER.set(self)
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
            self._report_close()
            if self._goodbye:
                session.closed()
            elif self.closing:
                # Our own close: the writer sends what is queued, then the close frame, or
                # gives up at the grace and leaves what it did not begin for the place (as
                # does a dead peer's close at once). The place learns it once that is over.
                try:
                    await self._writer_done()
                finally:  # even when cancelled meanwhile: the place is never left attached
                    session.closed(goodbye=False, unsent=self._unsent, dropped=self._dropped)
            else:
                # The peer vanished: what was not written yet is the place's to keep, in order.
                unsent = list(self._outbox)
                self._outbox.clear()
                self._stamps.clear()
                session.closed(goodbye=False, unsent=unsent)
            self.close(CloseCode.NORMAL, "")
            if self._writer is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await self._writer
            if self._abort is not None:
                self._abort.cancel()

    async def _writer_done(self) -> None:
        """Wait for the writer to end (the close frame written, or the grace over)."""
        writer = self._writer
        if writer is not None and not writer.done():
            await asyncio.wait({writer}, timeout=CLOSE_GRACE_SECONDS + 1)

    def _report_close(self) -> None:
        """Log and count how the connection ended: Salon's own close code, or the peer's."""
        by_server = self._close is not None
        code = self._close[0] if self._close is not None else self._peer_code or ABNORMAL_CLOSURE
        log.info("closed %d by %s", code, "server" if by_server else "client")
        if self._metrics is not None:
            self._metrics.closed(code, by_server)

    def _bind(self, place: Place | None) -> None:
        """Name the member and room in the log lines of this connection from now on."""
        if place is not self._place:
            MEMBER.set(None if place is None else place.id)
            log.debug("greeted")
        room = None if place is None else place.room
        if room != self._room:
            ROOM.set(room)
            log.debug("in room" if room is not None else "in no room")
        self._place, self._room = place, room

    async def _read_loop(self, session: Receiver, clock: Clock, max_bytes: int) -> None:
        while not self.closing:
            event = await self.ws.receive()
            if event["type"] == "websocket.disconnect":
                # Only a close frame from the client carries 1000/1001; a lost connection is
                # reported as 1005/1006, the server's own shutdown as 1012.
                self._peer_code = event.get("code")
                self._goodbye = self._peer_code in GOODBYE_CODES
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
            if self._metrics is not None:
                self.arrived = time.perf_counter()
            await session.receive(frame)
            place = session.place
            if place is not self._place or (place is not None and place.room != self._room):
                self._bind(place)
