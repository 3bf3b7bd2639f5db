"""Hosts, the lobby, removals, mutes, hands and the life of a meeting, driven through sessions.

The rules are docs/PROTOCOL.md's (issue 10): who is a host (R1-R4), what each host action
does and what the room sees of it, the order of the joining rules, and what ends with a
meeting."""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable
from typing import Any

import pytest

from salon.core.admission import Joiner, Way, way_back, way_in
from salon.core.clock import FakeClock
from salon.core.hub import Hub
from salon.core.passwords import MemoryRoomKeys, Removed, RoomCreator, host_key_digest
from salon.core.resume import Claims, ResumeTokens
from salon.core.room import Room
from salon.core.session import Session
from salon.core.settings import LimitSettings
from salon.protocol import CloseCode
from salon.protocol.messages import (
    ChatDelivered,
    Error,
    Hands,
    Joined,
    Left,
    Lobby,
    LobbyDenied,
    LobbyWaiting,
    MediaChanged,
    MemberJoined,
    MemberLeft,
    Muted,
    RoomEvent,
    RoomState,
    ServerMessage,
    SignedInAccount,
    Welcome,
)
from salon.store.chat import MemoryChatRepository

from .conftest import ICE, Client, FakeTransport, World

SECRET = b"h" * 32
KEY = "the-creators-key"


@pytest.fixture
def keyed(make_world: Callable[..., World]) -> World:
    """A world whose room "team" was created over REST by account "olga", with host key KEY."""
    world = make_world()
    keys = MemoryRoomKeys()
    keys.creators["team"] = RoomCreator(host_key_digest(KEY), "olga")
    world.hub.keys = keys
    return world


async def connect(
    world: World, name: str, *, account: str | None = None, address: str | None = None
) -> Client:
    """A greeted client, signed in as ``account`` (display name ``name``) when given, whose
    connection comes from ``address``."""
    transport = FakeTransport()
    signed_in = None if account is None else SignedInAccount(username=account, display_name=name)
    session = Session(world.hub, transport, lambda _: list(ICE), account=signed_in, address=address)
    client = Client(session, transport)
    await client.send(type="hello", versions=[1], name=name)
    client.welcome = client.take_one(Welcome)
    return client


def types(messages: list[ServerMessage]) -> list[str]:
    return [m.type for m in messages]


def event(client: Client) -> RoomEvent:
    return client.take_one(RoomEvent)


def claims_of(world: World, client: Client) -> Claims:
    seen = world.hub.tokens.verify(client.token, world.clock.wall_ms() / 1000)
    assert seen is not None
    return seen


async def knock(world: World, name: str, room: str = "r", **join: Any) -> Client:
    """A greeted client whose join must end in the lobby (``lobby_waiting``)."""
    client = await connect(world, name)
    await client.send(type="join", room=room, **join)
    assert client.take_one(LobbyWaiting).room == room
    return client


# ------------------------------------------------------------------------------ who hosts


async def test_the_first_joiner_of_an_empty_room_hosts_it(world: World) -> None:
    alice = await world.connect("alice")
    await alice.send(type="join", room="r")
    joined = alice.take_one(Joined)
    assert joined.hosts == [alice.id]
    assert (joined.locked, joined.lobby, joined.protected, joined.hands) == (
        False,
        False,
        False,
        [],
    )
    assert claims_of(world, alice).host is True
    bob = await world.connect("bob")
    await bob.send(type="join", room="r")
    assert bob.take_one(Joined).hosts == [alice.id]
    assert claims_of(world, bob).host is False


async def test_the_creator_with_the_host_key_hosts_even_after_a_stranger(keyed: World) -> None:
    (stranger,) = await keyed.connect_in("team", "stranger")  # first in: a host too
    creator = await keyed.connect("creator")

    await creator.send(type="join", room="team", host_key=KEY)

    assert creator.take_one(Joined).hosts == [stranger.id, creator.id]
    joined, state = stranger.take()
    assert isinstance(joined, MemberJoined) and isinstance(state, RoomState)
    assert state.hosts == [stranger.id, creator.id]


async def test_a_wrong_host_key_is_as_if_absent(keyed: World) -> None:
    (host,) = await keyed.connect_in("team", "host")
    await host.send(type="room_lock", locked=True)
    guesser = await keyed.connect("guesser")
    for key in ("wrong", KEY.upper(), host_key_digest(KEY)):
        await guesser.send(type="join", room="team", host_key=key)
        assert guesser.take_error().code == "room_locked"
    await guesser.send(type="join", room="other", host_key=KEY)  # another room's key
    assert guesser.take_one(Joined).hosts == [guesser.id]  # (c): an empty room


async def test_the_creating_account_hosts_and_bypasses_every_protection(keyed: World) -> None:
    (host,) = await keyed.connect_in("team", "host")
    for action in (
        {"type": "room_lock", "locked": True},
        {"type": "room_password", "password": "pw"},
        {"type": "room_lobby", "enabled": True},
    ):
        await host.send(**action)
    olga = await connect(keyed, "Olga", account="olga")

    await olga.send(type="join", room="team")

    assert olga.take_one(Joined).hosts == [host.id, olga.id]


async def test_an_account_that_hosted_in_this_meeting_hosts_again(world: World) -> None:
    (host,) = await world.connect_in("r", "host")
    sam = await connect(world, "Sam", account="sam")
    await sam.send(type="join", room="r")
    await host.send(type="make_host", id=sam.id)
    await host.send(type="room_lock", locked=True)
    await sam.send(type="leave")
    sam.closed()
    again = await connect(world, "Sam", account="sam")  # a new member id, the same account

    await again.send(type="join", room="r")

    assert again.take_one(Joined).hosts == [host.id, again.id]


async def test_a_meeting_remembers_at_most_max_room_host_accounts(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_room_host_accounts=1)
    (host,) = await world.connect_in("r", "host")
    hosts = {}
    for account in ("sam", "kim"):  # kim is remembered; sam, the older, is forgotten
        member = await connect(world, account.title(), account=account)
        await member.send(type="join", room="r")
        await host.send(type="make_host", id=member.id)
        hosts[account] = member
    assert list(world.hub.rooms["r"].host_accounts) == ["kim"]
    await host.send(type="room_lock", locked=True)
    for account, member in hosts.items():
        await member.send(type="leave")
        member.closed()
        again = await connect(world, account.title(), account=account)
        await again.send(type="join", room="r")
        got = again.take()[0]
        assert (got.type, account) in {("error", "sam"), ("joined", "kim")}


