"""The recorder: every participant's audio and video to a WebM file each, the chat to JSON Lines.

It joins with ``media.recording = true`` (protocol version 2, docs/PROTOCOL.md §3.9), so
every client shows that the room is recorded; it refuses a version-1 server rather than
record unannounced. Files in the output folder:

- ``<safe-name>-<member-id>.webm`` per participant (VP8 + Opus, video at one fixed size),
  from the moment the recorder got their media until they leave; a participant who leaves
  and comes back (member ids survive that) gets ``<safe-name>-<member-id>-2.webm``, ``-3``…
  — a file is never replaced (see :mod:`salon.bots.webm`);
- ``chat.jsonl``: one ``{"seq", "ts", "from", "name", "text"}`` per chat message received
  while recording, appended and flushed one by one.

It stops when the room has nobody else in it, on SIGINT/SIGTERM, or when the folder's files
exceed ``max_bytes``; every file is then closed (playable, with its duration) before it
exits. One audio and one video per participant: the first of each kind on their connection
(the camera, not a screen share sent beside it); the others are not received at all.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from salon.bots.base import Bot, BotError, first_of_kind
from salon.bots.webm import DEFAULT_VIDEO_SIZE, ParticipantFile
from salon.client import Client, Remote
from salon.protocol.messages import ChatDelivered, Joined, MemberLeft

log = logging.getLogger("salon.bots")

CHAT_FILE = "chat.jsonl"
SAFE_NAME_CHARS = 32
SIZE_CHECK_SECONDS = 0.5
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(name: str) -> str:
    """``name`` reduced to ``[A-Za-z0-9_-]`` (accents dropped, other runs become ``_``), at
    most 32 characters; ``"member"`` when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    reduced = _UNSAFE.sub("_", ascii_name).strip("_-")[:SAFE_NAME_CHARS].strip("_-")
    return reduced or "member"


def file_name(name: str, member_id: str) -> str:
    """The first file of a participant: ``<safe-name>-<member-id>.webm`` (the next ones:
    :func:`salon.bots.webm.segment_path`)."""
    return f"{safe_name(name)}-{_UNSAFE.sub('_', member_id)[:64]}.webm"


@dataclass(slots=True)
class _Participant:
    """One member's file, the tracks recorded into it (one per kind), and a reader per track.

    Every track given to :meth:`take` is read until it ends; only the current one of its
    kind goes into the file (aiortc decodes a received track into a queue without bound, so
    a track left unread would grow the process)."""

    file: ParticipantFile
    remote: Remote  # where the member's media comes from now (its peer, or the SFU)
    current: dict[str, MediaStreamTrack] = field(default_factory=dict)
    readers: set[asyncio.Task[None]] = field(default_factory=set)

    def take(self, track: MediaStreamTrack) -> None:
        """Record ``track`` from now on instead of the one of its kind before (the track of
        a connection the SDK replaced, which ends)."""
        self.current[track.kind] = track
        reader = asyncio.ensure_future(self._read(track))
        self.readers.add(reader)
        reader.add_done_callback(self.readers.discard)

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if self.current.get(track.kind) is track and isinstance(frame, AudioFrame | VideoFrame):
                self.file.put(frame)

    async def close(self) -> None:
        readers = list(self.readers)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        self.current.clear()
        await self.file.aclose()
        stats, written = self.file.stats, self.file.written
        log.info(
            "%s: %d video and %d audio frames written, %d dropped%s",
            written.name if written is not None else f"{self.file.path.name} (no file)",
            stats.video_frames,
            stats.audio_frames,
            stats.dropped,
            " (the file could not be written)" if stats.failed else "",
        )


class RecorderBot(Bot):
    """Records into ``out`` (created if missing); ``max_bytes``: stop once the folder's
    files together exceed it. :class:`BotError` when the folder cannot be written."""

    default_name = "Recorder"
    recording = True
    reads_tracks = True
    sfu = True  # the same to everyone, or everyone into files: fine through the SFU

    def __init__(
        self,
        out: Path,
        *,
        max_bytes: int | None = None,
        video_size: tuple[int, int] = DEFAULT_VIDEO_SIZE,
    ) -> None:
        super().__init__()
        self.out = out
        self.max_bytes = max_bytes
        self.video_size = video_size
        try:
            out.mkdir(parents=True, exist_ok=True)
            self._chat: IO[str] = (out / CHAT_FILE).open("a", encoding="utf-8")
        except OSError as exc:
            raise BotError(f"cannot write to {out}: {exc}") from None
        self._participants: dict[str, _Participant] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False  # close_media ran: nothing more is recorded

    def attach(self, client: Client) -> None:
        client.on_track(self._on_track)
        client.on_peer_closed(self._on_peer_closed)
        client.on(ChatDelivered, self._on_chat)
        client.on(MemberLeft, self._on_member_left)

    async def seated(self, joined: Joined) -> None:
        if not self.answering and not joined.members:
            self.stop("the room is empty")
            return
        if self.max_bytes is not None:
            self.spawn(self._watch_size(self.max_bytes), "watching the size")
        log.info("recording into %s", self.out)

    async def close_media(self) -> None:
        self._closed = True
        for peer_id in list(self._participants):
            self._close(peer_id)
        if self._closing:
            await asyncio.wait(set(self._closing))

    async def finish(self) -> None:
        self._closed = True
        for peer_id in list(self._participants):
            self._close(peer_id)
        if self._closing:  # files still closing after close_media's deadline: a moment more
            await asyncio.wait(set(self._closing), timeout=1.0)
        self._chat.close()

    def _on_track(self, peer: Remote, track: MediaStreamTrack) -> None:
        if self._closed or peer.closed or not first_of_kind(peer, track):
            self.ignore(peer, track)  # a screen share beside the camera, a replaced connection
            return
        participant = self._participants.get(peer.id)
        if participant is None:
            path = self.out / file_name(peer.member.name, peer.id)
            participant = _Participant(ParticipantFile(path, size=self.video_size), peer)
            self._participants[peer.id] = participant
        # The room moved to the SFU: the same file goes on with the member's media from there
        # (its old peer's close, which may come later, no longer ends it).
        participant.remote = peer
        participant.take(track)
        log.info("recording %s of %r", track.kind, peer.member.name)

    def _on_peer_closed(self, peer: Remote) -> None:
        participant = self._participants.get(peer.id)
        if participant is not None and participant.remote is peer:
            self._close(peer.id)

    def _close(self, peer_id: str) -> None:
        participant = self._participants.pop(peer_id, None)
        if participant is not None:
            task = asyncio.ensure_future(participant.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def _on_member_left(self, _message: MemberLeft) -> None:
        if not self.answering and not self.client.members:
            self.stop("everyone left")

    def _on_chat(self, message: ChatDelivered) -> None:
        entry = {
            "seq": message.seq,
            "ts": message.ts,
            "from": message.sender,
            "name": message.name,
            "text": message.text,
        }
        try:
            self._chat.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._chat.flush()
        except OSError as exc:
            log.error("cannot write %s: %s", CHAT_FILE, exc)

    async def _watch_size(self, limit: int) -> None:
        while True:
            await asyncio.sleep(SIZE_CHECK_SECONDS)
            used = await asyncio.to_thread(folder_bytes, self.out)
            if used > limit:
                self.stop(f"the recording reached its size limit ({used} > {limit} bytes)")
                return


def folder_bytes(folder: Path) -> int:
    """The size of the files directly in ``folder``, in bytes."""
    total = 0
    for entry in folder.iterdir():
        try:
            if entry.is_file():
                total += entry.stat().st_size
        except OSError:
            continue
    return total
