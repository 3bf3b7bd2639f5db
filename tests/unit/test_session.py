"""One connection's state machine: handshake, errors with refs, rate limits, odd frames."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from salon.core.session import SessionState
from salon.protocol import CloseCode
from salon.protocol.messages import (
    ChatDelivered,
    IceServer,
    Joined,
    Limits,
    ServerPing,
    ServerPong,
    Welcome,
)

from .conftest import World


async def test_hello_is_welcomed_with_id_name_ice_servers_and_limits(
    make_world: Callable[..., World],
) -> None:
    world = make_world(max_room_members=3, max_chat_chars=100, ring_seconds=12.5)
    client = world.open()
    before = client.session.state

    await client.send(type="hello", versions=[1], name="alice")

    welcome = client.take_one(Welcome)
    assert welcome.version == 1
    assert welcome.id == client.id
    assert welcome.name == "alice"
    assert welcome.ice_servers == [IceServer(urls=["stun:stun.example.org:3478"])]
    assert welcome.limits == Limits(
        max_frame_bytes=world.limits.max_frame_bytes,
        max_name_chars=64,
        max_chat_chars=100,
        max_room_members=3,
        rate_per_second=world.limits.rate_per_second,
        rate_burst=world.limits.rate_burst,
        ping_after_seconds=world.limits.ping_after_seconds,
        dead_after_seconds=world.limits.dead_after_seconds,
        ring_seconds=12.5,
        resume_grace_seconds=world.limits.resume_grace_seconds,
    )
    assert welcome.resume_token
    assert (before, client.session.state) == (SessionState.AWAITING_HELLO, SessionState.GREETED)
    assert client.session.version == 1


async def test_each_session_gets_its_own_id_and_resume_token(world: World) -> None:
    a = await world.connect("a")
    b = await world.connect("b")
    assert a.welcome is not None
    assert b.welcome is not None
    assert a.id != b.id
    assert a.welcome.resume_token != b.welcome.resume_token


async def test_the_highest_common_version_is_chosen(world: World) -> None:
    client = world.open()
    await client.send(type="hello", versions=[7, 1, 4], name="alice")
    assert client.take_one(Welcome).version == 1


async def test_a_second_hello(world: World) -> None:
    alice = await world.connect("alice")

    await alice.send(type="hello", versions=[1], name="mallory", ref="again")

    error = alice.take_error()
    assert (error.code, error.ref) == ("already_greeted", "again")
    assert alice.name == "alice"
    assert world.hub.online() == 1


async def test_unsupported_versions_are_refused_and_the_connection_closed(world: World) -> None:
    client = world.open()

    await client.send(type="hello", versions=[4, 5], name="alice", ref="v")

    error = client.take_error()
    assert (error.code, error.ref) == ("unsupported_version", "v")
    assert [code for code, _ in client.transport.closes] == [CloseCode.UNSUPPORTED_VERSION]
    assert client.transport.closes[0][0] == 4001
    assert client.session.state is SessionState.AWAITING_HELLO
    assert world.hub.online() == 0


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "join", "room": "lobby"},
        {"type": "leave"},
        {"type": "chat", "text": "hi"},
        {"type": "ping"},
        {"type": "presence_watch"},
        {"type": "call", "name": "bob"},
    ],
)
async def test_everything_but_hello_needs_hello_first(
    world: World, frame: dict[str, object]
) -> None:
    client = world.open()

    await client.send(**frame, ref=42)

    error = client.take_error()
    assert (error.code, error.ref) == ("hello_required", 42)
    assert world.hub.rooms == {}
    assert world.hub.online() == 0


async def test_errors_echo_a_string_or_integer_ref(world: World) -> None:
    alice = await world.connect("alice")

    await alice.send(type="leave", ref="abc")
    assert alice.take_error().ref == "abc"
    await alice.send(type="leave", ref=-(2**53))
    assert alice.take_error().ref == -(2**53)
    await alice.send(type="leave")
    assert alice.take_error().ref is None


async def test_errors_in_the_frame_itself_echo_ref_when_they_can(world: World) -> None:
    alice = await world.connect("alice")

    await alice.send(type="chat", text=5, ref="bad")
    error = alice.take_error()
    assert (error.code, error.ref) == ("bad_message", "bad")

    await alice.send(type="teleport", ref=9)
    error = alice.take_error()
    assert (error.code, error.ref) == ("unknown_type", 9)

    await alice.send(ref="no type")
    assert alice.take_error().code == "unknown_type"


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad_json"),
        ("", "bad_json"),
        ("[1, 2]", "bad_message"),
        ('"hello"', "bad_message"),
        ('{"type": "ping", "ref": true}', "bad_message"),
        ('{"type": "hello", "versions": ["1"], "name": "x"}', "bad_message"),
    ],
)
async def test_malformed_frames(world: World, frame: str, code: str) -> None:
    alice = await world.connect("alice")
    await alice.session.receive(frame)
    assert alice.take_error().code == code


async def test_a_binary_frame_is_refused(world: World) -> None:
    alice = await world.connect("alice")

    await alice.session.receive(b'{"type": "ping"}')

    assert alice.take_error().code == "binary_unsupported"
    assert alice.transport.closes == []
    await alice.send(type="ping", ref=1)
    assert alice.take_one(ServerPong).ref == 1


async def test_ping_is_answered_with_pong_and_pong_is_silent(world: World) -> None:
    alice = await world.connect("alice")
    await alice.send(type="ping", ref="p1")
    assert alice.take_one(ServerPong) == ServerPong(ref="p1")
    await alice.send(type="pong")
    assert alice.take() == []


async def test_silence_sends_a_server_ping(world: World) -> None:
    alice = await world.connect("alice")
    alice.session.silence()
    assert alice.take_one(ServerPing) == ServerPing()


async def test_an_unexpected_exception_becomes_internal_and_the_session_goes_on(
    world: World, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")

    def explode(*args: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(world.hub, "set_media", explode)
    await alice.send(type="media", mic=True, camera=False, screen=False, ref="m")

    error = alice.take_error()
    assert (error.code, error.ref) == ("internal", "m")
    assert "boom" not in error.message
    assert any("boom" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    assert alice.transport.closes == []
    await alice.send(type="chat", text="still here")
    assert bob.take_one(ChatDelivered).text == "still here"


async def test_after_closed_frames_are_ignored_and_nothing_is_pushed(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")
    alice.closed()
    assert alice.session.state is SessionState.CLOSED

    await alice.send(type="chat", text="ghost")
    await bob.send(type="chat", text="anyone?")

    assert alice.take() == []
    assert world.chats.rooms["lobby"][0].text == "anyone?"


async def test_closing_twice_is_harmless(world: World) -> None:
    alice = await world.connect("alice")
    alice.closed()
    alice.closed()
    assert world.hub.online() == 0


# ---------------------------------------------------------------------------- rate limits


async def test_burst_then_rate_limited_once(make_world: Callable[..., World]) -> None:
    world = make_world(rate_burst=5, rate_per_second=1, rate_strikes_before_close=10)
    alice = await world.connect("alice")  # the hello spent one token

    for n in range(4):
        await alice.send(type="ping", ref=n)
    assert [type(m) for m in alice.take()] == [ServerPong] * 4

    for n in range(4):
        await alice.send(type="ping", ref=n)
    error = alice.take_error()
    assert (error.code, error.ref) == ("rate_limited", None)
    assert alice.transport.closes == []


async def test_tokens_refill_over_time(make_world: Callable[..., World]) -> None:
    world = make_world(rate_burst=3, rate_per_second=2, rate_strikes_before_close=100)
    alice = await world.connect("alice")
    await alice.send(type="ping")
    await alice.send(type="ping")
    await alice.send(type="ping")
    assert [type(m).__name__ for m in alice.take()] == ["ServerPong", "ServerPong", "Error"]

    world.clock.advance(0.4)  # 0.8 of a token
    await alice.send(type="ping")
    assert alice.take() == []

    world.clock.advance(0.1)  # now a whole token
    await alice.send(type="ping")
    assert alice.take() == [ServerPong()]

    world.clock.advance(60)  # refills only up to the burst
    for _ in range(4):
        await alice.send(type="ping")
    got = alice.take()
    assert [type(m).__name__ for m in got] == ["ServerPong"] * 3 + ["Error"]
    assert got[-1].code == "rate_limited"  # type: ignore[union-attr]


async def test_rate_limited_is_told_again_after_a_message_gets_through(
    make_world: Callable[..., World],
) -> None:
    world = make_world(rate_burst=2, rate_per_second=1, rate_strikes_before_close=100)
    alice = await world.connect("alice")
    await alice.send(type="ping")
    await alice.send(type="ping")
    await alice.send(type="ping")
    world.clock.advance(1)
    await alice.send(type="ping")
    await alice.send(type="ping")
    await alice.send(type="ping")
    codes = [getattr(m, "code", m.type) for m in alice.take()]
    assert codes == ["pong", "rate_limited", "pong", "rate_limited"]


async def test_close_4003_after_the_strikes(make_world: Callable[..., World]) -> None:
    world = make_world(rate_burst=2, rate_per_second=1, rate_strikes_before_close=3)
    alice = await world.connect("alice")
    await alice.send(type="ping")  # the last token

    await alice.send(type="ping")
    await alice.send(type="ping")
    assert alice.transport.closes == []
    await alice.send(type="ping")

    assert [code for code, _ in alice.transport.closes] == [CloseCode.RATE_ABUSE]
    assert alice.transport.closes[0][0] == 4003
    assert [getattr(m, "code", m.type) for m in alice.take()] == ["pong", "rate_limited"]


async def test_strikes_leak_away_so_a_slightly_fast_client_is_only_slowed(
    make_world: Callable[..., World],
) -> None:
    world = make_world(rate_burst=1, rate_per_second=1, rate_strikes_before_close=3)
    alice = await world.connect("alice")  # the hello took the only token
    for _ in range(10):  # one allowed and one dropped a second: two strikes never add up to 3
        await alice.send(type="ping")
        await alice.send(type="ping")
        world.clock.advance(1.0)
    assert alice.transport.closes == []


async def test_a_steady_flood_is_closed_even_though_some_frames_get_through(
    make_world: Callable[..., World],
) -> None:
    world = make_world(rate_burst=1, rate_per_second=10, rate_strikes_before_close=20)
    alice = await world.connect("alice")
    for _ in range(100):  # 100 frames/s against 10/s: ~9 strikes a second outrun the leak
        await alice.send(type="ping")
        world.clock.advance(0.01)
    assert [code for code, _ in alice.transport.closes][:1] == [CloseCode.RATE_ABUSE]
    errors = [m for m in alice.take() if getattr(m, "code", None) == "rate_limited"]
    assert 1 <= len(errors) <= 2  # told once a second at most, not once per dropped frame


async def test_rate_limited_frames_do_nothing(make_world: Callable[..., World]) -> None:
    world = make_world(rate_burst=3, rate_per_second=1, rate_strikes_before_close=100)
    alice, bob = await world.connect_in("lobby", "alice", "bob")  # hello + join: 2 tokens
    await alice.send(type="chat", text="one")
    await alice.send(type="chat", text="two")
    assert [e.text for e in world.chats.rooms["lobby"]] == ["one"]
    assert [m.text for m in bob.take()] == ["one"]  # type: ignore[union-attr]


async def test_binary_frames_count_against_the_rate(make_world: Callable[..., World]) -> None:
    world = make_world(rate_burst=2, rate_per_second=1, rate_strikes_before_close=100)
    alice = await world.connect("alice")
    await alice.session.receive(b"\x00")
    await alice.session.receive(b"\x00")
    codes = [m.code for m in alice.take()]  # type: ignore[union-attr]
    assert codes == ["binary_unsupported", "rate_limited"]


async def test_join_through_the_session_uses_the_given_media(world: World) -> None:
    alice = await world.connect("alice")
    await alice.send(type="join", room="lobby", media={"camera": True})
    alice.take_one(Joined)
    media = world.hub.rooms["lobby"].seats[alice.id].media
    assert (media.mic, media.camera, media.screen) == (False, True, False)
