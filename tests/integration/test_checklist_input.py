"""Checklist rows 2, 3, 6, 7 and 9 (docs/RELIABILITY.md) against the real server.

Each bad input gets its documented answer (docs/PROTOCOL.md §1.1, §1.3, §1.4, §7) and changes
nothing: the sender's connection keeps working (or, for a WebSocket protocol violation, is
closed with 1002), nobody else hears a thing, nothing is stored, and no record at ERROR
reaches the server log. "Nobody heard it" is proven without waiting: the server handles one
connection's frames in order, so once the sender has its answer, anything relayed is already
in each bystander's outbox, ahead of the pong that answers the bystander's next ping.
"""

from __future__ import annotations

import contextlib
import json
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Any, Final, get_args

import pytest
from pydantic import BaseModel

from salon.protocol import CloseCode
from salon.protocol.messages import ClientMessage, ServerMessage
from tests.integration.logrecords import recording
from tests.integration.peer import Peer
from tests.integration.rawws import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RawWebSocket,
    encode_frame,
)
from tests.integration.server import RunningServer
from tests.integration.test_hosts import heard

MakeServer = Callable[..., AbstractContextManager[RunningServer]]
# Enough for the hundreds of frames a test sends back to back (the rate limit has its tests).
GENEROUS: Final = {
    "rate_burst": 10_000,
    "rate_per_second": 10_000.0,
    "rate_strikes_before_close": 10**9,  # frames it cannot read count as strikes
}
PROTOCOL_ERROR: Final = CloseCode.PROTOCOL_ERROR  # 1002, RFC 6455 7.4.1


# ----------------------------------------------------------------------------- helpers


def _types_of(union: Any) -> dict[str, type[BaseModel]]:
    """The message classes of a protocol union, by their ``type`` value."""
    members = get_args(get_args(union)[0])
    return {get_args(cls.model_fields["type"].annotation)[0]: cls for cls in members}


CLIENT_TYPES: Final = _types_of(ClientMessage)
SERVER_TYPES: Final = _types_of(ServerMessage)
# What only the server sends: every server message whose type no client message has.
SERVER_ONLY_TYPES: Final = sorted(set(SERVER_TYPES) - set(CLIENT_TYPES))


async def refused(peer: Peer, frame: str, code: str, ref: str | int | None = None) -> str:
    """Send ``frame``; the next message must be an ``error`` of ``code`` (echoing ``ref``).
    Returns the error's sentence."""
    await peer.send_raw(frame)
    error = await peer.expect("error")
    assert (error["code"], error["ref"]) == (code, ref), (frame[:200], error)
    message: str = error["message"]
    return message


async def nobody_heard(*bystanders: Peer) -> None:
    for peer in bystanders:
        assert await heard(peer) == [], f"{peer.name} heard something"


@pytest.fixture
async def opened() -> AsyncIterator[list[Peer]]:
    """Peers to close after the test."""
    peers: list[Peer] = []
    yield peers
    for peer in peers:
        with contextlib.suppress(Exception):
            await peer.close()


@contextlib.asynccontextmanager
async def serving(
    make_server: MakeServer, opened: list[Peer], **limits: Any
) -> AsyncIterator[RunningServer]:
    """A server with ``limits``; the peers are closed before it stops (it would wait)."""
    with make_server(**limits) as server:
        try:
            yield server
        finally:
            while opened:
                with contextlib.suppress(Exception):
                    await opened.pop().close()


async def room(server: RunningServer, opened: list[Peer], *names: str) -> list[Peer]:
    """Greeted peers in room ``r``, in order (the first hosts), with what they heard drained."""
    made = [await Peer.greeted(server, name) for name in names]
    opened.extend(made)
    for peer in made:
        await peer.join("r")
    for peer in made:
        await heard(peer)
    return made


async def chat_seqs(peer: Peer) -> list[int]:
    await peer.send(type="history", since=0)
    return [m["seq"] for m in (await peer.expect("history"))["messages"]]


# ------------------------------------------------------- every client message, every field

