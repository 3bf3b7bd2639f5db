"""A room's password tries from all addresses together (LimitSettings.
room_password_guesses_per_minute, room_password_guess_burst): many addresses guessing in
parallel gain nothing, and the members' own address is not locked out by them."""

from __future__ import annotations

from collections.abc import Callable

from salon.protocol.messages import Joined

from .conftest import World
from .test_hosts import connect

OFFICE = "192.0.2.10"


async def test_the_room_allows_a_burst_of_tries_from_all_addresses_then_a_few_a_minute(
    make_world: Callable[..., World],
) -> None:
    world = make_world(
        password_guesses=2, room_password_guess_burst=4, room_password_guesses_per_minute=6
    )
    host = await connect(world, "host", address=OFFICE)
    await host.send(type="join", room="r")
    await host.send(type="room_password", password="1234")
    codes = []
    for n in range(3):  # three addresses, two tries each: the room allows four
        guesser = await connect(world, f"eve{n}", address=f"198.51.100.{n}")
        for guess in ("0000", "0001"):
            await guesser.send(type="join", room="r", password=guess)
            codes.append(guesser.take_error().code)
    assert codes == ["wrong_password"] * 4 + ["rate_limited"] * 2
    stranger = await connect(world, "new", address="203.0.113.5")
    await stranger.send(type="join", room="r", password="1234")  # refused before the check
    error = stranger.take_error()
    assert error.code == "rate_limited" and "10 s" in error.message
    # Refused by the room, eve2 and the stranger spent none of their addresses' tries.
    assert list(world.hub.rooms["r"].guessers) == ["198.51.100.0", "198.51.100.1"]

    colleague = await connect(world, "bob", address=OFFICE)  # a member's address: exempt
    await colleague.send(type="join", room="r", password="1234")
    assert isinstance(colleague.take()[0], Joined)

    world.clock.advance(10.0)  # one try for the room comes back
    await stranger.send(type="join", room="r", password="1234")
    assert isinstance(stranger.take()[0], Joined)


async def test_the_members_address_keeps_its_own_budget(make_world: Callable[..., World]) -> None:
    """Exempt from the room's ceiling, not from its address's budget."""
    world = make_world(password_guesses=2, room_password_guess_burst=1)
    host = await connect(world, "host", address=OFFICE)
    await host.send(type="join", room="r")
    await host.send(type="room_password", password="1234")
    inside = await connect(world, "mallory", address=OFFICE)
    codes = []
    for guess in ("0000", "0001", "1234"):
        await inside.send(type="join", room="r", password=guess)
        codes.append(inside.take_error().code)
    assert codes == ["wrong_password", "wrong_password", "rate_limited"]