async def test_a_direct_calls_room_has_no_hosts(world: World) -> None:
    alice = await world.connect("alice")
    bob = await world.connect("bob", reachable=True)
    await alice.send(type="call", name="bob")
    call_id = bob.take()[0].call  # type: ignore[union-attr]
    await bob.send(type="call_accept", call=call_id)
    joined = next(m for m in alice.take() if isinstance(m, Joined))
    bob.take()
    assert joined.hosts == []
    for action in (
        {"type": "room_lock", "locked": True},
        {"type": "remove", "id": bob.id},
        {"type": "end_meeting"},
    ):
        await alice.send(**action)
        assert alice.take_error().code == "not_host"
    assert bob.take() == []


# ------------------------------------------------------------------------------ passing on


async def test_the_host_passes_to_the_longest_seated_when_the_last_host_leaves(
    world: World,
) -> None:
    host, bob, carol = await world.connect_in("r", "host", "bob", "carol")

    await host.send(type="leave")

    for member in (bob, carol):
        left, state, passed = member.take()
        assert isinstance(left, MemberLeft) and left.id == host.id
        assert isinstance(state, RoomState) and state.hosts == [bob.id]
        assert isinstance(passed, RoomEvent)
        assert (passed.action, passed.by, passed.by_name) == ("host_passed", None, None)
        assert (passed.target, passed.target_name) == (bob.id, "bob")
    assert claims_of(world, bob).host is True
    await bob.send(type="room_lock", locked=True)
    assert isinstance(bob.take()[0], RoomState)


@pytest.mark.parametrize("how", ["goodbye", "grace", "call"])
async def test_the_host_passes_on_however_the_last_host_goes(world: World, how: str) -> None:
    host, bob = await world.connect_in("r", "host", "bob")
    if how == "goodbye":
        host.closed(goodbye=True)
    elif how == "grace":
        host.closed(goodbye=False)
        assert types(bob.take()) == ["member_reconnecting"]  # away still counts as seated
        world.clock.advance(world.limits.resume_grace_seconds + 1)
        world.hub.sweep()
    else:
        callee = await world.connect("callee", reachable=True)
        await host.send(type="call", name="callee")
        call_id = callee.take()[0].call  # type: ignore[union-attr]
        await callee.send(type="call_accept", call=call_id)
    got = bob.take()
    assert types(got) == ["member_left", "room_state", "room_event"]
    assert isinstance(got[2], RoomEvent) and got[2].target == bob.id


async def test_another_host_left_means_nothing_passes(world: World) -> None:
    host, bob, carol = await world.connect_in("r", "host", "bob", "carol")
    await host.send(type="make_host", id=bob.id)
    carol.take()
    await host.send(type="leave")
    assert types(carol.take()) == ["member_left"]
    assert world.hub.rooms["r"].host_list() == [bob.id]


async def test_a_resume_into_the_live_room_keeps_the_host(world: World) -> None:
    host, bob = await world.connect_in("r", "host", "bob")
    token = host.token
    host.closed(goodbye=False)
    back = world.open()
    await back.send(type="hello", versions=[1], name="host", resume=token)
    joined = [m for m in back.take() if isinstance(m, Joined)][-1]
    assert joined.hosts == [host.id]
    assert types(bob.take()) == ["member_reconnecting", "member_resumed"]


# ------------------------------------------------------------------------------ the checks


HOST_ACTIONS: list[dict[str, Any]] = [
    {"type": "room_lock", "locked": True},
    {"type": "room_password", "password": "pw"},
    {"type": "room_lobby", "enabled": True},
    {"type": "lobby_admit", "id": "TARGET"},
    {"type": "lobby_deny", "id": "TARGET"},
    {"type": "make_host", "id": "SELF"},
    {"type": "remove", "id": "TARGET"},
    {"type": "mute", "id": "TARGET", "kind": "mic"},
    {"type": "lower_hand", "id": "TARGET"},
    {"type": "end_meeting"},
]


def _aimed(action: dict[str, Any], sender: Client, target: Client) -> dict[str, Any]:
    ids = {"TARGET": target.id, "SELF": sender.id}
    return {k: ids.get(v, v) if isinstance(v, str) else v for k, v in action.items()}


@pytest.mark.parametrize("action", HOST_ACTIONS, ids=lambda a: str(a["type"]))
async def test_a_host_action_from_a_non_host_is_refused_and_changes_nothing(
    world: World, action: dict[str, Any]
) -> None:
    host, member = await world.connect_in("r", "host", "member")
    await host.send(type="hand", raised=True)
    host.take()
    member.take()
    room = world.hub.rooms["r"]
    before = (room.host_list(), room.locked, room.lobby, room.protected, list(room.hands))

    await member.send(**_aimed(action, member, host), ref="x")

    error = member.take_error()
    assert (error.code, error.ref) == ("not_host", "x")
    assert host.take() == []
    assert (room.host_list(), room.locked, room.lobby, room.protected, list(room.hands)) == before
    assert list(room.seats) == [host.id, member.id]


@pytest.mark.parametrize("action", HOST_ACTIONS, ids=lambda a: str(a["type"]))
async def test_a_host_action_outside_a_room_is_not_joined(
    world: World, action: dict[str, Any]
) -> None:
    loner = await world.connect("loner")
    await loner.send(**_aimed(action, loner, loner))
    assert loner.take_error().code == "not_joined"


@pytest.mark.parametrize("kind", ["remove", "mute", "make_host", "lower_hand"])
async def test_a_target_outside_the_room_is_no_such_member(world: World, kind: str) -> None:
    (host,) = await world.connect_in("r", "host")
    (elsewhere,) = await world.connect_in("s", "elsewhere")
    extra = {"kind": "mic"} if kind == "mute" else {}
    for target in (elsewhere.id, "nobody"):
        await host.send(type=kind, id=target, **extra)
        assert host.take_error().code == "no_such_member"
    assert elsewhere.take() == []


@pytest.mark.parametrize("kind", ["remove", "mute"])
async def test_a_host_cannot_remove_or_mute_itself(world: World, kind: str) -> None:
    (host,) = await world.connect_in("r", "host")
    extra = {"kind": "mic"} if kind == "mute" else {}
    await host.send(type=kind, id=host.id, **extra)
    assert host.take_error().code == "no_such_member"
    assert host.id in world.hub.rooms["r"]


# ------------------------------------------------------------------------------ lock


