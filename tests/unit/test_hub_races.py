"""Interleavings at the hub's awaits: the chat store is the only thing it waits for."""

from __future__ import annotations

import asyncio

from salon.core.passwords import MemoryRoomKeys
from salon.protocol.messages import ChatDelivered, ChatEntry, Joined, MemberJoined
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
    await bob.send(type="join", room="x", password="q")  # a join's password sets nothing
    gate.set()
    await slow_join

    joined, arrived = bob.take()
    assert isinstance(joined, Joined) and isinstance(arrived, MemberJoined)
    assert joined.members == [] and joined.hosts == [bob.id]  # first in: the host
    assert arrived.member.id == alice.id
    joined = alice.take_one(Joined)
    assert [m.id for m in joined.members] == [bob.id] and joined.hosts == [bob.id]
    assert list(world.hub.rooms["x"].seats) == [bob.id, alice.id]


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


async def test_a_room_kept_for_a_late_joiner_starts_a_fresh_meeting(world: World) -> None:
    chats = gated(world)
    alice = await world.connect("alice")
    bob = await world.connect("bob")
    gate = chats.gate = asyncio.Event()

    slow_join = asyncio.create_task(alice.send(type="join", room="x"))
    await asyncio.sleep(0)
    await bob.send(type="join", room="x")
    await bob.send(type="room_password", password="bobs")
    await bob.send(type="room_lock", locked=True)
    await bob.send(type="leave")
    assert "x" in world.hub.rooms  # kept: alice is still reading the store for it
    gate.set()
    await slow_join

    # Bob's meeting ended with him: its password and lock are gone, alice hosts a new one.
    joined = alice.take_one(Joined)
    assert (joined.hosts, joined.protected, joined.locked) == ([alice.id], False, False)
    alice.closed()
    assert world.hub.rooms == {}


class GatedKeys(MemoryRoomKeys):
    """A password check that waits for the test, like a slow hash in a worker thread."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.checking = asyncio.Event()

    async def verify_password(self, password: str, hashed: str) -> bool:
        self.checking.set()
        await self.gate.wait()
        return await super().verify_password(password, hashed)


async def test_a_member_who_disconnects_while_joining_is_not_seated(world: World) -> None:
    keys = GatedKeys()
    world.hub.keys = keys
    (bob,) = await world.connect_in("r", "bob")
    await bob.send(type="room_password", password="pw")
    bob.take()
    alice = await world.connect("alice")
    joining = asyncio.create_task(alice.send(type="join", room="r", password="pw"))
    await keys.checking.wait()  # alice's join now waits on the password check
    alice.session.closed()
    keys.gate.set()
    await joining
    assert list(world.hub.rooms["r"].seats) == [bob.id]  # no ghost seat
    assert bob.take() == []


async def test_a_password_changed_during_the_check_is_checked_again(world: World) -> None:
    keys = GatedKeys()
    world.hub.keys = keys
    (bob,) = await world.connect_in("r", "bob")
    await bob.send(type="room_password", password="old")
    alice = await world.connect("alice")
    joining = asyncio.create_task(alice.send(type="join", room="r", password="old"))
    await keys.checking.wait()
    await bob.send(type="room_password", password="new")  # hashing does not wait on the gate
    keys.gate.set()
    await joining
    assert alice.take_error().code == "wrong_password"  # "old" opened the old hash only
    assert list(world.hub.rooms["r"].seats) == [bob.id]


async def test_a_protected_meeting_ends_when_the_room_empties_and_its_chat_goes(
    world: World,
) -> None:
    (alice,) = await world.connect_in("vault", "alice")
    await alice.send(type="room_password", password="s3cret")
    await alice.send(type="chat", text="the combination is 1234")
    await alice.send(type="leave")
    await asyncio.gather(*world.hub._tasks)  # the erase, in a task of the hub's
    assert "vault" not in world.hub.rooms
    assert world.chats.rooms.get("vault", []) == []
    mallory = await world.connect("mallory")
    await mallory.send(type="join", room="vault")  # a fresh meeting, with nothing to read
    joined = mallory.take_one(Joined)
    assert (joined.history, joined.protected, joined.hosts) == ([], False, [mallory.id])
