"""The SDK against the real server: two clients in a room (chat, member events, media), a
direct call placed, declined, accepted and hung up, and a resume after the socket is cut
with media going on (docs/PROTOCOL.md §2.8, §3.2, §4.3, §4.5)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

import pytest
from aiortc import MediaStreamError, MediaStreamTrack, VideoStreamTrack

from salon.client import CallFailed, Client, Peer, ServerError
from salon.protocol.messages import (
    CallEnded,
    ChatDelivered,
    IncomingCall,
    MemberJoined,
    MemberLeft,
    MemberReconnecting,
    MemberResumed,
)
from tests.integration.server import RunningServer

pytestmark = pytest.mark.timeout(60)


class Frames:
    """Counts the video frames a client receives from each member."""

    def __init__(self, client: Client) -> None:
        self.count: dict[str, int] = {}
        self.arrived = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        client.on_track(self._on_track)

    def _on_track(self, peer: Peer, track: MediaStreamTrack) -> None:
        if track.kind == "video":
            task = asyncio.ensure_future(self._read(peer.id, track))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _read(self, member: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.count[member] = self.count.get(member, 0) + 1
                self.arrived.set()

    async def rising(self, member: str, by: int = 10, timeout: float = 15) -> None:
        start = self.count.get(member, 0)
        async with asyncio.timeout(timeout):
            while self.count.get(member, 0) < start + by:
                self.arrived.clear()
                await self.arrived.wait()

    def stop(self) -> None:
        for task in self._tasks:
            task.cancel()


@contextlib.asynccontextmanager
async def client(
    server: RunningServer, name: str, *, reachable: bool = False, video: bool = False
) -> AsyncIterator[Client]:
    sdk = Client(server.base_url, name, ssl=server.ssl_context, reachable=reachable)
    source = VideoStreamTrack()
    if video:
        sdk.add_track(source)
    await sdk.connect()
    try:
        yield sdk
    finally:
        await sdk.close()
        source.stop()


async def test_two_clients_in_a_room_chat_and_see_each_other(server: RunningServer) -> None:
    async with client(server, "Ada") as ada, client(server, "Bob") as bob:
        await ada.join("standup")
        seen = asyncio.ensure_future(ada.wait_for(MemberJoined))
        joined = await bob.join("standup")
        assert [m.name for m in joined.members] == ["Ada"]
        assert (await seen).member.name == "Bob"
        assert set(ada.peers) == {bob.id} and set(bob.peers) == {ada.id}
        assert ada.peers[bob.id].polite != bob.peers[ada.id].polite  # one polite side

        heard = asyncio.ensure_future(bob.wait_for(ChatDelivered))
        mine = await ada.chat("hello Bob")
        got = await heard
        assert (got.text, got.sender, got.seq) == ("hello Bob", ada.id, mine.seq)

        with pytest.raises(ServerError) as refused:
            await ada.chat("   ")
        assert refused.value.code == "invalid_text"

        gone = asyncio.ensure_future(ada.wait_for(MemberLeft))
        await bob.leave()
        assert (await gone).id == bob.id
        assert bob.room is None and ada.peers == {}


async def test_a_direct_call_declined_then_accepted_then_hung_up(server: RunningServer) -> None:
    async with client(server, "Ada") as ada, client(server, "Bob", reachable=True) as bob:
        answers = ["decline", "accept"]

        async def ring(call: IncomingCall) -> None:
            if answers.pop(0) == "decline":
                await bob.decline(call.call)
            else:
                await bob.accept(call.call)

        bob.on(IncomingCall, ring)
        with pytest.raises(CallFailed) as declined:
            await ada.call("Bob")
        assert declined.value.reason == "declined"

        with pytest.raises(ServerError) as offline:
            await ada.call("Nobody")
        assert offline.value.code == "not_online"

        call_id = await ada.call("Bob")
        assert ada.private and ada.room is not None and ada.room.startswith("call-")
        assert set(ada.peers) == {bob.id}
        ended = asyncio.ensure_future(bob.wait_for(CallEnded))
        await ada.hang_up()
        assert (await ended).reason == "hangup"
        assert (await ended).call == call_id
        assert ada.room is None


async def test_media_goes_on_through_a_resume_after_the_socket_is_cut(
    server: RunningServer,
) -> None:
    async with (
        client(server, "Ada", video=True) as ada,
        client(server, "Bob", video=True) as bob,
    ):
        frames = Frames(bob)
        await ada.join("resume")
        await bob.join("resume")
        await frames.rising(ada.id)
        peer, pc = bob.peers[ada.id], bob.peers[ada.id].pc

        away = asyncio.ensure_future(bob.wait_for(MemberReconnecting))
        back = asyncio.ensure_future(bob.wait_for(MemberResumed))
        assert ada._connection is not None
        ada._connection.abort()  # the network drops the socket: no close frame
        assert (await away).id == ada.id
        assert (await back).member.id == ada.id
        # The same peer and connection on Bob's side; media never stopped.
        assert bob.peers[ada.id] is peer and peer.pc is pc
        await frames.rising(ada.id)
        heard = asyncio.ensure_future(bob.wait_for(ChatDelivered))
        await ada.chat("still here")  # delivered: Ada is back
        assert (await heard).text == "still here"
        assert ada.room == "resume" and ada.lost is None
        assert ada._connection.reconnections == 1
        assert ada.peers[bob.id].pc.connectionState == "connected"
        frames.stop()


@pytest.mark.parametrize("how", ["after_leave", "twice_at_once", "caller_cancelled"])
async def test_close_returns_once_every_peer_connection_is_closed(
    server: RunningServer, how: str
) -> None:
    """``close()`` right after ``leave()`` (the peers still closing in their own tasks),
    while another ``close()`` runs, or after a first caller was cancelled: it returns only
    once every ``RTCPeerConnection`` is closed. One cut short keeps its 2 UDP sockets open
    for good (a ``ResourceWarning``, an error under this suite's ``filterwarnings``)."""
    async with client(server, "Ada", video=True) as ada, client(server, "Bob") as bob:
        frames = Frames(bob)
        await ada.join("closing")
        await bob.join("closing")
        await frames.rising(ada.id)
        connections = [peer.pc for peer in ada.peers.values()]
        if how == "after_leave":
            await ada.leave()
        else:
            first = asyncio.ensure_future(ada.close())
            await asyncio.sleep(0)  # it is closing the peers
            if how == "caller_cancelled":
                first.cancel()
        await ada.close()
        assert [pc.iceConnectionState for pc in connections] == ["closed"]
        assert ada.peers == {} and ada.lost is not None
        frames.stop()
    gc.collect()  # an unclosed socket would warn here
