"""One ``RTCPeerConnection`` toward one remote member, negotiated with perfect negotiation.

docs/PROTOCOL.md §3.4 and §4.1; W3C webrtc-pc §10.7 ("Perfect negotiation example"). The
server says which side of each pair is polite. Every step of a pair (a signal received, an
offer to make) runs in one task, one at a time, in order of arrival.

aiortc differs from a browser in four ways this module makes up for:

- **No ``negotiationneeded``.** The SDK offers itself: when a track is added, on
  :meth:`Peer.renegotiate`, and when a track is still without an m-line after a negotiation.
  As in the browser client, the impolite side makes the first offer (with ``recvonly``
  transceivers when it has nothing to send), and the polite side offers only once it has a
  remote description.
- **No rollback** (webrtc-pc §4.4.1.5). When an offer collides with ours, the impolite side
  ignores it, as the pattern says. The polite side cannot roll its own offer back, so it closes
  that ``RTCPeerConnection``, opens a new one with the same tracks, applies the remote offer to
  it and answers (PROTOCOL.md §4.1, "A client that cannot roll back"). The answer carries new
  ICE credentials and a new DTLS fingerprint; a browser takes it as an ICE and DTLS restart of
  its side (measured with Chromium: media back within about 2 s).
- **No ICE restart.** An offer with new ICE credentials is answered from a new connection the
  same way. An *answer* with new credentials cannot be applied to a running aiortc transport:
  it counts as a description that failed (the impolite side rebuilds and sends ``reset``, the
  polite side sends ``rejected``).
- **Extension ids renumbered.** aiortc numbers the RTP header extensions of each offer it
  makes afresh (``a=extmap``), even after the other side's offer chose other ids; Chromium
  refuses such an offer (RFC 8285 §6: no reassignment within a session). The SDK's offers
  keep the ids already negotiated on that connection
  (:func:`salon.client.sdp.keep_extension_ids`).

Candidates: aiortc gathers every local candidate before ``setLocalDescription`` returns, so
they travel in the SDP and none is trickled (allowed by §4.1); trickled remote candidates are
added with ``addIceCandidate`` (held until a remote description is set).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Literal, Protocol

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpHeaderExtensionParameters,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.stats import RTCStatsReport

from salon.client.media import pause_senders
from salon.client.remotes import RemoteConnections
from salon.client.sdp import (
    extension_ids,
    ice_ufrags,
    keep_extension_ids,
    negotiated_extension_ids,
    to_aiortc,
    transport_identity,
    with_origin,
)
from salon.protocol.messages import (
    DescriptionRejected,
    IceCandidate,
    MemberInfo,
    PeerReset,
    SessionDescription,
    SignalRelay,
)

logger = logging.getLogger("salon.client")

ResetReason = Literal["ice_failed", "description_failed", "rejected"]
DescriptionKind = Literal["offer", "answer"]

SignalPart = SessionDescription | IceCandidate | DescriptionRejected | PeerReset
"""The one payload of a ``signal`` (PROTOCOL.md §4.1)."""

REBUILDS_PER_MINUTE = 3  # PROTOCOL.md §4.1: a side rebuilds a pair at most three times a minute
MAX_REJECTED_MESSAGE = 256  # characters of ``rejected.message`` (§4.1)
TRAIL_LENGTH = 40
CLOSE_SECONDS = 10.0  # the longest close() waits for the negotiation step under way
CLOSED_GRACE = 5.0  # seconds a connection closed by the other side waits for its successor


class PeerHost(Protocol):
    """What a :class:`Peer` needs from its client."""

    def send_signal(self, to: str, part: SignalPart) -> None:
        """Queue a ``signal`` to member ``to``."""

    def configuration(self) -> RTCConfiguration:
        """The configuration of a new ``RTCPeerConnection`` (the ICE servers of ``welcome``)."""

    def shared_tracks(self) -> list[MediaStreamTrack]:
        """Fresh handles on the client-wide tracks, for one new connection."""

    def paused_kinds(self) -> frozenset[str]:
        """Kinds (``audio``/``video``) a host muted: not sent until turned on again."""

    def track_arrived(self, peer: Peer, track: MediaStreamTrack) -> None:
        """A remote track arrived on ``peer.pc``."""


Job = Callable[[], Awaitable[None]]


class Peer:
    """The SDK's side of one pair of the mesh (docs/PROTOCOL.md §3.4, §4.1).

    ``member`` is the remote member as last announced (``MemberInfo``: id, name, polite,
    media; updated on ``media`` and ``member_resumed``); ``polite`` whether this side is the
    polite one toward it (the server's ``MemberInfo.polite``); ``pc`` the current
    ``RTCPeerConnection`` — a new object after a glare while polite, an ICE restart offer, a
    ``reset`` from the other side, or a failed description (§4.1), so read it again rather
    than keeping it; ``remote_tracks`` the tracks received on the current ``pc``, in order of
    arrival (``kind`` ``"audio"`` or ``"video"``; a new ``pc`` starts an empty list, the old
    tracks end, and :meth:`Client.on_track` handlers run again for the new ones).
    ``replaced`` counts the connections replaced so far, ``collisions`` the remote offers that
    met one of ours (glare); ``trail`` holds the last negotiation steps (for logs and tests).
    """

    def __init__(self, member: MemberInfo, host: PeerHost) -> None:
        self.member = member
        self.polite = member.polite
        self.remote_tracks: list[MediaStreamTrack] = []
        self.replaced = 0
        self.collisions = 0
        self.trail: deque[str] = deque(maxlen=TRAIL_LENGTH)
        self._host = host
        self._own: list[MediaStreamTrack] = []  # this peer's tracks (Peer.add_track)
        self._proxies: list[MediaStreamTrack] = []  # the shared tracks' handles on this pc
        self._paused: dict[RTCRtpTransceiver, MediaStreamTrack] = {}
        self._jobs: asyncio.Queue[Job | None] = asyncio.Queue()  # None: stop
        self._settled = asyncio.Event()
        self._offer_wanted = False
        self._awaiting_reset = False  # polite and said `rejected`: no offer until a reset
        self._held: list[IceCandidate] = []  # candidates before any remote description
        self._candidates: list[IceCandidate] = []  # added to this pc, for a replacement
        self._remotes = RemoteConnections()
        self._rebuilds: deque[float] = deque()
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._busy = False
        self._session = secrets.randbits(62)
        self._version = 0
        self.pc = self._new_pc()
        self._worker = asyncio.create_task(self._work(), name=f"salon peer {member.id}")
        if host.paused_kinds():
            self.sync_paused()  # a host muted us before this member came
        if not self.polite:
            self.renegotiate()  # the impolite side makes the first offer

    @property
    def id(self) -> str:
        """The remote member's id."""
        return self.member.id

    @property
    def closed(self) -> bool:
        """True once the peer is closed for good (the member left, the client closed)."""
        return self._closed

    # ------------------------------------------------------------------ public

    def add_track(self, track: MediaStreamTrack) -> None:
        """Send ``track`` to this member only (besides the client-wide tracks of
        :meth:`Client.add_track`), now and on every later ``pc``; renegotiates. A track
        whose ``readyState`` is ``"ended"`` is left out of later connections."""
        if self._closed:
            return
        self._own.append(track)
        self._enqueue(lambda: self._attach(track))
        self.renegotiate()

    def add_shared(self, proxy: MediaStreamTrack) -> None:
        """(Internal) a handle on a client-wide track added after this peer was made."""
        if self._closed:
            proxy.stop()
            return
        self._proxies.append(proxy)
        self._enqueue(lambda: self._attach(proxy))
        self.renegotiate()

    def remove_track(self, track: MediaStreamTrack) -> None:
        """Stop sending ``track`` to this member (its m-line stays, receiving only);
        renegotiates. Unknown tracks are ignored."""
        if track in self._own:
            self._own.remove(track)
            self._enqueue(lambda: self._detach(track))
            self.renegotiate()

    def renegotiate(self) -> None:
        """Make a new offer as soon as the pair is ``stable`` (aiortc has no
        ``negotiationneeded`` event, W3C webrtc-pc §4.7.3: the SDK offers itself after
        :meth:`add_track`). Public so tests can provoke glare. Returns at once; a polite side
        that has no remote description yet waits for the impolite side's first offer."""
        if self._closed:
            return
        self._offer_wanted = True
        self._enqueue(self._maybe_offer)

    async def stats(self) -> RTCStatsReport:
        """``pc.getStats()`` of the current connection (W3C webrtc-stats §3): a dict of
        ``inbound-rtp``/``outbound-rtp``/``remote-inbound-rtp``/``transport`` entries by id."""
        return await self.pc.getStats()

    async def wait_stable(self, timeout: float = 10) -> None:  # noqa: ASYNC109
        """Return once nothing is left to handle and ``pc.signalingState`` is ``stable``
        (webrtc-pc §4.3.1); ``TimeoutError`` after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            while not self._is_settled():
                await self._settled.wait()
                self._settled.clear()

    async def close(self) -> None:
        """Close the connection for good (``pc.close()``) and stop its tracks' handles.
        The closing runs in a task of its own: every call waits for the same, and
        cancelling a caller does not cut it short (a ``pc.close()`` cut short leaves UDP
        sockets open for good)."""
        if self._closing is None:
            self._closed = True
            self._closing = asyncio.ensure_future(self._shut_down())
        await asyncio.shield(self._closing)

    async def _shut_down(self) -> None:
        # The step under way ends first: cancelled inside aiortc's candidate gathering, it
        # would leave UDP sockets open for good.
        self._jobs.put_nowait(None)
        try:
            async with asyncio.timeout(CLOSE_SECONDS):
                await asyncio.shield(self._worker)
        except TimeoutError:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        await self._drop_pc(self.pc)
        self._settled.set()

    # ------------------------------------------------------------------ input

    def receive(self, relay: SignalRelay) -> None:
        """Handle a ``signal`` from the member, after everything received before it."""
        if self._closed or self._remotes.stale(relay):
            return
        if relay.reset is not None:
            # Retired now, in the order signals arrive: what comes after the reset is the new
            # connection's, even when it arrives before the reset is handled (§4.1).
            self._remotes.retire()
        else:
            self._remotes.remember(relay)
        self._enqueue(lambda: self._handle(relay))

    def set_member(self, member: MemberInfo) -> None:
        """The member as the server announced it again (its ``polite`` never changes)."""
        self.member = member

    def sync_paused(self) -> None:
        """Apply the client's muted kinds to the current connection's senders."""
        self._enqueue(self._apply_pause)

    # ------------------------------------------------------------------ the worker

    def _enqueue(self, job: Job) -> None:
        self._settled.clear()
        self._jobs.put_nowait(job)

    def _is_settled(self) -> bool:
        return self._closed or (
            self._jobs.empty() and not self._busy and self.pc.signalingState == "stable"
        )

    async def _work(self) -> None:
        while True:
            job = await self._jobs.get()
            if job is None:
                return
            if self._closed:
                continue
            self._busy = True
            try:
                await job()
            except Exception:
                logger.exception("peer %s: a negotiation step failed", self.id)
            finally:
                self._busy = False
            if self._jobs.empty():
                self._settled.set()

    def _note(self, step: str) -> None:
        self.trail.append(f"{step} [{self.pc.signalingState}]")
        logger.debug("peer %s: %s", self.id, step)

    # ------------------------------------------------------------------ connections

    def _new_pc(self) -> RTCPeerConnection:
        pc = RTCPeerConnection(self._host.configuration())
        self._proxies = self._host.shared_tracks()
        self._own = [t for t in self._own if t.readyState != "ended"]
        tracks = self._proxies + self._own
        for track in tracks:
            pc.addTrack(track)
        if not self.polite:
            # Something to offer even with nothing to send (the first offer is ours).
            for kind in ("audio", "video"):
                if not any(t.kind == kind for t in tracks):
                    pc.addTransceiver(kind, direction="recvonly")
        pc.on("track", lambda track: self._on_track(pc, track))
        pc.on("connectionstatechange", lambda: self._on_connection_state(pc))
        self.remote_tracks = []
        self._paused = {}
        self._candidates = []
        self._session = secrets.randbits(62)
        self._version = 0
        return pc

    async def _drop_pc(self, pc: RTCPeerConnection) -> None:
        proxies, self._proxies = self._proxies, []
        remote = self.remote_tracks if pc is self.pc else []
        await pc.close()
        for proxy in proxies:
            proxy.stop()
        for track in remote:
            _end(track)

    async def _replace_pc(self, why: str) -> RTCPeerConnection:
        """Close the current connection and open a new one with the same tracks."""
        self._note(f"replace connection: {why}")
        await self._drop_pc(self.pc)
        self.replaced += 1
        self.pc = self._new_pc()
        await self._apply_pause()
        return self.pc

    def _on_track(self, pc: RTCPeerConnection, track: MediaStreamTrack) -> None:
        if pc is not self.pc or self._closed:
            return
        self.remote_tracks.append(track)
        self._host.track_arrived(self, track)

    def _on_connection_state(self, pc: RTCPeerConnection) -> None:
        if pc is not self.pc or self._closed:
            return
        state = pc.connectionState
        self._note(f"connection {state}")
        if self.polite:
            return  # only the impolite side rebuilds (§4.1)
        if state == "failed":
            # aiortc cannot restart ICE: the impolite side rebuilds (§4.1, ice_failed).
            self._enqueue(lambda: self._rebuild("ice_failed"))
        elif state == "closed":
            # Not by us: the other side's DTLS close ended it (aiortc then closes itself).
            # Its new connection's signals normally follow; if none has replaced this one
            # after a moment, rebuild.
            loop = asyncio.get_running_loop()
            loop.call_later(CLOSED_GRACE, lambda: self._enqueue(lambda: self._if_dead(pc)))

    async def _if_dead(self, pc: RTCPeerConnection) -> None:
        if pc is self.pc and not self._closed:
            await self._rebuild("ice_failed")

    # ------------------------------------------------------------------ offers

    async def _maybe_offer(self) -> None:
        pc = self.pc
        if self._closed or self._awaiting_reset or pc.signalingState != "stable":
            return
        if self.polite and pc.remoteDescription is None:
            return  # the impolite side makes the first offer
        if not (self._offer_wanted or _unsent(pc)):
            return
        self._offer_wanted = False
        self._note("make offer")
        offer = await pc.createOffer()
        sdp = keep_extension_ids(offer.sdp, negotiated_extension_ids(pc))
        _use_extension_ids(pc, extension_ids(sdp))
        await pc.setLocalDescription(RTCSessionDescription(sdp=sdp, type="offer"))  # gathers
        if pc is self.pc:
            self._send_description(pc)

    def _send_description(self, pc: RTCPeerConnection) -> None:
        local = pc.localDescription
        self._version += 1
        sdp = with_origin(local.sdp, self._session, self._version)
        self._note(f"send {local.type}")
        description = SessionDescription.model_validate({"type": local.type, "sdp": sdp})
        self._host.send_signal(self.id, description)

    async def _attach(self, track: MediaStreamTrack) -> None:
        pc = self.pc
        wanted = track in self._own or track in self._proxies
        if wanted and all(s.track is not track for s in pc.getSenders()):
            pc.addTrack(track)
            await self._apply_pause()

    async def _detach(self, track: MediaStreamTrack) -> None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.sender.track is track or self._paused.get(transceiver) is track:
                self._paused.pop(transceiver, None)
                transceiver.sender.replaceTrack(None)
                transceiver.direction = "recvonly"

    async def _apply_pause(self) -> None:
        pause_senders(self.pc, self._host.paused_kinds(), self._paused)

    # ------------------------------------------------------------------ signals

    async def _handle(self, relay: SignalRelay) -> None:
        if self._closed:
            return
        if relay.description is not None:
            await self._on_description(relay.description)
        elif relay.candidate is not None:
            await self._on_candidate(relay.candidate)
        elif relay.rejected is not None:
            self._note(f"our {relay.rejected.type} was rejected: {relay.rejected.message}")
            if not self.polite:
                await self._rebuild("rejected")
        elif relay.reset is not None:
            await self._on_reset(relay.reset)

    async def _on_description(self, description: SessionDescription) -> None:
        if description.type == "answer":
            await self._on_answer(description)
        elif description.type == "offer":
            await self._on_offer(description)
        else:
            self._note(f"remote {description.type} ignored")  # rollback is local (§4.1)

    async def _on_answer(self, answer: SessionDescription) -> None:
        pc = self.pc
        current = pc.remoteDescription
        replaced = pc.signalingState == "closed" or (
            current is not None
            and transport_identity(current.sdp) != transport_identity(answer.sdp)
        )
        if replaced:
            # The other side answered from a new connection (an aiortc peer that met glare
            # while polite): its DTLS close ended ours, or its new ICE credentials cannot be
            # applied to our running transport. Start over: a new connection and an offer,
            # which the other side answers from a new connection of its own.
            await self._start_over(answer)
            return
        if pc.signalingState != "have-local-offer":
            self._note("answer without an offer of ours dropped")  # §4.1: a leftover
            return
        self._note("remote answer")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer.sdp, type="answer"))
        except Exception as exc:  # aiortc raises several kinds for a bad description
            await self._failed("answer", exc)
            return
        await self._add_held(pc)
        await self._maybe_offer()

    async def _on_offer(self, offer: SessionDescription) -> None:
        pc = self.pc
        collision = pc.signalingState != "stable"
        self.collisions += collision
        if collision and not self.polite:
            self._note("remote offer (collision) ignored")  # webrtc-pc §10.7, impolite
            return
        current = pc.remoteDescription
        restart = current is not None and transport_identity(current.sdp) != transport_identity(
            offer.sdp
        )
        self._note(f"remote offer{' (collision)' if collision else ''}")
        if collision or restart:
            pc = await self._replace_pc("glare while polite" if collision else "ICE restart")
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer.sdp, type="offer"))
            answer = await pc.createAnswer()
            _not_offered(pc)
            await pc.setLocalDescription(answer)
        except Exception as exc:  # aiortc raises several kinds for a bad description
            await self._failed("offer", exc)
            return
        self._awaiting_reset = False
        self._send_description(pc)
        await self._add_held(pc)
        if collision or restart:
            await self._add_known(pc, offer.sdp)
        await self._maybe_offer()

    async def _start_over(self, answer: SessionDescription) -> None:
        if self.polite:
            await self._failed("answer", "the answer is for a connection replaced meanwhile")
            return
        await self._replace_pc("the other side answered from a new connection")
        self._offer_wanted = True
        await self._maybe_offer()

    async def _on_candidate(self, candidate: IceCandidate) -> None:
        pc = self.pc
        if pc.remoteDescription is None:
            self._held.append(candidate)
            return
        await self._add_candidate(pc, candidate)

    async def _add_candidate(self, pc: RTCPeerConnection, candidate: IceCandidate) -> None:
        ufrags = ice_ufrags(pc.remoteDescription.sdp)
        ufrag = candidate.usernameFragment
        if ufrag is not None and ufrags and ufrag not in ufrags:
            self._note("candidate of another description dropped")  # an ignored offer's
            return
        try:
            parsed = to_aiortc(candidate)
            await pc.addIceCandidate(parsed)
        except Exception as exc:  # a candidate never breaks the pair (§4.1)
            self._note(f"candidate refused: {exc}")
            return
        self._candidates.append(candidate)

    async def _add_held(self, pc: RTCPeerConnection) -> None:
        held, self._held = self._held, []
        for candidate in held:
            await self._add_candidate(pc, candidate)

    async def _add_known(self, pc: RTCPeerConnection, sdp: str) -> None:
        """Give a replacing connection the trickled candidates its offer does not repeat."""
        known = [c for c in self._candidates if c.candidate and c.candidate not in sdp]
        self._candidates = []
        for candidate in known:
            await self._add_candidate(pc, candidate)

    # ------------------------------------------------------------------ recovery

    async def _failed(self, kind: DescriptionKind, error: object) -> None:
        """A description of theirs did not apply here (§4.1, "Recovering a pair")."""
        message = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self._note(f"{kind} did not apply: {message}")
        if self.polite:
            self._awaiting_reset = True
            rejected = DescriptionRejected(type=kind, message=message[:MAX_REJECTED_MESSAGE])
            self._host.send_signal(self.id, rejected)
        else:
            await self._rebuild("description_failed")

    async def _rebuild(self, reason: ResetReason) -> None:
        """Impolite side: a new connection, then ``reset`` (§4.1), then our offer."""
        now = time.monotonic()
        while self._rebuilds and now - self._rebuilds[0] > 60:
            self._rebuilds.popleft()
        if len(self._rebuilds) >= REBUILDS_PER_MINUTE:
            logger.warning(
                "peer %s: rebuilt %d times this minute; giving up", self.id, REBUILDS_PER_MINUTE
            )
            return
        self._rebuilds.append(now)
        self._retire()
        await self._replace_pc(f"rebuild ({reason})")
        self._host.send_signal(self.id, PeerReset(reason=reason))
        self._offer_wanted = True
        await self._maybe_offer()

    async def _on_reset(self, reset: PeerReset) -> None:
        self._note(f"reset ({reset.reason})")
        self._held = []  # the old connection's candidates (receive retired its signals)
        self._awaiting_reset = False
        await self._replace_pc(f"reset from the other side ({reset.reason})")
        if not self.polite:  # not expected (only the impolite side resets), but recover
            self._offer_wanted = True
            await self._maybe_offer()

    def _retire(self) -> None:
        self._remotes.retire()
        self._held = []


def _not_offered(pc: RTCPeerConnection) -> None:
    """Mark our transceivers that the remote offer has no m-line for as not negotiated.

    aiortc (1.16) sets an answer by intersecting each transceiver's direction with the one
    offered for it (RFC 3264 §6.1), and fails (``ValueError: None is not in list``) on a
    transceiver the offer left out: ours when we have more tracks of a kind than the offer
    has m-lines of it (two video tracks, say). Such a transceiver stays ``inactive`` until
    our own offer, which follows the answer (:func:`_unsent`), gives it an m-line."""
    for transceiver in pc.getTransceivers():
        if transceiver.mid is None and transceiver._offerDirection is None:
            transceiver._offerDirection = "inactive"


def _unsent(pc: RTCPeerConnection) -> bool:
    """A track of ours has no m-line yet (added after the last offer, or the remote offer we
    answered had too few m-lines of its kind)."""
    return any(
        t.sender.track is not None and t.mid is None and not t.stopped for t in pc.getTransceivers()
    )


def _end(track: MediaStreamTrack) -> None:
    """End a remote track of a closed connection so that a ``recv()`` waiting on it raises
    ``MediaStreamError``: aiortc ends one only when its decoder ran, and a connection
    replaced before media flowed leaves its readers waiting for good. aiortc's
    ``RemoteStreamTrack`` ends on a ``None`` in its queue."""
    queue = getattr(track, "_queue", None)
    if isinstance(queue, asyncio.Queue) and track.readyState == "live":
        queue.put_nowait(None)


def _use_extension_ids(pc: RTCPeerConnection, ids: Mapping[str, int]) -> None:
    """Give aiortc's transceivers the extension ids the offer now says.

    ``createOffer`` resets each transceiver's extensions to aiortc's own numbering, and its
    senders configure the connection's one RTP header-extension map from them: left so, the
    map would read a Chromium audio-level byte as a ``mid`` (a private aiortc field, as
    ``_offerDirection`` above; pinned by tests/e2e/test_bots.py's echo in a room)."""
    for transceiver in pc.getTransceivers():
        transceiver._headerExtensions = [
            RTCRtpHeaderExtensionParameters(id=ids[x.uri], uri=x.uri)
            for x in transceiver._headerExtensions
            if x.uri in ids
        ]