async def test_lock_refuses_new_joins_and_knocks_and_unlock_opens(world: World) -> None:
    host, bob = await world.connect_in("r", "host", "bob")

    await host.send(type="room_lock", locked=True)

    for member in (host, bob):
        state, done = member.take()
        assert isinstance(state, RoomState) and state.locked is True
        assert isinstance(done, RoomEvent) and (done.action, done.by) == ("locked", host.id)
    carol = await world.connect("carol")
    await carol.send(type="join", room="r")
    assert carol.take_error().code == "room_locked"
    await host.send(type="room_lobby", enabled=True)
    await carol.send(type="join", room="r")
    assert carol.take_error().code == "room_locked"  # no knocking either
    assert types(host.take()) == types(bob.take()) == ["room_state", "room_event"]
    await host.send(type="room_lock", locked=True)  # already locked: nothing
    assert host.take() == bob.take() == []
    await host.send(type="room_lock", locked=False)
    assert [m.action for m in host.take() if isinstance(m, RoomEvent)] == ["unlocked"]
    await carol.send(type="join", room="r")
    assert isinstance(carol.take()[0], LobbyWaiting)


async def test_people_waiting_keep_waiting_when_the_room_is_locked(world: World) -> None:
    (host,) = await world.connect_in("r", "host")
    await host.send(type="room_lobby", enabled=True)
    waiter = await knock(world, "waiter")
    await host.send(type="room_lock", locked=True)
    host.take()
    await host.send(type="lobby_admit", id=waiter.id)
    assert isinstance(waiter.take()[0], Joined)


# ------------------------------------------------------------------------------ password


async def test_password_set_changed_and_removed_by_a_host(world: World) -> None:
    host, bob = await world.connect_in("r", "host", "bob")

    await host.send(type="room_password", password="first pw")
    for member in (host, bob):
        state, done = member.take()
        assert isinstance(state, RoomState) and state.protected is True
        assert isinstance(done, RoomEvent) and done.action == "password_set"
    assert claims_of(world, bob).guarded is True  # present members stay, tokens say so
    await host.send(type="room_password", password="second pw")
    assert [m.action for m in bob.take() if isinstance(m, RoomEvent)] == ["password_set"]
    carol = await world.connect("carol")
    await carol.send(type="join", room="r", password="first pw")
    assert carol.take_error().code == "wrong_password"
    await carol.send(type="join", room="r", password="second pw")
    assert carol.take()[0].protected is True  # type: ignore[union-attr]

    await host.send(type="room_password", password="")
    got = bob.take()
    assert [m.action for m in got if isinstance(m, RoomEvent)] == ["password_removed"]
    assert claims_of(world, bob).guarded is False
    host.take()
    await host.send(type="room_password", password=None)  # none left: nothing happens
    assert host.take() == []
    dave = await world.connect("dave")
    await dave.send(type="join", room="r")
    assert isinstance(dave.take()[0], Joined)


async def test_the_store_knows_while_a_meeting_with_a_password_is_under_way(
    world: World,
) -> None:
    keys = world.hub.keys
    assert isinstance(keys, MemoryRoomKeys)
    (host,) = await world.connect_in("r", "host")
    await host.send(type="room_password", password="pw")
    await asyncio.gather(*world.hub._tasks)
    assert keys.seals == {"r"}
    await host.send(type="room_password", password=None)
    await asyncio.gather(*world.hub._tasks)
    assert keys.seals == set()
    await host.send(type="room_password", password="again")
    await host.send(type="chat", text="under the password")
    host.closed(goodbye=True)  # the meeting ends: its chat is erased, then the seal broken
    await asyncio.gather(*world.hub._tasks)
    assert keys.seals == set()
    assert world.chats.rooms.get("r", []) == []
    assert world.hub.rooms == {}


async def test_password_guesses_are_throttled_per_address_before_any_check(
    make_world: Callable[..., World],
) -> None:
    world = make_world(password_guesses=3, password_retry_seconds=10.0)
    (host,) = await world.connect_in("r", "host")
    await host.send(type="room_password", password="1234")
    guesser = await connect(world, "eve", address="198.51.100.66")
    codes = []
    for guess in ("0000", "0001", "0002", "1234"):
        await guesser.send(type="join", room="r", password=guess)
        codes.append(guesser.take_error().code)
    # Three tries in a row, then refused before the check: even the right one.
    assert codes == ["wrong_password"] * 3 + ["rate_limited"]
    other = await connect(world, "bob", address="203.0.113.8")  # another address is not held
    await other.send(type="join", room="r", password="1234")
    assert isinstance(other.take()[0], Joined)
    world.clock.advance(10.0)  # one try back after password_retry_seconds
    await guesser.send(type="join", room="r", password="1234")
    assert isinstance(guesser.take()[0], Joined)


async def test_a_room_keeps_the_guesses_of_at_most_max_room_guessers(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_room_guessers=2, password_guesses=1)
    (host,) = await world.connect_in("r", "host")
    await host.send(type="room_password", password="pw")
    for n in range(3):
        client = await connect(world, f"g{n}", address=f"198.51.100.{n}")
        await client.send(type="join", room="r", password="wrong")
        assert client.take_error().code == "wrong_password"
    assert list(world.hub.rooms["r"].guessers) == ["198.51.100.1", "198.51.100.2"]


async def test_the_password_is_never_echoed(world: World) -> None:
    host, bob = await world.connect_in("r", "host", "bob")
    await host.send(type="room_password", password="hunter2 secret")
    carol = await world.connect("carol")
    await carol.send(type="join", room="r", password="hunter2 secret")
    for member in (host, bob, carol):
        wire = json.dumps(member.take_wire())
        assert "hunter2" not in wire
    assert "hunter2" not in (world.hub.rooms["r"].password_hash or "hunter2")


async def test_a_password_over_the_limit_is_wrong_password(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_password_chars=8)
    (host,) = await world.connect_in("r", "host")
    await host.send(type="room_password", password="x" * 9)
    assert host.take_error().code == "wrong_password"
    assert world.hub.rooms["r"].protected is False
    await host.send(type="room_password", password="x" * 8)
    assert types(host.take()) == ["room_state", "room_event"]


async def test_joins_to_a_protected_room_by_password_and_lobby(world: World) -> None:
    (host,) = await world.connect_in("r", "host")
    await host.send(type="room_password", password="pw")
    guest = await world.connect("guest")
    await guest.send(type="join", room="r")
    assert guest.take_error().code == "wrong_password"  # no password, no lobby
    await host.send(type="room_lobby", enabled=True)
    host.take()
    await guest.send(type="join", room="r", password="nope")
    assert guest.take_error().code == "wrong_password"  # a wrong one never knocks
    await guest.send(type="join", room="r")
    assert isinstance(guest.take()[0], LobbyWaiting)  # none, with a lobby: knocks
    right = await world.connect("right")
    await right.send(type="join", room="r", password="pw")
    assert isinstance(right.take()[0], Joined)  # the right one skips the lobby


