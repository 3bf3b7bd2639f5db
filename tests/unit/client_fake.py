"""An in-memory stand-in for the Salon server's WebSocket, for the SDK's unit tests.

``FakeServer.connector`` is given to :class:`salon.client.Client` in place of a real
WebSocket. Each connection is a :class:`FakeSocket`: what the client sends is parsed and
recorded (and may be answered by the test), what the test pushes is what the client reads.
``hello`` is answered as the server would (``welcome``, a resume, or ``resume_failed``);
everything else is up to the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from salon.client.transport import ConnectFailed, Transport, TransportClosed
from salon.protocol import ErrorCode, encode
from salon.protocol.messages import (
    ChatDelivered,
    Error,
    IceServer,
    Joined,
    Limits,
    MediaState,
    MemberInfo,
    Resumed,
    ServerMessage,
    Welcome,
)

Frame = dict[str, Any]


def limits(**changes: float) -> Limits:
    values: dict[str, Any] = {
        "max_frame_bytes": 65536,
        "max_name_chars": 64,
        "max_chat_chars": 2000,
        "max_room_members": 8,
        "rate_per_second": 50.0,
        "rate_burst": 200,
        "ping_after_seconds": 20.0,
        "dead_after_seconds": 45.0,
        "ring_seconds": 30.0,
        "resume_grace_seconds": 60.0,
    }
    values.update(changes)
    return Limits(**values)


class FakeSocket:
    """One connection: the client's side is the :class:`Transport` protocol."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.inbox: asyncio.Queue[str | TransportClosed] = asyncio.Queue()
        self.frames: list[Frame] = []
        self.closed: int | None = None  # the close code, once closed by either side
        self.closed_by_client: int | None = None
        self.member: str | None = None  # the member id greeted on it

    # Transport ---------------------------------------------------------------

    async def send(self, text: str) -> None:
        if self.closed is not None:
            raise TransportClosed(self.closed)
        frame = json.loads(text)
        self.frames.append(frame)
        self.server.received(self, frame)

    async def recv(self) -> str:
        item = await self.inbox.get()
        if isinstance(item, TransportClosed):
            self.inbox.put_nowait(item)
            raise item
        return item

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.closed is None:
            self.closed = self.closed_by_client = code
            self.inbox.put_nowait(TransportClosed(code, reason))

    def abort(self) -> None:
        if self.closed is None:
            self.closed = 1006
            self.inbox.put_nowait(TransportClosed(1006))

    # The server's side ---------------------------------------------------------

    def push(self, message: ServerMessage | Frame) -> None:
        """Send the client one message (a model, or raw JSON fields)."""
        text = encode(message) if isinstance(message, BaseModel) else json.dumps(message)
        self.inbox.put_nowait(text)

    def cut(self, code: int = 1006) -> None:
        """The connection ends from the server's side (1006: no close frame)."""
        if self.closed is None:
            self.closed = code
            self.inbox.put_nowait(TransportClosed(code))


Reply = Callable[[FakeSocket, Frame], None]


