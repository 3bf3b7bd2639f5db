"""One local track read once and handed to every peer connection (what aiortc's
``MediaRelay`` does), with a queue per connection whose length depends on the kind.

aiortc's sender reads a frame, encodes it in a worker thread, sends it, then reads the next.
A relay handle that keeps only the newest frame loses every frame that arrives meanwhile:
harmless for video (the newest picture is the one to send, and a slow connection should skip
pictures rather than fall behind), but each lost audio frame is 20 ms of silence — on a busy
machine, where the worker threads queue video encodes before the audio ones, a recorder got
only 80-88 % of the audio sent that way. So audio handles keep every frame, up to
:data:`AUDIO_QUEUE_FRAMES` (aiortc's buffered ``MediaRelay`` queue has no bound: a connection
that stops reading would hold every frame from then on); the oldest go first when it is full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any, Final, TypeAlias

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet

logger = logging.getLogger("salon.client")

AUDIO_QUEUE_FRAMES: Final = 25  # 0.5 s of 20 ms frames: what a handle holds at most
VIDEO_QUEUE_FRAMES: Final = 1  # the newest picture only

Media: TypeAlias = "Frame | Packet[Any]"


class RelayedTrack(MediaStreamTrack):
    """One connection's handle on a relayed track: the source's frames from its first
    :meth:`recv` on, at most ``limit`` of them waiting (the oldest dropped first).
    ``recv()`` raises ``MediaStreamError`` once the source ended or the handle stopped."""

    def __init__(self, fanout: _Fanout, limit: int) -> None:
        super().__init__()
        self.kind = fanout.source.kind
        self._fanout = fanout
        self._frames: deque[Media] = deque(maxlen=limit)
        self._source_ended = False
        self._arrived = asyncio.Event()

    async def recv(self) -> Media:
        self._fanout.attach(self)
        while not self._frames:
            if self._source_ended:
                self.stop()
            if self.readyState != "live":
                raise MediaStreamError
            self._arrived.clear()
            await self._arrived.wait()
        return self._frames.popleft()

    def put(self, frame: Media | None) -> None:
        """(Internal) a frame of the source, or ``None`` when it ended (the frames waiting
        are still read first)."""
        if frame is None:
            self._source_ended = True
        else:
            self._frames.append(frame)
        self._arrived.set()

    def skip_queued(self) -> None:
        """Drop the frames waiting (those of a time the connection did not send them)."""
        self._frames.clear()

    def stop(self) -> None:
        super().stop()
        self._fanout.detach(self)
        self._arrived.set()  # a recv() waiting ends


class _Fanout:
    """Reads ``source`` from the first handle's ``recv()`` until it ends (or the relay
    closes), handing each frame to every handle reading it."""

    def __init__(self, source: MediaStreamTrack, relay: Relay) -> None:
        self.source = source
        self._relay = relay
        self._handles: set[RelayedTrack] = set()
        self._reader: asyncio.Task[None] | None = None
        self._over = False  # the source ended, or the relay closed

    def attach(self, handle: RelayedTrack) -> None:
        if handle.readyState != "live" or handle in self._handles:
            return
        if self._over:
            handle.put(None)  # over before this handle's first recv()
            return
        self._handles.add(handle)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read(), name="salon track relay")

    def detach(self, handle: RelayedTrack) -> None:
        self._handles.discard(handle)

    async def _read(self) -> None:
        frame: Media | None = None
        try:
            while True:
                try:
                    frame = await self.source.recv()
                except MediaStreamError:
                    frame = None
                except Exception:  # a broken source ends its handles rather than the relay
                    logger.exception("a track given to the Salon client failed")
                    frame = None
                for handle in list(self._handles):
                    handle.put(frame)
                if frame is None:
                    return
        finally:
            self._over = True
            self._relay.ended(self)

    async def close(self) -> None:
        self._over = True
        reader = self._reader
        if reader is not None and not reader.done():
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        for handle in list(self._handles):
            handle.put(None)


class Relay:
    """Hands each source track to many connections (:meth:`subscribe`), reading it once."""

    def __init__(self) -> None:
        self._fanouts: dict[MediaStreamTrack, _Fanout] = {}

    def subscribe(self, source: MediaStreamTrack) -> RelayedTrack:
        """A new handle on ``source`` for one connection: every audio frame (up to
        :data:`AUDIO_QUEUE_FRAMES` waiting), or the newest video frame."""
        fanout = self._fanouts.get(source)
        if fanout is None:
            fanout = self._fanouts[source] = _Fanout(source, self)
        limit = AUDIO_QUEUE_FRAMES if source.kind == "audio" else VIDEO_QUEUE_FRAMES
        return RelayedTrack(fanout, limit)

    def ended(self, fanout: _Fanout) -> None:
        """(Internal) ``fanout``'s source ended: a later handle starts a new reader."""
        if self._fanouts.get(fanout.source) is fanout:
            del self._fanouts[fanout.source]

    async def close(self) -> None:
        """Stop reading every source; every handle's ``recv()`` then raises."""
        fanouts, self._fanouts = list(self._fanouts.values()), {}
        for fanout in fanouts:
            await fanout.close()