async def test_setting_a_password_after_the_host_left_while_hashing_changes_nothing(
    world: World,
) -> None:
    gate = asyncio.Event()
    keys = world.hub.keys

    class SlowKeys(MemoryRoomKeys):
        async def hash_password(self, password: str) -> str:
            await gate.wait()
            return await keys.hash_password(password)

    world.hub.keys = SlowKeys()
    host, bob = await world.connect_in("r", "host", "bob")
    setting = asyncio.create_task(host.send(type="room_password", password="pw"))
    await asyncio.sleep(0)
    await host.send(type="make_host", id=bob.id)
    await bob.send(type="remove", id=host.id)
    gate.set()
    await setting
    assert types(host.take())[-1] == "error"
    assert world.hub.rooms["r"].protected is False


# ------------------------------------------------------------------------------ lobby


async def test_a_knock_leaves_the_current_room_and_tells_the_hosts(world: World) -> None:
    host, bob = await world.connect_in("r", "host", "bob")
    await host.send(type="room_lobby", enabled=True)
    for member in (host, bob):
        assert types(member.take()) == ["room_state", "room_event"]
    (waiter,) = await world.connect_in("elsewhere", "waiter")

    await waiter.send(type="join", room="r")

    left, waiting = waiter.take()
    assert isinstance(left, Left) and left.room == "elsewhere"
    assert waiting == LobbyWaiting(room="r")
    lobby = host.take_one(Lobby)
    assert [(k.id, k.name, k.removed) for k in lobby.waiting] == [(waiter.id, "waiter", False)]
    assert bob.take() == []  # only hosts hear of the lobby
    assert claims_of(world, waiter).room is None
    await waiter.send(type="join", room="r")
    assert waiter.take_error().code == "already_joined"


async def test_admit_seats_the_knocker_and_tells_everyone(world: World) -> None:
    host, bob = await world.connect_in("r", "host", "bob")
    await host.send(type="room_lobby", enabled=True)
    host.take()
    bob.take()
    waiter = await knock(world, "waiter", media={"mic": True})
    host.take()

    await host.send(type="lobby_admit", id=waiter.id)

    joined = waiter.take()
    assert types(joined) == ["joined", "room_event"]
    assert isinstance(joined[0], Joined) and [m.id for m in joined[0].members] == [host.id, bob.id]
    arrived, admitted = bob.take()
    assert isinstance(arrived, MemberJoined) and arrived.member.media.mic is True
    assert isinstance(admitted, RoomEvent)
    assert (admitted.action, admitted.by, admitted.target) == ("admitted", host.id, waiter.id)
    assert types(host.take()) == ["member_joined", "room_event", "lobby"]
    await host.send(type="lobby_admit", id=waiter.id)
    assert host.take_error().code == "no_such_member"


async def test_admit_into_a_full_room_keeps_the_knocker_waiting(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_room_members=2)
    host, _bob = await world.connect_in("r", "host", "bob")
    await host.send(type="room_lobby", enabled=True)
    waiter = await knock(world, "waiter")
    host.take()
    await host.send(type="lobby_admit", id=waiter.id)
    assert host.take_error().code == "room_full"
    assert waiter.take() == [] and waiter.id in world.hub.rooms["r"].waiting


async def test_deny_turns_the_knocker_away(world: World) -> None:
    host, bob = await world.connect_in("r", "host", "bob")
    await host.send(type="room_lobby", enabled=True)
    waiter = await knock(world, "waiter")
    host.take()
    bob.take()

    await host.send(type="lobby_deny", id=waiter.id)

    assert waiter.take() == [LobbyDenied(room="r", reason="denied")]
    assert event(bob).action == "denied"
    assert types(host.take()) == ["room_event", "lobby"]
    await waiter.send(type="leave")
    assert waiter.take_error().code == "not_joined"


@pytest.mark.parametrize("how", ["leave", "goodbye", "grace", "elsewhere"])
async def test_a_knocker_stops_waiting(world: World, how: str) -> None:
    (host,) = await world.connect_in("r", "host")
    await host.send(type="room_lobby", enabled=True)
    waiter = await knock(world, "waiter")
    host.take()
    if how == "leave":
        await waiter.send(type="leave")
        assert waiter.take() == [Left(room="r", reason="left")]
    elif how == "goodbye":
        waiter.closed(goodbye=True)
    elif how == "grace":
        waiter.closed(goodbye=False)
        world.clock.advance(world.limits.resume_grace_seconds + 1)
        world.hub.sweep()
    else:
        await waiter.send(type="join", room="elsewhere")
        assert isinstance(waiter.take()[0], Joined)
    assert host.take() == [Lobby(room="r", waiting=[])]
    assert world.hub.rooms["r"].waiting == {}


async def test_a_resumed_knocker_hears_it_still_waits(world: World) -> None:
    (host,) = await world.connect_in("r", "host")
    await host.send(type="room_lobby", enabled=True)
    waiter = await knock(world, "waiter")
    waiter.closed(goodbye=False)
    back = world.open()
    await back.send(type="hello", versions=[1], name="waiter", resume=waiter.token)
    assert types(back.take()) == ["welcome", "lobby_waiting"]
    await host.send(type="lobby_admit", id=waiter.id)
    assert isinstance(back.take()[0], Joined)


async def test_lobby_off_admits_the_earliest_up_to_the_room_size_but_not_the_removed(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_room_members=3)
    host, _carol, bob = await world.connect_in("r", "host", "carol", "bob")
    await host.send(type="remove", id=bob.id)
    await host.send(type="room_lobby", enabled=True)
    bob.take()
    await bob.send(type="join", room="r")  # the removed member id: knocks, marked removed
    assert bob.take_one(LobbyWaiting).room == "r"
    first, second = [await knock(world, name) for name in ("first", "second")]
    host.take()

    await host.send(type="room_lobby", enabled=False)

    assert isinstance(first.take()[0], Joined)
    assert second.take() == [] and bob.take() == []  # no seat left; the removed stays
    got = host.take()
    assert types(got) == ["room_state", "room_event", "member_joined", "room_event", "lobby"]
    assert isinstance(got[3], RoomEvent) and (got[3].action, got[3].target) == (
        "admitted",
        first.id,
    )
    assert isinstance(got[4], Lobby)
    assert [(k.id, k.removed) for k in got[4].waiting] == [(bob.id, True), (second.id, False)]


async def test_the_lobby_holds_at_most_max_room_members(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_room_members=2)
    (host,) = await world.connect_in("r", "host")
    await host.send(type="room_lobby", enabled=True)
    for name in ("a", "b"):
        await knock(world, name)
    late = await world.connect("late")
    await late.send(type="join", room="r")
    assert late.take_error().code == "room_full"
    assert len(world.hub.rooms["r"].waiting) == 2


