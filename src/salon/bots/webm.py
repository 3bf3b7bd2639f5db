"""One participant's recording: a WebM file (VP8 video, Opus audio) written by its own thread.

Frames come from aiortc's remote tracks on the event loop and are handed over with the time
they arrived; a thread encodes and muxes them, so encoding never stalls signaling or the
other participants. Timestamps come from the recorder's clock, not from the sender's RTP
clock: a camera turned off for a minute leaves a minute-long gap in the video, and audio and
video stay aligned however late each track started (both are measured from the first frame
of either).

Bounded work: the hand-over queue holds at most ``QUEUE_VIDEO_FRAMES`` video frames (and
``QUEUE_VIDEO_BYTES`` of them) and ``QUEUE_AUDIO_FRAMES`` audio frames; a frame that arrives
while it is full is dropped and counted (:attr:`FileStats.dropped`), so an encoder that
cannot keep up costs frames, never memory. Every video frame is scaled to one fixed output
size, keeping its aspect ratio (black bars fill the rest): the sender's size — Chrome starts
small while its bandwidth estimate ramps up, a hostile sender may send 16383×16383 — never
sets the cost of encoding.

The file itself appears only once it holds media: the muxer writes into memory until the
first cluster (Matroska's unit of media, https://www.matroska.org/technical/elements.html)
is complete, then the file is created — exclusively, never replacing another — and written
from there on. A file is therefore never on disk without a frame in it, even if the
recorder is killed; one with no frame at all is never created. Clusters are written at
least every quarter second, so a killed recorder leaves all but the last moment readable;
``close()`` writes the duration and the cues (so players can seek).
"""

from __future__ import annotations

import asyncio
import io
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.filter import Graph
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

log = logging.getLogger(__name__)

MS = Fraction(1, 1000)
AUDIO_RATE = 48_000  # Opus works at 48 kHz (RFC 7587 §4.1)
SAMPLE = Fraction(1, AUDIO_RATE)
DEFAULT_VIDEO_SIZE = (640, 480)  # what the web client asks its camera for
MAX_VIDEO_PIXELS = 1920 * 1080  # the largest output size accepted (--video-size)
AUDIO_GAP_SECONDS = 0.2  # audio that arrives this much later than expected starts after a gap
VIDEO_BITRATE = 1_000_000
AUDIO_BITRATE = 64_000
QUEUE_VIDEO_FRAMES = 30  # a second at 30 frames a second
QUEUE_VIDEO_BYTES = 48 * 1024 * 1024  # ... and never more than this of decoded pictures
QUEUE_AUDIO_FRAMES = 250  # five seconds of 20 ms frames
HURRY_SECONDS = 2.0  # a close that has taken this long drops the video still queued
MAX_SEGMENTS = 9999  # <name>.webm, <name>-2.webm … <name>-9999.webm
# libvpx in real time: the recorder must keep up with every participant on a small machine.
# One thread per encoder: libvpx's own threads cost about five times the CPU per frame on a
# busy two-core machine (measured: 26 ms against 5 ms for a 640×480 frame).
VP8_OPTIONS = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "threads": "1"}
# A cluster at least every 250 ms, written out at once (flush_packets), and a stream that has
# no packet (a participant without a microphone) holds the others back at most 250 ms
# (max_interleave_delta, in µs; FFmpeg's default would wait 10 s): the file on disk follows
# the recording (the size limit, the server's listing, a recorder that is killed).
CONTAINER_OPTIONS = {
    "cluster_time_limit": "250",
    "flush_packets": "1",
    "max_interleave_delta": "250000",
}

Frame = AudioFrame | VideoFrame
_STOP = None


