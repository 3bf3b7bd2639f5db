"""A protocol client for tests: a real WebSocket connection with small helpers."""

from __future__ import annotations

import asyncio
import json
import weakref
from typing import Any, ClassVar

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.protocol import State

from tests.integration.server import RunningServer

TIMEOUT = 5.0


class Peer:
    live: ClassVar[weakref.WeakSet[Peer]] = weakref.WeakSet()  # checked after each test

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        Peer.live.add(self)
        self.id = ""
        self.name = ""
        self.welcome: dict[str, Any] = {}
        self.token = ""  # the newest resume token (welcome, then resume_token messages)

    @classmethod
    async def connect(cls, server: RunningServer, **kwargs: Any) -> Peer:
        """``kwargs`` go to ``websockets.connect``. Frames the test does not read are kept,
        however many (``max_queue=None``): with websockets' default of 16 the socket stops
        being read, and closing it then waits out its 10 s close timeout for a close frame
        it cannot read. A test of a slow reader passes its own ``max_queue``."""
        kwargs.setdefault("max_queue", None)
        ws = await connect(server.ws_url, ssl=server.ssl_context, **kwargs)
        return cls(ws)

    @classmethod
    async def connect_once_freed(
        cls, server: RunningServer, refused_with: int, **kwargs: Any
    ) -> Peer:
        """A connection, once the server has seen the end of one just closed: its close
        handshake completes a moment before the server's own bookkeeping, so a handshake
        refused with ``refused_with`` (429 for an address's cap, 503 for the server's) is
        tried again for up to 5 s."""
        for _ in range(100):
            try:
                return await cls.connect(server, **kwargs)
            except InvalidStatus as refused:
                if refused.response.status_code != refused_with:
                    raise
                await asyncio.sleep(0.05)
        raise AssertionError(f"the server kept refusing the connection with {refused_with}")

    @classmethod
    async def greeted(cls, server: RunningServer, name: str, *, reachable: bool = False) -> Peer:
        """A connection that said hello as ``name``; ``reachable``: callable by that name and
        listed in ``presence`` (as the call page says hello), else shown in rooms only."""
        peer = await cls.connect(server)
        await peer.hello(name, reachable=reachable)
        return peer

    async def hello(
        self, name: str, resume: str | None = None, *, reachable: bool = False
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {} if resume is None else {"resume": resume}
        if reachable:
            extra["reachable"] = True
        await self.send(type="hello", versions=[1], name=name, **extra)
        self.welcome = await self.expect("welcome")
        self.id, self.name = self.welcome["id"], self.welcome["name"]
        self.token = self.welcome["resume_token"]
        return self.welcome

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def recv(self, timeout: float = TIMEOUT, *, tokens: bool = False) -> dict[str, Any]:
        """The next message that is not a server ping (pings are answered) nor, unless
        ``tokens``, a ``resume_token`` (kept in :attr:`token`)."""
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for returns the result and
            # drops a cancellation that arrives as the recv completes, so a reader task
            # cancelled at that moment would read on.
            async with asyncio.timeout(timeout):
                raw = await self.ws.recv()
            message: dict[str, Any] = json.loads(raw)
            if message["type"] == "ping":
                await self.send(type="pong")
                continue
            if message["type"] == "resume_token":
                self.token = message["token"]
                if not tokens:
                    continue
            return message

    async def expect(self, kind: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        message = await self.recv(timeout)
        assert message["type"] == kind, f"expected {kind}, got {message}"
        return message

    async def error(self, code: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        message = await self.expect("error", timeout)
        assert message["code"] == code, message
        return message

    async def silent(self, wait: float = 0.3) -> None:
        """Assert nothing but pings arrives for ``wait`` seconds (in all: pings answered
        meanwhile do not extend it)."""
        try:
            async with asyncio.timeout(wait):
                message = await self.recv(wait + TIMEOUT)
        except TimeoutError:
            return
        raise AssertionError(f"expected nothing, got {message}")

    async def alive(self) -> None:
        """Prove the connection still works: a ping with a fresh ref comes back as pong."""
        ref = f"alive-{id(self)}-{asyncio.get_running_loop().time()}"
        await self.send(type="ping", ref=ref)
        pong = await self.expect("pong")
        assert pong["ref"] == ref

    async def join(self, room: str, **extra: Any) -> dict[str, Any]:
        await self.send(type="join", room=room, **extra)
        return await self.expect("joined")

    async def closed_with(self, timeout: float = TIMEOUT) -> int | None:
        """Wait for the server to close; returns the close code (None: no close frame)."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), timeout)
        except ConnectionClosed as exc:
            return exc.rcvd.code if exc.rcvd else None

    async def close(self) -> None:
        await self.ws.close()

    def open_socket(self) -> bool:
        """Whether the socket is still open, neither closed nor closing."""
        return self.ws.protocol.state is not State.CLOSED and not self.ws.transport.is_closing()