async def test_a_new_host_hears_the_lobby(keyed: World) -> None:
    host, bob = await keyed.connect_in("team", "host", "bob")
    await host.send(type="room_lobby", enabled=True)
    waiter = await knock(keyed, "waiter", room="team")
    bob.take()
    await host.send(type="make_host", id=bob.id)
    assert types(bob.take()) == ["room_state", "room_event", "lobby"]
    creator = await keyed.connect("creator")
    await creator.send(type="join", room="team", host_key=KEY)
    got = creator.take()
    assert types(got) == ["joined", "lobby"]
    assert isinstance(got[1], Lobby) and got[1].waiting[0].id == waiter.id


async def test_waiting_people_hear_the_meeting_ended_when_the_room_empties(
    world: World,
) -> None:
    (host,) = await world.connect_in("r", "host")
    await host.send(type="room_lobby", enabled=True)
    waiter = await knock(world, "waiter")
    await host.send(type="leave")
    assert waiter.take() == [LobbyDenied(room="r", reason="ended")]
    assert "r" not in world.hub.rooms
    await waiter.send(type="join", room="r")
    assert waiter.take_one(Joined).hosts == [waiter.id]  # a fresh meeting


# ------------------------------------------------------------------------------ remove


async def test_remove_takes_a_member_out_and_tells_the_room(world: World) -> None:
    host, bob, carol = await world.connect_in("r", "host", "bob", "carol")

    await host.send(type="remove", id=bob.id)

    assert bob.take() == [Left(room="r", reason="removed", by=host.id, by_name="host")]
    assert claims_of(world, bob).room is None  # its token names no room any more
    left, removed = carol.take()
    assert left == MemberLeft(room="r", id=bob.id)
    assert isinstance(removed, RoomEvent)
    assert (removed.action, removed.by_name, removed.target_name) == ("removed", "host", "bob")


async def test_a_removed_member_knocks_marked_whatever_lobby_and_password(
    world: World,
) -> None:
    host, bob = await world.connect_in("r", "host", "bob")
    await host.send(type="room_password", password="pw")
    await host.send(type="remove", id=bob.id)
    host.take()
    bob.take()

    await bob.send(type="join", room="r", password="pw")

    assert bob.take() == [LobbyWaiting(room="r")]
    lobby = host.take_one(Lobby)
    assert [(k.id, k.removed) for k in lobby.waiting] == [(bob.id, True)]
    await host.send(type="room_lock", locked=True)
    await bob.send(type="leave")
    bob.take()
    await bob.send(type="join", room="r", password="pw")
    assert bob.take_error().code == "room_locked"


async def test_removal_remembers_the_account_and_the_address(world: World) -> None:
    (host,) = await world.connect_in("r", "host")
    sam = await connect(world, "Sam", account="sam", address="198.51.100.7")
    await sam.send(type="join", room="r")
    await host.send(type="remove", id=sam.id)
    sam.closed()
    same_account = await connect(world, "Sam", account="sam", address="203.0.113.1")
    same_address = await connect(world, "Kim", address="198.51.100.7")
    other = await connect(world, "Lee", address="203.0.113.2")
    for client in (same_account, same_address):
        await client.send(type="join", room="r")
        assert client.take() == [LobbyWaiting(room="r")]
    await other.send(type="join", room="r")
    assert isinstance(other.take()[0], Joined)


async def test_a_removed_co_host_comes_back_by_its_account_only_through_the_lobby(
    world: World,
) -> None:
    (gina,) = await world.connect_in("r", "gina")
    carla = await connect(world, "carla", account="carla", address="198.51.100.7")
    await carla.send(type="join", room="r")
    await gina.send(type="make_host", id=carla.id)
    await gina.send(type="room_lock", locked=True)
    await gina.send(type="remove", id=carla.id)
    carla.closed()
    again = await connect(world, "carla", account="carla", address="203.0.113.5")
    await again.send(type="join", room="r")
    assert again.take_error().code == "room_locked"  # no host by account any more
    await gina.send(type="room_lock", locked=False)
    await again.send(type="join", room="r")
    assert again.take() == [LobbyWaiting(room="r")]
    assert world.hub.rooms["r"].hosts == {gina.id}


@pytest.mark.parametrize("what", ["ids", "accounts", "addresses"])
async def test_a_meeting_remembers_at_most_max_room_removed(
    make_world: Callable[..., World], what: str
) -> None:
    world = make_world(max_room_removed=2)
    (host,) = await world.connect_in("r", "host")
    removed = []
    for i in range(3):
        account = f"acct{i}" if what == "accounts" else None
        address = f"192.0.2.{i}" if what == "addresses" else None
        member = await connect(world, f"m{i}", account=account, address=address)
        await member.send(type="join", room="r")
        await host.send(type="remove", id=member.id)
        removed.append((member, account, address))
    room = world.hub.rooms["r"]
    book = {"ids": room.removed_ids, "accounts": room.removed_accounts}.get(
        what, room.removed_addresses
    )
    assert len(book) == 2
    comeback = []
    for i, (member, account, address) in enumerate(removed):
        if what == "ids":
            comeback.append(member)
            member.take()
            continue
        member.closed()
        comeback.append(await connect(world, f"m{i}", account=account, address=address))
    ways = []
    for client in comeback:
        await client.send(type="join", room="r")
        ways.append(types(client.take())[0])
    assert ways == ["joined", "lobby_waiting", "lobby_waiting"]  # the oldest is forgotten


# ------------------------------------------------------------------------------ mute


@pytest.mark.parametrize(("kind", "action"), [("mic", "muted_mic"), ("camera", "stopped_camera")])
async def test_mute_turns_a_members_media_off(world: World, kind: str, action: str) -> None:
    (host,) = await world.connect_in("r", "host")
    bob, carol = await world.connect_in("r", "bob", "carol", media={"mic": True, "camera": True})
    host.take()

    await host.send(type="mute", id=bob.id, kind=kind)

    muted, told = bob.take()
    assert muted == Muted(room="r", kind=kind, by=host.id, by_name="host")  # type: ignore[arg-type]
    assert isinstance(told, RoomEvent) and (told.action, told.target) == (action, bob.id)
    media, told = carol.take()
    assert isinstance(media, MediaChanged) and media.sender == bob.id
    assert (media.mic, media.camera) == (kind != "mic", kind != "camera")
    late = await world.connect("late")
    await late.send(type="join", room="r")
    seen = next(m for m in late.take_one(Joined).members if m.id == bob.id)
    assert (seen.media.mic, seen.media.camera) == (kind != "mic", kind != "camera")


# ------------------------------------------------------------------------------ hands


