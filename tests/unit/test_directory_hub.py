"""The hub's use of a directory shared by several processes (issue #12): two hubs over one
in-memory directory. Reachable names are unique across them, an ended place is ended on both,
presence lists and changes span both, and a member moves from one to the other (release,
export, adopt) keeping its id and name. The Redis-backed directory is tested elsewhere; this
one only keeps the promises of :class:`~salon.core.directory.Directory`."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from salon.core.clock import FakeClock
from salon.core.directory import Directory, LocalDirectory
from salon.core.errors import SalonError
from salon.core.hub import Hub
from salon.core.passwords import MemoryRoomKeys
from salon.core.resume import ResumeTokens
from salon.core.session import Session, SessionState
from salon.core.settings import LimitSettings
from salon.core.validate import name_key as key
from salon.protocol.messages import (
    CallEnded,
    Joined,
    Left,
    MemberJoined,
    MemberLeft,
    Presence,
    PresenceChanged,
    Ringing,
    SignedInAccount,
    Unreachable,
    Welcome,
)
from salon.store.chat import MemoryChatRepository
from tests.unit.conftest import ICE, Client, FakeTransport, World

SECRET = b"s" * 32


@dataclass
class Shared:
    """What the processes share (Redis, in production)."""

    names: dict[str, str] = field(default_factory=dict)  # name key -> member id
    ended: dict[str, float] = field(default_factory=dict)  # member id -> seconds
    hubs: dict[str, Hub] = field(default_factory=dict)  # proc -> its hub
    down: bool = False  # unreachable: claims refused, names unknown, nothing ended
    told: list[tuple[str, PresenceChanged]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when given: names() waits for it to be set ...
    reading: asyncio.Event = field(default_factory=asyncio.Event)  # ... having set this


class FakeDirectory:
    """One process's view of :class:`Shared`."""

    def __init__(self, shared: Shared, proc: str) -> None:
        self.shared = shared
        self.proc = proc

    async def claim_name(self, key: str, member_id: str) -> bool:
        if self.shared.down:
            return True  # unique on each process only, meanwhile
        holder = self.shared.names.get(key)
        if holder is not None and holder != member_id:
            return False
        self.shared.names[key] = member_id
        return True

    def release_name(self, key: str, member_id: str) -> None:
        if not self.shared.down and self.shared.names.get(key) == member_id:
            del self.shared.names[key]

    async def names(self) -> list[str] | None:
        if self.shared.gate is not None:
            self.shared.reading.set()
            await self.shared.gate.wait()
        if self.shared.down:
            return None
        return [
            place.name
            for hub in self.shared.hubs.values()
            for place in hub.local_places()
            if place.reachable
        ]

    def end(self, member_id: str, seconds: float) -> None:
        if not self.shared.down:
            self.shared.ended[member_id] = seconds

    async def ended(self, member_id: str) -> bool:
        return not self.shared.down and member_id in self.shared.ended

    def presence(self, change: PresenceChanged) -> None:
        self.shared.told.append((self.proc, change))
        for proc, hub in self.shared.hubs.items():
            if proc != self.proc:
                hub.on_remote_presence(change)


def _world(shared: Shared, proc: str, clock: FakeClock) -> World:
    limits = LimitSettings()
    chats = MemoryChatRepository()
    hub = Hub(
        limits,
        clock,
        chats,
        MemoryRoomKeys(),
        tokens=ResumeTokens(SECRET),
        directory=FakeDirectory(shared, proc),
    )
    shared.hubs[proc] = hub
    return World(limits, clock, chats, hub)


@dataclass
class Two:
    shared: Shared
    a: World
    b: World


@pytest.fixture
def two() -> Two:
    shared = Shared()
    clock = FakeClock()
    return Two(shared, _world(shared, "a", clock), _world(shared, "b", clock))


def _fresh(world: World, transport: FakeTransport | None = None) -> Client:
    transport = transport or FakeTransport()
    return Client(Session(world.hub, transport, lambda member_id: list(ICE)), transport)


async def test_the_local_directory_shares_nothing() -> None:
    directory: Directory = LocalDirectory()
    assert await directory.claim_name("alice", "m1") is True
    assert await directory.claim_name("alice", "m2") is True  # the hub's own check decides
    assert await directory.names() is None
    assert await directory.ended("m1") is False
    directory.release_name("alice", "m1")
    directory.end("m1", 60)
    directory.presence(PresenceChanged(name="alice", online=True))


