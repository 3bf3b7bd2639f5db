"""Places outlive connections: tokens, loss, resume, rebuild after a restart, the grace window."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from salon.core.clock import FakeClock
from salon.core.hub import REPLACED_BY_NEWER, Hub
from salon.core.passwords import MemoryRoomKeys, StoredRoom
from salon.core.resume import Claims, ResumeTokens
from salon.core.session import SessionState
from salon.core.settings import LimitSettings
from salon.protocol import CloseCode
from salon.protocol.messages import (
    ChatDelivered,
    Joined,
    MemberJoined,
    MemberLeft,
    MemberReconnecting,
    MemberResumed,
    PresenceChanged,
    ResumeTokenIssued,
    SignalRelay,
    Welcome,
)
from salon.store.chat import MemoryChatRepository
from tests.unit.conftest import Client, World

OFFER = {"type": "offer", "sdp": "v=0"}
SECRET = b"k" * 32


def claims(**changes: object) -> Claims:
    base = {
        "member": "m1",
        "name": "alice",
        "account": None,
        "room": "x",
        "call": None,
        "peer": None,
        "expires": 2_000,
    }
    return Claims(**{**base, **changes})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ tokens


def test_a_token_carries_its_claims_until_it_expires() -> None:
    tokens = ResumeTokens(SECRET)
    token = tokens.issue(claims(name="zoë ✨", account="zoe", call="c1", peer="m2"))
    assert tokens.verify(token, 1_999) == claims(name="zoë ✨", account="zoe", call="c1", peer="m2")
    assert tokens.verify(token, 2_000) is None


def test_the_longest_token_fits_hello_resume() -> None:
    # PROTOCOL.md §2.8: a token has at most 1024 characters (hello.resume's limit). The worst
    # case: a name and an account of max_name_chars characters of 4 UTF-8 bytes each, a room
    # id of 64, the server's ids, every flag set. max_name_chars itself stops at 64.
    most = LimitSettings.model_fields["max_name_chars"].metadata
    assert any(getattr(rule, "le", None) == 64 for rule in most)
    with pytest.raises(ValueError, match="less than or equal to 64"):
        LimitSettings(max_name_chars=65)
    widest = "\U0001d49c" * 64  # MATHEMATICAL SCRIPT CAPITAL A: 4 bytes in UTF-8
    worst = Claims(
        member="m" * 12,
        name=widest,
        account=widest,
        room="r" * 64,
        call="c" * 16,
        peer="p" * 12,
        expires=2**53,
        guarded=True,
        host=True,
        reachable=True,
    )
    token = ResumeTokens(SECRET).issue(worst)
    assert len(token) <= 1024, len(token)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # the MAC
        lambda t: "e" + t[1:] if t[0] != "e" else "f" + t[1:],  # the payload
        lambda t: t.replace(".", ""),
        lambda t: "",
        lambda t: "." * 5,
        lambda t: "not base64!." + t.split(".")[1],
    ],
)
def test_a_changed_or_garbage_token_is_refused(tamper: Callable[[str], str]) -> None:
    tokens = ResumeTokens(SECRET)
    assert tokens.verify(tamper(tokens.issue(claims())), 1_000) is None


def test_another_secret_refuses_the_token() -> None:
    token = ResumeTokens(SECRET).issue(claims())
    assert ResumeTokens(b"o" * 32).verify(token, 1_000) is None


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        ResumeTokens(b"short")


# ------------------------------------------------------------------------------ helpers


async def resume(world: World, token: str, name: str = "ignored") -> Client:
    client = world.open()
    await client.send(type="hello", versions=[1], name=name, resume=token)
    return client


def lose(client: Client) -> None:
    """The connection ends without a goodbye (network loss, a killed browser)."""
    client.closed(goodbye=False)


# ------------------------------------------------------------------------------ loss and resume


async def test_a_lost_member_is_reconnecting_then_resumes_with_what_was_kept(world: World) -> None:
    alice = await world.connect("alice", reachable=True)  # watchers hear of reachable names
    bob = await world.connect("bob")
    for member in (alice, bob):
        await member.send(type="join", room="x")
    alice.take()
    bob.take()
    watcher = await world.connect("watcher")
    await watcher.send(type="presence_watch")
    watcher.take()
    token = alice.token

    lose(alice)
    assert bob.take() == [MemberReconnecting(room="x", id=alice.id)]
    assert watcher.take() == [PresenceChanged(name="alice", online=True, reconnecting=True)]
    await bob.send(type="signal", to=alice.id, description=OFFER)  # kept for alice
    await bob.send(type="chat", text="are you there?")
    bob.take()

    back = await resume(world, token)
    welcome, *rest = back.take()
    assert isinstance(welcome, Welcome)
    assert (welcome.id, welcome.name) == (alice.id, "alice")
    assert welcome.resumed is not None
    assert (welcome.resumed.room, welcome.resumed.missed) == ("x", False)
    # What was kept, in order, after the welcome; then a snapshot of the room to reconcile.
    assert [type(m) for m in rest] == [SignalRelay, ChatDelivered, Joined]
    assert isinstance(rest[0], SignalRelay) and rest[0].sender == bob.id
    assert isinstance(rest[2], Joined) and [m.id for m in rest[2].members] == [bob.id]
    (resumed,) = bob.take()
    assert isinstance(resumed, MemberResumed) and resumed.member.id == alice.id
    assert resumed.member.polite is (bob.id > alice.id)
    assert watcher.take() == [PresenceChanged(name="alice", online=True, reconnecting=False)]
    assert back.session.state is SessionState.GREETED


async def test_a_goodbye_leaves_at_once(world: World) -> None:
    bob, alice = await world.connect_in("x", "bob", "alice")  # bob hosts: no host passes on
    token = alice.token
    alice.closed(goodbye=True)
    assert bob.take() == [MemberLeft(room="x", id=alice.id)]
    back = await resume(world, token)
    assert back.take_error().code == "resume_failed"
    assert back.session.state is SessionState.AWAITING_HELLO  # a plain hello may follow
    await back.send(type="hello", versions=[1], name="alice")
    assert isinstance(back.take_one(Welcome), Welcome)


async def test_the_grace_window_ends_in_member_left_and_a_dead_token(
    make_world: Callable[..., World],
) -> None:
    world = make_world(resume_grace_seconds=5.0)
    bob, alice = await world.connect_in("x", "bob", "alice")  # bob hosts: no host passes on
    token = alice.token
    lose(alice)
    bob.take()
    world.clock.advance(4.9)
    world.hub.sweep()
    assert bob.take() == []
    world.clock.advance(0.2)
    world.hub.sweep()
    assert bob.take() == [MemberLeft(room="x", id=alice.id)]
    assert (await resume(world, token)).take_error().code == "resume_failed"
    # The name is free again for anybody.
    assert (await world.connect("alice")).welcome is not None


async def test_kept_messages_past_the_bound_are_dropped_and_a_snapshot_follows(
    make_world: Callable[..., World],
) -> None:
    world = make_world(outbox_messages=8)
    alice, bob = await world.connect_in("x", "alice", "bob")
    lose(alice)
    for _ in range(9):
        await bob.send(type="signal", to=alice.id, description=OFFER)
    back = await resume(world, alice.token)
    welcome, joined = back.take(tokens=True)  # the welcome carries the fresh token
    assert isinstance(welcome, Welcome) and welcome.resumed is not None
    assert welcome.resumed.missed is True
    assert isinstance(joined, Joined) and [m.id for m in joined.members] == [bob.id]


async def test_newest_wins_the_old_connection_is_closed_4005(world: World) -> None:
    alice, bob = await world.connect_in("x", "alice", "bob")
    second = await resume(world, alice.token)
    assert isinstance(second.take()[0], Welcome)
    assert alice.transport.closes == [
        (CloseCode.REPLACED, "this place was taken by a newer connection")
    ]
    alice.closed(goodbye=False)  # the old socket ends: the place is not its any more
    assert bob.take() == []  # the room saw one member throughout
    await bob.send(type="signal", to=alice.id, description=OFFER)
    assert isinstance(second.take()[-1], SignalRelay)


async def test_a_welcome_not_yet_written_stays_with_its_connection(world: World) -> None:
    """Two connections resume one place back to back, and the first one's ``welcome`` is
    still queued when the second takes over: it answered that connection's hello, so it is
    not handed over with what was kept (PROTOCOL.md 2.8). The newer connection gets one
    welcome, its own, and then what the first had not written."""
    alice, bob = await world.connect_in("x", "alice", "bob")
    lose(alice)
    first = world.open()
    first.transport.writes = False
    await first.send(type="hello", versions=[1], name="alice", resume=alice.token)
    await bob.send(type="signal", to=alice.id, description=OFFER)
    second = await resume(world, alice.token)
    assert first.transport.closes == [(CloseCode.REPLACED, REPLACED_BY_NEWER)]
    got = second.take()
    # Its welcome; the snapshot and the signal queued for the first; a fresh snapshot.
    assert [type(m) for m in got] == [Welcome, Joined, SignalRelay, Joined], got
    assert isinstance(got[0], Welcome) and got[0].id == alice.id


async def test_a_welcome_a_lost_connection_never_wrote_is_not_kept(world: World) -> None:
    """The connection that resumed is lost before its writer ran: what it had not written is
    kept for the next resume, but not its ``welcome`` (one welcome per connection)."""
    alice, _ = await world.connect_in("x", "alice", "bob")
    lose(alice)
    first = world.open()
    first.transport.writes = False
    await first.send(type="hello", versions=[1], name="alice", resume=alice.token)
    first.session.closed(goodbye=False, unsent=list(first.transport.sent))
    second = await resume(world, alice.token)
    assert [type(m) for m in second.take()] == [Welcome, Joined, Joined]


async def test_a_replaced_welcome_that_said_missed_still_says_so(
    signed_world: World,
) -> None:
    """After a restart the first resume rebuilds the place (its welcome says ``missed``); a
    second takes the place over before that welcome was written: its own welcome says
    ``missed`` too, and a snapshot, not what the first was sent, follows."""
    (alice,) = await signed_world.connect_in("x", "alice")
    after = fresh_hub(signed_world, ResumeTokens(SECRET))
    first = after.open()
    first.transport.writes = False
    await first.send(type="hello", versions=[1], name="alice", resume=alice.token)
    second = await resume(after, alice.token)
    got = second.take()
    assert [type(m) for m in got] == [Welcome, Joined], got
    assert isinstance(got[0], Welcome) and got[0].resumed is not None
    assert got[0].resumed.missed is True


class GatedKeys(MemoryRoomKeys):
    """Rooms' stored settings, read only once ``gate`` opens (``reading`` says one waits)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.reading = asyncio.Event()

    async def lookup(self, room: str) -> StoredRoom | None:
        self.reading.set()
        await self.gate.wait()
        return await super().lookup(room)


