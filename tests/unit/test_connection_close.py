"""How a server connection tells a goodbye from a loss when a write and the peer's close
frame cross (§2.7): the close code the peer sent decides, whichever side noticed first. The
WebSocket protocol notes that code in the ASGI scope as the frame arrives
(salon.server.runner.SansIOProtocol.handle_close)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from starlette.websockets import WebSocket, WebSocketDisconnect

from salon.core.clock import SystemClock
from salon.core.hub import Hub
from salon.core.place import Place
from salon.core.settings import LimitSettings
from salon.protocol import CloseCode, Outgoing
from salon.server import connection as connection_module
from salon.server.connection import BURST_MESSAGES, CLOSE_CODE_KEY, FRAMES_KEY, Connection


class CrossingSocket:
    """A socket whose peer closed with ``code`` just as the server writes: the write fails as
    Starlette reports it (1006, whatever the peer said), and the protocol noted the code in
    the scope (None: a peer that vanished without a close frame). The reader never gets to
    read the close: the failed write stops it first."""

    def __init__(self, code: int | None) -> None:
        self.scope: dict[str, Any] = {} if code is None else {CLOSE_CODE_KEY: code}
        self.write_failed = asyncio.Event()

    async def send_text(self, text: str) -> None:
        self.write_failed.set()
        raise WebSocketDisconnect(code=1006)

    async def close(self, code: int, reason: str) -> None:
        raise WebSocketDisconnect(code=1006)

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()  # stopped before it reads anything
        raise AssertionError("unreachable")


class Member:
    """The session side: records how the connection ended."""

    def __init__(self) -> None:
        self.ended: list[bool] = []

    @property
    def hub(self) -> Hub:
        raise AssertionError("not used")

    @property
    def version(self) -> int | None:
        return 2

    @property
    def place(self) -> Place | None:
        return None

    async def receive(self, frame: str | bytes) -> None:
        raise AssertionError("nothing is read")

    def closed(
        self, *, goodbye: bool = True, unsent: list[Outgoing] | None = None, dropped: bool = False
    ) -> None:
        self.ended.append(goodbye)

    def silence(self) -> None:
        pass


async def run_crossing(code: int | None) -> list[bool]:
    socket = CrossingSocket(code)
    connection = Connection(cast(WebSocket, socket), outbox_limit=10, now=0.0)
    member = Member()
    connection.send(Outgoing.encoded('{"type":"pong"}'))
    await connection.run(member, SystemClock(), 1000, lambda _: None, lambda _: None)
    assert socket.write_failed.is_set()
    return member.ended


async def test_a_goodbye_that_crosses_a_failed_write_is_still_a_goodbye() -> None:
    assert await run_crossing(1000) == [True]
    assert await run_crossing(1001) == [True]


async def test_a_loss_that_crosses_a_failed_write_is_a_loss() -> None:
    assert await run_crossing(4000) == [False]  # a close frame, but not a goodbye
    assert await run_crossing(None) == [False]  # no close frame at all


class StalledSocket:
    """A socket whose peer stopped reading: the first write never completes until
    ``unblock``; what was written, and the close frame, are recorded."""

    def __init__(self) -> None:
        self.scope: dict[str, Any] = {}
        self.writing = asyncio.Event()
        self.unblock = asyncio.Event()
        self.written: list[str] = []
        self.closed_with: int | None = None

    async def send_text(self, text: str) -> None:
        self.writing.set()
        await self.unblock.wait()
        self.written.append(text)

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = code

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()  # the reader is stopped once the close frame is sent
        raise AssertionError("unreachable")


async def writing_the_first_of_three() -> tuple[
    StalledSocket, Connection, list[str], asyncio.Task[None]
]:
    """A running connection with three messages queued, stuck writing the first."""
    socket = StalledSocket()
    connection = Connection(cast(WebSocket, socket), outbox_limit=10, now=0.0)
    texts = [f'{{"type":"pong","ref":{n}}}' for n in range(3)]
    for text in texts:
        connection.send(Outgoing.encoded(text))
    run = asyncio.create_task(
        connection.run(Member(), SystemClock(), 1000, lambda _: None, lambda _: None)
    )
    await socket.writing.wait()
    return socket, connection, texts, run


async def test_a_replaced_connection_gives_up_what_it_has_not_begun_to_write() -> None:
    """§2.8: a newer connection takes the place; what the old one queued and did not begin
    to write is handed over in order; the message being written stays with the old one (it
    may be half in the socket: sending it again could deliver it twice)."""
    socket, connection, texts, run = await writing_the_first_of_three()
    unsent, dropped = connection.replace(CloseCode.REPLACED, "newer")
    assert [out.text for out in unsent] == texts[1:]
    assert dropped is False
    connection.send(Outgoing.encoded('{"type":"pong"}'))  # after the close: not written
    socket.unblock.set()
    await run
    assert socket.written == texts[:1]
    assert socket.closed_with == CloseCode.REPLACED


async def test_a_dead_peers_queue_goes_to_the_connection_that_replaces_it() -> None:
    """4004 (nothing heard) takes the queue off for the member's place; a resume that comes
    before the reader ended gets it all the same (from ``replace``)."""
    socket, connection, texts, run = await writing_the_first_of_three()
    limits = LimitSettings()
    connection.tick(limits.dead_after_seconds + 1, limits)
    assert connection.closing
    unsent, dropped = connection.replace(CloseCode.REPLACED, "newer")
    assert ([out.text for out in unsent], dropped) == (texts[1:], False)
    socket.unblock.set()
    await run
    assert socket.written == texts[:1]


class Recorder(Member):
    """Records what the connection left for the place."""

    def __init__(self) -> None:
        super().__init__()
        self.left: list[tuple[list[str], bool]] = []

    def closed(
        self, *, goodbye: bool = True, unsent: list[Outgoing] | None = None, dropped: bool = False
    ) -> None:
        self.left.append(([out.text for out in unsent or []], dropped))


class TooBigSocket(StalledSocket):
    """A stalled socket whose peer then sends a frame over the limit (the reader closes)."""

    async def receive(self) -> dict[str, Any]:
        await self.writing.wait()
        return {"type": "websocket.receive", "text": "x" * 2000}


async def test_what_a_closing_connection_could_not_write_in_its_grace_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reader closes (1009) while the writer is stuck behind a full socket: once the
    grace is over, what was not begun is the place's to keep, not lost."""
    monkeypatch.setattr(connection_module, "CLOSE_GRACE_SECONDS", 0.05)
    socket = TooBigSocket()
    connection = Connection(cast(WebSocket, socket), outbox_limit=10, now=0.0)
    texts = [f'{{"type":"pong","ref":{n}}}' for n in range(3)]
    for text in texts:
        connection.send(Outgoing.encoded(text))
    member = Recorder()
    await connection.run(member, SystemClock(), 1000, lambda _: None, lambda _: None)
    assert member.left == [(texts[1:], False)]


