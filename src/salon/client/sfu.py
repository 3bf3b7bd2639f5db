"""The client's media in a room on the SFU (docs/PROTOCOL.md §3.10): one connection that
sends (``sfu_publish`` → ``sfu_answer``) and one that receives everyone (``sfu_offer`` →
``sfu_subscribe``), both to the SFU, instead of one peer connection per member.

aiortc gathers every local candidate before ``setLocalDescription`` returns, so they travel
in the SDP: each connection sends only the end of its candidates (``candidate: null``). The
SFU's own candidates are in its descriptions.

The SFU reuses an m-line of the receiving connection for another member once its publisher
left (§3.10 step 3), and aiortc then fires no new ``track`` event: the receiver's track just
carries someone else. So handlers never get a receiver's track: each member gets tracks of
its own (:class:`SfuTrack`), fed from the receiver's while ``sfu_offer.streams`` says the
m-line is that member's, and ended when it is no longer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Final, Protocol

from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import RtpReceiver, RtpRouter
from aiortc.rtp import RtpPacket
from av.frame import Frame
from pydantic import BaseModel

from salon.client.media import pause_senders
from salon.protocol import ErrorCode
from salon.protocol.messages import (
    Error,
    MemberInfo,
    SessionDescription,
    SfuAnswer,
    SfuCandidate,
    SfuOffer,
    SfuPublish,
    SfuRestart,
    SfuStream,
    SfuSubscribe,
)

logger = logging.getLogger("salon.client")

ANSWER_SECONDS: Final = 15.0
"""How long an ``sfu_publish`` waits for its ``sfu_answer`` (the server gives the SFU 5 s)."""

RETRY_SECONDS: Final = (1.0, 2.0, 4.0, 8.0, 15.0)
"""The waits before publishing again after ``sfu_unavailable`` (§3.10: a growing delay); the
last one repeats."""

VIDEO_QUEUE: Final = 2  # frames a member's video track holds: a slow reader skips pictures
AUDIO_QUEUE: Final = 50  # 20 ms frames: one second; the oldest go first


def _route_by_mid() -> None:
    """Teach aiortc's RTP router the BUNDLE rule it lacks (RFC 8843 §9.2): a packet whose
    SSRC the router does not know goes to the receiver of the m-line its ``mid`` header
    extension names, and that SSRC is remembered for it. aiortc learns a receiver's SSRCs once,
    from the first description; the SFU gives an m-line a new SSRC when it reuses the m-line
    for another member, and with several receivers of one payload type aiortc dropped every
    packet of the new one. Installed once, for every connection of the process: it changes
    only what aiortc would have dropped."""
    router = RtpRouter
    if getattr(router.route_rtp, "salon_by_mid", False):
        return
    by_ssrc = router.route_rtp

    def route_rtp(self: RtpRouter, packet: RtpPacket) -> RtpReceiver | None:
        receiver = by_ssrc(self, packet)
        mid = packet.extensions.mid
        if receiver is None and mid is not None and packet.ssrc not in self.ssrc_table:
            receiver = self.mid_table.get(mid)
            if receiver is not None:
                self.ssrc_table[packet.ssrc] = receiver
        return receiver

    route_rtp.salon_by_mid = True  # type: ignore[attr-defined]
    router.route_rtp = route_rtp  # type: ignore[method-assign]


_route_by_mid()


class SfuHost(Protocol):
    """What the SFU media needs from its client."""

    def send(self, message: BaseModel) -> None:
        """Queue a client message."""

    def next_ref(self) -> int:
        """A fresh ``ref`` for a request."""

    def configuration(self) -> RTCConfiguration:
        """The configuration of a new ``RTCPeerConnection`` (the ICE servers)."""

    def shared_tracks(self) -> list[MediaStreamTrack]:
        """Fresh handles on the client-wide tracks, for one new connection."""

    def paused_kinds(self) -> frozenset[str]:
        """Kinds (``audio``/``video``) a host muted: not sent until turned on again."""

    def member(self, member_id: str) -> MemberInfo | None:
        """The room's member of that id, as last announced."""

    def track_arrived(self, remote: SfuRemote, track: MediaStreamTrack) -> None:
        """A member's track began (run the ``on_track`` handlers)."""

    def remote_closed(self, remote: SfuRemote) -> None:
        """A member's media ended for good (run the ``on_peer_closed`` handlers)."""