def test_a_hub_is_alone_by_default(world: World) -> None:
    assert isinstance(world.hub.directory, LocalDirectory)


# ------------------------------------------------------------------ reachable names


async def test_a_reachable_name_taken_on_one_process_is_taken_on_the_other(two: Two) -> None:
    alice = await two.a.connect("alice", reachable=True)
    assert two.shared.names == {key("alice"): alice.id}
    client = two.b.open()

    await client.send(type="hello", versions=[1], name="ALICE", reachable=True, ref="h")

    error = client.take_error()
    assert (error.code, error.ref) == ("name_taken", "h")
    assert two.b.hub.online() == 0
    assert client.session.state is SessionState.AWAITING_HELLO
    assert two.shared.names == {key("alice"): alice.id}  # nothing changed
    # A name only shown in rooms is no one's to refuse; another reachable name is free.
    await two.b.connect("alice")
    await two.b.connect("alicia", reachable=True)
    assert two.shared.names == {key("alice"): alice.id, key("alicia"): two.b.hub.held_names()[0][1]}


async def test_a_name_is_released_when_its_place_ends(two: Two) -> None:
    alice = await two.a.connect("alice", reachable=True)
    alice.closed(goodbye=True)
    assert two.shared.names == {}
    assert two.shared.ended == {alice.id: two.a.limits.resume_token_seconds}
    await two.b.connect("alice", reachable=True)


async def test_a_lost_connection_keeps_the_name_until_the_grace_window_ends(two: Two) -> None:
    alice = await two.a.connect("alice", reachable=True)
    alice.closed(goodbye=False)
    two.a.hub.sweep()
    assert two.shared.names == {key("alice"): alice.id}
    assert two.shared.ended == {}

    two.a.clock.advance(two.a.limits.resume_grace_seconds)
    two.a.hub.sweep()

    assert two.shared.names == {}
    assert alice.id in two.shared.ended


async def test_while_the_directory_is_unreachable_names_are_unique_per_process(
    two: Two,
) -> None:
    two.shared.down = True
    await two.a.connect("alice", reachable=True)
    await two.b.connect("alice", reachable=True)
    client = two.a.open()
    await client.send(type="hello", versions=[1], name="alice", reachable=True)
    assert client.take_error().code == "name_taken"
    assert two.shared.names == {}


async def test_a_guest_moved_aside_releases_its_claim(two: Two) -> None:
    guest = await two.a.connect("zoe", reachable=True)
    transport = FakeTransport()
    account = SignedInAccount(username="zoe", display_name="Zoe")
    owner = Client(Session(two.a.hub, transport, lambda _: list(ICE), account=account), transport)

    await owner.send(type="hello", versions=[1], name="ignored", reachable=True)

    owner.take_one(Welcome)
    assert guest.take_one(Unreachable).name == "zoe"
    # The guest's claim is gone; the owner's is the hub's own truth (re-asserted by the
    # heartbeat of a real directory), and what the hub says it holds.
    assert two.shared.names.get(key("zoe")) != guest.id
    assert two.a.hub.held_names() == [(key("zoe"), owner.id)]


async def test_a_rebuilt_place_whose_name_another_process_holds_is_refused(two: Two) -> None:
    alice = await two.a.connect("alice", reachable=True)
    token = alice.welcome.resume_token if alice.welcome else ""
    alice.closed(goodbye=False)
    two.shared.names[key("alice")] = "someone-else"  # held by a member elsewhere meanwhile
    client = two.b.open()

    await client.send(type="hello", versions=[1], name="x", resume=token)

    assert client.take_error().code == "resume_failed"
    assert two.b.hub.online() == 0
    assert two.shared.names == {key("alice"): "someone-else"}


async def test_a_rebuilt_place_takes_its_own_name_back_on_another_process(two: Two) -> None:
    alice = await two.a.connect("alice", reachable=True)
    token = alice.welcome.resume_token if alice.welcome else ""
    del two.shared.hubs["a"]  # process a died with the place
    client = two.b.open()

    await client.send(type="hello", versions=[1], name="x", resume=token)

    welcome = client.take_one(Welcome)
    assert (welcome.id, welcome.name) == (alice.id, "alice")
    assert two.shared.names == {key("alice"): alice.id}


# ------------------------------------------------------------------ ended places


