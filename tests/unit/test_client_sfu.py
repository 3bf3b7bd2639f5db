"""The SDK's connections to the SFU (docs/PROTOCOL.md §3.10) against a host that records what
they send: the publish retried on ``sfu_unavailable`` stops when the room is left or the
client closes, and a newer publish replaces one still waiting, sent only once the one it
replaces is answered. Real aiortc connections
(local candidates only); the SFU itself is proven in tests/turn/test_sfu_rooms.py."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.mediastreams import VideoStreamTrack
from pydantic import BaseModel

from salon.client.sfu import SfuMedia, SfuRemote
from salon.protocol import ErrorCode
from salon.protocol.messages import (
    Error,
    MemberInfo,
    SessionDescription,
    SfuAnswer,
    SfuCandidate,
    SfuOffer,
    SfuPublish,
    SfuStream,
    SfuSubscribe,
)
from tests.support import local_peer_connection

pytestmark = pytest.mark.timeout(20)


class Host:
    def __init__(self) -> None:
        self.sent: list[BaseModel] = []
        self._refs = itertools.count(1)
        self._changed = asyncio.Event()
        self.asked = 0  # shared_tracks() calls: publishes begun

    def send(self, message: BaseModel) -> None:
        self.sent.append(message)
        self._changed.set()

    def next_ref(self) -> int:
        return next(self._refs)

    def configuration(self) -> RTCConfiguration:
        return RTCConfiguration(iceServers=[])  # host candidates only: no STUN lookup

    def shared_tracks(self) -> list[MediaStreamTrack]:
        self.asked += 1  # a publish makes its connection next, with no await between
        self._changed.set()
        return [VideoStreamTrack()]

    def paused_kinds(self) -> frozenset[str]:
        return frozenset()

    def member(self, member_id: str) -> MemberInfo | None:
        return None

    def track_arrived(self, remote: SfuRemote, track: MediaStreamTrack) -> None:
        pass

    def remote_closed(self, remote: SfuRemote) -> None:
        pass

    def publishes(self) -> list[SfuPublish]:
        return [m for m in self.sent if isinstance(m, SfuPublish)]

    async def until(self, check: Callable[[], bool]) -> None:
        """Wait (10 s at most) for ``check()``, looked at after each message sent."""
        async with asyncio.timeout(10):
            while not check():
                self._changed.clear()
                await self._changed.wait()


async def signaling(pc: RTCPeerConnection, state: str) -> None:
    """Wait (10 s at most) until ``pc``'s signalingState is ``state``."""
    reached = asyncio.Event()

    def changed() -> None:
        if pc.signalingState == state:
            reached.set()

    pc.on("signalingstatechange", changed)
    if pc.signalingState != state:
        async with asyncio.timeout(10):
            await reached.wait()


async def held(host: Host) -> None:
    """No second ``sfu_publish`` goes out while the first is unanswered. Nothing marks "not
    sent", so a short look: once its offer is made, one sent at once goes within
    milliseconds (aiortc gathers host candidates only)."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            await host.until(lambda: len(host.publishes()) == 2)


def unavailable(ref: int | None) -> Error:
    return Error(code=ErrorCode.SFU_UNAVAILABLE, message="the SFU does not answer", ref=ref)


async def test_closing_stops_a_publish_waiting_to_retry() -> None:
    host = Host()
    sfu = SfuMedia(host)
    sfu.start()
    await host.until(lambda: len(host.publishes()) == 1)
    assert sfu.refused(unavailable(host.publishes()[0].ref))  # ours: retried in 1 s
    # In the same loop turn as the refusal, before the publish saw it: the close is not
    # lost when the publish then starts its wait (the retry's 1 s, nor for ever).
    async with asyncio.timeout(0.8):
        await sfu.close()
    assert sfu.publisher is None
    assert len(host.publishes()) == 1
    # The end of the connection's candidates went out once, with its first offer.
    assert [m.pc for m in host.sent if isinstance(m, SfuCandidate)] == ["publisher"]


async def test_a_newer_publish_waits_for_the_answer_to_the_one_it_replaces() -> None:
    """§3.10: MUST NOT send the next ``sfu_publish`` before the previous one's answer or
    error: ``sfu_answer`` names no ref, so the answer to the replaced offer would be taken
    for the new one's. It goes when the old one is answered, and that answer is dropped."""
    host = Host()
    sfu = SfuMedia(host)
    sfu.start()
    await host.until(lambda: len(host.publishes()) == 1)
    first = sfu.publisher
    assert first is not None
    sfu.start()  # room_media again: the SFU lost its state
    await host.until(lambda: host.asked == 2)
    second = sfu.publisher
    assert second is not None and second is not first
    await signaling(second, "have-local-offer")  # its offer is made, and held:
    await held(host)
    assert first.connectionState == "closed"
    sfu.answered(SfuAnswer(description=await answer_to(host.publishes()[0])))
    await host.until(lambda: len(host.publishes()) == 2)
    assert sfu.publisher is second
    assert second.remoteDescription is None  # the first offer's answer was not applied to it
    assert sfu.published == 0
    sfu.answered(SfuAnswer(description=await answer_to(host.publishes()[1])))
    await signaling(second, "stable")
    assert sfu.published == 1
    await sfu.close()