class SfuTrack(MediaStreamTrack):
    """One member's audio or video as the SFU forwards it. ``recv()`` raises
    ``MediaStreamError`` once the member stopped sending it, left, or the room's media was
    started over."""

    def __init__(self, kind: str, *, screen: bool = False) -> None:
        super().__init__()
        self.kind = kind
        self.screen = screen  # the member's screen share, not its camera (sfu_offer.streams)
        limit = VIDEO_QUEUE if kind == "video" else AUDIO_QUEUE
        self._frames: asyncio.Queue[Frame | None] = asyncio.Queue(limit)

    def feed(self, frame: Frame) -> None:
        if self.readyState != "live":
            return
        if self._frames.full():
            self._frames.get_nowait()  # the oldest goes: late media is worth less than new
        self._frames.put_nowait(frame)

    def end(self) -> None:
        if self.readyState == "live":
            if self._frames.full():
                self._frames.get_nowait()
            self._frames.put_nowait(None)

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self._frames.get()
        if frame is None:
            self.stop()
            raise MediaStreamError
        return frame


class SfuRemote:
    """A member whose media comes through the SFU: what ``on_track`` and ``on_peer_closed``
    handlers get in a room on the SFU instead of a :class:`~salon.client.peer.Peer`.

    ``member`` as last announced; ``remote_tracks`` its tracks so far (:class:`SfuTrack`);
    ``pc`` the receiving connection, which carries every member (shared: do not close it);
    ``closed`` once its media ended for good."""

    def __init__(self, member: MemberInfo, pc: RTCPeerConnection) -> None:
        self.member = member
        self.pc = pc
        self.remote_tracks: list[MediaStreamTrack] = []
        self.closed = False

    @property
    def id(self) -> str:
        return self.member.id


Job = Callable[[], Awaitable[None]]