CANDIDATE: Final = {
    "candidate": "candidate:842163049 1 udp 1677729535 198.51.100.7 46154 typ srflx raddr "
    "0.0.0.0 rport 0 generation 0 ufrag sXq8 network-cost 999",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "sXq8",
}
# One message per client type with every field it has set (signal: one per payload), in an
# order one member can send them (docs/PROTOCOL.md §5.1). Checked against the models below,
# so a new field must be added here.
FULL_MESSAGES: Final[list[dict[str, Any]]] = [
    {"type": "hello", "versions": [1, 3], "name": "x", "resume": None, "reachable": True, "ref": 1},
    {
        "type": "join",
        "room": "full",
        "password": "not set by a join",
        "media": {"mic": True, "camera": False, "screen": False, "recording": False},
        "host_key": "stale",
        "invite": "forged.invite",
        "ref": "join",
    },
    {"type": "media", "mic": False, "camera": True, "screen": True, "recording": False, "ref": 2},
    {"type": "chat", "text": "hi", "id": "c-1", "ref": "c-1"},
    {"type": "history", "since": 0, "ref": 3},
    {"type": "hand", "raised": True, "ref": 4},
    {"type": "reaction", "reaction": "clap", "ref": 5},
    {
        "type": "signal",
        "to": "nobody",
        "description": {"type": "offer", "sdp": "v=0\r\n"},
        "candidate": None,
        "rejected": None,
        "reset": None,
        "ref": 6,
    },
    {"type": "signal", "to": "nobody", "candidate": CANDIDATE, "ref": 7},
    {"type": "signal", "to": "nobody", "rejected": {"type": "answer", "message": "no"}},
    {"type": "signal", "to": "nobody", "reset": {"reason": "ice_failed"}},
    {"type": "room_lock", "locked": False, "ref": 8},
    {"type": "room_password", "password": None, "ref": 9},
    {"type": "room_lobby", "enabled": False, "ref": 10},
    {"type": "lobby_admit", "id": "nobody", "ref": 11},
    {"type": "lobby_deny", "id": "nobody", "ref": 12},
    {"type": "make_host", "id": "nobody", "ref": 13},
    {"type": "mute", "id": "nobody", "kind": "camera", "ref": 14},
    {"type": "lower_hand", "id": "nobody", "ref": 15},
    {"type": "remove", "id": "nobody", "ref": 16},
    {"type": "presence_watch", "watch": False, "ref": 17},
    {"type": "call", "name": "nobody", "ref": 18},
    {"type": "call_accept", "call": "none", "ref": 19},
    {"type": "call_decline", "call": "none", "ref": 20},
    {"type": "call_cancel", "call": "none", "ref": 21},
    {"type": "ice_refresh", "ref": 22},
    {"type": "pong", "ref": 23},
    {"type": "ping", "ref": 24},
    {"type": "leave", "ref": 25},
    {"type": "end_meeting", "ref": 26},
    {"type": "record", "on": False, "ref": 27},
    {
        "type": "sfu_publish",
        "description": {"type": "offer", "sdp": "v=0\r\n"},
        "screen": "2",
        "ref": 28,
    },
    {"type": "sfu_subscribe", "description": {"type": "answer", "sdp": "v=0\r\n"}, "ref": 29},
    {"type": "sfu_candidate", "pc": "publisher", "candidate": CANDIDATE, "ref": 30},
    {"type": "sfu_quality", "member": "nobody", "quality": "low", "ref": 31},
    {"type": "sfu_restart", "ref": 32},
]
SHAPE_ERRORS: Final = frozenset({"bad_json", "bad_message", "unknown_type"})


def _keys_seen(messages: list[dict[str, Any]], path: tuple[str, ...]) -> set[str]:
    keys: set[str] = set()
    for message in messages:
        value: Any = message
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, dict):
            keys |= set(value)
    return keys


def _fields_of(model: type[BaseModel]) -> dict[str, type[BaseModel] | None]:
    """A model's wire names, each with the model it holds, if any."""
    fields: dict[str, type[BaseModel] | None] = {}
    for name, field in model.model_fields.items():
        inner = [
            t
            for t in get_args(field.annotation) or (field.annotation,)
            if isinstance(t, type) and issubclass(t, BaseModel)
        ]
        fields[field.alias or name] = inner[0] if inner else None
    return fields