def parse_video_size(text: str) -> tuple[int, int]:
    """``"WIDTHxHEIGHT"`` (for example ``"1280x720"``) as ``(width, height)`` in pixels:
    even numbers from 16 up, at most ``MAX_VIDEO_PIXELS`` in all. ``ValueError`` otherwise."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"--video-size {text!r} is not WIDTHxHEIGHT (for example 1280x720)")
    width, height = int(parts[0]), int(parts[1])
    if width < 16 or height < 16 or width % 2 or height % 2:
        raise ValueError(f"--video-size {text}: width and height must be even and at least 16")
    if width * height > MAX_VIDEO_PIXELS:
        raise ValueError(f"--video-size {text}: at most 1920x1080 pixels")
    return width, height


def segment_path(first: Path, number: int) -> Path:
    """The ``number``-th file of one participant: ``first`` itself for 1, then
    ``<stem>-<number><suffix>`` (``ann-x1.webm``, ``ann-x1-2.webm``, ``ann-x1-3.webm``…)."""
    if number == 1:
        return first
    return first.with_name(f"{first.stem}-{number}{first.suffix}")


@dataclass(slots=True)
class FileStats:
    """What a :class:`ParticipantFile` did: frames written, frames dropped because the encoder
    was behind (or the file was closing), frames that could not be encoded, and whether the
    file could not be created or closed."""

    video_frames: int = 0
    audio_frames: int = 0
    dropped: int = 0
    errors: int = 0
    failed: bool = False


class _LazyFile(io.RawIOBase):
    """The muxer's output: kept in memory until :meth:`header_written` and one write more
    (the first cluster), then in a new file — the first free one of :func:`segment_path`,
    created exclusively — and written through from there on."""

    def __init__(self, first: Path) -> None:
        super().__init__()
        self._first = first
        self._memory: io.BytesIO | None = io.BytesIO()
        self._file: io.FileIO | None = None
        self._header = -1  # the header's length once written
        self.path: Path | None = None  # the file, once created
        self.error: OSError | None = None  # why the file could not be created or written

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def header_written(self) -> None:
        if self._memory is not None:
            self._header = self._memory.tell()

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        try:
            if self._file is not None:
                return self._file.write(data) or 0
            if self._memory is None:  # abandoned
                return len(data)
            count = self._memory.write(data)
            if 0 <= self._header < len(self._memory.getbuffer()):
                self.commit()
            return count
        except OSError as exc:  # a full disk, a folder removed: the rest goes nowhere
            self.error = self.error or exc
            self._file, self._memory = None, None
            return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self._file is not None:
            return self._file.seek(offset, whence)
        if self._memory is None:
            return 0
        return self._memory.seek(offset, whence)

    def tell(self) -> int:
        return self.seek(0, io.SEEK_CUR)

    def commit(self) -> None:
        """Create the file and write what is held in memory (``OSError`` when no name of
        :func:`segment_path` is free or the folder cannot be written)."""
        memory = self._memory
        if self._file is not None or memory is None:
            return
        for number in range(1, MAX_SEGMENTS + 1):
            path = segment_path(self._first, number)
            try:
                file = io.FileIO(path, "xb")  # exclusive: never truncates another file
            except FileExistsError:
                continue
            file.write(memory.getvalue())
            file.seek(memory.tell())
            self._file, self._memory, self.path = file, None, path
            return
        raise OSError(f"{self._first.name}: no free file name left")

    def abandon(self) -> None:
        """Write nothing more; nothing is created if nothing was yet."""
        self._memory = None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()


class _Fit:
    """Video frames of any size and format as ``size`` yuv420p pictures: scaled down or up
    to fit, aspect ratio kept, centred between black bars (an FFmpeg filter graph, rebuilt
    when the input's size or format changes)."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size
        self._input: tuple[int, int, str] | None = None
        self._graph: Graph | None = None

    def __call__(self, frame: VideoFrame) -> VideoFrame:
        shape = (frame.width, frame.height, frame.format.name)
        if shape == (*self.size, "yuv420p"):
            return frame
        if shape != self._input or self._graph is None:
            self._graph = _fit_graph(frame, self.size)
            self._input = shape
        self._graph.push(frame)
        fitted = self._graph.pull()
        assert isinstance(fitted, VideoFrame)
        return fitted


def _fit_graph(frame: VideoFrame, size: tuple[int, int]) -> Graph:
    width, height = size
    graph = Graph()
    source = graph.add_buffer(
        width=frame.width, height=frame.height, format=frame.format, time_base=MS
    )
    scale = graph.add(
        "scale", f"{width}:{height}:force_original_aspect_ratio=decrease:force_divisible_by=2"
    )
    pad = graph.add("pad", f"{width}:{height}:(ow-iw)/2:(oh-ih)/2:black")
    to_yuv = graph.add("format", "yuv420p")
    graph.link_nodes(source, scale, pad, to_yuv, graph.add("buffersink"))
    graph.configure()
    return graph


@dataclass(slots=True)
class _Streams:
    container: OutputContainer
    output: _LazyFile
    video: VideoStream
    audio: AudioStream
    fit: _Fit
    last_video_ms: int = -1
    next_audio: int | None = None  # the next audio sample's time, in samples


class ParticipantFile:
    """A WebM file with one VP8 stream of ``size`` (width, height in pixels) and one Opus
    stream, fed with :meth:`put`.

    ``path`` is the file's first choice of name; if it exists (the same participant left and
    came back), ``<stem>-2.webm``, ``-3``… (:func:`segment_path`); :attr:`written` is the
    file actually created, ``None`` until it holds media. Time 0 is the arrival of the first
    frame of either kind. :meth:`close` flushes the encoders and closes the file, blocking;
    :meth:`aclose` does the same without blocking the event loop. ``clock`` gives seconds
    (monotonic)."""

    def __init__(
        self,
        path: Path,
        *,
        size: tuple[int, int] = DEFAULT_VIDEO_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.size = size
        self.stats = FileStats()
        self._clock = clock
        self._queue: queue.SimpleQueue[tuple[Frame, float] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._queued_video = 0
        self._queued_bytes = 0
        self._queued_audio = 0
        self._output: _LazyFile | None = None
        self._started_at: float | None = None
        self._closed = False
        self._close_asked: float | None = None
        self._done = threading.Event()  # the thread ended: the file is closed
        self._when_done: list[Callable[[], None]] = []
        self._thread = threading.Thread(target=self._run, name=f"record {path.name}", daemon=True)
        self._thread.start()

    @property
    def written(self) -> Path | None:
        """The file on disk, once created (at its first cluster of media)."""
        return None if self._output is None else self._output.path

    def put(self, frame: Frame) -> bool:
        """Queue ``frame`` (from the event loop; never blocks), stamped with its arrival.
        ``False`` when it was dropped: the queue is full (the encoder is behind) or the file
        is closed."""
        if self._closed:
            return False
        video = isinstance(frame, VideoFrame)
        weight = _picture_bytes(frame) if video else 0
        with self._lock:
            if video:
                full = self._queued_video >= QUEUE_VIDEO_FRAMES or (
                    self._queued_video > 0 and self._queued_bytes + weight > QUEUE_VIDEO_BYTES
                )
            else:
                full = self._queued_audio >= QUEUE_AUDIO_FRAMES
            if not full and video:
                self._queued_video += 1
                self._queued_bytes += weight
            elif not full:
                self._queued_audio += 1
        if full:
            self._dropped()
            return False
        self._queue.put((frame, self._clock()))
        return True

    def _dropped(self) -> None:
        with self._lock:
            self.stats.dropped += 1
            first = self.stats.dropped == 1
        if first:
            log.warning("%s: the encoder is behind: dropping frames", self.path.name)

    def close(self) -> None:
        """Write what is queued (video only for ``HURRY_SECONDS``), flush the encoders, close
        the file; idempotent, blocking."""
        self._ask_close()
        self._thread.join()

    async def aclose(self) -> None:
        """:meth:`close` from the event loop, waiting for the file's own thread (never for
        an executor's: a process may exit while a close it gave up on goes on)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def finished() -> None:
            if not done.done():
                done.set_result(None)

        def from_thread() -> None:
            if not loop.is_closed():
                loop.call_soon_threadsafe(finished)

        with self._lock:
            if not self._done.is_set():
                self._when_done.append(from_thread)
            else:
                finished()
        self._ask_close()
        await done

    def _ask_close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._close_asked = self._clock()
        self._queue.put(_STOP)

    # The thread: everything below runs there and owns the container.

    def _run(self) -> None:
        try:
            self._record()
        finally:
            with self._lock:
                self._done.set()
                callbacks, self._when_done = self._when_done, []
            for callback in callbacks:
                callback()

    def _record(self) -> None:
        streams: _Streams | None = None
        while True:
            item = self._queue.get()
            if item is None:
                break
            frame, at = item
            self._dequeued(frame)
            if self._hurried(frame):
                continue
            if streams is None and not self.stats.failed:
                streams = self._open(at)
            if streams is not None and not self.stats.failed:
                self._write(streams, frame, at)
        if streams is not None:
            self._finish(streams)

    def _dequeued(self, frame: Frame) -> None:
        with self._lock:
            if isinstance(frame, VideoFrame):
                self._queued_video -= 1
                self._queued_bytes -= _picture_bytes(frame)
            else:
                self._queued_audio -= 1

    def _hurried(self, frame: Frame) -> bool:
        """Drop video still queued once a close has waited ``HURRY_SECONDS``."""
        asked = self._close_asked
        if asked is None or not isinstance(frame, VideoFrame):
            return False
        if self._clock() - asked < HURRY_SECONDS:
            return False
        self._dropped()
        return True

    def _open(self, at: float) -> _Streams | None:
        output = _LazyFile(self.path)
        try:
            streams = _create(output, self.size)
        except (av.FFmpegError, OSError, ValueError) as exc:
            log.error("cannot create %s: %s", self.path, exc)
            self.stats.failed = True
            return None
        self._output = output
        self._started_at = at
        return streams

    def _write(self, streams: _Streams, frame: Frame, at: float) -> None:
        assert self._started_at is not None
        elapsed = at - self._started_at
        try:
            if isinstance(frame, VideoFrame):
                _write_video(streams, frame, elapsed)
                self.stats.video_frames += 1
            else:
                _write_audio(streams, frame, elapsed)
                self.stats.audio_frames += 1
        except (av.FFmpegError, OSError, ValueError) as exc:
            if not self.stats.errors:
                log.warning("%s: a frame could not be written: %s", self.path.name, exc)
            self.stats.errors += 1
        if streams.output.error is not None:
            log.error("cannot write %s: %s", self.path.name, streams.output.error)
            self.stats.failed = True

    def _finish(self, streams: _Streams) -> None:
        if not (self.stats.video_frames or self.stats.audio_frames):
            streams.output.abandon()  # nothing recorded: no file
        for stream in (streams.video, streams.audio):
            try:
                streams.container.mux(stream.encode(None))
            except (av.FFmpegError, OSError, ValueError) as exc:
                log.warning("%s: flushing %s failed: %s", self.path.name, stream.type, exc)
        try:
            streams.container.close()
            streams.output.commit()  # a recording shorter than one cluster
        except (av.FFmpegError, OSError) as exc:
            log.error("%s: closing failed: %s", self.path.name, exc)
            self.stats.failed = True
        finally:
            streams.output.close()


def _picture_bytes(frame: Frame) -> int:
    """About the memory a decoded picture holds (4:2:0: 1.5 bytes a pixel)."""
    return frame.width * frame.height * 3 // 2 if isinstance(frame, VideoFrame) else 0


def _create(output: _LazyFile, size: tuple[int, int]) -> _Streams:
    container = av.open(output, mode="w", format="webm", options=dict(CONTAINER_OPTIONS))
    video = container.add_stream("libvpx", rate=30, options=dict(VP8_OPTIONS))
    video.width, video.height = size
    video.pix_fmt = "yuv420p"
    video.bit_rate = VIDEO_BITRATE
    video.time_base = MS
    video.codec_context.time_base = MS
    audio = container.add_stream("libopus", rate=AUDIO_RATE)
    audio.layout = "stereo"
    audio.bit_rate = AUDIO_BITRATE
    container.start_encoding()  # the header, held in memory
    output.header_written()
    return _Streams(container, output, video, audio, _Fit(size))


def _write_video(streams: _Streams, frame: VideoFrame, elapsed: float) -> None:
    # Milliseconds since the start, strictly increasing (two frames in one ms: the next ms).
    pts = max(round(elapsed * 1000), streams.last_video_ms + 1)
    streams.last_video_ms = pts
    frame.pts = pts
    frame.time_base = MS
    picture = streams.fit(frame)
    picture.pts = pts
    picture.time_base = MS
    streams.container.mux(streams.video.encode(picture))


def _write_audio(streams: _Streams, frame: AudioFrame, elapsed: float) -> None:
    # The frame arrived when its last sample was played: it started ``samples`` earlier.
    expected = max(0, round(elapsed * AUDIO_RATE) - frame.samples)
    if streams.next_audio is None or expected - streams.next_audio > AUDIO_GAP_SECONDS * AUDIO_RATE:
        streams.next_audio = expected  # the first frame, or sound after silence: keep the gap
    frame.pts = streams.next_audio
    frame.time_base = SAMPLE
    # Contiguous otherwise: network jitter must not make clicks.
    streams.next_audio += round(frame.samples * AUDIO_RATE / (frame.sample_rate or AUDIO_RATE))
    streams.container.mux(streams.audio.encode(frame))