class SfuMedia:
    """The sending and the receiving connection of one member in a room on the SFU.

    :meth:`start` (after ``joined {sfu: true}`` or ``room_media``) closes both and publishes
    anew; :meth:`offer` answers an ``sfu_offer``; :meth:`answered` and :meth:`refused` take
    the server's answers to ``sfu_publish``. Each connection's steps run one at a time, in
    order, in a task of its own. ``remotes``: the members received so far, by id."""

    def __init__(self, host: SfuHost, *, receive: bool = True) -> None:
        """``receive``: False answers every m-line of the receiving connection ``inactive``
        (RFC 3264 §6.1): the SFU sends nothing, and nobody's media is decoded here."""
        self._host = host
        self._receive = receive
        self.publisher: RTCPeerConnection | None = None
        self.subscriber: RTCPeerConnection | None = None
        self.remotes: dict[str, SfuRemote] = {}
        self.published = 0  # sfu_answer applied
        self.subscribed = 0  # sfu_offer answered
        self._proxies: list[MediaStreamTrack] = []  # the shared tracks' handles we send
        self._paused: dict[RTCRtpTransceiver, MediaStreamTrack] = {}
        self._owners: dict[str, SfuTrack] = {}  # mid -> the member track it feeds now
        self._streams: dict[str, SfuStream] = {}  # mid -> whose, by the latest offer
        self._pumps: set[asyncio.Task[None]] = set()
        self._waiting: tuple[int, asyncio.Future[SessionDescription]] | None = None
        # The sfu_publish sent last, by ref, until its sfu_answer or error arrives: §3.10, the
        # next one MUST wait for it (an sfu_answer names no ref, so two open at once could not
        # be told apart), even when the publish that sent it has given up.
        self._unanswered: tuple[int, asyncio.Future[object]] | None = None
        self._publish_jobs: asyncio.Queue[Job | None] = asyncio.Queue()
        self._subscribe_jobs: asyncio.Queue[Job | None] = asyncio.Queue()
        self._workers = [
            asyncio.create_task(self._work(self._publish_jobs), name="salon sfu publisher"),
            asyncio.create_task(self._work(self._subscribe_jobs), name="salon sfu subscriber"),
        ]
        self._closing: asyncio.Future[None] | None = None
        self._generation = 0  # grows at each start() and close(): a retrying publish stops
        self._wake = asyncio.Event()  # set then: a publish waiting to retry stops waiting
        self._restarted: RTCPeerConnection | None = None  # the failed one sfu_restart was for

    # ------------------------------------------------------------------ input

    def start(self) -> None:
        """Start (over) from §3.10 step 2: both connections closed, a new publish."""
        self._interrupt()
        self._subscribe_jobs.put_nowait(self._drop_subscriber)
        self._publish_jobs.put_nowait(functools.partial(self._publish, self._generation))

    def republish(self) -> None:
        """What we send changed (a track added): publish again."""
        self._interrupt()
        self._publish_jobs.put_nowait(functools.partial(self._publish, self._generation))

    def _interrupt(self) -> None:
        """A publish still waiting for its answer or to retry gives up: a newer one comes."""
        self._generation += 1
        self._wake.set()
        if self._waiting is not None and not self._waiting[1].done():
            self._waiting[1].cancel()

    def offer(self, message: SfuOffer) -> None:
        self._subscribe_jobs.put_nowait(lambda: self._answer(message))

    def answered(self, message: SfuAnswer) -> None:
        """The answer to the ``sfu_publish`` still unanswered: applied if its publish still
        waits for it, dropped if a newer one superseded that."""
        waiting = self._settle()
        if waiting is not None:
            waiting.set_result(message.description)

    def refused(self, error: Error) -> bool:
        """Whether ``error`` answers our ``sfu_publish`` (then it is ours to handle)."""
        if self._unanswered is None or error.ref != self._unanswered[0]:
            return False
        waiting = self._settle()
        if waiting is not None:
            waiting.set_exception(SfuRefused(error))
        return True

    def answers_lost(self) -> None:
        """The server may have lost what it sent us (``welcome.resumed.missed``, §2.8): an
        ``sfu_publish`` still unanswered is answered no more, and the next need not wait."""
        self._settle()

    def _settle(self) -> asyncio.Future[SessionDescription] | None:
        """The unanswered ``sfu_publish`` is answered: the next may go. Returns the future of
        the publish waiting for that answer, if one still does (also when the wait for it
        was given up, :meth:`answers_lost`: the answer came after all)."""
        unanswered, self._unanswered = self._unanswered, None
        if unanswered is not None and not unanswered[1].done():
            unanswered[1].set_result(None)
        waiting = self._waiting
        if waiting is None or waiting[1].done():
            return None
        if unanswered is not None and waiting[0] != unanswered[0]:
            return None  # the answer to an older publish: this one's comes next
        return waiting[1]

    def member_changed(self, member: MemberInfo) -> None:
        remote = self.remotes.get(member.id)
        if remote is not None:
            remote.member = member

    def member_left(self, member_id: str) -> None:
        """The member left: its tracks end (the SFU's next offer drops its m-lines)."""
        for mid, stream in list(self._streams.items()):
            if stream.member == member_id:
                del self._streams[mid]
                self._disown(mid)
        self._close_remote(member_id)

    def sync_paused(self) -> None:
        """Apply the client's muted kinds to what we send (§3.7)."""
        self._publish_jobs.put_nowait(self._apply_pause)

    async def close(self) -> None:
        """Close both connections for good; every member's tracks end. Idempotent; the
        closing runs in a task of its own (a ``pc.close()`` cut short leaves sockets open)."""
        if self._closing is None:
            self._interrupt()
            self._closing = asyncio.ensure_future(self._shut_down())
        await asyncio.shield(self._closing)

    async def _shut_down(self) -> None:
        for jobs in (self._publish_jobs, self._subscribe_jobs):
            jobs.put_nowait(None)
        await asyncio.gather(*self._workers, return_exceptions=True)
        await self._drop_publisher()
        await self._drop_subscriber()

    # ------------------------------------------------------------------ the workers

    async def _work(self, jobs: asyncio.Queue[Job | None]) -> None:
        while (job := await jobs.get()) is not None:
            try:
                await job()
            except Exception:
                logger.exception("sfu: a step failed")

    def _new_pc(self) -> RTCPeerConnection:
        """A connection to the SFU, every m-line on one transport from the start. (aiortc's
        default, ``balanced``, puts a second m-line of a kind in a first offer on the first
        one's own transport, which BUNDLE then leaves behind: of a first ``sfu_offer``
        carrying three members' video, only the first was received.)"""
        configuration = self._host.configuration()
        pc = RTCPeerConnection(
            RTCConfiguration(
                iceServers=configuration.iceServers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
            )
        )
        pc.on("connectionstatechange", lambda: self._on_state(pc))
        return pc

    def _on_state(self, pc: RTCPeerConnection) -> None:
        """§3.10: a connection to the SFU that fails asks for a new place there
        (``sfu_restart``; the server answers ``room_media`` and we start over), once."""
        current = pc in (self.publisher, self.subscriber)
        if pc.connectionState != "failed" or not current or self._closing is not None:
            return
        if self._restarted is not pc:
            self._restarted = pc
            logger.warning("sfu: a connection to the SFU failed: asking for sfu_restart")
            self._host.send(SfuRestart(type="sfu_restart"))

    # ------------------------------------------------------------------ sending

    async def _publish(self, generation: int) -> None:
        """A new sending connection with every track we send, offered until the SFU takes
        it: again after ``sfu_unavailable`` or ``rate_limited``, with a growing delay
        (§3.10). ``generation``:
        the one it was asked in; a newer publish, or a close, queued after it stops it, even
        before it ran."""
        await self._drop_publisher()
        proxies = self._host.shared_tracks()
        if not proxies or generation != self._generation:
            for proxy in proxies:
                proxy.stop()
            return  # nothing to send (receiving is the other connection's), or superseded
        pc = self.publisher = self._new_pc()
        self._proxies = proxies
        for track in proxies:
            pc.addTransceiver(track, direction="sendonly")
        await self._apply_pause()
        await pc.setLocalDescription(await pc.createOffer())
        offer = SessionDescription(type="offer", sdp=pc.localDescription.sdp)
        ended = False  # candidate: null sent for this connection (once)
        for wait in itertools.chain(RETRY_SECONDS, itertools.repeat(RETRY_SECONDS[-1])):
            if not await self._previous_answered(generation):
                return  # a newer publish, or closed: the next job (if any) closes this pc
            try:
                answer = await self._request(offer, end=not ended)
                ended = True
            except SfuRefused as refused:
                if refused.error.code not in (ErrorCode.SFU_UNAVAILABLE, ErrorCode.RATE_LIMITED):
                    logger.warning("sfu: publishing refused: %s", refused.error.message)
                    return
            except TimeoutError:
                logger.warning("sfu: no answer to sfu_publish in %.0f s", ANSWER_SECONDS)
                self._settle()  # lost: the retry need not wait for it again
            except asyncio.CancelledError:
                if generation == self._generation:
                    raise  # not ours: this task itself is cancelled
                return
            else:
                await pc.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
                self.published += 1
                return
            self._wake.clear()
            if generation != self._generation:
                return  # interrupted before this wait began: its wake-up is not lost
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _previous_answered(self, generation: int) -> bool:
        """Wait until the last ``sfu_publish`` sent has its answer or error (§3.10: MUST NOT
        send the next before). Returns False when a newer publish or a close came meanwhile.
        The server answers within 5 s; one that has not in ``ANSWER_SECONDS`` was lost, and
        is waited for no more."""
        unanswered = self._unanswered
        self._wake.clear()
        if generation != self._generation:
            return False
        if unanswered is None:
            return True
        settled: asyncio.Future[object] = unanswered[1]
        woken: asyncio.Future[object] = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                {settled, woken}, timeout=ANSWER_SECONDS, return_when="FIRST_COMPLETED"
            )
        finally:
            woken.cancel()
        if generation != self._generation:
            return False
        if self._unanswered is unanswered:
            logger.warning(
                "sfu: no answer to sfu_publish %d in %.0f s: sending the next",
                unanswered[0],
                ANSWER_SECONDS,
            )
            self._unanswered = None
        return True

    async def _request(self, offer: SessionDescription, *, end: bool) -> SessionDescription:
        """Send ``offer`` (and, ``end``, the end of its candidates) and wait for the answer.
        ``CancelledError`` when a newer publish or a close interrupted the wait."""
        ref = self._host.next_ref()
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[SessionDescription] = loop.create_future()
        self._waiting = (ref, answer)
        self._unanswered = (ref, loop.create_future())
        try:
            self._host.send(SfuPublish(type="sfu_publish", description=offer, ref=ref))
            if end:
                self._host.send(SfuCandidate(type="sfu_candidate", pc="publisher", candidate=None))
            async with asyncio.timeout(ANSWER_SECONDS):
                return await asyncio.shield(answer)
        finally:
            self._waiting = None

    async def _apply_pause(self) -> None:
        if self.publisher is not None:
            pause_senders(self.publisher, self._host.paused_kinds(), self._paused)

    async def _drop_publisher(self) -> None:
        pc, self.publisher = self.publisher, None
        proxies, self._proxies = self._proxies, []
        self._paused = {}
        if pc is not None:
            await pc.close()
        for proxy in proxies:
            proxy.stop()

    # ------------------------------------------------------------------ receiving

    async def _answer(self, message: SfuOffer) -> None:
        first = self.subscriber is None
        if self.subscriber is None:
            pc = self.subscriber = self._new_pc()
            pc.on("track", lambda track: self._on_receiver(pc, track))
        pc = self.subscriber
        self._streams = {s.mid: s for s in message.streams} if self._receive else {}
        await pc.setRemoteDescription(RTCSessionDescription(message.description.sdp, "offer"))
        if not self._receive:
            for transceiver in pc.getTransceivers():
                transceiver.direction = "inactive"
        await pc.setLocalDescription(await pc.createAnswer())
        answer = SessionDescription(type="answer", sdp=pc.localDescription.sdp)
        self._host.send(SfuSubscribe(type="sfu_subscribe", description=answer))
        if first:
            self._host.send(SfuCandidate(type="sfu_candidate", pc="subscriber", candidate=None))
        self.subscribed += 1
        self._reassign()

    def _on_receiver(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        if pc is not self.subscriber:
            return
        mid = next((t.mid for t in pc.getTransceivers() if t.receiver.track is track), None)
        if mid is None:
            return
        pump = asyncio.ensure_future(self._pump(mid, track))
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)

    async def _pump(self, mid: str, track: MediaStreamTrack) -> None:
        """Hand what the receiver of ``mid`` decodes to the member track it feeds now."""
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if not isinstance(frame, Frame):
                    continue  # a receiver's track decodes: never an encoded packet
                if mid not in self._owners:
                    self._reassign()  # the track event came after the offer was answered
                owner = self._owners.get(mid)
                if owner is not None:
                    owner.feed(frame)

    def _reassign(self) -> None:
        """Give every m-line that carries media the member track of its stream: a member
        track is made when an m-line starts carrying someone, and ended when it stops."""
        pc = self.subscriber
        receivers = {t.mid: t.receiver.track for t in pc.getTransceivers()} if pc else {}
        for mid in list(self._owners):
            stream = self._streams.get(mid)
            remote = self.remotes.get(stream.member) if stream is not None else None
            if remote is None or self._owners[mid] not in remote.remote_tracks:
                self._disown(mid)  # gone, or carrying someone else now
        for mid, stream in self._streams.items():
            if mid in self._owners or receivers.get(mid) is None or pc is None:
                continue
            remote = self.remotes.get(stream.member)
            if remote is None:
                member = self._host.member(stream.member)
                if member is None:
                    continue  # not (or no longer) in the room: nothing to show
                remote = self.remotes[stream.member] = SfuRemote(member, pc)
            track = self._owners[mid] = SfuTrack(stream.kind, screen=stream.screen)
            remote.remote_tracks.append(track)
            self._host.track_arrived(remote, track)

    def _disown(self, mid: str) -> None:
        """The m-line no longer carries its member's media: that track ends, and leaves the
        member's ``remote_tracks`` (a later one of the same kind is its first again)."""
        owner = self._owners.pop(mid, None)
        if owner is None:
            return
        owner.end()
        for remote in self.remotes.values():
            if owner in remote.remote_tracks:
                remote.remote_tracks.remove(owner)

    def _close_remote(self, member_id: str) -> None:
        remote = self.remotes.pop(member_id, None)
        if remote is None:
            return
        remote.closed = True
        for mid, owner in list(self._owners.items()):
            if owner in remote.remote_tracks:
                self._disown(mid)
        self._host.remote_closed(remote)

    async def _drop_subscriber(self) -> None:
        pc, self.subscriber = self.subscriber, None
        for mid in list(self._owners):
            self._disown(mid)
        self._streams = {}
        for member_id in list(self.remotes):
            self._close_remote(member_id)
        for pump in list(self._pumps):
            pump.cancel()
        if pc is not None:
            await pc.close()


class SfuRefused(Exception):
    """The server answered our ``sfu_publish`` with an ``error``."""

    def __init__(self, error: Error) -> None:
        super().__init__(error.message)
        self.error = error