async def test_an_error_answering_the_replaced_publish_lets_the_next_go() -> None:
    host = Host()
    sfu = SfuMedia(host)
    sfu.start()
    await host.until(lambda: len(host.publishes()) == 1)
    sfu.republish()  # a track was added
    await host.until(lambda: host.asked == 2)
    assert sfu.publisher is not None
    await signaling(sfu.publisher, "have-local-offer")
    await held(host)
    assert sfu.refused(unavailable(host.publishes()[0].ref))  # ours: the old one's answer
    await host.until(lambda: len(host.publishes()) == 2)
    assert not sfu.refused(unavailable(host.publishes()[0].ref))  # answered already
    await sfu.close()


async def test_a_publish_answer_lost_with_the_connection_is_not_waited_for() -> None:
    """``welcome.resumed.missed``: the answer may never come; the next publish goes at once."""
    host = Host()
    sfu = SfuMedia(host)
    sfu.start()
    await host.until(lambda: len(host.publishes()) == 1)
    sfu.answers_lost()
    sfu.start()  # the rebuilt place's room_media
    await host.until(lambda: len(host.publishes()) == 2)
    await sfu.close()


async def test_an_answer_that_comes_after_all_is_applied() -> None:
    """After ``answers_lost`` (a resume that missed messages) the answer may still come: the
    publish waiting for it takes it, and offers nothing again."""
    host = Host()
    sfu = SfuMedia(host)
    sfu.start()
    await host.until(lambda: len(host.publishes()) == 1)
    publisher = sfu.publisher
    assert publisher is not None
    sfu.answers_lost()
    sfu.answered(SfuAnswer(description=await answer_to(host.publishes()[0])))
    await signaling(publisher, "stable")
    assert sfu.published == 1 and len(host.publishes()) == 1
    await sfu.close()


async def test_closing_stops_a_publish_waiting_for_the_previous_answer() -> None:
    host = Host()
    sfu = SfuMedia(host)
    sfu.start()
    await host.until(lambda: len(host.publishes()) == 1)
    sfu.republish()
    await host.until(lambda: host.asked == 2)
    assert sfu.publisher is not None
    await signaling(sfu.publisher, "have-local-offer")  # now waiting for the first's answer
    async with asyncio.timeout(2):  # not after ANSWER_SECONDS
        await sfu.close()
    assert len(host.publishes()) == 1


async def answer_to(publish: SfuPublish) -> SessionDescription:
    """An answer to ``publish``'s offer from a real aiortc connection (the SFU's part)."""
    answerer = local_peer_connection()
    await answerer.setRemoteDescription(
        RTCSessionDescription(publish.description.sdp, publish.description.type)
    )
    await answerer.setLocalDescription(await answerer.createAnswer())
    sdp = answerer.localDescription.sdp
    await answerer.close()
    return SessionDescription(type="answer", sdp=sdp)


async def test_an_error_without_our_ref_is_not_ours() -> None:
    host = Host()
    sfu = SfuMedia(host)
    sfu.start()
    await host.until(lambda: len(host.publishes()) == 1)
    assert not sfu.refused(unavailable(None))
    await sfu.close()


async def test_a_client_that_receives_nothing_answers_every_m_line_inactive() -> None:
    """``receive=False`` (a bot that only sends): the SFU is told to send it nothing."""
    offerer = local_peer_connection()
    for kind in ("audio", "video", "video"):
        offerer.addTransceiver(kind, direction="sendonly")
    await offerer.setLocalDescription(await offerer.createOffer())
    mids = [t.mid or "" for t in offerer.getTransceivers()]
    streams = [
        SfuStream(mid=mid, member=f"m{i}", kind=kind, screen=False)
        for i, (mid, kind) in enumerate(zip(mids, ("audio", "video", "video"), strict=True))
    ]
    description = SessionDescription(type="offer", sdp=offerer.localDescription.sdp)
    host = Host()
    sfu = SfuMedia(host, receive=False)
    sfu.offer(SfuOffer(description=description, streams=streams))
    await host.until(lambda: any(isinstance(m, SfuSubscribe) for m in host.sent))
    (answer,) = [m for m in host.sent if isinstance(m, SfuSubscribe)]
    directions = [line for line in answer.description.sdp.splitlines() if line in DIRECTIONS]
    assert directions == ["a=inactive"] * 3
    assert sfu.remotes == {}
    await sfu.close()
    await offerer.close()


DIRECTIONS = {"a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"}
