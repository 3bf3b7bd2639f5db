"""Negotiation between two SDK peers with real aiortc on this machine, signals passed in
memory (no server): the first offer, glare (aiortc cannot roll back) and recovery
(``rejected`` then ``reset``), docs/PROTOCOL.md §3.4 and §4.1."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiortc import (
    AudioStreamTrack,
    MediaStreamError,
    MediaStreamTrack,
    RTCConfiguration,
    VideoStreamTrack,
)
from aiortc.contrib.media import MediaRelay

from salon.client.peer import Peer, SignalPart
from salon.client.sdp import extension_ids, keep_extension_ids
from salon.protocol.messages import (
    DescriptionRejected,
    IceCandidate,
    PeerReset,
    SessionDescription,
    SignalRelay,
)
from tests.unit.client_fake import member
from tests.unit.test_client_sdp import CHROMIUM, MID

pytestmark = pytest.mark.timeout(60)


class Side:
    """A :class:`PeerHost` for one side of the pair: its signals go to the other side."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.peer: Peer | None = None
        self.other: Side | None = None
        self.frames = 0
        self.kinds: list[str] = []  # of the tracks received, in order
        self.arrived = asyncio.Event()  # set at each track received
        self.counted = asyncio.Event()  # set at each frame received
        self.source = VideoStreamTrack()
        self.relay = MediaRelay()
        self.sent: list[SignalPart] = []
        self.readers: set[asyncio.Task[None]] = set()
        self.held: list[SignalRelay] | None = None  # signals kept back (``hold``)
        self.signalled = asyncio.Event()  # set at each signal sent

    def send_signal(self, to: str, part: SignalPart) -> None:
        part = self.rewrite(part)
        self.sent.append(part)
        self.signalled.set()
        fields: dict[str, object] = {"from": self.name}
        key = {
            SessionDescription: "description",
            IceCandidate: "candidate",
            DescriptionRejected: "rejected",
            PeerReset: "reset",
        }[type(part)]
        fields[key] = part.model_dump()
        relay = SignalRelay.model_validate({"type": "signal", **fields}, strict=False)
        if self.held is not None:
            self.held.append(relay)
            return
        assert self.other is not None and self.other.peer is not None
        asyncio.get_running_loop().call_soon(self.other.peer.receive, relay)

    def hold(self) -> None:
        """Keep this side's signals back until :meth:`flush`."""
        self.held = []

    def flush(self) -> None:
        """Deliver the signals kept back all at once, as a resume does with what was kept
        for a member (websockets hands over buffered frames without yielding)."""
        held, self.held = self.held or [], None
        assert self.other is not None and self.other.peer is not None
        for relay in held:
            self.other.peer.receive(relay)

    def stop(self) -> None:
        self.source.stop()

    def rewrite(self, part: SignalPart) -> SignalPart:
        """What the wire makes of ``part`` (nothing here)."""
        return part

    def configuration(self) -> RTCConfiguration:
        return RTCConfiguration(iceServers=[])  # host candidates only: no STUN lookup

    def shared_tracks(self) -> list[MediaStreamTrack]:
        return [self.relay.subscribe(self.source, buffered=False)]

    def paused_kinds(self) -> frozenset[str]:
        return frozenset()

    def track_arrived(self, peer: Peer, track: MediaStreamTrack) -> None:
        self.kinds.append(track.kind)
        self.arrived.set()
        if track.kind != "video":
            return
        task = asyncio.ensure_future(self._count(track))
        self.readers.add(task)
        task.add_done_callback(self.readers.discard)

    async def _count(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames += 1
                self.counted.set()


class ChromiumLike(Side):
    """A side whose offers number the RTP header extensions as Chromium does (aiortc uses
    whatever ids the answer mirrors, so the text sent is all that changes)."""

    def rewrite(self, part: SignalPart) -> SignalPart:
        if isinstance(part, SessionDescription) and part.type == "offer":
            return part.model_copy(update={"sdp": keep_extension_ids(part.sdp, CHROMIUM)})
        return part


class TwoCameras(Side):
    """A side that sends two video tracks (a camera and a screen, say)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.screen = VideoStreamTrack()

    def shared_tracks(self) -> list[MediaStreamTrack]:
        return [*super().shared_tracks(), self.relay.subscribe(self.screen, buffered=False)]

    def stop(self) -> None:
        super().stop()
        self.screen.stop()


@contextlib.asynccontextmanager
async def pair(
    impolite_side: type[Side] = Side, polite_side: type[Side] = Side
) -> AsyncIterator[tuple[Side, Side]]:
    """``impolite``, ``polite``: the impolite side offers first."""
    impolite, polite = impolite_side("a"), polite_side("b")
    impolite.other, polite.other = polite, impolite
    polite.peer = Peer(member("a", polite=True), polite)
    impolite.peer = Peer(member("b", polite=False), impolite)
    try:
        yield impolite, polite
    finally:
        for side in (impolite, polite):
            assert side.peer is not None
            await side.peer.close()
            side.stop()
            for task in side.readers:
                task.cancel()


async def flowing(*sides: Side, timeout: float = 15) -> None:
    """Frames rise on every side (10 more than now)."""
    start = [s.frames for s in sides]
    async with asyncio.timeout(timeout):
        for side, count in zip(sides, start, strict=True):
            while side.frames < count + 10:
                side.counted.clear()
                await side.counted.wait()


async def stable(*sides: Side) -> None:
    await asyncio.gather(*(s.peer.wait_stable(15) for s in sides if s.peer is not None))


async def test_the_impolite_side_offers_first_and_media_flows() -> None:
    async with pair() as (impolite, polite):
        await flowing(impolite, polite)
        offers = [p for p in impolite.sent if isinstance(p, SessionDescription)]
        assert offers[0].type == "offer"
        assert not [p for p in polite.sent if getattr(p, "type", "") == "offer"]


async def test_glare_between_two_sdk_peers_settles_with_media() -> None:
    async with pair() as (impolite, polite):
        await flowing(impolite, polite)
        assert impolite.peer is not None and polite.peer is not None
        for _ in range(3):
            impolite.peer.renegotiate()
            polite.peer.renegotiate()
            await stable(impolite, polite)
        await flowing(impolite, polite)
        assert polite.peer.collisions >= 1 and impolite.peer.collisions >= 1
        assert polite.peer.replaced >= 1  # it cannot roll back: a new connection answered
        assert impolite.peer.pc.connectionState == polite.peer.pc.connectionState == "connected"


async def test_a_description_that_fails_is_rejected_then_the_pair_is_reset() -> None:
    async with pair() as (impolite, polite):
        await flowing(impolite, polite)
        assert impolite.peer is not None and polite.peer is not None
        # An m-line without ICE credentials (RFC 8839 §5.4): aiortc refuses it.
        sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        broken = SignalRelay.model_validate(
            {"type": "signal", "from": "a", "description": {"type": "offer", "sdp": sdp}}
        )
        polite.peer.receive(broken)
        await stable(impolite, polite)
        await flowing(impolite, polite)
        assert any(isinstance(p, DescriptionRejected) for p in polite.sent)
        resets = [p for p in impolite.sent if isinstance(p, PeerReset)]
        assert [r.reason for r in resets] == ["rejected"]
        assert not any(isinstance(p, PeerReset) for p in polite.sent)  # only impolite resets


async def test_a_reset_and_the_new_connections_signals_arriving_together() -> None:
    """§4.1: after a reset, the signals of the connection that replaced the old one are its
    own, also when they arrive with the reset in one go (kept during an absence, say). They
    were once retired with the old connection when the reset was handled: the next offer of
    the new connection was dropped as stale and the pair stayed in have-local-offer."""
    async with pair() as (impolite, polite):
        await flowing(impolite, polite)
        assert impolite.peer is not None and polite.peer is not None
        impolite.hold()
        sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
        broken = SignalRelay.model_validate(
            {"type": "signal", "from": "a", "description": {"type": "offer", "sdp": sdp}}
        )
        polite.peer.receive(broken)  # rejected: the impolite side resets and offers anew
        async with asyncio.timeout(15):
            while not any(isinstance(p, SessionDescription) for p in _after_reset(impolite)):
                impolite.signalled.clear()
                await impolite.signalled.wait()
        impolite.flush()
        await stable(impolite, polite)
        await flowing(impolite, polite)
        impolite.peer.renegotiate()  # the new connection's next offer is heard
        await stable(impolite, polite)
        await flowing(impolite, polite)


def _after_reset(side: Side) -> list[SignalPart]:
    resets = [i for i, p in enumerate(side.sent) if isinstance(p, PeerReset)]
    return side.sent[resets[-1] + 1 :] if resets else []


async def test_a_later_offer_keeps_the_extension_ids_the_first_offer_chose() -> None:
    """RFC 8285 §6: the polite side's first offer of its own (a track added after it
    answered) keeps the ``a=extmap`` ids of the other side's offer, not aiortc's own."""
    async with pair(ChromiumLike) as (impolite, polite):
        await flowing(impolite, polite)
        assert impolite.peer is not None and polite.peer is not None
        first = next(p for p in impolite.sent if isinstance(p, SessionDescription))
        chosen = extension_ids(first.sdp)
        assert chosen[MID] == CHROMIUM[MID] != 1  # not aiortc's numbering
        tone = AudioStreamTrack()
        try:
            polite.peer.add_track(tone)
            await stable(impolite, polite)
            offers = [p for p in polite.sent if getattr(p, "type", "") == "offer"]
            assert len(offers) == 1
            assert extension_ids(offers[0].sdp).items() <= chosen.items()
            await flowing(impolite, polite)
            assert "audio" in impolite.kinds  # the new track arrived
            assert impolite.peer.replaced == polite.peer.replaced == 0
        finally:
            tone.stop()


async def test_a_second_or_cancelled_close_waits_for_the_connection_to_close() -> None:
    async with pair() as (impolite, polite):
        await flowing(impolite, polite)
        assert impolite.peer is not None
        pc = impolite.peer.pc
        first = asyncio.ensure_future(impolite.peer.close())
        await asyncio.sleep(0)
        first.cancel()  # its caller gave up: the closing goes on
        await impolite.peer.close()
        assert pc.iceConnectionState == "closed"
        assert first.cancelled()


async def test_the_polite_side_sends_more_tracks_than_the_first_offer_had_m_lines() -> None:
    """The first offer (one video m-line) leaves the polite side's second video track out:
    it answers (aiortc alone would fail that answer), then offers that track itself."""
    async with pair(polite_side=TwoCameras) as (impolite, polite):
        await flowing(impolite, polite)
        await stable(impolite, polite)
        assert impolite.peer is not None and polite.peer is not None
        async with asyncio.timeout(15):
            while impolite.kinds.count("video") < 2:
                impolite.arrived.clear()
                await impolite.arrived.wait()
        await stable(impolite, polite)
        assert impolite.peer.replaced == polite.peer.replaced == 0
        assert not any(isinstance(p, DescriptionRejected | PeerReset) for p in polite.sent)


def test_an_extmap_id_that_is_not_an_ascii_number_is_not_a_mapping() -> None:
    """A peer's description is anyone's text: ``"²"`` passes ``str.isdigit()`` but not
    ``int()``; such a line maps nothing instead of failing the peer's negotiation."""
    sdp = "v=0\r\na=extmap:²/sendrecv urn:x\r\na=extmap:3 urn:y\r\n"
    assert extension_ids(sdp) == {"urn:y": 3}
