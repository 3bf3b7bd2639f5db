"""A member of an SFU room written from docs/PROTOCOL.md §3.10 alone, for the tests: a raw
WebSocket speaking protocol v3, and two aiortc connections (what it sends, what it receives)
that exchange descriptions with Janus through Salon. It counts the video frames it decodes
from each member, by the ``streams`` of the SFU's offers."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
from array import array
from collections import Counter
from typing import Any

from aiortc import MediaStreamTrack, RTCBundlePolicy, RTCPeerConnection, RTCSessionDescription
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from av.audio.frame import AudioFrame
from av.frame import Frame
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.support import local_peer_connection

TIMEOUT = 20.0
PUBLISH_REF = "sfu-member-publish"


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone at -6 dBFS: loud enough for the SFU's voice activity (RFC 6464 levels)."""

    _seconds: bytes = b""  # two seconds of the tone (880 whole periods), 16-bit samples

    async def recv(self) -> Frame:
        frame = await super().recv()  # silence, paced in real time
        assert isinstance(frame, AudioFrame)
        rate, start = frame.sample_rate, (frame.pts or 0) % frame.sample_rate
        if len(self._seconds) != 4 * rate:  # computed once: a frame starts in the first second
            step = 2 * math.pi * 440 / rate
            samples = array("h", (int(16384 * math.sin(step * i)) for i in range(2 * rate)))
            self._seconds = samples.tobytes()
        frame.planes[0].update(self._seconds[2 * start : 2 * (start + frame.samples)])
        return frame