async def test_a_place_ended_on_one_process_is_not_resumed_on_the_other(two: Two) -> None:
    alice = await two.a.connect("alice", reachable=True)
    token = alice.welcome.resume_token if alice.welcome else ""
    alice.closed(goodbye=True)
    assert not two.b.hub.ended(alice.id)
    assert await two.b.hub.ended_anywhere(alice.id)
    client = two.b.open()

    await client.send(type="hello", versions=[1], name="x", resume=token, ref=1)

    error = client.take_error()
    assert (error.code, error.ref) == ("resume_failed", 1)
    assert two.b.hub.online() == 0


async def test_ended_anywhere_is_local_when_the_directory_cannot_say(two: Two) -> None:
    alice = await two.a.connect("alice")
    alice.closed(goodbye=True)
    two.shared.down = True
    assert await two.a.hub.ended_anywhere(alice.id)  # ended here
    assert not await two.b.hub.ended_anywhere(alice.id)


# ------------------------------------------------------------------ presence


async def test_a_presence_list_has_every_process_s_names(two: Two) -> None:
    await two.a.connect("bob", reachable=True)
    await two.a.connect("carol")  # only shown in rooms: not listed
    await two.b.connect("Alice", reachable=True)
    watcher = await two.b.connect("dave")

    await watcher.send(type="presence_watch", watch=True)

    assert watcher.take_one(Presence).names == ["Alice", "bob"]


async def test_a_presence_list_names_each_name_key_once(two: Two) -> None:
    await two.a.connect("bob", reachable=True)
    # A stale entry elsewhere for a name held here (a member that moved): listed once.
    two.b.hub.arrive(two.b.hub.new_place("ghost", "BOB", None), reachable=True)
    watcher = await two.a.connect("dave")

    await watcher.send(type="presence_watch", watch=True)

    assert watcher.take_one(Presence).names == ["bob"]  # the local one wins


async def test_a_presence_list_is_local_when_the_directory_cannot_say(two: Two) -> None:
    await two.a.connect("bob", reachable=True)
    await two.b.connect("alice", reachable=True)
    two.shared.down = True
    watcher = await two.b.connect("dave")

    await watcher.send(type="presence_watch", watch=True)

    assert watcher.take_one(Presence).names == ["alice"]


async def test_presence_changes_reach_the_other_process_s_watchers(two: Two) -> None:
    watcher = await two.b.connect("dave")
    await watcher.send(type="presence_watch", watch=True)
    watcher.take()

    bob = await two.a.connect("bob", reachable=True)
    bob.closed(goodbye=False)
    bob_back = _fresh(two.a)
    assert bob.welcome is not None
    await bob_back.send(type="hello", versions=[1], name="x", resume=bob.welcome.resume_token)
    bob_back.closed(goodbye=True)

    assert watcher.take() == [
        PresenceChanged(name="bob", online=True),
        PresenceChanged(name="bob", online=True, reconnecting=True),
        PresenceChanged(name="bob", online=True, reconnecting=False),
        PresenceChanged(name="bob", online=False),
    ]
    assert [proc for proc, _ in two.shared.told] == ["a"] * 4


async def test_a_remote_change_is_told_to_local_watchers_only(two: Two) -> None:
    watcher = await two.a.connect("dave")
    await watcher.send(type="presence_watch", watch=True)
    watcher.take()

    two.a.hub.on_remote_presence(PresenceChanged(name="eve", online=True))

    assert watcher.take() == [PresenceChanged(name="eve", online=True)]
    assert two.shared.told == []  # not sent back out


async def test_a_watcher_gone_while_the_list_was_read_gets_nothing(two: Two) -> None:
    two.shared.gate = asyncio.Event()
    watcher = await two.a.connect("dave")
    watching = asyncio.create_task(watcher.send(type="presence_watch", watch=True))
    await two.shared.reading.wait()
    # A change while the list is read is told already; then the member leaves.
    await two.a.connect("bob", reachable=True)
    assert watcher.take() == [PresenceChanged(name="bob", online=True)]
    watcher.closed(goodbye=True)

    two.shared.gate.set()
    await watching

    assert watcher.take() == []  # no presence list for a member that left


# ------------------------------------------------------------------ release


