"""What the server API and the observers need from the domain (issue 16): meeting events and
counts reported as they happen, rooms with standing settings, invitations, and removals and
endings asked by the server rather than a host."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from salon.core.errors import SalonError
from salon.core.invites import Invite, Invites
from salon.core.observe import MeetingEvent, Observers
from salon.core.passwords import MemoryRoomKeys, Standing
from salon.protocol import ErrorCode
from salon.protocol.messages import (
    Joined,
    Left,
    LobbyWaiting,
    MemberLeft,
    RoomEvent,
    Welcome,
)

from .conftest import Client, World

SECRET = b"i" * 32


@dataclass
class Recorder:
    """An observer that keeps every report."""

    frames: list[str] = field(default_factory=list)
    errors: list[ErrorCode] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    resumes: list[str] = field(default_factory=list)
    events: list[MeetingEvent] = field(default_factory=list)

    def frame(self, kind: str) -> None:
        self.frames.append(kind)

    def error(self, code: ErrorCode) -> None:
        self.errors.append(code)

    def call(self, outcome: str) -> None:
        self.calls.append(outcome)

    def resume(self, outcome: str) -> None:
        self.resumes.append(outcome)

    def meeting(self, event: MeetingEvent) -> None:
        self.events.append(event)

    def brief(self) -> list[tuple[str, str | None, str | None]]:
        return [(e.type, e.name, e.reason) for e in self.events]


@pytest.fixture
def seen(world: World) -> Recorder:
    recorder = Recorder()
    world.hub.observer = recorder
    return recorder


@pytest.fixture
def api_room(world: World) -> MemoryRoomKeys:
    """Room "api" was created through the server API with a password, a lobby and a host
    account; it lives in the hub's (memory) store."""
    keys = MemoryRoomKeys()
    world.hub.keys = keys
    return keys


async def test_a_meeting_reports_its_life_in_order(world: World, seen: Recorder) -> None:
    alice, bob = await world.connect_in("r", "alice", "bob")
    await bob.send(type="leave")
    alice.closed(goodbye=True)
    assert seen.brief() == [
        ("meeting_started", None, None),
        ("member_joined", "alice", None),
        ("member_joined", "bob", None),
        ("member_left", "bob", "left"),
        ("member_left", "alice", "left"),
        ("meeting_ended", None, "empty"),
    ]
    assert [e.host for e in seen.events if e.type == "member_joined"] == [True, False]
    assert {e.room for e in seen.events} == {"r"}
    assert all(e.at_ms == world.clock.wall_ms() for e in seen.events)


async def test_a_lost_member_leaves_disconnected_only_after_the_grace_window(
    world: World, seen: Recorder
) -> None:
    _alice, bob = await world.connect_in("r", "alice", "bob")
    bob.closed(goodbye=False)
    world.hub.sweep()
    assert [e.type for e in seen.events][-1] == "member_joined"  # away is not gone
    world.clock.advance(world.limits.resume_grace_seconds)
    world.hub.sweep()
    assert seen.brief()[-1] == ("member_left", "bob", "disconnected")


async def test_a_resume_is_no_new_join_and_is_counted(world: World, seen: Recorder) -> None:
    (alice,) = await world.connect_in("r", "alice")
    token = alice.token
    alice.closed(goodbye=False)
    again = world.open()
    await again.send(type="hello", versions=[1], name="alice", resume=token)
    await world.open().send(type="hello", versions=[1], name="x", resume="forged.token")
    assert seen.resumes == ["held", "failed"]
    assert [e.type for e in seen.events] == ["meeting_started", "member_joined"]


async def test_frames_errors_and_calls_are_counted(world: World, seen: Recorder) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    await alice.send(type="call", name="bob")
    call = bob.take()[-1]
    assert call.type == "incoming_call"
    await bob.send(type="call_decline", call=call.call)
    await alice.send(type="call", name="nobody")
    await alice.send(type="nonsense")
    assert seen.frames == ["hello", "hello", "call", "call_decline", "call"]
    assert seen.errors == [ErrorCode.NOT_ONLINE, ErrorCode.UNKNOWN_TYPE]
    assert seen.calls == ["declined"]


async def test_an_observer_that_fails_never_breaks_the_meeting(world: World) -> None:
    class Broken(Recorder):
        def meeting(self, event: MeetingEvent) -> None:
            raise RuntimeError("watcher down")

    kept = Recorder()
    world.hub.observer = Observers(Broken(), kept)
    await world.connect_in("r", "alice", "bob")
    assert [e.type for e in kept.events] == ["meeting_started", "member_joined", "member_joined"]


# ---------------------------------------------------------------- standing settings


async def test_a_standing_room_gives_nobody_the_host_role_for_coming_first(
    world: World, api_room: MemoryRoomKeys
) -> None:
    hashed = await api_room.hash_password("sesame")
    api_room.standing["api"] = Standing(password_hash=hashed, lobby=True)
    first = await world.connect("first")
    await first.send(type="join", room="api")
    assert isinstance(first.take_one(LobbyWaiting), LobbyWaiting)  # no password: knocks
    second = await world.connect("second")
    await second.send(type="join", room="api", password="wrong")
    assert second.take_error().code is ErrorCode.WRONG_PASSWORD
    await second.send(type="join", room="api", password="sesame")
    joined = second.take_one(Joined)
    assert joined.hosts == [] and joined.protected and joined.lobby


