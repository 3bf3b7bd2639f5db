"""Every bad input gets its stable code, changes nothing and never disturbs anyone else."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosedError

from tests.integration.peer import Peer

BAD_FRAMES = [
    pytest.param("{not json", "bad_json", id="bad-json"),
    pytest.param("", "bad_json", id="empty"),
    pytest.param(
        "\ud800".encode("utf-8", "surrogatepass").decode("latin-1"), "bad_json", id="junk"
    ),
    pytest.param("[1, 2]", "bad_message", id="array"),
    pytest.param('"hello"', "bad_message", id="string"),
    pytest.param("42", "bad_message", id="number"),
    pytest.param("null", "bad_message", id="null"),
    pytest.param('{"type": "teleport"}', "unknown_type", id="unknown-type"),
    pytest.param('{"no_type": 1}', "unknown_type", id="missing-type"),
    pytest.param('{"type": 7}', "unknown_type", id="type-not-string"),
    pytest.param('{"type": "join", "room": 5}', "bad_message", id="room-not-string"),
    pytest.param('{"type": "join"}', "bad_message", id="room-missing"),
    pytest.param(
        '{"type": "media", "mic": "yes", "camera": true, "screen": false}',
        "bad_message",
        id="bool-as-string",
    ),
    pytest.param(
        '{"type": "media", "mic": 1, "camera": true, "screen": false}',
        "bad_message",
        id="bool-as-1",
    ),
    pytest.param('{"type": "history", "since": "3"}', "bad_message", id="int-as-string"),
    pytest.param('{"type": "history", "since": -1}', "bad_message", id="negative-seq"),
    pytest.param('{"type": "signal", "to": "x"}', "bad_message", id="signal-no-payload"),
    pytest.param(
        '{"type": "signal", "to": "x", "description": {"type": "offer", "sdp": ""},'
        ' "candidate": {"candidate": ""}}',
        "bad_message",
        id="signal-two-payloads",
    ),
    pytest.param(
        '{"type": "signal", "to": "x", "description": {"type": "bogus", "sdp": ""}}',
        "bad_message",
        id="bad-sdp-type",
    ),
    pytest.param('{"type": "chat", "text": ["a"]}', "bad_message", id="text-not-string"),
    pytest.param(
        json.dumps({"type": "signal", "to": "x" * 65, "candidate": {"candidate": ""}}),
        "bad_message",
        id="oversized-member-id",
    ),
]


@pytest.fixture
async def room_of_three(peers: Callable[..., Any]) -> tuple[Peer, Peer, Peer]:
    alice, bob, carol = await peers("alice", "bob", "carol")
    for peer in (alice, bob, carol):
        await peer.join("r")
    for _ in range(2):
        await alice.expect("member_joined")
    await bob.expect("member_joined")
    return alice, bob, carol


@pytest.mark.parametrize(("frame", "code"), BAD_FRAMES)
async def test_bad_frame_gets_its_code_and_nobody_notices(
    room_of_three: tuple[Peer, Peer, Peer], frame: str, code: str
) -> None:
    alice, bob, carol = room_of_three
    await alice.send_raw(frame)
    await alice.error(code)
    await alice.alive()  # the connection stays open
    # Bystanders saw nothing, and the room still works for everyone, the sender included.
    await bob.silent(0.1)
    await carol.silent(0.1)
    await bob.send(type="chat", text="still here")
    for peer in (alice, bob, carol):
        assert (await peer.expect("chat"))["text"] == "still here"


async def test_errors_echo_the_ref(room_of_three: tuple[Peer, Peer, Peer]) -> None:
    alice, _, _ = room_of_three
    await alice.send_raw('{"type": "join", "room": 5, "ref": "r-17"}')
    assert (await alice.error("bad_message"))["ref"] == "r-17"
    await alice.send_raw('{"type": "teleport", "ref": 99}')
    assert (await alice.error("unknown_type"))["ref"] == 99


async def test_binary_frame_is_refused_politely(room_of_three: tuple[Peer, Peer, Peer]) -> None:
    alice, bob, _ = room_of_three
    await alice.send_raw(b"\x00\x01binary")
    await alice.error("binary_unsupported")
    await alice.send_raw(b"")  # an empty binary frame is a binary frame too (PROTOCOL 1.1)
    await alice.error("binary_unsupported")
    await alice.alive()
    await bob.silent(0.1)


async def test_messages_before_hello(server: Any) -> None:
    peer = await Peer.connect(server)
    for message in ({"type": "join", "room": "r"}, {"type": "chat", "text": "hi"}):
        await peer.send(**message)
        await peer.error("hello_required")
    await peer.hello("late")
    await peer.close()


async def test_second_hello_and_unsupported_version(server: Any) -> None:
    peer = await Peer.greeted(server, "alice")
    await peer.send(type="hello", versions=[1], name="mallory")
    await peer.error("already_greeted")
    assert peer.name == "alice"
    other = await Peer.connect(server)
    await other.send(type="hello", versions=[99], name="future")
    await other.error("unsupported_version")
    assert await other.closed_with() == 4001
    await peer.close()


async def test_room_messages_before_join(peers: Callable[..., Any]) -> None:
    (alice,) = await peers("alice")
    for message in (
        {"type": "signal", "to": "x", "candidate": {"candidate": ""}},
        {"type": "chat", "text": "hi"},
        {"type": "media", "mic": True, "camera": True, "screen": False},
        {"type": "history", "since": 0},
        {"type": "leave"},
    ):
        await alice.send(**message)
        await alice.error("not_joined")
    await alice.alive()


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a", True),
        ("x" * 64, True),
        ("e\u0301" * 64, True),  # 128 code points, 64 after NFC
        ("x" * 65, False),
        ("", False),
        ("   ", False),
        ("bad\nname", False),
        ("bad\x00name", False),
        ("rtl\u202eevil", False),  # bidi override
        ("zero\u200bwidth", False),  # zero-width space (format)
    ],
)
async def test_display_name_rules(server: Any, name: str, ok: bool) -> None:
    peer = await Peer.connect(server)
    await peer.send(type="hello", versions=[1], name=name)
    reply = await peer.recv()
    if ok:
        assert reply["type"] == "welcome"
    else:
        assert reply == {**reply, "type": "error", "code": "invalid_name"}
    await peer.close()


@pytest.mark.parametrize("room", ["", "x" * 65, "with space", "../etc", "ü", "a/b", "a.b"])
async def test_room_id_rules(peers: Callable[..., Any], room: str) -> None:
    (alice,) = await peers("alice")
    await alice.send(type="join", room=room)
    await alice.error("invalid_room")
    await alice.join("A-valid_room-" + "x" * 51)


async def test_a_text_frame_that_is_not_utf8_closes_1007_without_an_error_in_the_log(
    server: Any,
) -> None:
    """RFC 6455 8.1: the connection is failed with 1007. That is handled, not a server fault,
    so nothing at ERROR (and no traceback) reaches the log, however often it is sent."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    uvicorn_errors = logging.getLogger("uvicorn.error")
    uvicorn_errors.addHandler(handler)
    try:
        for _ in range(3):
            peer = await Peer.connect(server)
            await peer.ws.send(b"\xff\xfe", text=True)
            with pytest.raises(ConnectionClosedError):
                await asyncio.wait_for(peer.ws.recv(), 5)
            assert peer.ws.close_code == 1007
    finally:
        uvicorn_errors.removeHandler(handler)
    utf8 = [r for r in records if "UTF-8" in r.getMessage()]
    assert len(utf8) == 3  # still told, once per connection
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in utf8)
    assert [r for r in records if r.levelno >= logging.ERROR] == []
