"""A room's join rate (LimitSettings.room_joins_per_minute, room_join_burst): a script joining
and leaving in a loop cannot flood the members with member_joined/member_left."""

from __future__ import annotations

from collections.abc import Callable

from salon.protocol.messages import Joined

from .conftest import World


async def test_joins_past_the_burst_are_refused_and_the_room_hears_nothing(
    make_world: Callable[..., World],
) -> None:
    world = make_world(room_join_burst=3, room_joins_per_minute=60)
    ann, bob, cat = await world.connect_in("r", "ann", "bob", "cat")  # three joins: the burst
    eve = await world.connect("eve")

    await eve.send(type="join", room="r")
    error = eve.take_error()
    assert error.code == "rate_limited" and "1 s" in error.message
    assert ann.take() == [] and bob.take() == []  # nobody noticed

    world.clock.advance(1.0)  # one join a second comes back
    await eve.send(type="join", room="r")
    assert isinstance(eve.take()[0], Joined)
    await eve.send(type="leave")
    await eve.send(type="join", room="r")
    assert eve.take()[-1].type == "error"

    dan = await world.connect("dan")  # other rooms have their own
    await dan.send(type="join", room="elsewhere")
    assert isinstance(dan.take()[0], Joined)
    del cat


async def test_a_refused_join_spends_nothing(make_world: Callable[..., World]) -> None:
    world = make_world(room_join_burst=2, room_joins_per_minute=60)
    (host,) = await world.connect_in("r", "host")  # one join spent
    await host.send(type="room_lock", locked=True)
    host.take()
    guests = [await world.connect(f"g{i}") for i in range(5)]
    for guest in guests:
        await guest.send(type="join", room="r")
        assert guest.take_error().code == "room_locked"  # refused: the room's joins stay
    await host.send(type="room_lock", locked=False)
    await guests[0].send(type="join", room="r")
    assert isinstance(guests[0].take()[0], Joined)
