"""Rooms: joining, leaving, politeness, limits, passwords and private call rooms."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from salon.protocol.messages import Joined, Left, MemberJoined, MemberLeft

from .conftest import World


async def test_join_creates_the_room_and_answers_joined(world: World) -> None:
    alice = await world.connect("alice")
    assert "lobby" not in world.hub.rooms

    await alice.send(type="join", room="lobby")

    joined = alice.take_one(Joined)
    assert joined.room == "lobby"
    assert joined.members == []
    assert joined.private is False
    assert joined.last_seq == 0
    assert list(world.hub.rooms["lobby"].seats) == [alice.id]


async def test_joined_lists_members_oldest_first_polite_by_member_id(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")
    carol = await world.connect("carol")

    await carol.send(type="join", room="lobby", media={"mic": True})

    joined = carol.take_one(Joined)
    assert [m.id for m in joined.members] == [alice.id, bob.id]
    assert [m.name for m in joined.members] == ["alice", "bob"]
    # The greater member id is the polite side, whatever the order of joining.
    assert [m.polite for m in joined.members] == [carol.id > alice.id, carol.id > bob.id]
    for existing in (alice, bob):
        event = existing.take_one(MemberJoined)
        assert event.room == "lobby"
        assert event.member.id == carol.id
        assert event.member.name == "carol"
        assert event.member.polite is (existing.id > carol.id)
        assert event.member.media.mic is True
        assert event.member.media.camera is False


async def test_politeness_is_one_sided_for_every_pair(world: World) -> None:
    clients = [await world.connect(n) for n in ("a", "b", "c", "d")]
    polite: dict[tuple[str, str], bool] = {}
    for client in clients:
        await client.send(type="join", room="mesh")
    for client in clients:
        for message in client.take():
            if isinstance(message, Joined):
                for m in message.members:
                    polite[(client.id, m.id)] = m.polite
            elif isinstance(message, MemberJoined):
                polite[(client.id, message.member.id)] = message.member.polite
    for x in clients:
        for y in clients:
            if x is not y:
                assert polite[(x.id, y.id)] != polite[(y.id, x.id)]


async def test_leave_tells_the_others_and_the_leaver(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")

    await bob.send(type="leave")

    assert bob.take_one(Left).room == "lobby"
    left = alice.take_one(MemberLeft)
    assert (left.room, left.id) == ("lobby", bob.id)
    assert list(world.hub.rooms["lobby"].seats) == [alice.id]


async def test_disconnect_tells_the_others(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")

    bob.closed()

    left = alice.take_one(MemberLeft)
    assert left.id == bob.id
    assert bob.id not in world.hub.rooms["lobby"]


async def test_an_empty_room_is_forgotten(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")
    await alice.send(type="leave")
    assert "lobby" in world.hub.rooms

    bob.closed()

    assert world.hub.rooms == {}


async def test_leave_when_not_in_a_room(world: World) -> None:
    alice = await world.connect("alice")
    await alice.send(type="leave", ref="r1")
    error = alice.take_error()
    assert (error.code, error.ref) == ("not_joined", "r1")


async def test_room_full_at_max_room_members_changes_nothing(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_room_members=3)
    members = await world.connect_in("small", "a", "b", "c")
    dave = await world.connect("dave")
    await dave.send(type="join", room="other")
    dave.take()

    await dave.send(type="join", room="small")

    assert dave.take_error().code == "room_full"
    assert list(world.hub.rooms["small"].seats) == [m.id for m in members]
    assert dave.id in world.hub.rooms["other"]
    assert all(m.take() == [] for m in members)


async def test_room_full_frees_a_seat_when_someone_leaves(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_room_members=2)
    a, _b = await world.connect_in("small", "a", "b")
    c = await world.connect("c")
    await c.send(type="join", room="small")
    assert c.take_error().code == "room_full"

    await a.send(type="leave")
    await c.send(type="join", room="small")

    assert isinstance(c.take()[0], Joined)


async def test_max_rooms_limits_how_many_rooms_are_open(make_world: Callable[..., World]) -> None:
    world = make_world(max_rooms=2)
    await world.connect_in("one", "a")
    await world.connect_in("two", "b")
    c = await world.connect("c")

    await c.send(type="join", room="three")

    assert c.take_error().code == "server_full"
    assert set(world.hub.rooms) == {"one", "two"}
    await c.send(type="join", room="two")
    assert isinstance(c.take()[0], Joined)


async def test_a_first_joiners_password_sets_nothing(world: World) -> None:
    """v1 let whoever joined an empty room first give it a password; a join's password only
    opens a protected room now. Only a host protects a room (``room_password``)."""
    (alice,) = await world.connect_in("secret", "alice", password="hunter2")
    bob = await world.connect("bob")

    await bob.send(type="join", room="secret")

    joined = bob.take_one(Joined)
    assert joined.protected is False and [m.id for m in joined.members] == [alice.id]
    assert world.hub.rooms["secret"].password_hash is None


async def test_a_password_set_by_the_host_is_asked_of_later_joiners(world: World) -> None:
    (alice,) = await world.connect_in("secret", "alice")
    await alice.send(type="room_password", password="hunter2")
    alice.take()
    bob = await world.connect("bob")

    await bob.send(type="join", room="secret", ref=7)
    error = bob.take_error()
    assert (error.code, error.ref) == ("wrong_password", 7)

    await bob.send(type="join", room="secret", password="hunter3")
    assert bob.take_error().code == "wrong_password"
    assert list(world.hub.rooms["secret"].seats) == [alice.id]
    assert alice.take() == []

    await bob.send(type="join", room="secret", password="hunter2")
    assert isinstance(bob.take()[0], Joined)


async def test_a_password_longer_than_the_limit_is_refused(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_password_chars=8)
    alice = await world.connect("alice")

    await alice.send(type="join", room="r", password="x" * 9)
    assert alice.take_error().code == "wrong_password"
    assert world.hub.rooms == {}

    await alice.send(type="join", room="r", password="x" * 8)
    assert isinstance(alice.take()[0], Joined)


async def test_joining_a_second_room_leaves_the_first(world: World) -> None:
    alice, bob = await world.connect_in("first", "alice", "bob")

    await bob.send(type="join", room="second")

    got = bob.take()
    assert isinstance(got[0], Left)
    assert got[0].room == "first"
    assert isinstance(got[1], Joined)
    assert got[1].room == "second"
    assert alice.take_one(MemberLeft).id == bob.id
    assert bob.id not in world.hub.rooms["first"]
    assert bob.id in world.hub.rooms["second"]


async def test_joining_the_same_room_twice(world: World) -> None:
    (alice,) = await world.connect_in("lobby", "alice")

    await alice.send(type="join", room="lobby", ref="again")

    error = alice.take_error()
    assert (error.code, error.ref) == ("already_joined", "again")
    assert list(world.hub.rooms["lobby"].seats) == [alice.id]


@pytest.mark.parametrize(
    "room", ["", "x" * 65, "../x", "café", "сalon", "a b", "a/b", "room\n", "💬"]
)
async def test_invalid_room_ids(world: World, room: str) -> None:
    alice = await world.connect("alice")

    await alice.send(type="join", room=room)

    assert alice.take_error().code == "invalid_room"
    assert world.hub.rooms == {}


@pytest.mark.parametrize("room", ["a", "x" * 64, "Team_Sync-2026"])
async def test_valid_room_ids(world: World, room: str) -> None:
    alice = await world.connect("alice")
    await alice.send(type="join", room=room)
    assert alice.take_one(Joined).room == room


async def test_a_call_room_id_cannot_be_made_up(world: World) -> None:
    alice = await world.connect("alice")

    await alice.send(type="join", room="call-abc")

    assert alice.take_error().code == "no_such_room"
    assert world.hub.rooms == {}


async def test_a_live_call_room_cannot_be_joined_by_outsiders(world: World) -> None:
    alice = await world.connect("alice")
    bob = await world.connect("bob", reachable=True)
    await alice.send(type="call", name="bob")
    call_id = bob.take()[0].call  # type: ignore[union-attr]
    await bob.send(type="call_accept", call=call_id)
    room = next(iter(world.hub.rooms))
    assert room.startswith("call-")
    alice.take()
    bob.take()
    carol = await world.connect("carol")

    await carol.send(type="join", room=room)

    assert carol.take_error().code == "no_such_room"
    assert set(world.hub.rooms[room].seats) == {alice.id, bob.id}
    assert alice.take() == []
    await alice.send(type="join", room=room)
    assert alice.take_error().code == "already_joined"