def test_the_full_messages_cover_every_field_of_every_client_message() -> None:
    """So that "every documented field still passes" covers the fields added later too."""
    assert {m["type"] for m in FULL_MESSAGES} == set(CLIENT_TYPES)
    for kind, model in CLIENT_TYPES.items():
        samples = [m for m in FULL_MESSAGES if m["type"] == kind]
        todo: list[tuple[tuple[str, ...], type[BaseModel]]] = [((), model)]
        while todo:
            path, cls = todo.pop()
            fields = _fields_of(cls)
            assert _keys_seen(samples, path) == set(fields), (kind, path)
            todo.extend(((*path, name), inner) for name, inner in fields.items() if inner)


# ------------------------------------------------------------------------------ row 2


def test_the_server_only_types_come_from_the_protocol_models() -> None:
    assert {"welcome", "member_joined", "server_draining", "joined", "error"} <= set(
        SERVER_ONLY_TYPES
    )
    shared = set(SERVER_TYPES) & set(CLIENT_TYPES)
    assert shared == {"signal", "media", "chat", "history", "ping", "pong", "reaction"}
    assert len(SERVER_ONLY_TYPES) == len(SERVER_TYPES) - len(shared)


async def test_a_server_only_type_from_a_client_is_unknown_type_and_never_relayed(
    make_server: MakeServer,
    opened: list[Peer],
) -> None:
    """PROTOCOL.md §5 (common errors): a type the client may not send, a server message's
    type included, is ``unknown_type``, whatever its other fields say."""
    async with serving(make_server, opened, **GENEROUS) as server:
        alice, bob, carol = await room(server, opened, "alice", "bob", "carol")
        for kind in SERVER_ONLY_TYPES:
            # Shaped like the real thing: a member "joining", a welcome, a drain notice.
            frame = {
                "type": kind,
                "room": "r",
                "member": {"id": alice.id, "name": "mallory", "polite": True, "media": {}},
                "retry_after_ms": 0,
                "from": bob.id,
                "ref": f"forged-{kind}",
            }
            await refused(alice, json.dumps(frame), "unknown_type", f"forged-{kind}")
        await nobody_heard(bob, carol)
        await alice.send(type="chat", text="still one room")
        for peer in (alice, bob, carol):
            assert (await peer.expect("chat"))["text"] == "still one room"


# ------------------------------------------------------------------------------ row 3

UNKNOWN_FIELDS: Final = [
    ({"type": "chat", "text": "hi", "colour": "red"}, "colour"),
    ({"type": "join", "room": "elsewhere", "as_host": True}, "as_host"),
    ({"type": "ping", "": 1}, ""),
    ({"type": "media", "mic": True, "camera": True, "screen": True, "MIC": False}, "MIC"),
    (
        {"type": "signal", "to": "BOB", "candidate": {**CANDIDATE, "relayProtocol": "udp"}},
        "candidate.relayProtocol",
    ),
    (
        {"type": "signal", "to": "BOB", "description": {"type": "offer", "sdp": "", "x": 1}},
        "description.x",
    ),
    ({"type": "signal", "to": "BOB", "reset": {"reason": "rejected", "why": ""}}, "reset.why"),
    (
        {
            "type": "join",
            "room": "elsewhere",
            "media": {"mic": True, "camera": False, "screen": False, "audio": True},
        },
        "media.audio",
    ),
]


async def test_unknown_fields_are_refused_naming_the_field(
    server: RunningServer, opened: list[Peer]
) -> None:
    """PROTOCOL.md §1.3 "Unknown fields": ``bad_message`` naming the field, at the top level
    and inside nested objects; the message is not handled at all."""
    alice, bob = await room(server, opened, "alice", "bob")
    for i, (message, field) in enumerate(UNKNOWN_FIELDS):
        frame = json.dumps({**message, "ref": i}).replace("BOB", bob.id)
        sentence = await refused(alice, frame, "bad_message", i)
        assert sentence.startswith(f"{field}: "), sentence
    await nobody_heard(bob)
    assert await chat_seqs(alice) == []
    await alice.send(type="chat", text="still in r")  # the join to "elsewhere" did not happen
    assert (await bob.expect("chat"))["from"] == alice.id


