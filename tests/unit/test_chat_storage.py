"""What the store may hold of a room's chat: a rate per member, a quota per room, and a
retention for all (LimitSettings.chat_per_minute/chat_burst, max_room_chat_messages,
chat_retention_days). Driven through sessions with the in-memory store and a fake clock."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from salon.core.settings import LimitSettings
from salon.protocol.messages import ChatDelivered, ChatEntry, Joined

from .conftest import World
from .test_hosts import connect

DAY = 86_400.0


async def test_a_member_sends_a_burst_then_a_few_a_minute(
    make_world: Callable[..., World],
) -> None:
    world = make_world(chat_burst=3, chat_per_minute=60)
    ann, bob = await world.connect_in("r", "ann", "bob")
    for i in range(3):
        await ann.send(type="chat", text=f"m{i}")
    assert [m.type for m in bob.take()] == ["chat"] * 3
    ann.take()

    await ann.send(type="chat", text="one too many", ref="c4")
    error = ann.take_error()
    assert (error.code, error.ref) == ("rate_limited", "c4")
    assert "1 s" in error.message
    assert bob.take() == []
    assert [e.text for e in world.chats.rooms["r"]] == ["m0", "m1", "m2"]  # not stored

    await ann.send(type="leave")  # a new seat is no new budget
    await ann.send(type="join", room="r")
    ann.take()
    bob.take()
    await ann.send(type="chat", text="after rejoining")
    assert ann.take_error().code == "rate_limited"

    await bob.send(type="chat", text="bob's own budget")  # per member
    assert [m.type for m in ann.take()] == ["chat"]
    world.clock.advance(1.0)
    await ann.send(type="chat", text="later")
    assert [e.text for e in world.chats.rooms["r"]][-1] == "later"


async def test_a_room_keeps_its_newest_messages_within_its_quota(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_room_chat_messages=10, history_on_join=5, chat_burst=1000)
    ann, bob = await world.connect_in("r", "ann", "bob")
    for i in range(25):
        await ann.send(type="chat", text=f"m{i}")
    stored = world.chats.rooms["r"]
    assert [e.seq for e in stored] == list(range(16, 26))  # the newest ten, seq unbroken
    delivered = [m for m in bob.take() if isinstance(m, ChatDelivered)]
    assert [m.seq for m in delivered] == list(range(1, 26))  # everyone saw everything live
    (other,) = await world.connect_in("elsewhere", "cat")
    await other.send(type="chat", text="another room, another quota")
    assert len(world.chats.rooms["elsewhere"]) == 1


async def test_chat_older_than_the_retention_is_deleted(make_world: Callable[..., World]) -> None:
    world = make_world(chat_retention_days=30, history_on_join=50)
    (ann,) = await world.connect_in("r", "ann")
    await ann.send(type="chat", text="old")
    world.clock.advance(29 * DAY)
    await ann.send(type="chat", text="recent")

    world.clock.advance(1.5 * DAY)  # "old" is 30.5 days old, "recent" 1.5
    assert await world.hub.expire_chat() == 1

    assert [e.text for e in world.chats.rooms["r"]] == ["recent"]
    bob = await world.connect("bob")
    await bob.send(type="join", room="r")
    joined = bob.take_one(Joined)
    assert [e.text for e in joined.history] == ["recent"]  # the live room's history too
    assert joined.last_seq == 2  # numbering goes on


async def test_a_write_stored_after_all_does_not_jam_the_room(world: World) -> None:
    """A commit that outran the store's timeout is stored although its sender was told
    otherwise: the room takes its numbering from the store and goes on."""
    ann, bob = await world.connect_in("r", "ann", "bob")
    await ann.send(type="chat", text="one")
    bob.take()
    ann.take()
    late = ChatDelivered(
        room="r", id="x", seq=2, ts=1, sender=ann.id, name="ann", text="stored late"
    )
    world.chats.rooms["r"].append(ChatEntry(**late.model_dump(exclude={"type"})))

    await bob.send(type="chat", text="two", ref="b2")
    error = bob.take_error()
    assert (error.code, error.ref) == ("store_unavailable", "b2")
    await bob.send(type="chat", text="two", ref="b2")  # sent again: it goes
    (delivered,) = [m for m in ann.take() if isinstance(m, ChatDelivered)]
    assert (delivered.seq, delivered.text) == (3, "two")


def test_a_quota_below_the_history_on_join_is_refused_at_start() -> None:
    """joined.history would show messages the store no longer holds."""
    with pytest.raises(ValueError, match="at least history_on_join"):
        LimitSettings(max_room_chat_messages=10, history_on_join=50)


async def test_one_address_has_one_chat_budget_whatever_connections_it_opens(
    make_world: Callable[..., World],
) -> None:
    """A new connection is a new member, with a fresh member budget, but not a fresh address
    budget: opening connection after connection gets an address no more than its own rate."""
    world = make_world(chat_burst=3, address_chat_burst=5, address_chat_per_minute=60)
    office = "203.0.113.9"
    mallory = await connect(world, "m0", address=office)
    await mallory.send(type="join", room="r")
    mallory.take()
    sent = 0
    for i in range(1, 4):  # each new connection brings its 3, the address allows 5 in all
        for _ in range(3):
            await mallory.send(type="chat", text=f"m{sent}", ref="x")
            sent += 1
        mallory = await connect(world, f"m{i}", address=office)
        await mallory.send(type="join", room=f"r{i}")  # other rooms: the same budget
        mallory.take()
    stored = [e.text for room in world.chats.rooms.values() for e in room]
    assert stored == ["m0", "m1", "m2", "m3", "m4"]

    await mallory.send(type="chat", text="over", ref="c9")
    error = mallory.take_error()
    assert (error.code, error.ref) == ("rate_limited", "c9")
    assert "1 s" in error.message

    ann = await connect(world, "ann", address="192.0.2.1")  # other addresses: unaffected
    await ann.send(type="join", room="r3")
    ann.take()
    await ann.send(type="chat", text="hello")
    assert [e.text for e in world.chats.rooms["r3"]] == ["hello"]

    world.clock.advance(1.0)  # one a second comes back to the address
    mallory.take()
    await mallory.send(type="chat", text="later")
    assert [e.text for e in world.chats.rooms["r3"]] == ["hello", "later"]
    mallory.take()
    await mallory.send(type="chat", text="again")
    assert mallory.take_error().code == "rate_limited"


async def test_a_refused_message_spends_neither_budget(
    make_world: Callable[..., World],
) -> None:
    """A member over its own rate spends none of its address's budget (its office mates keep
    theirs), and a message the address refuses spends none of the member's."""
    world = make_world(chat_burst=2, address_chat_burst=3, address_chat_per_minute=60)
    office = "203.0.113.9"
    ann, bob = [await connect(world, name, address=office) for name in ("ann", "bob")]
    for client in (ann, bob):
        await client.send(type="join", room="r")
    for _ in range(10):  # ann floods: 2 stored, 8 refused by her own budget
        await ann.send(type="chat", text="ann")
    await bob.send(type="chat", text="bob")  # the address's third
    assert [e.text for e in world.chats.rooms["r"]] == ["ann", "ann", "bob"]
    bob.take()
    await bob.send(type="chat", text="bob again")  # the address's budget is spent
    assert bob.take_error().code == "rate_limited"
    world.clock.advance(1.0)  # one more for the address; bob's own budget still holds one
    await bob.send(type="chat", text="bob later")
    assert [e.text for e in world.chats.rooms["r"]][-1] == "bob later"
