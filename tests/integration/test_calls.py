"""Calling someone by name: ring, accept, decline, cancel, no answer, busy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.integration.peer import Peer


async def ring(caller: Peer, callee: Peer) -> str:
    await caller.send(type="call", name=callee.name)
    ringing = await caller.expect("ringing")
    incoming = await callee.expect("incoming_call")
    assert incoming["call"] == ringing["call"]
    assert (incoming["from"], incoming["name"]) == (caller.id, caller.name)
    call: str = ringing["call"]
    return call


async def test_call_by_name_accept_puts_both_in_a_private_room(
    peers: Callable[..., Any], server: Any
) -> None:
    alice, bob = await peers("alice", "bob", reachable=True)
    call = await ring(alice, bob)
    await bob.send(type="call_accept", call=call)

    rooms = set()
    for peer in (alice, bob):
        accepted = await peer.expect("call_accepted")
        assert accepted["call"] == call
        rooms.add(accepted["room"])
    (room,) = rooms
    first = await alice.expect("joined")
    second = await bob.expect("joined")
    assert first["room"] == second["room"] == room and first["private"] is True
    assert [m["id"] for m in second["members"]] == [alice.id]
    assert (await alice.expect("member_joined"))["member"]["id"] == bob.id

    # They can negotiate with each other...
    await bob.send(type="signal", to=alice.id, description={"type": "offer", "sdp": "v=0"})
    assert (await alice.expect("signal"))["from"] == bob.id
    # ...and nobody else can get in, even knowing the room id.
    eve = await Peer.greeted(server, "eve")  # a caller need not be reachable
    await eve.send(type="join", room=room)
    await eve.error("no_such_room")
    # A third person calling either of them hears "busy".
    await eve.send(type="call", name="alice")
    assert (await eve.expect("call_ended"))["reason"] == "busy"

    # Hanging up ends it for both.
    await alice.send(type="leave")
    assert (await alice.expect("call_ended"))["reason"] == "hangup"
    await alice.expect("left")
    assert (await bob.expect("member_left"))["id"] == alice.id
    assert await bob.expect("call_ended") == {
        "type": "call_ended",
        "call": call,
        "reason": "hangup",
    }
    await bob.expect("left")
    await eve.close()


async def test_declined_call_is_reported(peers: Callable[..., Any]) -> None:
    alice, bob = await peers("alice", "bob", reachable=True)
    call = await ring(alice, bob)
    await bob.send(type="call_decline", call=call)
    for peer in (alice, bob):
        assert (await peer.expect("call_ended"))["reason"] == "declined"
    await bob.send(type="call_accept", call=call, ref="late")
    assert (await bob.error("no_such_call"))["ref"] == "late"


async def test_cancelled_call_is_reported(peers: Callable[..., Any]) -> None:
    alice, bob = await peers("alice", "bob", reachable=True)
    call = await ring(alice, bob)
    await bob.send(type="call_cancel", call=call)  # only the caller can cancel
    await bob.error("no_such_call")
    await alice.send(type="call_cancel", call=call)
    for peer in (alice, bob):
        assert (await peer.expect("call_ended"))["reason"] == "cancelled"


async def test_busy_when_the_callee_is_ringing_or_in_a_room(peers: Callable[..., Any]) -> None:
    alice, bob, carol, dave = await peers("alice", "bob", "carol", "dave", reachable=True)
    await ring(alice, bob)
    await carol.send(type="call", name="bob")
    assert (await carol.expect("call_ended"))["reason"] == "busy"
    await bob.silent(0.2)  # bob's ringing call was not disturbed
    await dave.join("meeting")
    await carol.send(type="call", name="Dave")
    assert (await carol.expect("call_ended"))["reason"] == "busy"


async def test_no_answer_times_out(make_server: Callable[..., Any]) -> None:
    with make_server(ring_seconds=2.0) as server:
        alice = await Peer.greeted(server, "alice", reachable=True)
        bob = await Peer.greeted(server, "bob", reachable=True)
        await ring(alice, bob)
        await alice.silent(0.3)  # still ringing before the deadline
        for peer in (alice, bob):
            assert (await peer.expect("call_ended", timeout=5))["reason"] == "timeout"
        await alice.close()
        await bob.close()


async def test_call_errors(peers: Callable[..., Any]) -> None:
    (alice,) = await peers("alice", reachable=True)
    await alice.send(type="call", name="nobody")
    await alice.error("not_online")
    await alice.send(type="call", name="ALICE")
    await alice.error("self_call")
    await alice.send(type="call_accept", call="made-up")
    await alice.error("no_such_call")


async def test_presence_lists_who_is_online(peers: Callable[..., Any], server: Any) -> None:
    alice, bob = await peers("alice", "bob", reachable=True)
    await alice.send(type="presence_watch")
    assert (await alice.expect("presence"))["names"] == ["alice", "bob"]
    carol = await Peer.greeted(server, "carol", reachable=True)
    assert await alice.expect("presence_changed") == {
        "type": "presence_changed",
        "name": "carol",
        "online": True,
        "reconnecting": False,
    }
    await carol.close()
    assert (await alice.expect("presence_changed"))["online"] is False
    await bob.silent(0.1)  # only watchers hear about presence


async def test_only_reachable_names_can_be_called(peers: Callable[..., Any]) -> None:
    caller, shown = await peers("caller", "sam")  # hello.reachable false: rooms only
    await shown.join("meeting")
    await caller.send(type="call", name="sam")
    await caller.error("not_online")
    (reachable,) = await peers("Sam", reachable=True)  # another Sam, on the call page
    await caller.send(type="call", name="SAM")
    assert (await caller.expect("ringing"))["name"] == "Sam"
    assert (await reachable.expect("incoming_call"))["from"] == caller.id
    await shown.alive()  # its next message is the pong: no incoming_call came before it


async def test_presence_lists_only_reachable_names(peers: Callable[..., Any]) -> None:
    watcher, shown = await peers("watcher", "shown only")
    await peers("zed", reachable=True)
    await watcher.send(type="presence_watch")
    assert (await watcher.expect("presence"))["names"] == ["zed"]
    await shown.close()
    await peers("also shown only")
    await peers("yan", reachable=True)
    # The first change a watcher hears of is yan's: the others' came and went unheard.
    assert (await watcher.expect("presence_changed"))["name"] == "yan"
