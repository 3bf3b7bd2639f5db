"""The SDK's room state, calls and handlers against an in-memory server (docs/PROTOCOL.md
§3.2, §3.7, §4.2, §4.3, §4.5)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from salon.client import CallFailed, Client, Peer, ServerError
from salon.client import calls as calls_module
from salon.protocol.messages import (
    CallAccepted,
    CallEnded,
    ChatDelivered,
    History,
    IncomingCall,
    Left,
    LobbyDenied,
    LobbyWaiting,
    MediaChanged,
    MemberJoined,
    MemberLeft,
    Muted,
    Ringing,
)
from tests.unit.client_fake import FakeServer, FakeSocket, Frame, chat, joined, member, seat

pytestmark = pytest.mark.timeout(20)


async def seated(server: FakeServer, *others: str) -> Client:
    client = Client("https://salon.test", "Ada", connector=server.connector)
    await client.connect()
    server.on("join", seat([member(o) for o in others]))
    server.on("ping", lambda s, f: s.push({"type": "pong", "ref": f["ref"]}))
    await client.join("r")
    return client


async def test_members_and_peers_follow_the_room() -> None:
    server = FakeServer()
    client = await seated(server, "b", "c")
    closed: list[str] = []
    client.on_peer_closed(lambda peer: closed.append(peer.id))
    assert set(client.members) == set(client.peers) == {"b", "c"}
    peer_b = client.peers["b"]
    assert isinstance(peer_b, Peer) and peer_b.polite and peer_b.member.name == "b"

    server.socket.push(MemberJoined(room="r", member=member("d")))
    server.socket.push(MemberJoined(room="r", member=member("b", "Bea")))  # known: kept
    server.socket.push(MemberLeft(room="r", id="c"))
    await server.wait(lambda: closed == ["c"], "c's peer closed")
    assert set(client.peers) == {"b", "d"}
    assert client.peers["b"] is peer_b and peer_b.member.name == "Bea"

    server.socket.push(Left(room="r"))
    await server.wait(lambda: sorted(closed) == ["b", "c", "d"], "every peer closed")
    assert (client.room, client.members, client.peers) == (None, {}, {})
    await client.close()


async def test_a_member_signed_in_again_replaces_its_older_place() -> None:
    """§2.8: ``member_joined.replaces`` names the member whose place the newcomer took over:
    it is gone at once (its peer closed); its ``member_left`` that follows changes nothing."""
    server = FakeServer()
    client = await seated(server, "b", "c")
    closed: list[str] = []
    client.on_peer_closed(lambda peer: closed.append(peer.id))
    server.socket.push(MemberJoined(room="r", member=member("b2", "b"), replaces="b"))
    await server.wait(lambda: closed == ["b"], "the older place's peer closed")
    assert set(client.members) == set(client.peers) == {"b2", "c"}
    server.socket.push(MemberLeft(room="r", id="b"))
    await client.wait_for(MemberLeft)
    assert set(client.members) == set(client.peers) == {"b2", "c"}
    assert closed == ["b"]
    await client.close()


async def test_media_changes_update_the_member() -> None:
    server = FakeServer()
    client = await seated(server, "b")
    change = MediaChanged(sender="b", mic=True, camera=False, screen=False, recording=True)
    server.socket.push(change)
    await client.wait_for(MediaChanged)
    media = client.members["b"].media
    assert (media.mic, media.camera, media.recording) == (True, False, True)
    assert client.peers["b"].member.media == media
    server.socket.push(MediaChanged(sender="b", mic=False, camera=False, screen=False))
    await client.wait_for(MediaChanged)
    assert not client.members["b"].media.recording
    await client.close()


async def test_a_gap_in_chat_is_filled_from_history_in_order() -> None:
    server = FakeServer()
    client = await seated(server)
    seen: list[int] = []
    client.on(ChatDelivered, lambda m: seen.append(m.seq))
    server.socket.push(chat("r", 1, "one"))
    server.socket.push(chat("r", 3, "three"))  # 2 is missing
    history = await server.frame("history")
    assert history["since"] == 1
    missing = [chat("r", 2, "two"), chat("r", 3, "three")]
    server.socket.push(History(room="r", messages=missing, more=False))
    await server.wait(lambda: seen == [1, 2, 3], f"1, 2, 3 in order (got {seen})")
    await client.close()


async def test_chat_returns_our_own_copy() -> None:
    server = FakeServer()
    client = await seated(server)
    server.on("chat", lambda s, f: s.push(chat("r", 7, f["text"], sender="m1", client_id=f["id"])))
    delivered = await client.chat("hi")
    assert (delivered.seq, delivered.text, delivered.sender) == (7, "hi", "m1")
    await client.close()


async def test_the_lobby_holds_a_join_until_admitted_or_denied() -> None:
    server = FakeServer()
    client = Client("https://salon.test", "Ada", connector=server.connector)
    await client.connect()
    server.on("join", lambda s, f: s.push(LobbyWaiting(room=f["room"])))
    joining = asyncio.create_task(client.join("r"))
    await server.frame("join")
    server.socket.push(joined("r"))
    assert (await joining).room == "r"

    joining = asyncio.create_task(client.join("s"))
    await server.frame("join", since=1)
    server.socket.push(LobbyDenied(room="s", reason="denied"))
    with pytest.raises(ServerError) as denied:
        await joining
    assert denied.value.code == "lobby_denied"
    await client.close()


def ringing_then(outcome: str) -> object:
    def reply(socket: FakeSocket, frame: Frame) -> None:
        socket.push(Ringing(call="k1", name=frame["name"]))
        if outcome == "accepted":
            socket.push(CallAccepted(call="k1", room="call-1"))
            socket.push(joined("call-1", [member("bob")], private=True))
        else:
            socket.push(CallEnded(call="k1", reason=outcome))  # type: ignore[arg-type]

    return reply


async def test_a_call_returns_its_id_once_accepted_and_joined() -> None:
    server = FakeServer()
    client = Client("https://salon.test", "Ada", connector=server.connector)
    await client.connect()
    server.on("call", ringing_then("accepted"))  # type: ignore[arg-type]
    assert await client.call("bob") == "k1"
    assert (client.room, client.private, set(client.peers)) == ("call-1", True, {"bob"})
    # §3.5: announced with mic and camera on, it says what it sends (nothing here).
    media = await server.frame("media")
    assert (media["mic"], media["camera"], media["screen"]) == (False, False, False)
    server.on("leave", lambda s, f: s.push(Left(room="call-1", reason="left")))
    await client.hang_up()
    assert server.frames("leave") and client.room is None
    await client.close()


@pytest.mark.parametrize("reason", ["declined", "timeout", "offline", "busy"])
async def test_a_call_that_ends_unanswered_raises_call_failed(reason: str) -> None:
    server = FakeServer()
    client = Client("https://salon.test", "Ada", connector=server.connector)
    await client.connect()
    if reason == "busy":  # a fresh call id, never announced by ringing (§4.5)
        server.on("call", lambda s, f: s.push(CallEnded(call="k9", reason="busy")))
    else:
        server.on("call", ringing_then(reason))  # type: ignore[arg-type]
    with pytest.raises(CallFailed) as failed:
        await client.call("bob")
    assert failed.value.reason == reason
    await client.close()


async def test_a_call_ended_for_a_reason_newer_than_this_client_still_ends_the_call() -> None:
    # §1.2: a client MUST treat an unknown call_ended.reason as "the call is over" (it was
    # once dropped as a message that does not validate, and call() waited for its timeout).
    server = FakeServer()
    client = Client("https://salon.test", "Ada", connector=server.connector)
    await client.connect()

    def reply(socket: FakeSocket, frame: Frame) -> None:
        socket.push(Ringing(call="k1", name=frame["name"]))
        socket.push({"type": "call_ended", "call": "k1", "reason": "transferred"})

    server.on("call", reply)
    with pytest.raises(CallFailed) as failed:
        await client.call("bob")
    assert failed.value.reason == "transferred"
    await client.close()


async def test_a_call_accepted_while_away_is_found_from_its_rooms_snapshot() -> None:
    # §2.8: call_accepted was among the messages missed while the connection was away; what
    # follows the resume is the call room's joined (it once ended in a TimeoutError, the
    # program in the call all the same).
    server = FakeServer()
    client = Client("https://salon.test", "Ada", connector=server.connector)
    await client.connect()
    server.on("call", lambda s, f: s.push(Ringing(call="k1", name=f["name"])))
    rung = asyncio.Event()
    client.on(Ringing, lambda m: rung.set())
    calling = asyncio.create_task(client.call("bob"))
    await rung.wait()
    server.room, server.missed = "call-1", True
    server.socket.cut(1006)
    await server.wait(lambda: len(server.sockets) == 2, "the resumed connection", 5)
    server.socket.push(joined("call-1", [member("bob")], private=True))
    assert await calling == "k1"
    assert client.room == "call-1"
    await client.close()


async def test_a_ringing_call_whose_end_never_comes_is_cancelled_and_failed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Its call_ended lost while away: ring_seconds and REQUEST_SECONDS after it rang, the
    # call is cancelled at the server and fails here as unanswered.
    monkeypatch.setattr(calls_module, "REQUEST_SECONDS", 0.2)
    server = FakeServer(ring_seconds=0.2)
    client = Client("https://salon.test", "Ada", connector=server.connector)
    await client.connect()
    server.on("call", lambda s, f: s.push(Ringing(call="k1", name=f["name"])))
    with pytest.raises(CallFailed) as failed:
        await client.call("bob")
    assert (failed.value.call_id, failed.value.reason) == ("k1", "timeout")
    assert (await server.frame("call_cancel"))["call"] == "k1"
    await client.close()


async def test_cancelling_a_ringing_call_sends_call_cancel() -> None:
    server = FakeServer()
    client = Client("https://salon.test", "Ada", connector=server.connector)
    await client.connect()
    server.on("call", lambda s, f: s.push(Ringing(call="k1", name="bob")))
    calling = asyncio.create_task(client.call("bob"))
    await client.wait_for(Ringing)
    await asyncio.sleep(0)  # the call task takes the ringing too
    calling.cancel()
    cancel = await server.frame("call_cancel")
    assert cancel["call"] == "k1"
    await client.close()


async def test_a_handler_may_accept_an_incoming_call() -> None:
    server = FakeServer()
    client = Client("https://salon.test", "Bob", connector=server.connector, reachable=True)
    await client.connect()
    accepted: list[str] = []

    async def answer(call: IncomingCall) -> None:
        joined_call = await client.accept(call.call)
        accepted.append(joined_call.room)

    client.on(IncomingCall, answer)

    def accept(socket: FakeSocket, frame: Frame) -> None:
        socket.push(CallAccepted(call=frame["call"], room="call-7"))
        socket.push(joined("call-7", [member("ada")], private=True))

    server.on("call_accept", accept)
    server.socket.push(IncomingCall(call="k7", sender="ada", name="Ada"))
    await server.wait(lambda: accepted == ["call-7"], "the call accepted from the handler")
    server.on("ping", lambda s, f: s.push({"type": "pong", "ref": f["ref"]}))
    await client.decline("k8")  # no error: declined
    assert server.frames("call_decline")[0]["call"] == "k8"
    await client.close()


async def test_handlers_run_in_order_and_a_failing_one_stops_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = FakeServer()
    client = await seated(server)
    seen: list[str] = []

    def fail(message: ChatDelivered) -> None:
        raise RuntimeError("a bug in a handler")

    async def slow(message: ChatDelivered) -> None:
        await asyncio.sleep(0.01)
        seen.append(f"slow {message.seq}")

    client.on(ChatDelivered, fail)
    client.on(ChatDelivered, slow)
    client.on(ChatDelivered, lambda m: seen.append(f"fast {m.seq}"))
    with caplog.at_level(logging.ERROR, logger="salon.client"):
        for seq in (1, 2):
            server.socket.push(chat("r", seq, "x"))
        await server.wait(lambda: len(seen) == 4, "every handler twice")
    assert seen == ["slow 1", "fast 1", "slow 2", "fast 2"]
    assert "a handler of the Salon client failed" in caplog.text
    await client.close()


async def test_muted_stops_that_media_and_says_so() -> None:
    server = FakeServer()
    client = await seated(server, "b")
    await client.set_media(mic=True, camera=True)
    server.socket.push(Muted(room="r", kind="mic", by="b", by_name="b"))
    sent = await server.frame("media", since=1)
    assert (sent["mic"], sent["camera"]) == (False, True)
    assert client.paused_kinds() == {"audio"}
    await client.set_media(mic=True)  # only its user turns it back on
    assert client.paused_kinds() == frozenset()
    await client.close()


async def test_signals_from_unknown_members_are_ignored() -> None:
    server = FakeServer()
    client = await seated(server, "b")
    candidate = {"candidate": "candidate:1 1 udp 1 192.0.2.1 9 typ host", "sdpMid": "0"}
    server.socket.push({"type": "signal", "from": "zz", "candidate": candidate})
    server.socket.push({"type": "signal", "from": "b", "candidate": candidate})
    await client.peers["b"].wait_stable()
    assert "zz" not in client.peers
    await client.close()