async def test_hands_go_up_in_order_and_come_down(world: World) -> None:
    host, bob, carol = await world.connect_in("r", "host", "bob", "carol")

    await carol.send(type="hand", raised=True)
    await bob.send(type="hand", raised=True)
    await bob.send(type="hand", raised=True)  # no change: nothing sent

    assert host.take() == [
        Hands(room="r", raised=[carol.id]),
        Hands(room="r", raised=[carol.id, bob.id]),
    ]
    dave = await world.connect("dave")
    await dave.send(type="join", room="r")
    assert dave.take_one(Joined).hands == [carol.id, bob.id]
    bob.take()
    await host.send(type="lower_hand", id=carol.id)
    assert types(bob.take()) == ["hands", "room_event"]
    await host.send(type="lower_hand", id=carol.id)  # not raised: nothing
    await bob.send(type="leave")  # leaving lowers the hand
    assert carol.take()[-2:] == [MemberLeft(room="r", id=bob.id), Hands(room="r", raised=[])]


async def test_a_hand_needs_a_room(world: World) -> None:
    loner = await world.connect("loner")
    await loner.send(type="hand", raised=True)
    assert loner.take_error().code == "not_joined"


# ------------------------------------------------------------------------------ make host


async def test_make_host_grants_and_a_host_again_is_nothing(world: World) -> None:
    host, bob = await world.connect_in("r", "host", "bob")
    await host.send(type="make_host", id=bob.id)
    state, granted = bob.take()
    assert isinstance(state, RoomState) and state.hosts == [host.id, bob.id]
    assert isinstance(granted, RoomEvent) and granted.action == "host_granted"
    assert claims_of(world, bob).host is True
    await host.send(type="make_host", id=bob.id)
    await host.send(type="make_host", id=host.id)
    assert host.take()[-2:] == [state, granted]  # nothing after the first grant


# ------------------------------------------------------------------------------ the meeting's end


async def test_end_meeting_sends_everyone_away(world: World) -> None:
    host, bob = await world.connect_in("r", "host", "bob")
    await host.send(type="room_lobby", enabled=True)
    waiter = await knock(world, "waiter")
    host.take()
    bob.take()

    await host.send(type="end_meeting")

    for member in (host, bob):
        assert member.take() == [Left(room="r", reason="ended", by=host.id, by_name="host")]
        assert claims_of(world, member).room is None
    assert waiter.take() == [LobbyDenied(room="r", reason="ended")]
    assert "r" not in world.hub.rooms
    await bob.send(type="join", room="r")
    assert bob.take_one(Joined).hosts == [bob.id]


async def test_every_protection_ends_with_the_meeting(world: World) -> None:
    host, bob = await world.connect_in("r", "host", "bob")
    for action in (
        {"type": "room_lock", "locked": True},
        {"type": "room_password", "password": "pw"},
        {"type": "room_lobby", "enabled": True},
        {"type": "remove", "id": bob.id},
        {"type": "hand", "raised": True},
    ):
        await host.send(**action)
    await host.send(type="leave")
    await asyncio.gather(*world.hub._tasks)
    assert "r" not in world.hub.rooms
    await bob.send(type="join", room="r")
    joined = bob.take()[-1]
    assert isinstance(joined, Joined)
    assert (joined.hosts, joined.locked, joined.lobby, joined.protected, joined.hands) == (
        [bob.id],
        False,
        False,
        False,
        [],
    )


async def test_chat_of_an_open_room_stays_and_of_a_protected_one_is_erased(
    world: World,
) -> None:
    for room, protect in (("open", False), ("vault", True)):
        (host,) = await world.connect_in(room, "host" + room)
        if protect:
            await host.send(type="room_password", password="pw")
        await host.send(type="chat", text="said in " + room)
        await host.send(type="end_meeting")
    await asyncio.gather(*world.hub._tasks)
    assert [e.text for e in world.chats.rooms["open"]] == ["said in open"]
    assert world.chats.rooms.get("vault", []) == []


class GatedErase(MemoryChatRepository):
    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.erasing = asyncio.Event()

    async def erase(self, room: str) -> int:
        self.erasing.set()
        await self.gate.wait()
        return await super().erase(room)


async def test_a_new_meeting_neither_reads_nor_loses_chat_while_the_old_is_erased(
    world: World,
) -> None:
    chats = GatedErase()
    world.hub.chats = world.chats = chats
    (host,) = await world.connect_in("vault", "host")
    await host.send(type="room_password", password="pw")
    await host.send(type="chat", text="secret")
    await host.send(type="leave")
    await chats.erasing.wait()
    assert "vault" in world.hub.rooms  # kept: no activation reads what is about to go

    newcomer = await world.connect("newcomer")
    await newcomer.send(type="join", room="vault")
    assert newcomer.take_one(Joined).history == []
    writing = asyncio.create_task(newcomer.send(type="chat", text="new meeting"))
    history = asyncio.create_task(newcomer.send(type="history", since=0))
    await asyncio.sleep(0.01)
    assert newcomer.take() == []  # both wait for the erase
    writing.cancel()  # a caller cancelled does not stop the erase, nor the write
    chats.gate.set()
    await asyncio.gather(writing, history, return_exceptions=True)
    await asyncio.gather(*world.hub._tasks)
    assert [e.text for e in chats.rooms["vault"]] == ["new meeting"]


async def test_a_write_numbered_for_an_erased_meeting_is_dropped(world: World) -> None:
    (host,) = await world.connect_in("vault", "host")
    await host.send(type="room_password", password="pw")
    room = world.hub.rooms["vault"]
    async with room.chat_lock:  # a write under way holds the lock
        late = asyncio.create_task(host.send(type="chat", text="last words"))
        await asyncio.sleep(0)
        host.closed(goodbye=True)  # the meeting ends while the chat waits for the lock
    await late
    await asyncio.gather(*world.hub._tasks)
    assert world.chats.rooms.get("vault", []) == []
    assert not [m for m in host.take() if isinstance(m, ChatDelivered)]


# ------------------------------------------------------------------------------ restarts


def restarted(world: World, keys: MemoryRoomKeys | None = None) -> World:
    """A new hub on the same chat store and token key; ``keys``: the room store it had (a
    fresh one by default)."""
    keys = MemoryRoomKeys() if keys is None else keys
    hub = Hub(world.limits, world.clock, world.chats, keys, tokens=world.hub.tokens)
    return World(world.limits, world.clock, world.chats, hub)


async def resume(world: World, token: str) -> Client:
    client = world.open()
    await client.send(type="hello", versions=[1], name="ignored", resume=token)
    return client


