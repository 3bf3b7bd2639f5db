"""Direct calls by name: the hub's call state machine, driven through sessions."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from salon.core.calls import Call, CallBook, CallState
from salon.core.errors import SalonError
from salon.protocol.messages import (
    CallAccepted,
    CallEnded,
    IncomingCall,
    Joined,
    Left,
    MemberJoined,
    MemberLeft,
    Ringing,
)

from .conftest import Client, World


async def ring(caller: Client, callee: Client) -> str:
    """``caller`` calls ``callee`` by name; returns the call id after checking both sides."""
    await caller.send(type="call", name=callee.name)
    ringing = caller.take_one(Ringing)
    incoming = callee.take_one(IncomingCall)
    assert ringing.call == incoming.call
    return ringing.call


async def test_ringing_tells_both_sides(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("Bob", reachable=True)

    await alice.send(type="call", name="bob")

    ringing = alice.take_one(Ringing)
    assert ringing.name == "Bob"
    (wire,) = bob.take_wire()
    assert wire == {
        "type": "incoming_call",
        "call": ringing.call,
        "from": alice.id,
        "name": "alice",
    }
    assert len(world.hub.calls) == 1


async def test_accept_seats_both_in_a_private_room(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    call_id = await ring(alice, bob)

    await bob.send(type="call_accept", call=call_id)

    a_accepted, a_joined, a_member_joined = alice.take()
    b_accepted, b_joined = bob.take()
    assert isinstance(a_accepted, CallAccepted)
    assert isinstance(b_accepted, CallAccepted)
    assert a_accepted == b_accepted
    assert a_accepted.call == call_id
    room = a_accepted.room
    assert room.startswith("call-")
    assert isinstance(a_joined, Joined)
    assert isinstance(b_joined, Joined)
    assert (a_joined.room, b_joined.room) == (room, room)
    assert a_joined.private
    assert b_joined.private
    assert [m.id for m in b_joined.members] == [alice.id]
    # Politeness by member id (the greater id is polite), the same on both sides' views.
    assert b_joined.members[0].polite is (bob.id > alice.id)
    assert isinstance(a_member_joined, MemberJoined)
    assert a_member_joined.member.id == bob.id
    assert a_member_joined.member.polite is (alice.id > bob.id)
    assert set(world.hub.rooms[room].seats) == {alice.id, bob.id}
    assert len(world.hub.calls) == 0


async def test_accepting_takes_the_caller_out_of_their_room(world: World) -> None:
    carol, alice = await world.connect_in("lobby", "carol", "alice")  # carol hosts
    bob = await world.connect("bob", reachable=True)
    call_id = await ring(alice, bob)

    await bob.send(type="call_accept", call=call_id)

    got = alice.take()
    assert isinstance(got[0], Left)
    assert got[0].room == "lobby"
    assert isinstance(got[1], CallAccepted)
    assert carol.take_one(MemberLeft).id == alice.id
    assert alice.id not in world.hub.rooms["lobby"]


async def test_decline_ends_the_call_for_both(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    call_id = await ring(alice, bob)

    await bob.send(type="call_decline", call=call_id)

    ended = CallEnded(call=call_id, reason="declined")
    assert alice.take() == [ended]
    assert bob.take() == [ended]
    assert len(world.hub.calls) == 0
    assert world.hub.rooms == {}


async def test_cancel_ends_the_call_for_both(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    call_id = await ring(alice, bob)

    await alice.send(type="call_cancel", call=call_id)

    ended = CallEnded(call=call_id, reason="cancelled")
    assert alice.take() == [ended]
    assert bob.take() == [ended]
    await bob.send(type="call_accept", call=call_id)
    assert bob.take_error().code == "no_such_call"


async def test_only_the_caller_can_cancel_and_only_the_callee_answer(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    call_id = await ring(alice, bob)

    await bob.send(type="call_cancel", call=call_id)
    assert bob.take_error().code == "no_such_call"
    await alice.send(type="call_accept", call=call_id)
    assert alice.take_error().code == "no_such_call"
    await alice.send(type="call_decline", call=call_id)
    assert alice.take_error().code == "no_such_call"

    assert len(world.hub.calls) == 1
    assert world.hub.calls.of(alice.id) is not None


async def test_a_call_times_out_at_its_deadline_and_not_before(
    make_world: Callable[..., World],
) -> None:
    world = make_world(ring_seconds=5)
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    call_id = await ring(alice, bob)

    world.clock.advance(4.999)
    assert world.hub.expire_calls() == 0
    assert alice.take() == []
    assert bob.take() == []

    world.clock.advance(0.001)
    assert world.hub.expire_calls() == 1

    ended = CallEnded(call=call_id, reason="timeout")
    assert alice.take() == [ended]
    assert bob.take() == [ended]
    assert world.hub.expire_calls() == 0
    await bob.send(type="call_accept", call=call_id)
    assert bob.take_error().code == "no_such_call"


async def test_only_overdue_calls_expire(make_world: Callable[..., World]) -> None:
    world = make_world(ring_seconds=10)
    a, b, c, d = [await world.connect(n, reachable=True) for n in "abcd"]
    first = await ring(a, b)
    world.clock.advance(6)
    await ring(c, d)
    world.clock.advance(4)

    assert world.hub.expire_calls() == 1

    assert a.take() == [CallEnded(call=first, reason="timeout")]
    assert c.take() == []
    assert len(world.hub.calls) == 1


async def test_calling_someone_who_is_ringing_is_busy_at_once(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    carol = await world.connect("carol", reachable=True)
    await ring(alice, bob)

    await carol.send(type="call", name="bob")

    busy = carol.take_one(CallEnded)
    assert busy.reason == "busy"
    assert bob.take() == []
    assert len(world.hub.calls) == 1

    await carol.send(type="call", name="alice")
    assert carol.take_one(CallEnded).reason == "busy"
    assert alice.take() == []


async def test_calling_someone_in_a_room_is_busy(world: World) -> None:
    bob = await world.connect("bob", reachable=True)
    await bob.send(type="join", room="lobby")
    bob.take()
    alice = await world.connect("alice")  # a caller need not be reachable itself

    await alice.send(type="call", name="bob")

    assert alice.take_one(CallEnded).reason == "busy"
    assert bob.take() == []
    assert len(world.hub.calls) == 0


async def test_only_reachable_names_can_be_called(world: World) -> None:
    alice = await world.connect("alice")
    in_a_room = await world.connect("bob")  # hello.reachable false: shown in rooms only
    await alice.send(type="call", name="bob", ref="r")
    error = alice.take_error()
    assert (error.code, error.ref) == ("not_online", "r")
    assert in_a_room.take() == []

    reachable = await world.connect("Bob", reachable=True)  # another bob, on the call page
    await alice.send(type="call", name="bob")
    assert alice.take_one(Ringing).name == "Bob"
    assert isinstance(reachable.take_one(IncomingCall), IncomingCall)
    assert in_a_room.take() == []


async def test_calling_finds_a_reachable_name_by_its_key(world: World) -> None:
    alice = await world.connect("alice")
    await world.connect("carla", reachable=True)
    await alice.send(type="call", name="\uff43\uff41\uff52\uff4c\uff41")  # fullwidth
    assert alice.take_one(Ringing).name == "carla"


async def test_calling_someone_who_is_not_online(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    await alice.send(type="call", name="nobody", ref=3)
    error = alice.take_error()
    assert (error.code, error.ref) == ("not_online", 3)


async def test_calling_by_name_trims_and_checks_the_name(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    await world.connect("bob", reachable=True)
    await alice.send(type="call", name="  bob ")
    assert alice.take_one(Ringing).name == "bob"
    carol = await world.connect("carol", reachable=True)
    await carol.send(type="call", name="x" * 65)
    assert carol.take_error().code == "invalid_name"


async def test_calling_by_name_ignores_case(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("Bob", reachable=True)
    await alice.send(type="call", name="BOB")
    assert alice.take_one(Ringing).name == "Bob"
    assert isinstance(bob.take_one(IncomingCall), IncomingCall)


async def test_calling_yourself(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    await alice.send(type="call", name="Alice")
    assert alice.take_error().code == "self_call"
    assert len(world.hub.calls) == 0


async def test_a_second_call_while_ringing_is_refused(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    carol = await world.connect("carol", reachable=True)
    await ring(alice, bob)

    await alice.send(type="call", name="carol")
    assert alice.take_error().code == "in_call"
    await bob.send(type="call", name="carol")
    assert bob.take_error().code == "in_call"
    assert carol.take() == []


async def test_joining_a_room_while_ringing_is_refused(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    await ring(alice, bob)

    await alice.send(type="join", room="lobby")
    assert alice.take_error().code == "in_call"
    await bob.send(type="join", room="lobby")
    assert bob.take_error().code == "in_call"
    assert world.hub.rooms == {}


async def test_calling_from_a_call_room_is_refused(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    carol = await world.connect("carol", reachable=True)
    await bob.send(type="call_accept", call=await ring(alice, bob))
    alice.take()

    await alice.send(type="call", name="carol")

    assert alice.take_error().code == "in_call"
    assert carol.take() == []


async def test_accepting_someone_elses_call(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    carol = await world.connect("carol", reachable=True)
    call_id = await ring(alice, bob)

    await carol.send(type="call_accept", call=call_id)
    assert carol.take_error().code == "no_such_call"
    await carol.send(type="call_decline", call=call_id)
    assert carol.take_error().code == "no_such_call"
    await carol.send(type="call_accept", call="made-up")
    assert carol.take_error().code == "no_such_call"

    assert alice.take() == []
    assert bob.take() == []
    assert len(world.hub.calls) == 1


async def test_accepting_a_finished_call(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    call_id = await ring(alice, bob)
    await bob.send(type="call_accept", call=call_id)
    bob.take()

    await bob.send(type="call_accept", call=call_id)
    assert bob.take_error().code == "no_such_call"
    await bob.send(type="call_decline", call=call_id)
    assert bob.take_error().code == "no_such_call"
    await alice.send(type="call_cancel", call=call_id)
    assert alice.take()[-1].code == "no_such_call"  # type: ignore[union-attr]


@pytest.mark.parametrize("who", ["caller", "callee"])
async def test_a_side_disconnecting_while_ringing(world: World, who: str) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    call_id = await ring(alice, bob)
    gone, stays = (alice, bob) if who == "caller" else (bob, alice)

    gone.closed()

    assert stays.take() == [CallEnded(call=call_id, reason="offline")]
    assert len(world.hub.calls) == 0
    assert world.hub.calls.of(stays.id) is None
    await stays.send(type="join", room="lobby")
    assert isinstance(stays.take_one(Joined), Joined)


@pytest.mark.parametrize("how", ["leave", "disconnect", "join elsewhere"])
async def test_leaving_the_call_room_hangs_up_for_the_other(world: World, how: str) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    call_id = await ring(alice, bob)
    await bob.send(type="call_accept", call=call_id)
    room = alice.take()[0].room  # type: ignore[union-attr]
    bob.take()

    if how == "leave":
        await alice.send(type="leave")
    elif how == "disconnect":
        alice.closed()
    else:
        await alice.send(type="join", room="lobby")

    assert bob.take() == [
        MemberLeft(room=room, id=alice.id),
        CallEnded(call=call_id, reason="hangup"),
        Left(room=room, reason="hangup"),
    ]
    assert room not in world.hub.rooms
    await bob.send(type="join", room=room)
    assert bob.take_error().code == "no_such_room"


async def test_after_a_call_both_can_call_again(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    await bob.send(type="call_decline", call=await ring(alice, bob))
    alice.take()
    bob.take()

    second = await ring(bob, alice)

    assert second
    assert len(world.hub.calls) == 1


class _Member:
    def __init__(self, member_id: str) -> None:
        self.id = member_id
        self.name = member_id

    def push(self, out: object) -> None:
        raise AssertionError("the book never pushes")

    def kick(self, code: object, reason: str) -> None:
        raise AssertionError("the book never kicks")


@pytest.mark.parametrize(
    "end", [CallState.ACCEPTED, CallState.DECLINED, CallState.CANCELLED, CallState.TIMED_OUT]
)
def test_a_finished_call_cannot_move_again(end: CallState) -> None:
    book = CallBook()
    call = Call("c1", _Member("a"), _Member("b"), deadline=10.0)
    book.ring(call)
    book.finish(call, end)

    with pytest.raises(SalonError) as raised:
        call.move(CallState.OFFLINE)
    assert raised.value.code == "no_such_call"
    assert call.state is end
    assert book.of("a") is None
    assert book.of("b") is None
    assert len(book) == 0
    assert book.overdue(100.0) == []


def test_call_end_reasons() -> None:
    call = Call("c1", _Member("a"), _Member("b"), deadline=10.0)
    reasons = {}
    for state in (CallState.DECLINED, CallState.CANCELLED, CallState.TIMED_OUT, CallState.OFFLINE):
        call.state = state
        reasons[state] = call.end_reason()
    assert reasons == {
        CallState.DECLINED: "declined",
        CallState.CANCELLED: "cancelled",
        CallState.TIMED_OUT: "timeout",
        CallState.OFFLINE: "offline",
    }


async def test_a_caller_in_a_room_who_disconnects_while_ringing(world: World) -> None:
    carol, alice = await world.connect_in("lobby", "carol", "alice")  # carol hosts
    bob = await world.connect("bob", reachable=True)
    call_id = await ring(alice, bob)

    alice.closed()

    assert bob.take() == [CallEnded(call=call_id, reason="offline")]
    assert carol.take() == [MemberLeft(room="lobby", id=alice.id)]
    assert len(world.hub.calls) == 0
    assert list(world.hub.rooms["lobby"].seats) == [carol.id]