async def test_standing_host_accounts_host_and_every_meeting_starts_with_the_settings(
    world: World, api_room: MemoryRoomKeys
) -> None:
    api_room.standing["api"] = Standing(locked=True, host_accounts=("olga",))
    stranger = await world.connect("stranger")
    await stranger.send(type="join", room="api")
    assert stranger.take_error().code is ErrorCode.ROOM_LOCKED
    olga = await _signed_in(world, "olga")
    await olga.send(type="join", room="api")
    joined = olga.take_one(Joined)
    assert joined.hosts == [olga.id] and joined.locked
    await olga.send(type="room_lock", locked=False)
    await olga.send(type="leave")  # the meeting ends; the next one is locked again
    await stranger.send(type="join", room="api")
    assert stranger.take_error().code is ErrorCode.ROOM_LOCKED


async def _signed_in(world: World, username: str) -> Client:
    from salon.core.session import Session
    from salon.protocol.messages import SignedInAccount

    from .conftest import ICE, FakeTransport

    transport = FakeTransport()
    account = SignedInAccount(username=username, display_name=username)
    client = Client(Session(world.hub, transport, lambda _: list(ICE), account=account), transport)
    await client.send(type="hello", versions=[1], name=username)
    client.welcome = client.take_one(Welcome)
    return client


# ---------------------------------------------------------------- invitations


def test_an_invitation_holds_for_its_room_until_it_expires() -> None:
    invites = Invites(SECRET)
    token = invites.mint(Invite("room", "host", 1000))
    assert invites.check(token, "room", 999) == Invite("room", "host", 1000)
    assert invites.check(token, "room", 1000) is None  # expired
    assert invites.check(token, "other", 999) is None
    assert Invites(b"j" * 32).check(token, "room", 999) is None  # another server's
    payload, _, mac = token.partition(".")
    assert invites.check(payload + "." + mac[:-2] + "AA", "room", 999) is None
    assert invites.check("x" * 600, "room", 999) is None
    assert token != invites.mint(Invite("room", "host", 1000))


def test_an_invitation_is_never_a_resume_token(world: World) -> None:
    token = world.hub.invites.mint(Invite("room", "host", 2**40))
    assert world.hub.tokens.verify(token, 0) is None


async def test_a_host_invitation_seats_a_host_past_every_protection(
    world: World, api_room: MemoryRoomKeys
) -> None:
    hashed = await api_room.hash_password("sesame")
    api_room.standing["api"] = Standing(password_hash=hashed, lobby=True, locked=True)
    expires = int(world.clock.wall_ms() / 1000) + 60
    token = world.hub.invites.mint(Invite("api", "host", expires))
    host = await world.connect("host")
    await host.send(type="join", room="api", invite=token)
    assert host.take_one(Joined).hosts == [host.id]


async def test_a_guest_invitation_skips_lobby_and_password_but_not_lock_or_removal(
    world: World, api_room: MemoryRoomKeys
) -> None:
    hashed = await api_room.hash_password("sesame")
    api_room.standing["api"] = Standing(password_hash=hashed, lobby=True)
    expires = int(world.clock.wall_ms() / 1000) + 60
    guest_token = world.hub.invites.mint(Invite("api", "guest", expires))
    guest = await world.connect("guest")
    await guest.send(type="join", room="api", invite=guest_token)
    assert guest.take_one(Joined).hosts == []
    host = await world.connect("host")
    await host.send(
        type="join", room="api", invite=world.hub.invites.mint(Invite("api", "host", expires))
    )
    host.take()
    await host.send(type="remove", id=guest.id)
    guest.take()
    await guest.send(type="join", room="api", invite=guest_token)
    assert isinstance(guest.take_one(LobbyWaiting), LobbyWaiting)  # removed: knocks
    await host.send(type="room_lock", locked=True)
    other = await world.connect("other")
    await other.send(type="join", room="api", invite=guest_token)
    assert other.take_error().code is ErrorCode.ROOM_LOCKED


async def test_an_expired_or_foreign_invitation_is_as_if_absent(
    world: World, api_room: MemoryRoomKeys
) -> None:
    api_room.standing["api"] = Standing(lobby=True)
    now_s = int(world.clock.wall_ms() / 1000)
    for token in (
        world.hub.invites.mint(Invite("api", "host", now_s)),  # expired
        world.hub.invites.mint(Invite("elsewhere", "host", now_s + 60)),
        Invites(b"k" * 32).mint(Invite("api", "host", now_s + 60)),
    ):
        someone = await world.connect("someone")
        await someone.send(type="join", room="api", invite=token)
        assert isinstance(someone.take_one(LobbyWaiting), LobbyWaiting)
        someone.closed()


async def test_an_invite_over_512_characters_is_bad_message(world: World) -> None:
    alice = await world.connect("alice")
    await alice.send(type="join", room="r", invite="x" * 513)
    assert alice.take_error().code is ErrorCode.BAD_MESSAGE