async def test_every_documented_field_is_accepted(
    make_server: MakeServer, opened: list[Peer]
) -> None:
    """PROTOCOL.md §5.1: each client message with every field it has (``ref`` included)
    passes the parser; what the server then says is about the values, never the shape. The
    client speaks the newest version (v2 added ``recording`` and ``record``, v3 the ``sfu_*``
    messages)."""
    async with serving(make_server, opened, **GENEROUS) as server:
        zoe = await Peer.connect(server)
        opened.append(zoe)
        await zoe.send(type="hello", versions=[1, 2, 3], name="zoe")
        assert (await zoe.expect("welcome"))["version"] == 3
        for message in FULL_MESSAGES:
            await zoe.send(**message)
            answers = await heard(zoe)
            codes = [m.get("code") for m in answers if m["type"] == "error"]
            assert not SHAPE_ERRORS & set(codes), (message, answers)
            if message["type"] == "join":
                assert "joined" in [m["type"] for m in answers], answers


NOT_JSON: Final = [
    ('{"type": "ping", "ref": NaN}', "NaN"),
    ('{"type": "ping", "ref": Infinity}', "Infinity"),
    ('{"type": "ping", "ref": -Infinity}', "-Infinity"),
    ('{"type": "media", "mic": NaN, "camera": true, "screen": true}', "NaN"),
    ('{"type": "chat", "text": "hi", "x": [1, {"y": -Infinity}]}', "-Infinity"),
    ('{"type": "welcome", "version": NaN}', "NaN"),  # JSON comes before the type
    ('{"type": "chat", "text": "one", "text": "two"}', '"text"'),
    ('{"type": "chat", "type": "chat", "text": "hi"}', '"type"'),
    ('{"type": "chat", "text": "one", "t\\u0065xt": "two"}', '"text"'),  # escaped
    ('{"type": "chat", "text": "one" , "text" : "two"}', '"text"'),  # spaced
    ('{"type": "chat", "text": "a \\"quote\\": here", "text": "two"}', '"text"'),
    (
        '{"type": "signal", "to": "BOB", "description": {"type": "offer", "sdp": "v=0",'
        ' "type": "answer"}}',
        '"type"',
    ),
    ('{"type": "signal", "to": "BOB", "to": "BOB", "reset": {"reason": "rejected"}}', '"to"'),
    ('{"type": "media", "mic": true, "camera": true, "screen": true, "mic": false}', '"mic"'),
]


async def test_json_that_rfc_8259_refuses_or_leaves_ambiguous_is_bad_json(
    server: RunningServer,
    opened: list[Peer],
) -> None:
    """PROTOCOL.md §1.3 "JSON": ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON
    (RFC 8259 §6) and a key repeated in one object (§4: "SHOULD be unique") is refused, at
    any depth and however it is spelled; ``bad_json`` carries no ``ref``."""
    alice, bob = await room(server, opened, "alice", "bob")
    for frame, culprit in NOT_JSON:
        sentence = await refused(alice, frame.replace("BOB", bob.id), "bad_json")
        assert culprit in sentence, (frame, sentence)
    await nobody_heard(bob)
    assert await chat_seqs(alice) == []  # no chat was stored
    # Text that merely looks like these is fine.
    await alice.send_raw('{"type": "chat", "text": "NaN, Infinity, \\"text\\": :)"}')
    assert (await bob.expect("chat"))["text"] == 'NaN, Infinity, "text": :)'


async def test_huge_objects_and_deep_nesting_are_refused_without_an_error_log(
    make_server: MakeServer,
    opened: list[Peer],
) -> None:
    """PROTOCOL.md §1.3: 10,000 keys get ``bad_message`` for the first unknown one (or
    ``bad_json`` when they repeat); nesting 202 levels deep or more is ``bad_json``; no
    recursion error, no ``internal``, nothing at ERROR in the log. (10,000 distinct keys
    take more than 64 KiB, so this server reads frames of up to 256 KiB.)"""
    # Each of these big frames is many strikes (PROTOCOL.md §2.4): not what is tested here.
    big = {"max_frame_bytes": 256 * 1024, "rate_strikes_before_close": 10**9}
    async with serving(make_server, opened, **big) as server:
        alice, bob = await room(server, opened, "alice", "bob")
        limit = server.settings.limits.max_frame_bytes
        many = {f"k{i}": 0 for i in range(10_000)}
        with recording() as errors:
            frame = json.dumps({"type": "chat", "text": "x", **many})
            assert (await refused(alice, frame, "bad_message")).startswith("k0: ")
            frame = json.dumps({"type": "signal", "to": bob.id, "candidate": {**CANDIDATE, **many}})
            assert (await refused(alice, frame, "bad_message")).startswith("candidate.k0: ")
            repeated = '{"type": "ping"' + ', "ref": 1' * 10_000 + "}"
            assert '"ref"' in await refused(alice, repeated, "bad_json")
            for depth, code in (
                (100, "bad_message"),
                (200, "bad_message"),
                (202, "bad_json"),
                (1000, "bad_json"),
                (40_000, "bad_json"),
            ):
                for opener, closer in (("[", "]"), ('{"a":', "}")):
                    inner = opener * (depth - 1) + "1" + closer * (depth - 1)
                    frame = '{"type": "chat", "text": "x", "deep": ' + inner + "}"
                    assert len(frame) < limit
                    await refused(alice, frame, code)
                    await refused(alice, '{"type": "chat", "text": ' + inner + "}", code)
            await alice.alive()
        assert errors.lines() == []
        await nobody_heard(bob)
        assert await chat_seqs(alice) == []