@pytest.fixture
def signed() -> World:
    limits = LimitSettings()
    clock = FakeClock()
    chats = MemoryChatRepository()
    hub = Hub(limits, clock, chats, MemoryRoomKeys(), tokens=ResumeTokens(SECRET))
    return World(limits, clock, chats, hub)


async def test_after_a_restart_the_host_is_host_again_and_a_guarded_room_locked(
    signed: World,
) -> None:
    host, bob = await signed.connect_in("r", "host", "bob")
    await host.send(type="room_password", password="pw")
    host.take()
    bob.take()
    after = restarted(signed)

    b2 = await resume(after, bob.token)  # first back: the room comes back locked
    joined = b2.take()[-1]
    assert isinstance(joined, Joined) and joined.locked and not joined.protected
    assert joined.hosts == []  # first back is no host: only a host claim makes one
    stranger = await after.connect("stranger")
    await stranger.send(type="join", room="r", password="pw")
    assert stranger.take_error().code == "room_locked"
    h2 = await resume(after, host.token)
    joined = h2.take()[-1]
    assert isinstance(joined, Joined) and host.id in joined.hosts
    await h2.send(type="room_password", password="new pw")
    await h2.send(type="room_lock", locked=False)
    await stranger.send(type="join", room="r", password="new pw")
    assert isinstance(stranger.take()[0], Joined)


async def test_after_a_restart_the_role_passes_on_when_no_host_is_back_within_the_grace(
    signed: World,
) -> None:
    host, bob, cat = await signed.connect_in("r", "host", "bob", "cat")
    after = restarted(signed)
    b2 = await resume(after, bob.token)
    c2 = await resume(after, cat.token)
    room = after.hub.rooms["r"]
    assert room.hosts == set()
    after.clock.advance(after.limits.resume_grace_seconds - 1)
    after.hub.sweep()
    assert room.hosts == set()  # the host may still come back
    after.clock.advance(1)
    after.hub.sweep()
    assert room.hosts == {bob.id}  # the longest seated of those back
    passed = [m for m in c2.take() if isinstance(m, RoomEvent)]
    assert [(e.action, e.target) for e in passed] == [("host_passed", bob.id)]
    assert any(isinstance(m, RoomState) and m.hosts == [bob.id] for m in b2.take())
    h2 = await resume(after, host.token)  # a host back late is still a host by its claim
    joined = h2.take()[-1]
    assert isinstance(joined, Joined) and host.id in joined.hosts


async def test_a_member_removed_before_a_restart_does_not_come_back_by_its_old_token(
    signed: World,
) -> None:
    """The meeting's removals are in the store until no token from before them is valid: a
    restart does not seat the removed member again, while the others, from the same client
    address, come back."""
    keys = signed.hub.keys
    assert isinstance(keys, MemoryRoomKeys)
    host, bob, cat = await signed.connect_in("r", "host", "bob", "cat")
    old = bob.token  # names the room
    await host.send(type="remove", id=bob.id)
    await signed.hub.settle(1)
    removed = keys.removed["r"]
    assert removed.ids == (bob.id,)
    lifetime_ms = signed.limits.resume_token_seconds * 1000
    assert removed.until_ms == signed.clock.wall_ms() + lifetime_ms
    after = restarted(signed, keys)
    back = await resume(after, old)
    welcome = back.take()[0]
    assert isinstance(welcome, Welcome) and welcome.resumed is not None
    assert welcome.resumed.room is None
    c2 = await resume(after, cat.token)  # the same address as bob's in this world
    assert isinstance(c2.take()[-1], Joined)
    h2 = await resume(after, host.token)
    joined = h2.take()[-1]
    assert isinstance(joined, Joined) and joined.hosts == [host.id]
    assert {m.id for m in joined.members} == {cat.id}
    await back.send(type="join", room="r")  # and a join knocks, marked removed
    assert back.take() == [LobbyWaiting(room="r")]
    assert [(k.id, k.removed) for k in h2.take_one(Lobby).waiting] == [(bob.id, True)]


async def test_the_same_account_takes_over_its_seat_past_the_lock_as_it_sat(world: World) -> None:
    """A second connection of an account that sits in a locked room, not as a host: its join
    takes that seat over (newest wins, docs/PROTOCOL.md §2.8). Nobody else gets past the lock,
    and a join it makes elsewhere that is refused leaves the seat alone."""
    (host,) = await world.connect_in("r", "host")
    (elsewhere,) = await world.connect_in("q", "other host")
    sam = await connect(world, "Sam", account="sam")
    await sam.send(type="join", room="r")
    for room_host in (host, elsewhere):
        await room_host.send(type="room_lock", locked=True)
        room_host.take()
    sam.take()
    for stranger in (await connect(world, "Kim", account="kim"), await connect(world, "guest")):
        await stranger.send(type="join", room="r")
        assert stranger.take_error().code == "room_locked"
    second = await connect(world, "Sam", account="sam")
    await second.send(type="join", room="q")
    assert second.take_error().code == "room_locked"
    assert sam.transport.closes == [] and sam.take() == []

    await second.send(type="join", room="r")
    joined, left = second.take()  # its older place not listed, and gone at once
    assert isinstance(joined, Joined) and joined.hosts == [host.id]  # not a host, as before
    assert {m.id for m in joined.members} == {host.id}
    assert isinstance(left, MemberLeft) and left.id == sam.id
    assert sam.transport.closes == [
        (CloseCode.REPLACED, "this account took its place from another connection")
    ]
    assert sam.take() == []  # closed before the seating: it heard nothing of it
    arrived, gone = host.take()
    assert isinstance(arrived, MemberJoined) and isinstance(gone, MemberLeft)
    assert (arrived.member.id, arrived.replaces, gone.id) == (second.id, sam.id, sam.id)
    assert world.hub.online() == 5  # host, other host, Kim, the guest, Sam once


async def test_after_a_restart_an_older_token_of_a_removed_account_seats_it_nowhere(
    signed: World,
) -> None:
    """The account counts too: its other, older place (replaced by the connection the host
    removed) does not come back into the room by its token."""
    keys = signed.hub.keys
    assert isinstance(keys, MemoryRoomKeys)
    (host,) = await signed.connect_in("r", "host")
    first = await connect(signed, "Sam", account="sam")
    await first.send(type="join", room="r")
    old = first.token  # names the room
    second = await connect(signed, "Sam", account="sam")
    await second.send(type="join", room="r")  # newest wins: the first place ends
    await host.send(type="remove", id=second.id)
    await signed.hub.settle(1)
    after = restarted(signed, keys)
    transport = FakeTransport()
    sam = SignedInAccount(username="sam", display_name="Sam")
    back = Client(Session(after.hub, transport, lambda _: list(ICE), account=sam), transport)
    await back.send(type="hello", versions=[1], name="Sam", resume=old)
    welcome = back.take()[0]
    assert isinstance(welcome, Welcome) and welcome.resumed is not None
    assert welcome.resumed.room is None