async def test_release_leaves_the_room_but_not_the_name(two: Two) -> None:
    alice = await two.a.connect("alice", reachable=True)
    await alice.send(type="join", room="r")
    alice.take()
    carol = await two.a.connect("carol")
    await carol.send(type="join", room="r")
    carol.take()
    alice.take()
    place = two.a.hub.place(alice.id)
    assert place is not None
    assert sorted(two.a.hub.held_rooms()) == ["r"]
    online = two.a.hub.online()

    two.a.hub.release(place)

    # As for any leave: the others hear member_left, and the host role passes on.
    heard = carol.take()
    assert heard[0] == MemberLeft(room="r", id=alice.id)
    assert [type(m).__name__ for m in heard[1:]] == ["RoomState", "RoomEvent"]
    assert alice.take() == [Left(room="r", reason="left")]
    assert place.room is None and not place.host
    assert two.a.hub.place(alice.id) is None
    assert place not in two.a.hub.local_places()
    assert two.a.hub.online() == online - 1
    assert two.a.hub.held_names() == []
    # Not ended, and the name is still the member's in the directory.
    assert not two.a.hub.ended(alice.id)
    assert not await two.a.hub.ended_anywhere(alice.id)
    assert two.shared.names == {key("alice"): alice.id}
    assert all(change.name != "alice" or change.online for _, change in two.shared.told)
    assert alice.transport.closes == []


async def test_release_ends_a_ringing_call_and_stops_a_wait(two: Two) -> None:
    caller = await two.a.connect("alice")
    callee = await two.a.connect("bob", reachable=True)
    await caller.send(type="call", name="bob")
    call = caller.take_one(Ringing).call
    callee.take()
    place = two.a.hub.place(caller.id)
    assert place is not None

    two.a.hub.release(place)

    assert callee.take() == [CallEnded(call=call, reason="offline")]
    assert caller.take() == [CallEnded(call=call, reason="offline")]
    assert two.a.hub.calls.of(callee.id) is None


async def test_release_of_a_member_waiting_in_a_lobby(two: Two) -> None:
    (host,) = await two.a.connect_in("r", "host")
    await host.send(type="room_lobby", enabled=True)
    host.take()
    knocker = await two.a.connect("kim")
    await knocker.send(type="join", room="r")
    knocker.take()
    host.take()
    place = two.a.hub.place(knocker.id)
    assert place is not None

    two.a.hub.release(place)

    assert knocker.take() == [Left(room="r")]
    assert [type(m).__name__ for m in host.take()] == ["Lobby"]
    assert two.a.hub.held_rooms() == ["r"]  # the host is still in it


async def test_release_stops_presence_watching(two: Two) -> None:
    watcher = await two.a.connect("dave")
    await watcher.send(type="presence_watch", watch=True)
    place = two.a.hub.place(watcher.id)
    assert place is not None and two.a.hub.watching(place)

    two.a.hub.release(place)

    assert not two.a.hub.watching(place)


# ------------------------------------------------------------------ export and adopt


async def test_a_session_moves_to_another_process(two: Two) -> None:
    alice = await two.a.connect("alice", reachable=True)
    await alice.send(type="presence_watch", watch=True)
    await alice.send(type="join", room="r")
    bob = await two.a.connect("bob")
    await bob.send(type="join", room="r")
    alice.take()
    bob.take()

    state = alice.session.export()

    assert state is not None
    assert set(state) == {"version", "token", "watching"}
    assert (state["version"], state["watching"]) == (1, True)
    assert alice.session.state is SessionState.CLOSED
    assert bob.take()[0] == MemberLeft(room="r", id=alice.id)
    assert alice.transport.closes == []
    claims = two.a.hub.tokens.verify(state["token"], two.a.clock.wall_ms() / 1000)
    assert claims is not None
    assert (claims.member, claims.name, claims.room, claims.reachable) == (
        alice.id,
        "alice",
        None,
        True,
    )
    assert two.a.hub.place(alice.id) is None
    alice.session.closed(goodbye=True)  # the old socket's end changes nothing any more
    assert two.shared.names == {key("alice"): alice.id}
    assert two.shared.ended == {}

    moved = _fresh(two.b, alice.transport)  # the same socket, now served by process b
    moved._read = len(alice.transport.sent)
    await moved.session.adopt(state)

    assert moved.session.state is SessionState.GREETED
    assert (moved.id, moved.name, moved.session.version) == (alice.id, "alice", 1)
    assert moved.take() == [Presence(names=["alice"])]  # no welcome
    place = two.b.hub.place(alice.id)
    assert place is not None and place.room is None and place.reachable
    assert place.transport is alice.transport
    assert two.b.hub.held_names() == [(key("alice"), alice.id)]
    assert two.b.hub.watching(place)

    await moved.send(type="join", room="r2")
    joined = moved.take_one(Joined)
    assert joined.room == "r2"
    assert two.b.hub.held_rooms() == ["r2"]
    carol = await two.b.connect("carol")
    await carol.send(type="join", room="r2")
    assert isinstance(moved.take()[0], MemberJoined)

    moved.closed(goodbye=True)
    assert two.shared.names == {}
    assert alice.id in two.shared.ended


