"""Interleavings at the hub's awaits: the chat store is the only thing it waits for."""

from __future__ import annotations

import asyncio

from salon.core.passwords import MemoryRoomPasswords
from salon.protocol.messages import ChatDelivered, ChatEntry, Joined
from salon.store.chat import MemoryChatRepository

from .conftest import World


class GatedChats(MemoryChatRepository):
    """Reads a room's recent chat (what bringing a room to life asks the store), then holds
    the answer until the test opens the gate: a slow database whose answer is already out of
    date when the hub gets it."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = None

    async def _hold(self) -> None:
        gate, self.gate = self.gate, None
        if gate is not None:
            await gate.wait()

    async def recent(self, room: str, limit: int) -> list[ChatEntry]:
        found = await super().recent(room, limit)
        await self._hold()
        return found


def gated(world: World) -> GatedChats:
    chats = GatedChats()
    world.chats = chats
    world.hub.chats = chats
    return chats


async def test_a_room_that_opens_and_empties_while_another_joiner_reads_the_store(
    world: World,
) -> None:
    chats = gated(world)
    alice = await world.connect("alice")
    bob = await world.connect("bob")
    gate = chats.gate = asyncio.Event()

    slow_join = asyncio.create_task(alice.send(type="join", room="x"))
    await asyncio.sleep(0)  # alice is now waiting for her (soon stale) read of the store
    await bob.send(type="join", room="x")
    await bob.send(type="chat", text="m1")
    await bob.send(type="leave")
    gate.set()
    await slow_join

    joined = alice.take_one(Joined)
    assert joined.last_seq == 1
    assert [e.text for e in joined.history] == ["m1"]
    await alice.send(type="chat", text="m2")
    assert alice.take_one(ChatDelivered).seq == 2
    assert [(e.seq, e.text) for e in chats.rooms["x"]] == [(1, "m1"), (2, "m2")]
    alice.closed()
    assert world.hub.rooms == {}


async def test_two_joiners_of_a_new_room_share_one_room(world: World) -> None:
    chats = gated(world)
    alice = await world.connect("alice")
    bob = await world.connect("bob")
    gate = chats.gate = asyncio.Event()

    slow_join = asyncio.create_task(alice.send(type="join", room="x", password="p"))
    await asyncio.sleep(0)
    await bob.send(type="join", room="x", password="q")
    gate.set()
    await slow_join

    assert bob.take_one(Joined).members == []
    assert alice.take_error().code == "wrong_password"
    assert list(world.hub.rooms["x"].seats) == [bob.id]


async def test_a_chat_in_flight_keeps_its_room_until_it_is_stored(world: World) -> None:
    alice, bob = await world.connect_in("x", "alice", "bob")
    stored = asyncio.Event()
    release = asyncio.Event()
    append = world.chats.append

    async def slow_append(entry):  # type: ignore[no-untyped-def]
        kept = await append(entry)
        stored.set()
        await release.wait()
        return kept

    world.chats.append = slow_append  # type: ignore[method-assign]
    chat = asyncio.create_task(alice.send(type="chat", text="last words"))
    await stored.wait()
    alice.closed()
    bob.closed()
    assert "x" in world.hub.rooms  # the write is still under way
    release.set()
    await chat

    assert world.hub.rooms == {}
    carol = await world.connect("carol")
    await carol.send(type="join", room="x")
    joined = carol.take_one(Joined)
    assert joined.last_seq == 1
    assert [e.text for e in joined.history] == ["last words"]


async def test_a_kept_room_is_forgotten_when_the_late_joiner_is_refused(world: World) -> None:
    chats = gated(world)
    alice = await world.connect("alice")
    bob = await world.connect("bob")
    gate = chats.gate = asyncio.Event()

    slow_join = asyncio.create_task(alice.send(type="join", room="x"))
    await asyncio.sleep(0)
    await bob.send(type="join", room="x", password="bobs")
    await bob.send(type="leave")
    assert "x" in world.hub.rooms  # kept: alice is still reading the store for it
    gate.set()
    await slow_join

    assert alice.take_error().code == "wrong_password"
    assert world.hub.rooms == {}


class GatedPasswords(MemoryRoomPasswords):
    """A password check that waits for the test, like a slow hash in a worker thread."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def check(self, room: str, password: str | None) -> bool | None:
        await self.gate.wait()
        return await super().check(room, password)


async def test_a_member_who_disconnects_while_joining_is_not_seated(world: World) -> None:
    passwords = GatedPasswords()
    world.hub.passwords = passwords
    alice = await world.connect("alice")
    joining = asyncio.create_task(alice.send(type="join", room="r"))
    await asyncio.sleep(0)  # alice's join now waits on the password check
    alice.session.closed()
    passwords.gate.set()
    await joining
    assert "r" not in world.hub.rooms  # no ghost seat, and no empty room left behind
    bob = await world.connect("bob")
    await bob.send(type="join", room="r")
    assert bob.take_one(Joined).members == []


async def test_a_protected_room_stays_protected_after_it_empties(world: World) -> None:
    (alice,) = await world.connect_in("vault", "alice", password="s3cret")
    await alice.send(type="chat", text="the combination is 1234")
    await alice.send(type="leave")
    assert "vault" not in world.hub.rooms
    mallory = await world.connect("mallory")
    await mallory.send(type="join", room="vault")
    assert mallory.take_error().code == "wrong_password"
    await mallory.send(type="join", room="vault", password="guess")
    assert mallory.take_error().code == "wrong_password"
    assert "vault" not in world.hub.rooms
    await mallory.send(type="join", room="vault", password="s3cret")
    joined = mallory.take_one(Joined)
    assert [e.text for e in joined.history] == ["the combination is 1234"]
