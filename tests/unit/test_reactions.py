"""Reactions (👍, 👏, …): who hears them, and the per-member rate (docs/PROTOCOL.md, reaction)."""

from __future__ import annotations

from collections.abc import Callable

from salon.protocol.messages import Reacted

from .conftest import World
from .test_calls import ring


async def test_everyone_in_the_room_sees_it_the_sender_too(world: World) -> None:
    ann, bob = await world.connect_in("r", "ann", "bob")
    (elsewhere,) = await world.connect_in("other", "eve")

    await bob.send(type="reaction", reaction="clap")

    shown = Reacted(sender=bob.id, reaction="clap")
    assert ann.take() == [shown]
    assert bob.take() == [shown]
    assert elsewhere.take() == []
    assert ann.take_wire() == []  # nothing else


async def test_wire_shape(world: World) -> None:
    ann, bob = await world.connect_in("r", "ann", "bob")
    await ann.send(type="reaction", reaction="thumbs_up")
    assert bob.take_wire() == [{"type": "reaction", "from": ann.id, "reaction": "thumbs_up"}]


async def test_burst_then_one_a_second(make_world: Callable[..., World]) -> None:
    world = make_world(reaction_rate_per_second=1.0, reaction_burst=5)
    ann, bob = await world.connect_in("r", "ann", "bob")

    for _ in range(6):
        await ann.send(type="reaction", reaction="heart")

    assert len(bob.take()) == 5  # the sixth reached nobody
    assert [m.type for m in ann.take()] == ["reaction"] * 5 + ["error"]
    await ann.send(type="reaction", reaction="heart")
    assert ann.take_error().code == "rate_limited"

    world.clock.advance(1.0)  # one more token
    await ann.send(type="reaction", reaction="wave")
    assert bob.take() == [Reacted(sender=ann.id, reaction="wave")]
    await ann.send(type="reaction", reaction="wave")
    assert ann.take()[-1].type == "error"
    assert bob.take() == []

    await bob.send(type="reaction", reaction="party")  # the rate is per member
    assert ann.take() == [Reacted(sender=bob.id, reaction="party")]


async def test_leaving_and_joining_again_gives_no_fresh_budget(world: World) -> None:
    """The rate is the member's, not its seat's: a new seat starts no new budget."""
    ann, bob = await world.connect_in("r", "ann", "bob")
    for _ in range(5):
        await ann.send(type="reaction", reaction="laugh")
    await ann.send(type="leave")
    await ann.send(type="join", room="r")
    ann.take()
    bob.take()
    await ann.send(type="reaction", reaction="laugh")
    assert ann.take_error().code == "rate_limited"
    assert bob.take() == []


async def test_a_reaction_needs_a_room(world: World) -> None:
    loner = await world.connect("loner")
    await loner.send(type="reaction", reaction="wow")
    assert loner.take_error().code == "not_joined"


async def test_an_unknown_reaction_is_refused_and_reaches_nobody(world: World) -> None:
    ann, bob = await world.connect_in("r", "ann", "bob")
    for bad in ("💩", "THUMBS_UP", "", 1, None):
        await ann.send(type="reaction", reaction=bad)
        assert ann.take_error().code == "bad_message"
    await ann.send(type="reaction")
    assert ann.take_error().code == "bad_message"
    assert bob.take() == []


async def test_in_a_direct_call_both_sides_see_it(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    call = await ring(alice, bob)
    await bob.send(type="call_accept", call=call)
    alice.take()
    bob.take()

    await alice.send(type="reaction", reaction="thinking")

    shown = Reacted(sender=alice.id, reaction="thinking")
    assert bob.take() == [shown]
    assert alice.take() == [shown]