# ---------------------------------------------------------------- the server's own actions


async def test_remove_by_server_tells_the_member_and_the_room_with_no_host(
    world: World, seen: Recorder
) -> None:
    alice, bob = await world.connect_in("r", "alice", "bob")
    world.hub.remove_by_server("r", bob.id)
    left = bob.take_one(Left)
    assert (left.reason, left.by, left.by_name) == ("removed", None, None)
    got = alice.take()
    assert isinstance(got[0], MemberLeft)
    assert isinstance(got[1], RoomEvent) and (got[1].action, got[1].by) == ("removed", None)
    assert seen.brief()[-1] == ("member_left", "bob", "removed")
    await bob.send(type="join", room="r")
    assert isinstance(bob.take_one(LobbyWaiting), LobbyWaiting)  # remembered as removed


async def test_server_actions_on_nothing_change_nothing(world: World) -> None:
    (alice,) = await world.connect_in("r", "alice")
    with pytest.raises(SalonError) as missing:
        world.hub.remove_by_server("r", "nobody")
    assert missing.value.code is ErrorCode.NO_SUCH_MEMBER
    for act in (
        lambda: world.hub.remove_by_server("nowhere", alice.id),
        lambda: world.hub.end_by_server("nowhere"),
    ):
        with pytest.raises(SalonError) as gone:
            act()
        assert gone.value.code is ErrorCode.NO_SUCH_ROOM
    assert alice.take() == []


async def test_end_by_server_sends_everyone_away(world: World, seen: Recorder) -> None:
    alice, bob = await world.connect_in("r", "alice", "bob")
    world.hub.end_by_server("r")
    for client in (alice, bob):
        left = client.take_one(Left)
        assert (left.reason, left.by) == ("ended", None)
    assert seen.brief()[-3:] == [
        ("member_left", "alice", "ended"),
        ("member_left", "bob", "ended"),
        ("meeting_ended", None, "ended"),
    ]
    assert "r" not in world.hub.rooms


async def test_a_calls_room_reports_no_meeting(
    world: World, seen: Recorder, make_world: Callable[..., World]
) -> None:
    alice = await world.connect("alice", reachable=True)
    bob = await world.connect("bob", reachable=True)
    await alice.send(type="call", name="bob")
    call = bob.take()[-1]
    await bob.send(type="call_accept", call=call.call)
    assert seen.calls == ["accepted"]
    assert seen.events == []
    with pytest.raises(SalonError):
        world.hub.end_by_server(next(iter(world.hub.rooms)))


async def test_in_a_standing_room_the_host_role_never_passes_to_a_guest(
    world: World, api_room: MemoryRoomKeys
) -> None:
    """From the attacker's review: two students in before the teacher; one leaves, and the
    other must not become the host who could lock the teacher out."""
    hashed = await api_room.hash_password("sesame")
    api_room.standing["api"] = Standing(password_hash=hashed, lobby=True, host_accounts=("t",))
    one, two = await world.connect_in("api", "one", "two", password="sesame")
    await one.send(type="leave")
    assert not any(isinstance(m, RoomEvent) and m.action == "host_passed" for m in two.take())
    assert world.hub.rooms["api"].hosts == set()
    await two.send(type="room_lock", locked=True)
    assert two.take_error().code is ErrorCode.NOT_HOST
    teacher = await _signed_in(world, "t")
    await teacher.send(type="join", room="api")
    assert teacher.take_one(Joined).hosts == [teacher.id]


async def test_a_listed_host_account_comes_back_a_host_whatever_a_host_did(
    world: World, api_room: MemoryRoomKeys
) -> None:
    api_room.standing["api"] = Standing(lobby=True, host_accounts=("t", "u"))
    t = await _signed_in(world, "t")
    u = await _signed_in(world, "u")
    for member in (t, u):
        await member.send(type="join", room="api")
        member.take()
    await t.send(type="remove", id=u.id)
    assert u.take_one(Left).reason == "removed"
    await u.send(type="join", room="api")
    assert u.take_one(Joined).hosts == [t.id, u.id]


async def test_a_standing_room_rebuilt_after_a_restart_crowns_nobody_after_the_grace(
    world: World, api_room: MemoryRoomKeys
) -> None:
    api_room.standing["api"] = Standing(host_accounts=("t",))
    guest_token = world.hub.invites.mint(Invite("api", "guest", 2**40))
    (guest,) = await world.connect_in("api", "guest", invite=guest_token)
    token = guest.token
    # Another hub with the same secret: the server restarted, the room is rebuilt.
    from salon.core.hub import Hub

    hub = Hub(world.limits, world.clock, world.chats, api_room, tokens=world.hub.tokens)
    world.hub = hub
    again = world.open()
    await again.send(type="hello", versions=[1], name="guest", resume=token)
    again.take()
    assert list(hub.rooms["api"].seats) == [guest.id]  # rebuilt, seated again
    world.clock.advance(world.limits.resume_grace_seconds + 1)
    hub.sweep()
    assert hub.rooms["api"].hosts == set()
