"""Thousands of generated frames at one live connection; afterwards everyone is still served.

Each frame is followed by a ``ping`` with a fresh ``ref``: the matching ``pong`` proves the
connection survived that frame. No frame may produce an ``internal`` error, close the
connection, or make the server log an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import ClientConnection, connect

from tests.integration.server import RunningServer, running_server
from tests.loopthread import LoopThread

FRAMES_WANTED = 2000
sent: list[int] = []  # one entry a frame, across hypothesis examples

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)

TEMPLATES: list[dict[str, Any]] = [
    {"type": "hello", "versions": [1], "name": "someone"},
    {
        "type": "join",
        "room": "fuzz",
        "password": None,
        "media": {"mic": True, "camera": False, "screen": False},
    },
    {"type": "leave"},
    {"type": "signal", "to": "abc", "description": {"type": "offer", "sdp": "v=0"}},
    {
        "type": "signal",
        "to": "abc",
        "candidate": {"candidate": "c", "sdpMid": "0", "sdpMLineIndex": 0},
    },
    {"type": "media", "mic": True, "camera": True, "screen": False},
    {"type": "chat", "text": "hello"},
    {"type": "history", "since": 0},
    {"type": "call", "name": "nobody"},
    {"type": "call_accept", "call": "x"},
    {"type": "call_decline", "call": "x"},
    {"type": "call_cancel", "call": "x"},
    {"type": "presence_watch", "watch": True},
    {"type": "pong"},
    {"type": "hand", "raised": True},
    {"type": "room_lock", "locked": True},
    {"type": "room_password", "password": "pw"},
    {"type": "room_lobby", "enabled": True},
    {"type": "lobby_admit", "id": "abc"},
    {"type": "lobby_deny", "id": "abc"},
    {"type": "make_host", "id": "abc"},
    {"type": "remove", "id": "abc"},
    {"type": "mute", "id": "abc", "kind": "mic"},
    {"type": "lower_hand", "id": "abc"},
    {"type": "end_meeting"},
]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    message = dict(draw(st.sampled_from(TEMPLATES)))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "delete", "add", "retype"]))
        keys = sorted(message)
        if action == "replace" and keys:
            message[draw(st.sampled_from(keys))] = draw(json_values)
        elif action == "delete" and keys:
            message.pop(draw(st.sampled_from(keys)))
        elif action == "add":
            message[draw(st.text(max_size=8))] = draw(json_values)
        else:
            message["type"] = draw(json_scalars)
    return json.dumps(message)


@st.composite
def huge(draw: st.DrawFn) -> str:
    size = draw(st.integers(1_000, 60_000))
    template = dict(draw(st.sampled_from(TEMPLATES)))
    field = draw(st.sampled_from(["text", "name", "room", "to", "call", "ref", "sdp", "extra"]))
    template[field] = "x" * size
    return json.dumps(template)


@st.composite
def nested(draw: st.DrawFn) -> str:
    depth = draw(
        st.integers(50, 9_000)
    )  # stays under the 64 KiB frame limit (1009 is tested apart)
    inner = draw(st.sampled_from(["[", '{"a":']))
    closing = "]" if inner == "[" else "}"
    body = inner * depth + "1" + closing * depth
    return draw(st.sampled_from([body, '{"type":"chat","text":' + body + "}"]))


frames = st.one_of(
    json_values.map(json.dumps),
    mutated(),
    mutated(),
    huge(),
    nested(),
    st.text(max_size=200),
    st.binary(max_size=200),
)


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def errors() -> Iterator[ErrorLog]:
    handler = ErrorLog()
    loggers = [logging.getLogger(name) for name in ("salon", "uvicorn.error", "uvicorn")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


@pytest.fixture(scope="module")
def fuzz_server(
    tmp_path_factory: pytest.TempPathFactory, errors: ErrorLog
) -> Iterator[RunningServer]:
    data: Path = tmp_path_factory.mktemp("fuzz")
    # Rates are raised so the generator is not throttled: rate limiting has tests of its own.
    # The fuzz sends thousands of frames the server cannot read: no closing for them here.
    limits = {"rate_per_second": 1e6, "rate_burst": 1_000_000, "rate_strikes_before_close": 10**9}
    with running_server(data, **limits) as server:
        yield server


class Socket:
    """websockets' asyncio client driven from the test's thread (tests/loopthread.py says
    why not its threaded client)."""

    def __init__(self, loop: LoopThread, ws: ClientConnection) -> None:
        self._loop, self._ws = loop, ws

    def send(self, frame: str | bytes) -> None:
        self._loop.run(self._ws.send(frame), 10)

    def recv(self, timeout: float) -> str | bytes:
        return self._loop.run(asyncio.wait_for(self._ws.recv(), timeout), timeout + 5)


@contextlib.contextmanager
def open_peer(server: RunningServer, name: str) -> Iterator[tuple[Socket, str]]:
    # ping_interval=None: websockets' keepalive draws from the global `random`, which
    # hypothesis rightly flags when it happens mid-generation; the protocol pings instead.
    loop = LoopThread()
    try:
        ws = loop.run(
            connect(server.ws_url, ssl=server.ssl_context, max_size=2**20, ping_interval=None), 10
        )
        try:
            peer = Socket(loop, ws)
            peer.send(json.dumps({"type": "hello", "versions": [1], "name": name}))
            welcome = json.loads(peer.recv(timeout=5))
            assert welcome["type"] == "welcome"
            yield peer, welcome["id"]
        finally:
            loop.run(ws.close(), 10)
    finally:
        loop.stop()


@pytest.fixture(scope="module")
def target(fuzz_server: RunningServer) -> Iterator[Socket]:
    with open_peer(fuzz_server, "fuzzed") as (ws, _):
        yield ws


def still_alive(ws: Socket, n: int) -> list[dict[str, Any]]:
    """Ping with ref n; return what arrived before the pong. Fails on internal errors."""
    ws.send(json.dumps({"type": "ping", "ref": n}))
    seen: list[dict[str, Any]] = []
    while True:
        message = json.loads(ws.recv(timeout=10))
        assert message.get("code") != "internal", message
        if message["type"] == "pong" and message["ref"] == n:
            return seen
        seen.append(message)


@settings(
    max_examples=FRAMES_WANTED + 100,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(frame=frames)
def test_generated_frames_never_break_the_connection(target: Socket, frame: str | bytes) -> None:
    target.send(frame)
    sent.append(1)
    replies = still_alive(target, len(sent))
    for reply in replies:
        if reply["type"] == "error":
            assert reply["code"] in {
                "bad_json",
                "bad_message",
                "unknown_type",
                "binary_unsupported",
                "already_greeted",
                "not_joined",
                "already_joined",
                "invalid_name",
                "invalid_room",
                "no_such_room",
                "room_full",
                "wrong_password",
                "no_such_member",
                "invalid_text",
                "not_online",
                "self_call",
                "no_such_call",
                "in_call",
                "not_host",
                "room_locked",
            }, reply


def test_after_the_fuzz_everyone_is_still_served(
    fuzz_server: RunningServer, target: Socket, errors: ErrorLog
) -> None:
    assert len(sent) >= FRAMES_WANTED
    still_alive(target, -1)
    with (
        open_peer(fuzz_server, "after-alice") as (alice, alice_id),
        open_peer(fuzz_server, "after-bob") as (bob, bob_id),
    ):
        two_members_still_talk(alice, alice_id, bob, bob_id)
    assert errors.records == [], [r.getMessage() for r in errors.records]


def _next(ws: Socket) -> dict[str, Any]:
    """The next message that is not a ``resume_token``."""
    while True:
        message: dict[str, Any] = json.loads(ws.recv(timeout=5))
        if message["type"] != "resume_token":
            return message


def two_members_still_talk(alice: Socket, alice_id: str, bob: Socket, bob_id: str) -> None:
    alice.send(json.dumps({"type": "join", "room": "after"}))
    assert _next(alice)["type"] == "joined"
    bob.send(json.dumps({"type": "join", "room": "after"}))
    assert _next(bob)["members"][0]["id"] == alice_id
    assert _next(alice)["member"]["id"] == bob_id
    offer = {"type": "offer", "sdp": "v=0"}
    bob.send(json.dumps({"type": "signal", "to": alice_id, "description": offer}))
    relayed = _next(alice)
    assert relayed["from"] == bob_id and relayed["description"] == offer
    alice.send(json.dumps({"type": "chat", "text": "post-fuzz"}))
    for ws in (alice, bob):
        assert _next(ws)["text"] == "post-fuzz"
