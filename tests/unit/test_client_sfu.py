"""The SDK's connections to the SFU (docs/PROTOCOL.md §3.10) against a host that records what
they send: the publish retried on ``sfu_unavailable`` stops when the room is left or the
client closes, and a newer publish replaces one still waiting. Real aiortc connections
(local candidates only); the SFU itself is proven in tests/turn/test_sfu_rooms.py."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection
from aiortc.mediastreams import VideoStreamTrack
from pydantic import BaseModel

from salon.client.sfu import SfuMedia, SfuRemote
from salon.protocol import ErrorCode
from salon.protocol.messages import (
    Error,
    MemberInfo,
    SessionDescription,
    SfuCandidate,
    SfuOffer,
    SfuPublish,
    SfuStream,
    SfuSubscribe,
)

pytestmark = pytest.mark.timeout(20)


class Host:
    def __init__(self) -> None:
        self.sent: list[BaseModel] = []
        self._refs = itertools.count(1)
        self._changed = asyncio.Event()

    def send(self, message: BaseModel) -> None:
        self.sent.append(message)
        self._changed.set()

    def next_ref(self) -> int:
        return next(self._refs)

    def configuration(self) -> RTCConfiguration:
        return RTCConfiguration()

    def shared_tracks(self) -> list[MediaStreamTrack]:
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
        async with asyncio.timeout(10):
            while not check():
                self._changed.clear()
                await self._changed.wait()


def unavailable(ref: int | None) -> Error:
    return Error(code=ErrorCode.SFU_UNAVAILABLE, message="the SFU does not answer", ref=ref)


async def test_closing_stops_a_publish_waiting_to_retry() -> None:
    host = Host()
    sfu = SfuMedia(host)
    sfu.start()
    await host.until(lambda: len(host.publishes()) == 1)
    assert sfu.refused(unavailable(host.publishes()[0].ref))  # ours: retried in 1 s
    async with asyncio.timeout(2):  # not after the retry's wait, nor for ever
        await sfu.close()
    assert sfu.publisher is None
    assert len(host.publishes()) == 1
    # The end of the connection's candidates went out once, with its first offer.
    assert [m.pc for m in host.sent if isinstance(m, SfuCandidate)] == ["publisher"]


async def test_a_newer_publish_replaces_one_waiting_for_its_answer() -> None:
    host = Host()
    sfu = SfuMedia(host)
    sfu.start()
    await host.until(lambda: len(host.publishes()) == 1)
    first = sfu.publisher
    sfu.start()  # room_media again: the SFU lost its state
    await host.until(lambda: len(host.publishes()) == 2)
    assert sfu.publisher is not first and first is not None
    assert first.connectionState == "closed"
    assert not sfu.refused(unavailable(host.publishes()[0].ref))  # the old one's: not ours now
    await sfu.close()


async def test_an_error_without_our_ref_is_not_ours() -> None:
    host = Host()
    sfu = SfuMedia(host)
    sfu.start()
    await host.until(lambda: len(host.publishes()) == 1)
    assert not sfu.refused(unavailable(None))
    await sfu.close()


async def test_a_client_that_receives_nothing_answers_every_m_line_inactive() -> None:
    """``receive=False`` (a bot that only sends): the SFU is told to send it nothing."""
    offerer = RTCPeerConnection()
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