class SfuMember:
    def __init__(self, ws: ClientConnection, name: str, *, receive: bool = True) -> None:
        """``receive``: False answers every m-line of the SFU's offers ``inactive`` (a
        publisher that decodes nothing, as the SDK's ``Client(receive=False)``)."""
        self.ws = ws
        self.name = name
        self.receive = receive
        self.id = ""
        self.token = ""  # the latest resume token
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.received: list[dict[str, Any]] = []  # every frame the server sent, parsed
        self.publisher: RTCPeerConnection | None = None
        self.subscriber: RTCPeerConnection | None = None
        self.streams: dict[str, dict[str, Any]] = {}  # mid -> the latest offer's stream
        self.offers = 0  # sfu_offer messages answered
        self._answered = asyncio.Condition()
        self._decoded = asyncio.Condition()  # notified at each video frame counted
        self.frames: Counter[str] = Counter()  # member id -> video frames decoded
        self.audio: Counter[str] = Counter()  # member id -> audio frames decoded
        self._tasks: set[asyncio.Task[Any]] = set()
        self._publishing: tuple[bool, MediaStreamTrack | None] = (False, None)
        self._publish_ref = ""  # the ref of the latest sfu_publish
        self._publish_refusals = 0  # in a row, for the next delay
        self._refs = itertools.count(1)
        self._retry: asyncio.Task[None] | None = None  # a refused publish made again later
        self._retry_waiting = False  # the retry only sleeps: cancelling it leaves nothing open
        self._closing = False
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def greeted(
        cls,
        ws_url: str,
        name: str,
        version: int = 3,
        *,
        receive: bool = True,
        **connect_options: Any,
    ) -> SfuMember:
        member = cls(await connect(ws_url, **connect_options), name, receive=receive)
        await member.send(type="hello", versions=[version], name=name)
        welcome = await member.expect("welcome")
        member.id = welcome["id"]
        member.token = welcome["resume_token"]
        return member

    async def resume(self, ws_url: str) -> dict[str, Any]:
        """Take the place back on a new connection to ``ws_url`` (``hello.resume`` with the
        latest token, protocol v3), as after the loss of the old one; its media connections
        are closed (their sessions on Janus went with the old home). Returns the welcome,
        which must say resumed."""
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        self._cancel_retry()
        self.ws.transport.abort()  # lost, not a goodbye
        self.messages = asyncio.Queue()  # what the old connection heard is not the new one's
        for pc in (self.publisher, self.subscriber):
            if pc is not None:
                await pc.close()
        self.publisher = self.subscriber = None
        self.ws = await connect(ws_url)
        self._reader = asyncio.create_task(self._read())
        await self.send(type="hello", versions=[3], name=self.name, resume=self.token)
        welcome = await self.expect("welcome")
        assert welcome["resumed"] is not None, welcome
        self.token = welcome["resume_token"]
        return welcome

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                message = json.loads(raw)
                self.received.append(message)
                kind = message["type"]
                if kind == "ping":
                    await self.send(type="pong")
                elif kind == "sfu_offer":
                    await self._answer(message)
                elif kind == "room_media" and self.subscriber is not None:
                    # The SFU lost its state: the next offer is for a new connection.
                    await self.subscriber.close()
                    self.subscriber = None
                    await self.messages.put(message)
                elif (
                    kind == "error"
                    and message.get("ref") == self._publish_ref
                    and message["code"] in ("sfu_unavailable", "rate_limited")
                ):
                    self._cancel_retry()
                    self._retry = asyncio.create_task(
                        self._publish_later(message["code"], message["ref"])
                    )
                    self._tasks.add(self._retry)
                elif kind == "sfu_answer":
                    assert self.publisher is not None
                    answer = RTCSessionDescription(message["description"]["sdp"], "answer")
                    await self.publisher.setRemoteDescription(answer)
                elif kind == "resume_token":
                    self.token = message["token"]
                else:
                    await self.messages.put(message)

    async def expect(self, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        while True:
            message = await asyncio.wait_for(self.messages.get(), timeout)
            if message["type"] == kind:
                return message
            if message["type"] == "error":
                raise AssertionError(f"expected {kind}, got {message}")

    async def join(self, room: str) -> dict[str, Any]:
        await self.send(type="join", room=room, media={"mic": True, "camera": True})
        return await self.expect("joined")

    async def publish(self, *, tone: bool = False, video: MediaStreamTrack | None = None) -> None:
        """Publish a generated video (or ``video``) and silence, or a ``tone`` (an
        ``sfu_publish``; again: a new sending connection, as after ``room_media``). As §3.10
        asks of a client, an offer refused with ``sfu_unavailable`` or ``rate_limited`` is
        made again, 1 s later, then 2 s, 4 s… (up to 8 s): the SFU may answer slowly (Janus
        gives up on a request after 5 s), and a member that never publishes is never seen."""
        self._publishing = (tone, video)
        self._publish_refusals = 0
        self._cancel_retry()
        await self._publish()

    def _cancel_retry(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    async def _publish(self) -> None:
        tone, video = self._publishing
        if self.publisher is not None:
            await self.publisher.close()
        pc = self.publisher = local_peer_connection()
        pc.addTrack(ToneTrack() if tone else AudioStreamTrack())
        pc.addTrack(VideoStreamTrack() if video is None else video)
        await pc.setLocalDescription(await pc.createOffer())  # aiortc: every candidate in it
        offer = {"type": "offer", "sdp": pc.localDescription.sdp}
        self._publish_ref = f"{PUBLISH_REF}-{next(self._refs)}"
        await self.send(type="sfu_publish", description=offer, ref=self._publish_ref)

    async def _publish_later(self, code: str, refused: str) -> None:
        wait = min(8.0, 2.0**self._publish_refusals)
        self._publish_refusals += 1
        print(f"{self.name}: sfu_publish refused ({code}): again in {wait:.0f} s")
        self._retry_waiting = True
        try:
            await asyncio.sleep(wait)
        finally:
            self._retry_waiting = False
        if self._publish_ref == refused and not self._closing:  # no newer publish, no close
            await self._publish()

    async def _answer(self, message: dict[str, Any]) -> None:
        self.streams = {s["mid"]: s for s in message["streams"]}
        if self.subscriber is None:
            # Every m-line on one transport, as the SDK's (salon.client.sfu): with aiortc's
            # default, a first offer carrying several members' video decodes only the first.
            self.subscriber = local_peer_connection(RTCBundlePolicy.MAX_BUNDLE)
            self.subscriber.on("track", self._track)
        pc = self.subscriber
        offer = RTCSessionDescription(message["description"]["sdp"], "offer")
        try:
            await pc.setRemoteDescription(offer)
            if not self.receive:
                for transceiver in pc.getTransceivers():
                    transceiver.direction = "inactive"
            await pc.setLocalDescription(await pc.createAnswer())
        except InvalidStateError:
            # It left meanwhile and Janus closed the connection (an offer relayed just before
            # the leave): nothing to answer.
            return
        answer = {"type": "answer", "sdp": pc.localDescription.sdp}
        await self.send(type="sfu_subscribe", description=answer)
        async with self._answered:
            self.offers += 1
            self._answered.notify_all()

    async def offered(self, more_than: int, timeout: float = TIMEOUT) -> None:
        """Wait until more than ``more_than`` offers of the SFU have been answered."""
        async with asyncio.timeout(timeout), self._answered:
            await self._answered.wait_for(lambda: self.offers > more_than)

    def _track(self, track: MediaStreamTrack) -> None:
        assert self.subscriber is not None
        mid = next(
            (t.mid for t in self.subscriber.getTransceivers() if t.receiver.track is track), None
        )
        task = asyncio.create_task(self._count(track, mid))
        self._tasks.add(task)

    async def _count(self, track: MediaStreamTrack, mid: str | None) -> None:
        counter = self.frames if track.kind == "video" else self.audio
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                stream = self.streams.get(mid or "")
                if stream is not None:
                    counter[stream["member"]] += 1
                    if counter is self.frames:
                        async with self._decoded:
                            self._decoded.notify_all()

    async def decoding(self, members: list[SfuMember], timeout: float = TIMEOUT) -> None:
        """Wait until video frames from every one of ``members`` rise."""
        await self.decoding_ids([m.id for m in members], timeout)

    async def decoding_ids(self, ids: list[str], timeout: float = TIMEOUT) -> None:
        """Wait until video frames from every member of ``ids`` rise."""
        before = {i: self.frames[i] for i in ids}
        try:
            async with asyncio.timeout(timeout), self._decoded:
                await self._decoded.wait_for(
                    lambda: all(self.frames[i] > before[i] + 5 for i in ids)
                )
        except TimeoutError:
            raise AssertionError(
                f"{self.name} decodes {dict(self.frames)}, not all of {before}"
            ) from None

    async def close(self) -> None:
        """Close in an order that leaves no aiortc work half done (a gathering cancelled
        midway leaves its sockets open): a publish made again is let finish, or stopped
        while it only waits; the socket closes, and the reader ends once the message it
        handles is handled; then the connections close."""
        self._closing = True
        retry = self._retry
        if retry is not None and not retry.done():
            if self._retry_waiting:
                retry.cancel()
            await asyncio.gather(retry, return_exceptions=True)
        await self.ws.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await asyncio.wait({self._reader})
        self._reader.cancel()
        for pc in (self.publisher, self.subscriber):
            if pc is not None:
                await pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(self._reader, *self._tasks, return_exceptions=True)
        if not self._reader.cancelled() and self._reader.exception() is not None:
            raise AssertionError(f"{self.name}'s reader failed") from self._reader.exception()