class BurstSocket(StalledSocket):
    """A socket whose WebSocket protocol offers its own frame writer (as salon.server.runner's
    does, the ``salon.frames`` scope extension): each write is recorded as one burst; the
    first waits in ``ready`` until ``unblock`` (a full send buffer); ``gone`` makes writes
    fail as a closed connection's do."""

    def __init__(self) -> None:
        super().__init__()
        self.scope = {"extensions": {FRAMES_KEY: self}}
        self.bursts: list[list[str]] = []
        self.gone = False

    async def ready(self) -> None:
        self.writing.set()
        await self.unblock.wait()

    def write_texts(self, texts: list[str]) -> None:
        if self.gone:
            raise OSError("the client is gone")
        self.bursts.append(list(texts))


def queued(connection: Connection, count: int) -> list[str]:
    texts = [f'{{"type":"pong","ref":"{n}"}}' for n in range(count)]
    for text in texts:
        connection.send(Outgoing.encoded(text))
    return texts


async def test_what_is_queued_goes_out_in_bursts_in_order() -> None:
    """With the protocol's own writer, everything queued goes to the socket in as few writes
    as the burst bounds allow, in order, and leaves the outbox."""
    socket = BurstSocket()
    socket.unblock.set()
    connection = Connection(cast(WebSocket, socket), outbox_limit=200, now=0.0)
    texts = queued(connection, BURST_MESSAGES + 6)
    connection.close(CloseCode.NORMAL, "")
    await connection.run(Recorder(), SystemClock(), 1000, lambda _: None, lambda _: None)
    assert [len(burst) for burst in socket.bursts] == [BURST_MESSAGES, 6]
    assert [text for burst in socket.bursts for text in burst] == texts
    assert socket.closed_with == CloseCode.NORMAL


async def test_a_replaced_connection_waiting_for_room_in_its_socket_hands_over_everything() -> None:
    """§2.8 with bursts: waiting for room in the send buffer, nothing has been handed to the
    socket, so a newer connection gets every queued message and the old one writes none."""
    socket = BurstSocket()
    connection = Connection(cast(WebSocket, socket), outbox_limit=10, now=0.0)
    texts = queued(connection, 3)
    run = asyncio.create_task(
        connection.run(Member(), SystemClock(), 1000, lambda _: None, lambda _: None)
    )
    await socket.writing.wait()
    unsent, dropped = connection.replace(CloseCode.REPLACED, "newer")
    assert ([out.text for out in unsent], dropped) == (texts, False)
    socket.unblock.set()
    await run
    assert socket.bursts == []
    assert socket.closed_with == CloseCode.REPLACED


async def test_a_burst_the_socket_refuses_stays_for_the_place() -> None:
    """A write into a connection that is gone fails whole: every message of the burst is
    still the place's to keep (sent again on resume), none is lost."""
    socket = BurstSocket()
    socket.unblock.set()
    socket.gone = True
    connection = Connection(cast(WebSocket, socket), outbox_limit=10, now=0.0)
    texts = queued(connection, 3)
    member = Recorder()
    await connection.run(member, SystemClock(), 1000, lambda _: None, lambda _: None)
    assert member.left == [(texts, False)]


async def test_what_a_closing_connection_could_not_write_to_a_gone_peer_is_kept() -> None:
    """The server closes (here: a normal close with messages queued) and the peer turns out
    to be gone: the write fails, and what was not written is the place's to keep, not lost."""
    socket = BurstSocket()
    socket.unblock.set()
    socket.gone = True
    connection = Connection(cast(WebSocket, socket), outbox_limit=10, now=0.0)
    texts = queued(connection, 3)
    connection.close(CloseCode.SERVICE_RESTART, "going")
    member = Recorder()
    await connection.run(member, SystemClock(), 1000, lambda _: None, lambda _: None)
    assert member.left == [(texts, False)]