async def test_removals_a_host_took_back_or_that_expired_do_not_outlive_a_restart(
    signed: World,
) -> None:
    keys = signed.hub.keys
    assert isinstance(keys, MemoryRoomKeys)
    host, bob = await signed.connect_in("r", "host", "bob")
    await host.send(type="remove", id=bob.id)
    await host.send(type="room_lobby", enabled=True)
    await bob.send(type="join", room="r")
    await host.send(type="lobby_admit", id=bob.id)  # let back in: its place may come back
    await signed.hub.settle(1)
    assert bob.id not in keys.removed.get("r", Removed(0)).ids
    after = restarted(signed, keys)
    b2 = await resume(after, bob.token)
    assert isinstance(b2.take()[-1], Joined)

    # Past the longest a token from before the removal lives, the store's copy is not read.
    (carl,) = await after.connect_in("s", "carl")
    await b2.send(type="join", room="s")
    await carl.send(type="remove", id=b2.id)
    await after.hub.settle(1)
    assert keys.removed["s"].ids == (b2.id,)
    after.clock.advance(after.limits.resume_token_seconds)
    later = restarted(after, keys)
    await later.connect_in("s", "dora")
    assert later.hub.rooms["s"].removed_ids == {}


async def test_the_store_forgets_the_removals_when_the_meeting_ends(signed: World) -> None:
    keys = signed.hub.keys
    assert isinstance(keys, MemoryRoomKeys)
    host, bob = await signed.connect_in("r", "host", "bob")
    await host.send(type="remove", id=bob.id)
    await signed.hub.settle(1)
    assert "r" in keys.removed
    await host.send(type="leave")  # the last one out: the meeting ends
    await signed.hub.settle(1)
    assert "r" not in keys.removed
    after = restarted(signed, keys)
    await after.connect_in("r", "dora")
    assert after.hub.rooms["r"].removed_ids == {}  # a new meeting: removed by nobody


async def test_a_place_taken_over_while_rebuilt_is_seated_only_where_it_went(
    signed: World,
) -> None:
    """Two connections resume one token after a restart; the second takes the half-built
    place and joins another room while the first reads the token's room: the place ends up
    in one room only, and that room can empty."""
    (alice,) = await signed.connect_in("rx", "alice")
    after = restarted(signed)
    gate = asyncio.Event()
    chats = after.chats
    recent = chats.recent

    async def slow_recent(room: str, n: int) -> Any:
        if room == "rx":
            await gate.wait()
        return await recent(room, n)

    chats.recent = slow_recent  # type: ignore[method-assign]
    first = after.open()
    rebuilding = asyncio.create_task(
        first.send(type="hello", versions=[1], name="x", resume=alice.token)
    )
    await asyncio.sleep(0)
    second = await resume(after, alice.token)
    await second.send(type="join", room="rz")
    gate.set()
    await rebuilding
    hub = after.hub
    assert alice.id in hub.rooms["rz"]
    assert "rx" not in hub.rooms or alice.id not in hub.rooms["rx"]
    for client in (second, first):  # the rebuild, ending last, holds the place now
        client.closed(goodbye=True)
    assert hub.rooms == {}  # emptied: no ghost seat left behind


async def test_a_removed_members_old_token_seats_it_nowhere(world: World) -> None:
    host, bob = await world.connect_in("r", "host", "bob")
    old = bob.token  # names the room
    await host.send(type="remove", id=bob.id)
    bob.closed(goodbye=False)
    back = await resume(world, old)
    welcome = back.take()[0]
    assert isinstance(welcome, Welcome) and welcome.resumed is not None
    assert welcome.resumed.room is None
    assert bob.id not in world.hub.rooms["r"]
    back.closed(goodbye=True)
    assert (await resume(world, old)).take_error().code == "resume_failed"


def test_a_place_rebuilt_from_a_token_does_not_return_where_it_was_removed() -> None:
    """The member id and the account count, not the address: the token proves who comes
    back, and others behind a removed member's client address keep their places."""
    room = Room("r", history=deque())
    room.seats["h"] = None  # type: ignore[assignment]
    token = Claims("m", "bob", "bob-account", "r", None, None, 10**10, host=True)
    assert way_back(room, token, 8) is Way.HOST
    room.removed_addresses["192.0.2.1"] = None
    assert way_back(room, token, 8) is Way.HOST
    for book, key in ((room.removed_ids, "m"), (room.removed_accounts, "bob-account")):
        book[key] = None
        assert way_back(room, token, 8) is None
        book.clear()


# ------------------------------------------------------------------------------ admission, pure


def test_the_joining_rules_in_order() -> None:
    room = Room("r", history=deque())
    joiner = Joiner("j", account=None, address="192.0.2.9")
    assert way_in(room, joiner, 8) is Way.HOST  # empty
    room.seats["h"] = None  # type: ignore[assignment]
    room.hosts.add("h")
    assert way_in(room, joiner, 8) is Way.SEAT
    room.lobby = True
    assert way_in(room, joiner, 8) is Way.KNOCK
    room.password_hash = "hash"
    assert way_in(room, joiner, 8) is Way.KNOCK  # no password, lobby on
    assert way_in(room, Joiner("j", None, None, password="x"), 8) is Way.CHECK
    assert way_in(room, Joiner("j", None, None, password="x", opens="hash"), 8) is Way.SEAT
    room.removed_addresses["192.0.2.9"] = None
    assert way_in(room, joiner, 8) is Way.KNOCK_REMOVED
    room.locked = True
    with pytest.raises(Exception, match="locked"):
        way_in(room, joiner, 8)
    room.creator = RoomCreator(host_key_digest(KEY), None)
    assert way_in(room, Joiner("j", None, "192.0.2.9", host_key=KEY), 8) is Way.HOST


async def test_an_error_from_a_refused_action_carries_its_ref(world: World) -> None:
    host, bob = await world.connect_in("r", "host", "bob")
    await bob.send(type="room_lock", locked=True, ref=42)
    error = bob.take_one(Error)
    assert (error.code, error.ref) == ("not_host", 42)
    await host.send(type="remove", id="nobody", ref="r1")
    assert host.take_one(Error).ref == "r1"


def test_every_client_message_has_its_handler() -> None:
    from typing import get_args

    from salon.core.session import _HANDLERS
    from salon.protocol.messages import ClientMessage

    union = get_args(ClientMessage)[0]
    assert set(get_args(union)) == set(_HANDLERS)
