"""A media file played in real time, as tracks that any number of peers can send.

A thread decodes the file with PyAV (anything FFmpeg opens) and hands each frame, when its
time comes, to every subscribed track. Timestamps keep rising when the file loops, so the
RTP timestamps of the senders (RFC 3550 §5.1) never jump back, and the pace comes from the
wall clock, so a loop never plays faster than real time. (aiortc's ``MediaPlayer`` restarts
its video timestamps on a loop and then stops pacing, and keeps decoding for a track
nobody reads; hence this small player.)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.container import InputContainer
from av.frame import Frame
from av.video.frame import VideoFrame

log = logging.getLogger("salon.bots")

AUDIO_RATE = 48_000
AUDIO_SAMPLES = 960  # 20 ms, what aiortc's Opus encoder packs into one packet (RFC 7587)
VIDEO_CLOCK = Fraction(1, 90_000)  # the RTP clock of video (RFC 7741 §4.1 for VP8)
MAX_HEIGHT = 720  # taller video is scaled down: encoding it per peer would be too costly
QUEUE_FRAMES = 30  # a subscriber that falls this far behind loses its oldest frames


class FileError(Exception):
    """The file cannot be played (missing, unreadable, no audio or video in it)."""


class FileSource:
    """``path`` decoded in real time; :attr:`has_audio`/:attr:`has_video` say what it holds.

    :meth:`subscribe` gives a new track of one kind (each peer needs its own: a track sends
    to one sender); :meth:`start` starts playing (from the beginning, looping when ``loop``);
    :attr:`ended` is set when the file ended without looping or :meth:`stop` was called.
    The file is opened and its first frame decoded at construction, so a file that cannot
    be played raises :class:`FileError` before anything connects."""

    def __init__(self, path: Path, *, loop: bool = False) -> None:
        self.path = path
        self.loop = loop
        with _open(path) as container:
            self.has_audio = bool(container.streams.audio)
            self.has_video = bool(container.streams.video)
            if not (self.has_audio or self.has_video):
                raise FileError(f"{path} has no audio or video")
            _first_frame(container, path)
        self.ended = asyncio.Event()
        self._tracks: set[_SourceTrack] = set()
        self._quit = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._samples = 0  # audio samples handed over (the thread's)

    def subscribe(self, kind: str) -> MediaStreamTrack:
        """A new live track of ``kind`` (``"audio"``/``"video"``) fed from now on."""
        track = _SourceTrack(self, kind)
        self._tracks.add(track)
        return track

    def start(self) -> None:
        """Start the decoding thread (once)."""
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(target=self._run, name="play", daemon=True)
            self._thread.start()

    async def stop(self) -> None:
        """Stop playing and end every track."""
        self._quit.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        self._finish()

    def _discard(self, track: _SourceTrack) -> None:
        self._tracks.discard(track)

    # The thread.

    def _run(self) -> None:
        start = time.monotonic()
        offset = 0.0  # seconds of the file already played in earlier loops
        try:
            while not self._quit.is_set():
                played = self._play_once(start, offset)
                if not self.loop or played <= 0 or self._quit.is_set():
                    break
                offset += played
        except (av.FFmpegError, OSError) as exc:
            log.error("playing %s failed: %s", self.path, exc)
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._finish)

    def _play_once(self, start: float, offset: float) -> float:
        """Play the file once, its first frame due ``offset`` seconds after ``start``;
        returns how long the file played (seconds)."""
        resampler = AudioResampler("s16", "stereo", AUDIO_RATE, frame_size=AUDIO_SAMPLES)
        self._samples = max(self._samples, round(offset * AUDIO_RATE))
        first: float | None = None
        length = 0.0
        with _open(self.path) as container:
            for frame in _frames(container):
                if self._quit.is_set():
                    break
                now = float(frame.time or 0.0)
                first = now if first is None else first
                at = offset + now - first
                if isinstance(frame, VideoFrame):
                    self._wait_until(start + at)
                    self._hand_over(_video(frame, at))
                    length = max(length, now - first + 1 / 30)
                    continue
                # Each 20 ms chunk at its own time: a reader that takes only the newest frame
                # (a relay that keeps the newest frame only) then never loses one.
                for chunk in self._audio(resampler, frame):
                    self._wait_until(start + float(chunk.pts or 0) / AUDIO_RATE)
                    self._hand_over(chunk)
                length = max(length, now - first + frame.samples / (frame.sample_rate or 1))
        return length

    def _audio(self, resampler: AudioResampler, frame: AudioFrame) -> Iterator[AudioFrame]:
        """``frame`` as 20 ms frames of 48 kHz stereo, numbered by samples since the start."""
        for chunk in resampler.resample(frame):
            chunk.pts, chunk.time_base = self._samples, Fraction(1, AUDIO_RATE)
            self._samples += chunk.samples
            yield chunk

    def _wait_until(self, due: float) -> None:
        while not self._quit.is_set():
            left = due - time.monotonic()
            if left <= 0:
                return
            self._quit.wait(min(left, 0.1))

    def _hand_over(self, frame: Frame) -> None:
        kind = "video" if isinstance(frame, VideoFrame) else "audio"
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        for track in list(self._tracks):
            if track.kind == kind:
                loop.call_soon_threadsafe(track.feed, frame)

    def _finish(self) -> None:
        for track in list(self._tracks):
            track.feed(None)
        self.ended.set()


class _SourceTrack(MediaStreamTrack):
    def __init__(self, source: FileSource, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._source = source
        self._queue: asyncio.Queue[Frame | None] = asyncio.Queue()

    def feed(self, frame: Frame | None) -> None:
        if self.readyState != "live":
            return
        if frame is not None and self._queue.qsize() >= QUEUE_FRAMES:
            self._queue.get_nowait()  # nobody is reading fast enough: drop the oldest
        self._queue.put_nowait(frame)

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._queue.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame

    def stop(self) -> None:
        super().stop()
        self._source._discard(self)


def _open(path: Path) -> InputContainer:
    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise FileError(f"cannot read {path}: {exc}") from None


def _first_frame(container: InputContainer, path: Path) -> None:
    try:
        next(_frames(container))
    except StopIteration:
        raise FileError(f"{path} holds no frame to play") from None
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise FileError(f"cannot decode {path}: {exc}") from None


def _frames(container: InputContainer) -> Iterator[AudioFrame | VideoFrame]:
    """The first audio and first video stream's frames, in file order."""
    streams = [*container.streams.audio[:1], *container.streams.video[:1]]
    for frame in container.decode(*streams):
        if isinstance(frame, AudioFrame | VideoFrame):
            yield frame


def _video(frame: VideoFrame, at: float) -> VideoFrame:
    if frame.height > MAX_HEIGHT:
        width = round(frame.width * MAX_HEIGHT / frame.height / 2) * 2
        frame = frame.reformat(width=width, height=MAX_HEIGHT)
    frame.pts = round(at / VIDEO_CLOCK)
    frame.time_base = VIDEO_CLOCK
    return frame