async def test_a_newer_resume_keeps_a_place_an_older_one_was_rebuilding(
    signed_world: World,
) -> None:
    """After a restart a first connection rebuilds a place and waits for the store; a second,
    newer one with the same token takes the half-built place meanwhile. Newest wins: the
    first is closed with 4005 once its rebuild ends, the second keeps the place and is seated
    in its room."""
    (alice,) = await signed_world.connect_in("x", "alice")
    keys = GatedKeys()
    after = fresh_hub(signed_world, ResumeTokens(SECRET), keys)
    first = after.open()
    hello = {"type": "hello", "versions": [1], "name": "alice", "resume": alice.token}
    rebuilding = asyncio.create_task(first.send(**hello))
    await keys.reading.wait()
    second = await resume(after, alice.token)
    keys.gate.set()
    await rebuilding
    assert first.transport.closes == [(CloseCode.REPLACED, REPLACED_BY_NEWER)]
    assert second.transport.closes == []
    got = second.take()
    assert [type(m) for m in got] == [Welcome, Joined], got
    assert isinstance(got[0], Welcome) and got[0].resumed is not None
    assert got[0].resumed.missed is True  # this server never held what it was sent before
    assert isinstance(got[1], Joined) and got[1].room == "x"


async def test_a_stranger_without_the_token_cannot_take_the_name(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    lose(alice)
    stranger = world.open()
    await stranger.send(type="hello", versions=[1], name="alice", reachable=True)
    assert stranger.take_error().code == "name_taken"


async def test_a_token_of_an_account_needs_that_account(world: World) -> None:
    token = world.hub.tokens.issue(
        claims(member="m9", name="zoe", account="zoe", room=None, expires=10**10)
    )
    guest = await resume(world, token)
    assert guest.take_error().code == "resume_failed"


async def test_a_token_from_another_server_secret_is_refused(world: World) -> None:
    token = ResumeTokens(b"z" * 32).issue(claims(expires=10**10))
    assert (await resume(world, token)).take_error().code == "resume_failed"


# ------------------------------------------------------------------------------ restart


def fresh_hub(world: World, tokens: ResumeTokens, keys: MemoryRoomKeys | None = None) -> World:
    """Another hub (a restarted server) sharing the chat store and the token secret, and
    ``keys`` (rooms' creators; none unless given). Room passwords lived in the old hub's
    memory: they are gone."""
    hub = Hub(world.limits, world.clock, world.chats, keys or MemoryRoomKeys(), tokens=tokens)
    return World(world.limits, world.clock, world.chats, hub)


@pytest.fixture
def signed_world() -> World:
    limits = LimitSettings()
    clock = FakeClock()
    chats = MemoryChatRepository()
    hub = Hub(limits, clock, chats, MemoryRoomKeys(), tokens=ResumeTokens(SECRET))
    return World(limits, clock, chats, hub)


async def test_after_a_restart_members_come_back_to_their_room(signed_world: World) -> None:
    alice, bob = await signed_world.connect_in("x", "alice", "bob")
    await alice.send(type="chat", text="before", id="c-1")
    tokens = (alice.token, bob.token)
    after = fresh_hub(signed_world, ResumeTokens(SECRET))

    a2 = await resume(after, tokens[0])
    welcome, joined = a2.take()
    assert isinstance(welcome, Welcome) and welcome.id == alice.id
    assert welcome.resumed is not None and welcome.resumed.missed is True
    assert welcome.resumed.room == "x"
    assert isinstance(joined, Joined) and joined.members == []
    assert [e.text for e in joined.history] == ["before"]

    b2 = await resume(after, tokens[1])
    _, joined_b = b2.take()
    assert isinstance(joined_b, Joined)
    assert [m.id for m in joined_b.members] == [alice.id]
    (back,) = a2.take()
    assert isinstance(back, MemberResumed) and back.member.id == bob.id
    # Complementary politeness, as before the restart.
    assert back.member.polite != joined_b.members[0].polite


async def test_after_a_restart_a_call_room_is_theirs_alone(signed_world: World) -> None:
    alice = await signed_world.connect("alice", reachable=True)
    bob = await signed_world.connect("bob", reachable=True)
    await alice.send(type="call", name="bob")
    (incoming,) = [m for m in bob.take() if m.type == "incoming_call"]
    await bob.send(type="call_accept", call=incoming.call)  # type: ignore[union-attr]
    alice.take()
    bob.take()
    after = fresh_hub(signed_world, ResumeTokens(SECRET))
    a2 = await resume(after, alice.token)
    welcome, joined = a2.take()
    assert isinstance(welcome, Welcome) and welcome.resumed is not None
    assert welcome.resumed.call == incoming.call  # type: ignore[union-attr]
    assert isinstance(joined, Joined) and joined.private
    carol = await after.connect("carol")
    await carol.send(type="join", room=joined.room)
    assert carol.take_error().code == "no_such_room"
    b2 = await resume(after, bob.token)
    assert [m.id for m in b2.take()[1].members] == [alice.id]  # type: ignore[union-attr]


async def test_after_a_restart_a_call_room_goes_on_from_its_stored_chat(
    signed_world: World,
) -> None:
    alice = await signed_world.connect("alice", reachable=True)
    bob = await signed_world.connect("bob", reachable=True)
    await alice.send(type="call", name="bob")
    (incoming,) = [m for m in bob.take() if m.type == "incoming_call"]
    await bob.send(type="call_accept", call=incoming.call)  # type: ignore[union-attr]
    await alice.send(type="chat", text="before the restart")
    alice.take()  # keeps the newest token, the one naming the call's room
    after = fresh_hub(signed_world, ResumeTokens(SECRET))
    a2 = await resume(after, alice.token)
    _, joined = a2.take()
    assert isinstance(joined, Joined)
    assert (joined.last_seq, [e.text for e in joined.history]) == (1, ["before the restart"])
    await a2.send(type="chat", text="after it")
    (delivered,) = a2.take()
    assert isinstance(delivered, ChatDelivered) and delivered.seq == 2


async def test_after_a_restart_an_old_token_does_not_open_a_room_that_got_a_password(
    signed_world: World,
) -> None:
    alice, bob = await signed_world.connect_in("x", "alice", "bob")
    open_token = bob.token  # from before the room had a password
    await alice.send(type="room_password", password="s3cret")
    alice.take()  # and with it a guarded token
    after = fresh_hub(signed_world, ResumeTokens(SECRET))
    a2 = await resume(after, alice.token)  # guarded: the room comes back locked
    _, joined = a2.take()
    assert isinstance(joined, Joined) and joined.locked and not joined.protected
    back = await resume(after, open_token)
    (welcome,) = back.take()
    assert isinstance(welcome, Welcome) and welcome.resumed is not None
    assert welcome.resumed.room is None  # resumed, but not let into the guarded room
    assert list(after.hub.rooms["x"].seats) == [alice.id]


async def test_after_a_restart_a_member_let_in_with_the_password_is_seated_again(
    signed_world: World,
) -> None:
    (alice,) = await signed_world.connect_in("x", "alice")
    await alice.send(type="room_password", password="s3cret")
    bob = await signed_world.connect("bob")
    await bob.send(type="join", room="x", password="s3cret")
    assert isinstance(bob.take()[0], Joined)
    seen = signed_world.hub.tokens.verify(bob.token, signed_world.clock.wall_ms() / 1000)
    assert seen is not None and seen.guarded and not seen.host
    after = fresh_hub(signed_world, ResumeTokens(SECRET))
    _, joined = (await resume(after, bob.token)).take()
    assert isinstance(joined, Joined) and joined.room == "x"
    assert joined.locked  # the password died with the old process: locked instead


async def test_after_a_restart_a_taken_name_fails_the_resume(signed_world: World) -> None:
    alice = await signed_world.connect("alice", reachable=True)
    after = fresh_hub(signed_world, ResumeTokens(SECRET))
    await after.connect("alice", reachable=True)  # someone else took the name meanwhile
    assert (await resume(after, alice.token)).take_error().code == "resume_failed"


# ------------------------------------------------------------------------------ tokens on the move


async def test_a_fresh_token_names_the_room_after_join_and_none_after_leave(world: World) -> None:
    alice = await world.connect("alice")
    await alice.send(type="join", room="x")
    _joined, issued = alice.take(tokens=True)
    assert isinstance(issued, ResumeTokenIssued)
    seen = world.hub.tokens.verify(issued.token, world.clock.wall_ms() / 1000)
    assert seen is not None and seen.room == "x"
    await alice.send(type="leave")
    _, issued = alice.take(tokens=True)
    assert isinstance(issued, ResumeTokenIssued)
    seen = world.hub.tokens.verify(issued.token, world.clock.wall_ms() / 1000)
    assert seen is not None and seen.room is None


async def test_tokens_are_refreshed_at_half_their_life(world: World) -> None:
    alice = await world.connect("alice")
    world.clock.advance(world.limits.resume_token_seconds / 2 - 1)
    world.hub.sweep()
    assert alice.take(tokens=True) == []
    world.clock.advance(2)
    world.hub.sweep()
    assert [m.type for m in alice.take(tokens=True)] == ["resume_token"]


# ------------------------------------------------------------------------------ chat once


async def test_a_resent_chat_is_stored_once_and_acknowledged_again(world: World) -> None:
    alice, bob = await world.connect_in("x", "alice", "bob")
    await alice.send(type="chat", text="hi", id="abc")
    (first,) = alice.take()
    bob.take()
    await alice.send(type="chat", text="hi", id="abc")
    (again,) = alice.take()
    assert again == first and isinstance(first, ChatDelivered) and first.client_id == "abc"
    assert bob.take() == []
    assert [e.seq for e in world.chats.rooms["x"]] == [1]


async def test_a_chat_write_completes_when_its_sender_is_cancelled(world: World) -> None:
    """The race of the resume issue: the sender's reader is cancelled mid-write. The write
    finishes, the counter moves, and the next chat in the room gets the next seq."""
    alice, bob = await world.connect_in("x", "alice", "bob")
    gate = asyncio.Event()
    append = world.chats.append

    async def slow(entry):  # type: ignore[no-untyped-def]
        await gate.wait()
        return await append(entry)

    world.chats.append = slow  # type: ignore[method-assign]
    task = asyncio.create_task(alice.send(type="chat", text="mid-write"))
    await asyncio.sleep(0)
    task.cancel()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    world.chats.append = append  # type: ignore[method-assign]
    await bob.send(type="chat", text="next")
    seqs = [e.seq for e in world.chats.rooms["x"]]
    assert seqs == [1, 2]
    assert [m.seq for m in bob.take() if isinstance(m, ChatDelivered)] == [1, 2]


async def test_member_joined_politeness_is_by_id(world: World) -> None:
    alice, bob = await world.connect_in("x", "alice", "bob")
    carol = await world.connect("carol")
    await carol.send(type="join", room="x")
    for member in (alice, bob):
        (event,) = member.take()
        assert isinstance(event, MemberJoined)
        assert event.member.polite is (member.id > carol.id)


# ------------------------------------------------------------------------------ review fixes


async def test_after_a_restart_the_newer_token_wins_a_name_an_older_one_also_claims(
    signed_world: World,
) -> None:
    """Mallory said goodbye as "zed" (a server that then crashed never learns it after the
    restart) and kept her token; someone else took "zed". After the restart, whoever of
    the two comes back first, the newer claim keeps the name."""
    mallory = await signed_world.connect("zed", reachable=True)
    old_token = mallory.token
    mallory.closed(goodbye=True)
    signed_world.clock.advance(5)  # later: its tokens expire later
    victim = await signed_world.connect("zed", reachable=True)
    await victim.send(type="join", room="club")
    victim.take()
    after = fresh_hub(signed_world, ResumeTokens(SECRET))
    first = await resume(after, old_token)
    assert isinstance(first.take()[0], Welcome)  # this server cannot know she left
    back = await resume(after, victim.token)
    welcome, joined = back.take()
    assert isinstance(welcome, Welcome) and welcome.id == victim.id
    assert isinstance(joined, Joined) and joined.room == "club"
    assert first.transport.closes == [(CloseCode.REPLACED, "a newer claim to this name came back")]
    assert after.hub.place(mallory.id) is None
    # The other way round: the older claim is refused.
    late = await resume(after, old_token)
    assert late.take_error().code == "resume_failed"


async def test_a_member_let_in_with_the_password_survives_two_restarts(
    signed_world: World,
) -> None:
    (alice,) = await signed_world.connect_in("vault", "alice")
    await alice.send(type="room_password", password="s3cret")
    bob = await signed_world.connect("bob")
    await bob.send(type="join", room="vault", password="s3cret")
    bob.take()
    token = bob.token
    for _ in range(2):
        server = fresh_hub(signed_world, ResumeTokens(SECRET))
        back = await resume(server, token)
        _, joined = back.take()
        assert isinstance(joined, Joined) and joined.room == "vault" and joined.locked
        token = back.token  # the newest one, issued by the rebuilt place


async def test_kept_messages_past_the_byte_budget_are_dropped_and_missed(
    make_world: Callable[..., World],
) -> None:
    world = make_world(resume_keep_bytes=64 * 1024)
    alice, bob = await world.connect_in("x", "alice", "bob")
    lose(alice)
    big = {"type": "offer", "sdp": "a" * 30_000}
    for _ in range(3):  # 3 x 30 kB > 64 KiB, far below the message count bound
        await bob.send(type="signal", to=alice.id, description=big)
    welcome, joined = (await resume(world, alice.token)).take()
    assert isinstance(welcome, Welcome) and welcome.resumed is not None
    assert welcome.resumed.missed is True
    assert isinstance(joined, Joined)


async def test_a_connection_that_dropped_messages_on_its_way_out_resumes_missed(
    world: World,
) -> None:
    alice, _bob = await world.connect_in("x", "alice", "bob")
    alice.session.closed(goodbye=False, dropped=True)  # e.g. closed 4002 on overflow
    welcome, _ = (await resume(world, alice.token)).take()
    assert isinstance(welcome, Welcome) and welcome.resumed is not None
    assert welcome.resumed.missed is True