async def test_a_moved_session_keeps_the_new_session_s_connection_details(two: Two) -> None:
    alice = await two.a.connect("alice")
    state = alice.session.export()
    assert state == {"version": 1, "token": state and state["token"], "watching": False}
    transport = FakeTransport()
    session = Session(
        two.b.hub, transport, lambda _: list(ICE), address="10.0.0.7", base_url="https://b"
    )

    await session.adopt(state)

    assert transport.sent == []
    place = two.b.hub.place(alice.id)
    assert place is not None and place.address == "10.0.0.7"
    assert (session.address, session.base_url) == ("10.0.0.7", "https://b")
    assert not two.b.hub.watching(place)


async def test_nothing_to_export_unless_greeted(two: Two) -> None:
    client = two.a.open()
    assert client.session.export() is None
    await client.send(type="hello", versions=[1], name="alice")
    client.session.closed(goodbye=False)
    assert client.session.export() is None
    assert two.a.hub.place(client.id) is not None  # away, untouched


async def test_a_place_taken_by_a_newer_connection_is_not_exported(two: Two) -> None:
    alice = await two.a.connect("alice")
    assert alice.welcome is not None
    newer = _fresh(two.a)
    await newer.send(type="hello", versions=[1], name="x", resume=alice.welcome.resume_token)
    assert alice.session.export() is None
    assert two.a.hub.place(alice.id) is not None


@pytest.mark.parametrize(
    "state",
    [
        {},
        {"version": 1, "token": "nonsense", "watching": False},
        {"version": 9, "token": None, "watching": False},
        {"version": "1", "token": None, "watching": False},
        {"version": 1, "token": None, "watching": "yes"},
    ],
)
async def test_a_bad_state_is_resume_failed(two: Two, state: dict[str, Any]) -> None:
    alice = await two.a.connect("alice")
    exported = alice.session.export()
    assert exported is not None
    if state.get("token", "") is None:
        state = {**state, "token": exported["token"]}
    client = _fresh(two.b)

    with pytest.raises(SalonError) as raised:
        await client.session.adopt(state)

    assert raised.value.code == "resume_failed"
    assert client.session.state is SessionState.AWAITING_HELLO
    assert two.b.hub.online() == 0


async def test_a_token_signed_elsewhere_is_resume_failed(two: Two) -> None:
    alice = await two.a.connect("alice")
    exported = alice.session.export()
    assert exported is not None
    other = Hub(LimitSettings(), FakeClock(), MemoryChatRepository(), MemoryRoomKeys())
    session = Session(other, FakeTransport(), lambda _: list(ICE))

    with pytest.raises(SalonError) as raised:
        await session.adopt(exported)

    assert raised.value.code == "resume_failed"


async def test_an_adopted_name_held_here_by_another_is_resume_failed(two: Two) -> None:
    alice = await two.a.connect("alice", reachable=True)
    exported = alice.session.export()
    assert exported is not None
    two.b.hub.arrive(two.b.hub.new_place("other", "Alice", None), reachable=True)
    client = _fresh(two.b)

    with pytest.raises(SalonError) as raised:
        await client.session.adopt(exported)

    assert raised.value.code == "resume_failed"
    assert two.b.hub.place(alice.id) is None


async def test_a_place_already_held_is_not_adopted_twice(two: Two) -> None:
    alice = await two.a.connect("alice")
    exported = alice.session.export()
    assert exported is not None
    await _fresh(two.b).session.adopt(exported)
    again = _fresh(two.b)

    with pytest.raises(SalonError) as raised:
        await again.session.adopt(exported)

    assert raised.value.code == "resume_failed"


async def test_only_a_fresh_session_adopts(two: Two) -> None:
    alice = await two.a.connect("alice")
    exported = alice.session.export()
    assert exported is not None
    greeted = await two.b.connect("bob")

    with pytest.raises(SalonError) as raised:
        await greeted.session.adopt(exported)

    assert raised.value.code == "already_greeted"