class FakeServer:
    """Hands out :class:`FakeSocket`\\ s and answers ``hello``."""

    def __init__(self, *, version: int = 2, **limit_changes: float) -> None:
        self.version = version
        self.limits = limits(**limit_changes)
        self.sockets: list[FakeSocket] = []
        self.refuse = 0  # connection attempts to refuse (ConnectFailed) before accepting
        self.retry_after: float | None = None  # the refusals' Retry-After (429, 503)
        self.resume_ok = True
        self.missed = False
        self.room: str | None = None  # the room a resumed place is in
        self.ice_servers: list[IceServer] = []  # welcome.ice_servers
        self.replies: dict[str, Reply] = {}
        self.attempts = 0
        self.attempt_times: list[float] = []  # time.monotonic() of each connection attempt
        self._members = 0
        self._changed = asyncio.Event()

    async def connector(self, url: str, ssl_context: ssl.SSLContext | None) -> Transport:
        self.attempts += 1
        self.attempt_times.append(time.monotonic())
        if self.refuse > 0:
            self.refuse -= 1
            raise ConnectFailed("refused by the fake server", self.retry_after)
        socket = FakeSocket(self)
        self.sockets.append(socket)
        self._changed.set()
        return socket

    @property
    def socket(self) -> FakeSocket:
        """The newest connection."""
        return self.sockets[-1]

    def on(self, kind: str, reply: Reply) -> None:
        """Answer client messages of ``type`` ``kind`` with ``reply(socket, frame)``."""
        self.replies[kind] = reply

    def received(self, socket: FakeSocket, frame: Frame) -> None:
        kind = frame.get("type", "")
        if kind == "hello":
            self._hello(socket, frame)
        elif kind in self.replies:
            self.replies[kind](socket, frame)
        self._changed.set()

    def _hello(self, socket: FakeSocket, frame: Frame) -> None:
        if "hello" in self.replies:
            self.replies["hello"](socket, frame)
            return
        token = frame.get("resume")
        if token is not None and not self.resume_ok:
            socket.push(Error(code=ErrorCode.RESUME_FAILED, message="the place ended"))
            return
        if token is not None:
            member = token.split(":")[0]
            resumed = Resumed(room=self.room, call=None, missed=self.missed)
        else:
            self._members += 1
            member, resumed = f"m{self._members}", None
        socket.member = member
        socket.push(self.welcome(member, frame["name"], max(frame["versions"]), resumed))

    def welcome(self, member: str, name: str, offered: int, resumed: Resumed | None) -> Welcome:
        return Welcome(
            version=min(offered, self.version),
            id=member,
            name=name.strip(),
            ice_servers=self.ice_servers,
            limits=self.limits,
            resume_token=f"{member}:{len(self.sockets)}",
            resumed=resumed,
        )

    def frames(self, kind: str | None = None) -> list[Frame]:
        """Every frame the client sent, over all connections, oldest first."""
        return [f for s in self.sockets for f in s.frames if kind is None or f["type"] == kind]

    async def wait(self, condition: Callable[[], Any], what: str, timeout: float = 5) -> Any:
        """Wait until ``condition()`` is truthy, checked after each frame or connection and
        at least every 50 ms; fails saying ``what`` after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                while not (value := condition()):
                    self._changed.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(0.05):
                            await self._changed.wait()
                return value
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None

    async def frame(self, kind: str, timeout: float = 5, since: int = 0) -> Frame:
        """The first frame of ``kind`` the client sent (after the first ``since`` of that
        kind)."""
        found: list[Frame] = await self.wait(
            lambda: self.frames(kind)[since:], f"a {kind} frame", timeout
        )
        return found[0]


def member(member_id: str, name: str = "", *, polite: bool = True) -> MemberInfo:
    """A member as the server lists it; polite (this side makes no offer) unless said."""
    return MemberInfo(id=member_id, name=name or member_id, polite=polite, media=MediaState())


def joined(
    room: str,
    members: list[MemberInfo] | None = None,
    *,
    last_seq: int = 0,
    private: bool = False,
) -> Joined:
    return Joined(
        room=room,
        private=private,
        members=members or [],
        history=[],
        last_seq=last_seq,
        hosts=[],
        locked=False,
        lobby=False,
        protected=False,
        hands=[],
    )


def chat(
    room: str, seq: int, text: str, *, sender: str = "m9", client_id: str | None = None
) -> ChatDelivered:
    return ChatDelivered(
        room=room,
        id=f"c{seq}",
        seq=seq,
        ts=1_700_000_000_000 + seq,
        sender=sender,
        name=sender,
        text=text,
        client_id=client_id,
    )


def seat(members: list[MemberInfo] | None = None, *, last_seq: int = 0) -> Reply:
    """A ``join`` reply: the client is seated in the room it asked for, with ``members``."""

    def reply(socket: FakeSocket, frame: Frame) -> None:
        socket.server.room = frame["room"]
        socket.push(joined(frame["room"], members, last_seq=last_seq))

    return reply