# ------------------------------------------------------------------------------ row 6


def _unmasked(opcode: int, payload: bytes) -> bytes:
    """A client frame without the mask RFC 6455 §5.1 requires of clients."""
    assert len(payload) < 126
    return bytes([0x80 | opcode, len(payload)]) + payload


PING: Final = b'{"type": "ping"}'
# Each case: the bytes a client writes after its hello (RFC 6455 sections in brackets).
ABUSE: Final[list[tuple[str, list[bytes]]]] = [
    ("a continuation frame with no message begun (5.4)", [encode_frame(OP_CONT, PING)]),
    (
        "a new text frame inside an unfinished message (5.4)",
        [encode_frame(OP_TEXT, PING[:5], fin=False), encode_frame(OP_TEXT, PING)],
    ),
    (
        "a binary frame inside an unfinished text message (5.4)",
        [encode_frame(OP_TEXT, PING[:5], fin=False), encode_frame(OP_BINARY, b"x")],
    ),
    ("a fragmented ping (5.5)", [encode_frame(OP_PING, b"abc", fin=False)]),
    ("a fragmented close (5.5)", [encode_frame(OP_CLOSE, struct.pack("!H", 1000), fin=False)]),
    ("a ping of 126 bytes (5.5)", [encode_frame(OP_PING, b"x" * 126)]),
    ("a close frame of one byte (5.5.1)", [encode_frame(OP_CLOSE, b"\x03")]),
    ("a close with code 1005, never sent (7.4.1)", [encode_frame(OP_CLOSE, b"\x03\xed")]),
    *[
        (f"reserved opcode {opcode:#x} (5.2)", [encode_frame(opcode, b"x")])
        for opcode in (0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF)
    ],
    ("RSV2 on a text frame, no extension (5.2)", [encode_frame(OP_TEXT, PING, rsv=0b010)]),
    ("RSV3 on a ping (5.2)", [encode_frame(OP_PING, b"", rsv=0b001)]),
    ("an unmasked text frame (5.1)", [_unmasked(OP_TEXT, PING)]),
    ("an unmasked ping (5.1)", [_unmasked(OP_PING, b"")]),
]


async def _raw_greeted(server: RunningServer, name: str) -> tuple[RawWebSocket, dict[str, Any]]:
    """A raw connection that said hello, and its welcome."""
    ws = await RawWebSocket.open("127.0.0.1", server.port, server.ssl_context)
    ws.text(json.dumps({"type": "hello", "versions": [1], "name": name}))
    welcome = await ws.recv()
    assert welcome is not None
    message: dict[str, Any] = json.loads(welcome)
    assert message["type"] == "welcome"
    return ws, message


async def _closed_by_server(ws: RawWebSocket) -> int | None:
    while await ws.recv() is not None:
        pass
    ws.abandon()
    return ws.close_code


