"""A track whose source can be swapped while it is being sent, and a tap that always reads.

A bot that sends something derived from a remote track (the echo bot sends each person's
own media back) must survive that remote track being replaced: the SDK replaces a peer's
``RTCPeerConnection`` after glare, a ``reset`` or a failed description (docs/PROTOCOL.md
§4.1), and the new connection brings new remote tracks. Adding a new outgoing track each
time would pile up senders; instead the outgoing :class:`ForwardTrack` stays the same and
only its source changes. Timestamps are rewritten so they keep rising across a swap (the
sender turns them into RTP timestamps, RFC 3550 §5.1, which must not jump back).

A remote track must be read whether or not what it feeds is being sent: aiortc decodes every
received frame into a queue without bound. A :class:`Tap` reads its remote track from the
moment it is made until the track ends, and keeps only the newest few frames for its reader.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from fractions import Fraction
from typing import Any

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet

# One frame's worth of time to put between the last frame of a source and the first of the
# next: 20 ms of audio (aiortc's packetisation) or a 30 fps video frame.
_GAP = {"audio": 0.020, "video": 1 / 30}


class ForwardTrack(MediaStreamTrack):
    """Sends the frames of its current source (``kind`` ``"audio"`` or ``"video"``).

    :meth:`switch` replaces the source (the old one is stopped when ``stop_old``); while there
    is none, :meth:`recv` waits for one. Ends (``MediaStreamError``) only when stopped."""

    def __init__(self, kind: str, source: MediaStreamTrack | None = None) -> None:
        super().__init__()
        self.kind = kind
        self._source = source
        self._changed = asyncio.Event()
        self._offset = 0  # added to the source's pts, in the source's time base
        self._last: tuple[int, Fraction] | None = None  # last pts sent and its time base
        self._fresh = True  # the next frame is the first of a new source

    @property
    def source(self) -> MediaStreamTrack | None:
        return self._source

    def switch(self, source: MediaStreamTrack | None, *, stop_old: bool = True) -> None:
        """Forward ``source`` from now on (``None``: send nothing until the next switch)."""
        old, self._source = self._source, source
        if old is not None and old is not source and stop_old:
            old.stop()
        self._fresh = True
        self._changed.set()

    async def recv(self) -> Frame | Packet[Any]:
        while self.readyState == "live":
            source = self._source
            if source is None or source.readyState != "live":
                await self._wait_for_switch()
                continue
            try:
                frame = await self._next(source)
            except MediaStreamError:
                if self._source is source:  # ended by itself: wait for a replacement
                    self._source = None
                continue
            if frame is not None:
                return self._restamp(frame)
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._changed.set()
        if self._source is not None:
            self._source.stop()
            self._source = None

    async def _wait_for_switch(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    async def _next(self, source: MediaStreamTrack) -> Frame | Packet[Any] | None:
        """The source's next frame, or ``None`` when the source was switched meanwhile."""
        self._changed.clear()
        frame_task = asyncio.ensure_future(source.recv())
        switch_task = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait({frame_task, switch_task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            switch_task.cancel()
            if not frame_task.done():  # switched (or we are cancelled): drop that read
                frame_task.cancel()
                frame_task.add_done_callback(_retrieve)
        if not frame_task.done() or frame_task.cancelled():
            return None
        return frame_task.result()

    def _restamp(self, frame: Frame | Packet[Any]) -> Frame | Packet[Any]:
        if frame.pts is None or frame.time_base is None:
            return frame
        base = frame.time_base
        if self._fresh:
            self._fresh = False
            self._offset = self._continue_at(base) - frame.pts
        pts = frame.pts + self._offset
        frame.pts = pts
        self._last = (pts, base)
        return frame

    def _continue_at(self, base: Fraction) -> int:
        """The pts, in ``base``, one frame after the last one sent (0 for the first);
        always above the last one."""
        if self._last is None:
            return 0
        pts, last_base = self._last
        last = pts * last_base / base
        return max(math.ceil(last + Fraction(_GAP[self.kind]) / base), math.floor(last) + 1)


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Take a cancelled read's outcome, so asyncio never reports it as never retrieved."""
    if not task.cancelled():
        task.exception()


class Tap(MediaStreamTrack):
    """``source`` (a remote track) read from now until it ends, the newest ``keep`` frames
    kept for :meth:`recv` (older ones dropped, counted in :attr:`dropped`).

    After :meth:`stop` it still reads ``source`` to its end, dropping every frame: a remote
    track ends when its connection closes."""

    def __init__(self, source: MediaStreamTrack, *, keep: int) -> None:
        super().__init__()
        self.kind = source.kind
        self.dropped = 0
        self._frames: deque[Frame | Packet[Any]] = deque()
        self._keep = keep
        self._arrived = asyncio.Event()
        self._ended = False
        self._reader = asyncio.ensure_future(self._read(source))

    async def recv(self) -> Frame | Packet[Any]:
        while not self._frames:
            if self.readyState != "live" or self._ended:
                raise MediaStreamError
            self._arrived.clear()
            await self._arrived.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._frames.clear()
        self._arrived.set()

    async def _read(self, source: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await source.recv()
                if self.readyState != "live":
                    continue
                if len(self._frames) >= self._keep:
                    self._frames.popleft()
                    self.dropped += 1
                self._frames.append(frame)
                self._arrived.set()
        except MediaStreamError:
            pass
        finally:
            self._ended = True
            self._arrived.set()
