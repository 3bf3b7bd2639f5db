"""The relay that hands the client's own tracks to every peer connection
(salon/client/relay.py): every audio frame, bounded; the newest video frame."""

from __future__ import annotations

import asyncio
from fractions import Fraction

import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from salon.client.media import LocalMedia
from salon.client.relay import AUDIO_QUEUE_FRAMES, Media, Relay

pytestmark = pytest.mark.timeout(10)


class Burst(MediaStreamTrack):
    """Frames numbered 0, 1, … (``pts``) as fast as they are asked for — as a busy loop
    delivers them: several between two reads of a slow connection — then the end."""

    def __init__(self, kind: str, count: int) -> None:
        super().__init__()
        self.kind = kind
        self.count = count
        self.sent = 0
        self.go = asyncio.Event()  # set: frames flow
        self.ended = asyncio.Event()  # set: the last frame was read

    async def recv(self) -> Media:
        await self.go.wait()
        await asyncio.sleep(0)
        if self.sent >= self.count:
            self.stop()
            self.ended.set()
            raise MediaStreamError
        frame: AudioFrame | VideoFrame
        if self.kind == "audio":
            frame = AudioFrame(format="s16", layout="mono", samples=960)
        else:
            frame = VideoFrame(width=16, height=16, format="yuv420p")
        frame.pts, frame.time_base = self.sent, Fraction(1, 48_000)
        self.sent += 1
        return frame


async def read_all(handle: MediaStreamTrack) -> list[int]:
    numbers: list[int] = []
    try:
        while True:
            frame = await handle.recv()
            numbers.append(int(frame.pts or 0))
    except MediaStreamError:
        return numbers


async def first_then_later(handle: MediaStreamTrack, source: Burst) -> list[int]:
    """One frame read, then the rest of the burst arrives before the next read (a
    connection busy encoding), then everything waiting is read."""
    source.go.set()
    first = await handle.recv()
    await source.ended.wait()
    return [int(first.pts or 0), *await read_all(handle)]


async def test_every_audio_frame_reaches_a_connection_that_reads_late() -> None:
    source = Burst("audio", 20)
    media = LocalMedia(recording=False)
    handle = media.handle(source)
    assert await first_then_later(handle, source) == list(range(20))
    await media.close()


async def test_video_skips_to_the_newest_frame() -> None:
    source = Burst("video", 20)
    relay = Relay()
    assert await first_then_later(relay.subscribe(source), source) == [0, 19]
    await relay.close()


async def test_the_audio_queue_is_bounded_and_drops_the_oldest() -> None:
    count = AUDIO_QUEUE_FRAMES * 3
    source = Burst("audio", count)
    relay = Relay()
    got = await first_then_later(relay.subscribe(source), source)
    assert got == [0, *range(count - AUDIO_QUEUE_FRAMES, count)]
    await relay.close()


async def test_each_handle_gets_every_frame_and_a_late_one_ends_at_once() -> None:
    source = Burst("audio", 10)
    relay = Relay()
    one, two = relay.subscribe(source), relay.subscribe(source)
    source.go.set()
    assert await asyncio.gather(read_all(one), read_all(two)) == [list(range(10))] * 2
    late = relay.subscribe(source)  # the source ended: nothing to wait for
    with pytest.raises(MediaStreamError):
        await late.recv()


async def test_queued_frames_are_skipped_and_a_stopped_handle_ends() -> None:
    source = Burst("audio", 10)
    relay = Relay()
    handle = relay.subscribe(source)
    source.go.set()
    await handle.recv()
    await source.ended.wait()
    handle.skip_queued()  # what a host's mute made wait is not sent (§3.7)
    with pytest.raises(MediaStreamError):
        await handle.recv()
    other = relay.subscribe(Burst("audio", 10))
    waiting = asyncio.ensure_future(other.recv())
    await asyncio.sleep(0)
    other.stop()
    with pytest.raises(MediaStreamError):
        await waiting


async def test_closing_stops_reading_and_ends_every_handle() -> None:
    source = Burst("audio", 10**6)
    relay = Relay()
    handle = relay.subscribe(source)
    source.go.set()
    await handle.recv()
    await relay.close()
    sent = source.sent
    assert len(await read_all(handle)) <= 1  # what was waiting, then the end
    for _ in range(10):
        await asyncio.sleep(0)
    assert source.sent == sent  # nobody reads the source any more
    assert handle.readyState == "ended"
    unread = Relay()
    idle = unread.subscribe(source)
    await unread.close()
    with pytest.raises(MediaStreamError):  # a handle never read ends without reading
        await idle.recv()
    assert source.sent == sent
