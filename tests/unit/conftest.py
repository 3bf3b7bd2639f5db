"""The domain core without a network: fake transports, a fake clock and in-memory chat."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from salon.core.clock import FakeClock
from salon.core.hub import Hub
from salon.core.passwords import MemoryRoomKeys
from salon.core.session import Session
from salon.core.settings import LimitSettings
from salon.protocol import CloseCode, Outgoing, decode_server
from salon.protocol.messages import Error, IceServer, ResumeTokenIssued, ServerMessage, Welcome
from salon.store.chat import MemoryChatRepository

M = TypeVar("M")

ICE = [IceServer(urls=["stun:stun.example.org:3478"])]


class FakeTransport:
    """Records what a session pushes and how it was asked to close. Every message is also
    encoded and decoded again, so each test checks the wire form as a client would read it."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.closes: list[tuple[CloseCode, str]] = []
        self.on_send: Callable[[Outgoing], None] | None = None
        # False: a socket that has not begun to write anything yet (the writer never ran), so
        # a ``replace`` hands over everything it was sent
        self.writes = True

    def send(self, out: Outgoing) -> None:
        if self.closes:
            return  # as a real connection: nothing more after the close (PROTOCOL.md §2.7)
        if self.on_send is not None:
            self.on_send(out)
        assert decode_server(out.text) == out.message, out.text
        self.sent.append(out)

    def close(self, code: CloseCode, reason: str) -> None:
        if not self.closes:  # as a real connection, which closes once (the first reason)
            self.closes.append((code, reason))

    def replace(self, code: CloseCode, reason: str) -> tuple[list[Outgoing], bool]:
        self.close(code, reason)
        if not self.writes:
            return list(self.sent), False
        return [], False  # everything sent was written at once


@dataclass
class Client:
    """A session seen from its side of the wire: send frames, read what came back."""

    session: Session
    transport: FakeTransport
    welcome: Welcome | None = None
    _read: int = field(default=0)

    @property
    def id(self) -> str:
        return self.session.id

    @property
    def name(self) -> str:
        return self.session.name

    async def send(self, **fields: Any) -> None:
        await self.session.receive(json.dumps(fields))

    token: str = ""  # the newest resume token received

    def _new(self, tokens: bool) -> list[Outgoing]:
        new = self.transport.sent[self._read :]
        self._read = len(self.transport.sent)
        for out in new:
            if isinstance(out.message, ResumeTokenIssued):
                self.token = out.message.token
            elif isinstance(out.message, Welcome):
                self.token = out.message.resume_token
        if tokens:
            return new
        return [out for out in new if not isinstance(out.message, ResumeTokenIssued)]

    def take(self, *, tokens: bool = False) -> list[ServerMessage]:
        """Messages received since the last ``take``; ``resume_token`` messages only with
        ``tokens`` (the newest is kept in :attr:`token` either way)."""
        return [out.message for out in self._new(tokens)]

    def take_wire(self) -> list[dict[str, Any]]:
        """Like :meth:`take`, as the JSON a client would read."""
        return [json.loads(out.text) for out in self._new(False)]

    def take_one(self, kind: type[M]) -> M:
        """Exactly one new message, of type ``kind``."""
        got = self.take()
        assert len(got) == 1, f"expected one {kind.__name__}, got {_brief(got)}"
        assert isinstance(got[0], kind), f"expected {kind.__name__}, got {_brief(got)}"
        return got[0]

    def take_error(self) -> Error:
        return self.take_one(Error)

    def closed(self, *, goodbye: bool = True) -> None:
        """The connection ends: with a goodbye (close 1000/1001), or lost."""
        self.session.closed(goodbye=goodbye)


def _brief(messages: list[ServerMessage]) -> str:
    return ", ".join(repr(m)[:200] for m in messages) or "nothing"


@dataclass
class World:
    """One hub with its clock and chat store, and the clients connected to it."""

    limits: LimitSettings
    clock: FakeClock
    chats: MemoryChatRepository
    hub: Hub

    def open(self) -> Client:
        """A connection that has not said hello yet."""
        transport = FakeTransport()
        return Client(Session(self.hub, transport, lambda member_id: list(ICE)), transport)

    async def connect(self, name: str = "alice", *, reachable: bool = False) -> Client:
        """A greeted connection; its welcome is kept and its transcript starts empty.
        ``reachable``: its name is callable and listed in ``presence`` (hello.reachable)."""
        client = self.open()
        await client.send(type="hello", versions=[1], name=name, reachable=reachable)
        client.welcome = client.take_one(Welcome)
        return client

    async def connect_in(self, room: str, *names: str, **join: Any) -> list[Client]:
        """Greeted clients joined to ``room`` in order, with transcripts emptied."""
        clients = [await self.connect(name) for name in names]
        for client in clients:
            await client.send(type="join", room=room, **join)
        for client in clients:
            client.take()
        return clients


@pytest.fixture
def make_world() -> Callable[..., World]:
    """``make_world(max_room_members=3)``: a hub with some limits changed."""

    def make(**limits: Any) -> World:
        settings = LimitSettings(**limits)
        clock = FakeClock()
        chats = MemoryChatRepository()
        return World(settings, clock, chats, Hub(settings, clock, chats, MemoryRoomKeys()))

    return make


@pytest.fixture
def world(make_world: Callable[..., World]) -> World:
    return make_world()
