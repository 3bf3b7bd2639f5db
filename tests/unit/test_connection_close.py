"""How a server connection tells a goodbye from a loss when a write and the peer's close
frame cross (§2.7): the close code the peer sent decides, whichever side noticed first."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from starlette.websockets import WebSocket, WebSocketDisconnect

from salon.core.clock import SystemClock
from salon.core.hub import Hub
from salon.core.place import Place
from salon.protocol import Outgoing
from salon.server.connection import PEER_GONE_SECONDS, Connection


class CrossingSocket:
    """A socket whose peer closed with ``code`` just as the server writes: the write fails as
    Starlette reports it (1006, whatever the peer said) and the close frame waits in the
    receive queue, as uvicorn queues it before it refuses writes. ``code`` None: a peer that
    vanished without any event for the reader."""

    def __init__(self, code: int | None) -> None:
        self.code = code
        self.write_failed = asyncio.Event()

    async def send_text(self, text: str) -> None:
        self.write_failed.set()
        raise WebSocketDisconnect(code=1006)

    async def close(self, code: int, reason: str) -> None:
        raise WebSocketDisconnect(code=1006)

    async def receive(self) -> dict[str, Any]:
        await self.write_failed.wait()
        if self.code is None:
            await asyncio.Event().wait()  # never anything to read
        return {"type": "websocket.disconnect", "code": self.code}


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


async def run_crossing(code: int | None) -> tuple[list[bool], float]:
    socket = CrossingSocket(code)
    connection = Connection(cast(WebSocket, socket), outbox_limit=10, now=0.0)
    member = Member()
    connection.send(Outgoing.encoded('{"type":"pong"}'))
    loop = asyncio.get_running_loop()
    began = loop.time()
    await connection.run(member, SystemClock(), 1000, lambda _: None, lambda _: None)
    return member.ended, loop.time() - began


async def test_a_goodbye_that_crosses_a_failed_write_is_still_a_goodbye() -> None:
    ended, took = await run_crossing(1000)
    assert ended == [True]
    assert took < PEER_GONE_SECONDS


async def test_a_loss_that_crosses_a_failed_write_is_a_loss() -> None:
    ended, _ = await run_crossing(1006)
    assert ended == [False]


async def test_a_reader_with_nothing_to_read_stops_after_the_write_failed() -> None:
    ended, took = await run_crossing(None)
    assert ended == [False]
    assert took >= PEER_GONE_SECONDS
