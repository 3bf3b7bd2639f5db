"""A room's join rate per client address (LimitSettings.room_joins_per_minute,
room_join_burst): a script joining and leaving in a loop cannot flood the members with
member_joined/member_left, and spends nobody else's joins."""

from __future__ import annotations

from collections.abc import Callable

from salon.protocol.messages import Joined

from .conftest import World
from .test_hosts import connect

MALLORY = "198.51.100.7"


async def test_one_address_joins_a_burst_then_one_a_second_and_others_are_unaffected(
    make_world: Callable[..., World],
) -> None:
    world = make_world(room_join_burst=3, room_joins_per_minute=60)
    ann = await connect(world, "ann", address="192.0.2.1")
    await ann.send(type="join", room="r")
    ann.take()
    mallory = await connect(world, "mallory", address=MALLORY)
    for _ in range(3):  # the burst: joined, left, joined, …
        await mallory.send(type="join", room="r")
        assert isinstance(mallory.take()[0], Joined)
        await mallory.send(type="leave")
        mallory.take()
    ann.take()

    await mallory.send(type="join", room="r")
    error = mallory.take_error()
    assert error.code == "rate_limited" and "1 s" in error.message
    assert ann.take() == []  # nobody noticed

    twin = await connect(world, "twin", address=MALLORY)  # the same address, another member
    await twin.send(type="join", room="r")
    assert twin.take_error().code == "rate_limited"
    bob = await connect(world, "bob", address="192.0.2.2")  # anyone else gets in
    await bob.send(type="join", room="r")
    assert isinstance(bob.take()[0], Joined)
    await mallory.send(type="join", room="elsewhere")  # other rooms have their own
    assert isinstance(mallory.take()[0], Joined)

    world.clock.advance(1.0)  # one join a second comes back
    await twin.send(type="join", room="r")
    assert isinstance(twin.take()[0], Joined)


async def test_an_emptied_room_gives_no_fresh_budget(make_world: Callable[..., World]) -> None:
    world = make_world(room_join_burst=2, room_joins_per_minute=60)
    mallory = await connect(world, "mallory", address=MALLORY)
    for _ in range(2):  # alone: each leave empties the room and the hub forgets it
        await mallory.send(type="join", room="r")
        await mallory.send(type="leave")
    mallory.take()
    assert "r" not in world.hub.rooms
    await mallory.send(type="join", room="r")
    assert mallory.take_error().code == "rate_limited"


async def test_a_refused_join_spends_nothing(make_world: Callable[..., World]) -> None:
    world = make_world(room_join_burst=2, room_joins_per_minute=60)
    host = await connect(world, "host", address="192.0.2.1")
    await host.send(type="join", room="r")
    await host.send(type="room_lock", locked=True)
    host.take()
    guest = await connect(world, "guest", address=MALLORY)
    for _ in range(5):
        await guest.send(type="join", room="r")
        assert guest.take_error().code == "room_locked"  # refused: its joins stay
    await host.send(type="room_lock", locked=False)
    await guest.send(type="join", room="r")
    assert isinstance(guest.take()[0], Joined)