async def test_fragment_and_control_frame_abuse_closes_1002_and_nobody_notices(
    server: RunningServer,
    opened: list[Peer],
) -> None:
    """PROTOCOL.md §1.1 and §6.2: a WebSocket protocol violation fails the connection with
    1002 (RFC 6455 §5.1, §5.2, §5.4, §5.5, §7.4.1); nothing at ERROR in the log; the member's
    place is kept (it resumes); a room next to it keeps working. (RSV1 and compression:
    tests/integration/test_transport.py.)"""
    alice, bob = await room(server, opened, "alice", "bob")
    with recording() as errors:
        for i, (what, frames) in enumerate(ABUSE):
            ws, welcome = await _raw_greeted(server, f"abuser{i}")
            for data in frames:
                ws.write(data)
            assert await _closed_by_server(ws) == PROTOCOL_ERROR, what
            again = await Peer.connect(server)
            opened.append(again)
            back = await again.hello(welcome["name"], resume=welcome["resume_token"])
            assert back["id"] == welcome["id"], what
            await again.close()
        # Allowed (5.4): a ping between the fragments of a message is answered at once, and
        # the message is read whole.
        ws, _ = await _raw_greeted(server, "polite")
        ws.frame(OP_TEXT, b'{"type": "ping", ', fin=False)
        ws.frame(OP_PING, b"between")
        assert await ws._read_frame() == (True, OP_PONG, b"between")
        ws.frame(OP_CONT, b'"ref": "whole"}')
        answer = await ws.recv()
        assert answer is not None and json.loads(answer) == {"type": "pong", "ref": "whole"}
        ws.goodbye()
        assert await _closed_by_server(ws) == 1000
    assert errors.lines() == []
    await nobody_heard(alice, bob)
    await alice.send(type="chat", text="unbothered")
    assert (await bob.expect("chat"))["text"] == "unbothered"


# ------------------------------------------------------------------------------ row 7


async def _relayed(sender: Peer, target: Peer, payload: dict[str, Any]) -> dict[str, Any]:
    await sender.send(type="signal", to=target.id, **payload)
    got = await target.expect("signal")
    assert got["from"] == sender.id
    return got


async def test_sdp_and_candidate_strings_have_limits_of_their_own(
    server: RunningServer,
    opened: list[Peer],
) -> None:
    """PROTOCOL.md §7: ``description.sdp`` at most ``max_sdp_chars`` (32,768) and each
    candidate string at most ``max_candidate_chars`` (1,024); longer is ``bad_message``
    naming the field, with the ``ref``, and the target hears nothing."""
    limits = server.settings.limits
    assert (limits.max_sdp_chars, limits.max_candidate_chars) == (32_768, 1024)
    alice, bob = await room(server, opened, "alice", "bob")
    sdp = "v=0\r\n" + "a" * (limits.max_sdp_chars - 5)
    got = await _relayed(alice, bob, {"description": {"type": "offer", "sdp": sdp}})
    assert got["description"]["sdp"] == sdp
    frame = {
        "type": "signal",
        "to": bob.id,
        "ref": "big",
        "description": {"type": "offer", "sdp": sdp + "a"},
    }
    sentence = await refused(alice, json.dumps(frame), "bad_message", "big")
    assert sentence == f"description.sdp: at most {limits.max_sdp_chars} characters"
    for field in ("candidate", "sdpMid", "usernameFragment"):
        longest = {**CANDIDATE, field: "c" * limits.max_candidate_chars}
        assert (await _relayed(alice, bob, {"candidate": longest}))["candidate"] == longest
        frame = {
            "type": "signal",
            "to": bob.id,
            "ref": field,
            "candidate": {**longest, field: "c" * (limits.max_candidate_chars + 1)},
        }
        sentence = await refused(alice, json.dumps(frame), "bad_message", field)
        assert sentence.startswith(f"candidate.{field}: at most 1024"), sentence
    await nobody_heard(bob)


async def test_the_sdp_and_candidate_limits_are_settings(
    make_server: MakeServer, opened: list[Peer]
) -> None:
    async with serving(make_server, opened, max_sdp_chars=2000, max_candidate_chars=300) as server:
        alice, bob = await room(server, opened, "alice", "bob")
        await _relayed(alice, bob, {"description": {"type": "answer", "sdp": "s" * 2000}})
        frame = {
            "type": "signal",
            "to": bob.id,
            "description": {"type": "answer", "sdp": "s" * 2001},
        }
        await refused(alice, json.dumps(frame), "bad_message")
        await _relayed(alice, bob, {"candidate": {"candidate": "c" * 300}})
        frame = {"type": "signal", "to": bob.id, "candidate": {"candidate": "c" * 301}}
        await refused(alice, json.dumps(frame), "bad_message")
        await nobody_heard(bob)


async def test_a_password_over_the_limit_is_wrong_password_and_changes_nothing(
    server: RunningServer,
    opened: list[Peer],
) -> None:
    """PROTOCOL.md §1.4 and §3.3: a ``join.password`` or ``room_password.password`` over
    ``max_password_chars`` (128 code points) is ``wrong_password``; the room hears nothing
    and keeps its protection as it was."""
    most = server.settings.limits.max_password_chars
    assert most == 128
    host, member = await room(server, opened, "host", "member")
    await refused(
        host,
        json.dumps({"type": "room_password", "password": "p" * (most + 1), "ref": 1}),
        "wrong_password",
        1,
    )
    await nobody_heard(member)
    newcomer = await Peer.greeted(server, "newcomer")
    opened.append(newcomer)
    assert (await newcomer.join("r"))["protected"] is False  # still open
    await newcomer.send(type="leave")
    await newcomer.expect("left")
    await heard(host)
    await heard(member)
    # At the limit it is a password (an emoji is one code point).
    password = "🔑" * most
    await host.send(type="room_password", password=password)
    assert (await host.expect("room_state"))["protected"] is True
    await heard(host)
    await heard(member)
    for tried in (password + "🔑", "p" * 10_000):
        await refused(
            newcomer,
            json.dumps({"type": "join", "room": "r", "password": tried, "ref": "j"}),
            "wrong_password",
            "j",
        )
    await nobody_heard(host, member)
    assert (await newcomer.join("r", password=password))["protected"] is True
    await newcomer.close()


# ------------------------------------------------------------------------------ row 9

# What the server writes into what it relays: a client writing any of them is refused.
STAMPS: Final = ("from", "name", "seq", "ts", "room", "id", "by", "by_name", "sender")


async def test_a_client_cannot_forge_what_the_server_stamps(
    make_server: MakeServer, opened: list[Peer]
) -> None:
    """PROTOCOL.md §1.3 "Field names": a ``from`` (or a ``seq``, ``name``, ``ts``, …) a
    client writes into any message it does not have is ``bad_message`` naming it: nothing
    is relayed, stored or changed."""
    async with serving(make_server, opened, **GENEROUS) as server:
        alice, bob, carol = await room(server, opened, "alice", "bob", "carol")
        for message in FULL_MESSAGES:
            model_fields = _fields_of(CLIENT_TYPES[message["type"]])
            for stamp in STAMPS:
                if stamp in model_fields:
                    continue
                forged = {**message, stamp: carol.id, "ref": f"{message['type']}-{stamp}"}
                if forged["type"] == "signal":
                    forged["to"] = bob.id
                sentence = await refused(alice, json.dumps(forged), "bad_message", forged["ref"])
                assert sentence.startswith(f"{stamp}: "), sentence
        await nobody_heard(bob, carol)
        assert await chat_seqs(alice) == []


async def test_receivers_see_the_servers_stamps(server: RunningServer, opened: list[Peer]) -> None:
    """What the server relays carries the real sender, its name, and the room's own chat
    numbering (PROTOCOL.md §1.3, §4.1–4.3)."""
    alice, bob = await room(server, opened, "alice", "bob")
    await alice.send(type="chat", text="one", id="c-1")
    await alice.send(type="chat", text="two")
    for peer in (alice, bob):
        first, second = await peer.expect("chat"), await peer.expect("chat")
        assert [(m["from"], m["name"], m["seq"]) for m in (first, second)] == [
            (alice.id, "alice", 1),
            (alice.id, "alice", 2),
        ]
        assert first["client_id"] == "c-1" and second["client_id"] is None
    await alice.send(type="media", mic=True, camera=False, screen=True)
    media = await bob.expect("media")
    assert (media["from"], media["mic"], media["screen"]) == (alice.id, True, True)
    await alice.send(type="signal", to=bob.id, candidate=CANDIDATE)
    assert (await bob.expect("signal"))["from"] == alice.id
    await alice.send(type="reaction", reaction="wave")
    for peer in (alice, bob):
        assert (await peer.expect("reaction"))["from"] == alice.id
    await alice.send(type="hand", raised=True)
    for peer in (alice, bob):
        assert (await peer.expect("hands"))["raised"] == [alice.id]
