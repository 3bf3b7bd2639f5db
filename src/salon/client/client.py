"""The Salon client: one signaling connection, one room or call, one peer per member (or,
in a room on the SFU, one connection that sends and one that receives everyone).

docs/PROTOCOL.md is the contract; sections are cited where they are implemented. The
connection layer (:mod:`salon.client.connection`) keeps the socket and resumes it; this
module keeps the room (members, peers, chat position) and offers the requests an application
makes (join, chat, calls), each answered by the message that completes it or by the
``error`` that names its ``ref``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl as _ssl
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Final, TypeVar, cast

from aiortc import MediaStreamTrack, RTCConfiguration, RTCIceServer
from pydantic import BaseModel

from salon.client.calls import DirectCalls
from salon.client.connection import Connection
from salon.client.errors import ClientError, ConnectionLost, ServerError
from salon.client.exchange import REQUEST_SECONDS, error_for
from salon.client.media import LocalMedia
from salon.client.peer import Peer, SignalPart
from salon.client.room import RoomState
from salon.client.sfu import SfuMedia, SfuRemote
from salon.client.transport import Connector, connect_websocket
from salon.protocol import ErrorCode
from salon.protocol.messages import (
    Chat,
    ChatDelivered,
    DescriptionRejected,
    Error,
    Hello,
    History,
    IceCandidate,
    IceRefresh,
    IceServer,
    IceServers,
    Join,
    Joined,
    Leave,
    Left,
    LobbyDenied,
    LobbyWaiting,
    MediaChanged,
    MediaState,
    MemberInfo,
    MemberJoined,
    MemberLeft,
    MemberResumed,
    Muted,
    PeerReset,
    RoomMedia,
    ServerMessage,
    SessionDescription,
    SfuAnswer,
    SfuOffer,
    Signal,
    SignalRelay,
    Unreachable,
    Welcome,
)
from salon.protocol.messages import (
    RoomState as RoomStateMessage,
)

logger = logging.getLogger("salon.client")

M = TypeVar("M", bound=BaseModel)

Handler = Callable[[M], Awaitable[None] | None]
Remote = Peer | SfuRemote
"""A remote member's media: a :class:`Peer` in a mesh, an :class:`SfuRemote` in a room on the
SFU. Both have ``id``, ``member``, ``closed``, ``remote_tracks`` and ``pc``."""

TrackHandler = Callable[[Remote, MediaStreamTrack], Awaitable[None] | None]
PeerHandler = Callable[[Remote], Awaitable[None] | None]

VERSIONS: tuple[int, ...] = (1, 2)
"""The protocol versions this SDK offers in ``hello.versions`` (docs/PROTOCOL.md §1.2)."""

SFU_VERSIONS: tuple[int, ...] = (1, 2, 3)
"""Offered by a client made with ``sfu=True``: version 3 lets it into rooms on the SFU."""

RECORDING_VERSION: Final = 2  # the first version with ``media.recording``
MIN_REFRESH_SECONDS: Final = 60.0  # §2.2: a client never refreshes in a loop
CLOSE_PEERS_SECONDS: Final = 15.0
"""The longest :meth:`Client.close` waits for the peer connections to close."""


def websocket_url(server: str) -> str:
    """``https://h:p`` → ``wss://h:p/ws`` (``http`` → ``ws``); ``ws(s)://…`` kept, ``/ws``
    added when the path is empty. ``ValueError`` for any other scheme."""
    base = server.strip().rstrip("/")
    for http, ws in (("https://", "wss://"), ("http://", "ws://")):
        if base.startswith(http):
            return ws + base[len(http) :] + "/ws"
    if base.startswith(("wss://", "ws://")):
        return base if base.endswith("/ws") else base + "/ws"
    raise ValueError(f"not a server address (expected https://host:port): {server!r}")


def _turn_expiry(servers: list[IceServer]) -> float | None:
    """The earliest expiry (Unix seconds) in the TURN usernames of ``servers`` (§2.2)."""
    stamps = (s.username.split(":", 1)[0] for s in servers if s.username is not None)
    found = [int(stamp) for stamp in stamps if stamp.isascii() and stamp.isdigit()]
    return float(min(found)) if found else None


class Client(DirectCalls):
    """A Salon member speaking the protocol of docs/PROTOCOL.md over one WebSocket.

    ``server`` is the origin, ``"https://host:port"`` or ``"http://host:port"`` (``/ws`` is
    added; ``wss://``/``ws://`` work too). ``name`` is the display name asked for (the server's
    normalised one is in :attr:`name` after :meth:`connect`). ``reachable``: callable by that
    name (§4.4). ``ssl``: the TLS context (:func:`salon.client.ssl_context`). ``recording``:
    say ``media.recording = true`` in every ``join``/``media`` (needs protocol version 2:
    :meth:`connect` raises :class:`ClientError` against a version-1 server). ``sfu``: offer
    protocol version 3, so that the client may be in rooms whose media goes through the
    server's SFU (§3.10): there it sends its tracks once, to everyone, and receives everyone
    through one connection (:class:`SfuRemote` stands for each member in the handlers; a
    track sent to one member only, :meth:`Peer.add_track`, has no place there). Without it,
    such a room answers ``room_full``. ``receive``: on the SFU, False takes nobody's media (the
    receiving connection answers every m-line ``inactive``, so nothing is decoded: for a
    program that only sends); in a mesh it changes nothing. ``connector`` opens the
    transport (tests pass an in-memory one; default: a real WebSocket).

    After :meth:`connect`: :attr:`id`, :attr:`name`, :attr:`version` (the negotiated one),
    :attr:`ice_servers`; :attr:`room` (``None`` outside rooms), :attr:`private` (the room is a
    direct call's), :attr:`hosts`, :attr:`members` (the others in the room, by id) and
    :attr:`peers` (one :class:`Peer` per remote member) follow the server's messages.
    :attr:`media` is the media state announced (§4.2). :attr:`lost` is set when the
    connection ended for good.
    """

    def __init__(
        self,
        server: str,
        name: str,
        *,
        reachable: bool = False,
        ssl: _ssl.SSLContext | None = None,
        recording: bool = False,
        sfu: bool = False,
        receive: bool = True,
        connector: Connector | None = None,
    ) -> None:
        super().__init__()
        self._url = websocket_url(server)
        self._ssl = ssl
        self._connector = connector or connect_websocket
        self._reachable = reachable
        self._recording = recording
        self._versions = SFU_VERSIONS if sfu else VERSIONS
        self._receive = receive
        self._sfu: SfuMedia | None = None  # while the room is on the SFU
        self._sfu_closing: set[asyncio.Future[None]] = set()
        self.id = ""
        self.name = name
        self.version = 0
        self.ice_servers: list[IceServer] = []
        self._track_handlers: list[TrackHandler] = []
        self._closed_handlers: list[PeerHandler] = []
        self._media = LocalMedia(recording=recording)
        self._room = RoomState(self)
        self._unacked: dict[str, str] = {}  # chat.id -> text, until our copy comes back
        self._chat_refs: dict[str, set[int]] = {}  # chat.id -> the refs it was sent with
        self._rejoin: dict[str, Any] | None = None  # the join of the current room
        self._background: set[asyncio.Task[None]] = set()
        self._close_task: asyncio.Task[None] | None = None
        self._quiet = asyncio.Event()  # closed but for the handlers
        self._done = asyncio.Event()
        room = self._room
        self._table: dict[type[BaseModel], Callable[[Any], None]] = {
            Joined: self._on_joined,
            MemberJoined: room.member,
            MemberResumed: room.member,
            MemberLeft: self._on_member_left,
            Left: self._on_left,
            SignalRelay: room.signal,
            MediaChanged: self._on_media,
            RoomMedia: self._on_room_media,
            SfuOffer: self._on_sfu_offer,
            SfuAnswer: self._on_sfu_answer,
            History: room.history,
            RoomStateMessage: room.room_state,
            IceServers: self._on_ice_servers,
            Muted: self._on_muted,
            Unreachable: self._on_unreachable,
            Error: self._on_error,
        }

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def media(self) -> MediaState:
        """The media state we announce (§4.2): changed by :meth:`set_media`, and by a host
        muting us (§3.7)."""
        return self._media.state

    @property
    def room(self) -> str | None:
        """The room (or direct call's room) we are in; ``None`` outside rooms."""
        return self._room.room

    @property
    def private(self) -> bool:
        """True in a direct call's room (§3.5)."""
        return self._room.private

    @property
    def hosts(self) -> list[str]:
        """The member ids of the room's hosts (§3.6)."""
        return self._room.hosts

    @property
    def members(self) -> dict[str, MemberInfo]:
        """The others in the room, by member id, as last announced (media included)."""
        return self._room.members

    @property
    def peers(self) -> dict[str, Peer]:
        """One :class:`Peer` per remote member of the room, by member id (none while the room
        is on the SFU: see :attr:`sfu_remotes`)."""
        return self._room.peers

    @property
    def sfu(self) -> SfuMedia | None:
        """The connections to the SFU while the room is on it (§3.10), else None."""
        return self._sfu

    @property
    def sfu_remotes(self) -> dict[str, SfuRemote]:
        """While the room is on the SFU: the members received so far, by member id."""
        return self._sfu.remotes if self._sfu is not None else {}

    # ------------------------------------------------------------------ connection

    async def connect(self) -> None:
        """Open the WebSocket and say ``hello`` (§2.1); return after ``welcome``.

        Then, until :meth:`close`: reads and dispatches every server message, answers the
        server's ``ping`` (§2.3) and pings itself when the server is silent, and on a lost
        socket reconnects with ``hello.resume`` (§2.8) at once, then after about 0.3, 1.2, 2.7,
        4.8 s and every 7 s with jitter, until ``limits.resume_grace_seconds`` have passed
        (then :attr:`lost` is set and requests raise :class:`ConnectionLost`). Peers and their
        media survive a resume. ``server_draining`` (§2.9): waits ``retry_after_ms`` plus
        jitter, then resumes. No reconnection after close codes 4000, 4001, 4003, 4005, 4006.

        Raises :class:`ServerError` (``invalid_name``, ``name_taken``,
        ``unsupported_version``…), :class:`ConnectionLost` when the server cannot be reached
        or closes, :class:`ClientError` when ``recording`` needs version 2 or ``connect``
        was called before."""
        if self._connection is not None:
            raise ClientError("connect() was called already")
        connection = Connection(self._url, self._ssl, self._connector, self._hello, self)
        self._connection = connection
        try:
            welcome = await connection.open()
        except BaseException:
            self._connection = None  # connect() may be called again
            raise
        self._greeted(welcome)
        if self._recording and self.version < RECORDING_VERSION:
            await connection.close()
            self._connection = None
            raise ClientError(
                f"recording needs protocol version {RECORDING_VERSION}; the server speaks "
                f"{self.version}"
            )
        self._events.start()
        self._spawn(self._refresh_ice_servers())

    async def close(self) -> None:
        """Leave cleanly: close the socket with 1000 (a goodbye, §2.7: the member leaves its room at
        once) while every peer connection closes (``on_peer_closed`` handlers run; what they
        send is not sent any more), then run the handlers still queued. Returns once every
        peer connection is closed, including those still closing after :meth:`leave`,
        :meth:`hang_up` or a member leaving (waiting up to :data:`CLOSE_PEERS_SECONDS` in
        all). The closing runs in a task of its own: a second call waits for the same, and
        cancelling the caller does not cut it short (aiortc would leave a connection's UDP
        sockets open). From an ``on`` handler it returns before the handlers queued after it
        run. Idempotent; never raises."""
        closing = self._start_close()
        if self._events.running_here():
            await self._quiet.wait()  # the handlers (this one first) stop after it
            return
        await asyncio.shield(closing)

    def _start_close(self) -> asyncio.Task[None]:
        if self._close_task is None:
            self._closing = True
            self._close_task = asyncio.create_task(self._shut_down(), name="salon client close")
        return self._close_task

    async def _shut_down(self) -> None:
        try:
            # The goodbye goes out while the peers close, not after: aiortc can take seconds
            # to close a connection, and a process that exits before the goodbye leaves its
            # place held for the grace window (§2.8) instead of leaving at once.
            peers = asyncio.ensure_future(self._room.close(CLOSE_PEERS_SECONDS))
            sfu = asyncio.ensure_future(self._close_sfu())
            try:
                if self._connection is not None:
                    await self._connection.close()
            finally:
                await peers
                await sfu
            for task in self._background:
                task.cancel()
            await self._media.close()
        finally:
            if self.lost is None:
                self.lost = ConnectionLost("the client closed the connection", 1000)
            self._events.fail(self.lost)
            self._quiet.set()
        await self._events.stop()
        self._done.set()

    async def wait_closed(self) -> None:
        """Return once the client is closed (:meth:`close`) or its connection ended for
        good (:attr:`lost` says why)."""
        await self._done.wait()

    async def _refresh_ice_servers(self) -> None:
        """§2.2: ask for fresh TURN credentials at half their remaining lifetime (from the
        expiry in a TURN ``username``, ``<expiry>:<member id>``), never sooner than 60 s;
        later connections use them (connections made before keep their allocations)."""
        while True:
            expiry = _turn_expiry(self.ice_servers)
            if expiry is None:
                return
            await asyncio.sleep(max(MIN_REFRESH_SECONDS, (expiry - time.time()) / 2))
            if self.lost is not None:
                return
            await self._ask_ice_servers(next(self._refs))

    async def _ask_ice_servers(self, ref: int) -> None:
        def match(m: BaseModel) -> bool:
            return isinstance(m, IceServers) and m.ref == ref

        with self._events.subscribe(match) as answer:
            self._send(IceRefresh(type="ice_refresh", ref=ref))
            with contextlib.suppress(TimeoutError):
                await answer.next(REQUEST_SECONDS)

    def _hello(self, resume: str | None) -> Hello:
        return Hello(
            type="hello",
            versions=list(self._versions),
            name=self.name,
            resume=resume,
            reachable=self._reachable,
        )

    def _greeted(self, welcome: Welcome) -> None:
        self.id = welcome.id
        self.name = welcome.name
        self.version = welcome.version
        self.ice_servers = list(welcome.ice_servers)

    # ConnectionEvents -------------------------------------------------

    def on_message(self, message: ServerMessage) -> None:
        """(Internal) a message from the connection's reader."""
        to_handlers = True
        if isinstance(message, ChatDelivered):
            to_handlers = self._room.take_chat(message)
        else:
            handle = self._table.get(type(message))
            if handle is not None:
                handle(message)
        self._events.deliver(message, to_handlers=to_handlers)

    def on_greeted(self, welcome: Welcome) -> None:
        """(Internal) a ``welcome`` after a reconnection (§2.8, "What a client does")."""
        self._greeted(welcome)
        resumed = welcome.resumed
        if resumed is None:
            # resume_failed: a new member. Peers are made anew; a direct call is over.
            rejoin = self._rejoin if not self.private else None
            self._leave_room()
            if rejoin is not None:
                self._spawn(self._join_again(rejoin))
            return
        if resumed.missed and self._sfu is not None:
            self._sfu.answers_lost()
        if resumed.room is None:
            self._leave_room()
            return
        self._room.resuming = True  # a `joined` snapshot follows (§2.8)

    def on_lost(self, error: ConnectionLost) -> None:
        """(Internal) the connection ended for good."""
        self.lost = error
        self._events.fail(error)
        self._start_close()

    # ------------------------------------------------------------------ requests

    async def join(
        self,
        room: str,
        *,
        password: str | None = None,
        invite: str | None = None,
        host_key: str | None = None,
    ) -> Joined:
        """Join ``room`` (§3.2) and return the ``joined`` snapshot; a :class:`Peer` is made
        for each member listed (and for each who joins later). While a lobby holds the join
        (§3.7, ``lobby_waiting``) it waits without a time limit until a host admits
        (``joined``) or not (:class:`ServerError` with the SDK's own code ``lobby_denied``).
        Raises :class:`ServerError` (``room_full``, ``wrong_password``, ``room_locked``,
        ``invalid_room``, ``no_such_room``, ``in_call``, ``rate_limited``…), ``TimeoutError``
        after 30 s without an answer, :class:`ConnectionLost`."""
        ref = next(self._refs)
        join = Join(
            type="join",
            room=room,
            password=password,
            media=self._media.announced(),
            invite=invite,
            host_key=host_key,
            ref=ref,
        )
        refs = {ref}

        def match(m: BaseModel) -> bool:
            return error_for(m, refs) or (
                isinstance(m, Joined | LobbyWaiting | LobbyDenied) and m.room == room
            )

        with self._events.subscribe(match) as answers:
            self._send(join)
            timeout: float | None = REQUEST_SECONDS
            while True:
                answer = await self._answer(answers, timeout)
                if isinstance(answer, LobbyWaiting):
                    timeout = None
                elif isinstance(answer, LobbyDenied):
                    raise ServerError("lobby_denied", f"the lobby turned us away ({answer.reason})")
                elif isinstance(answer, Joined):
                    self._rejoin = {
                        "room": room,
                        "password": password,
                        "invite": invite,
                        "host_key": host_key,
                    }
                    return answer

    async def _join_again(self, args: dict[str, Any]) -> None:
        try:
            await self.join(**args)
        except (ClientError, TimeoutError) as exc:
            logger.warning("could not rejoin %s as a new member: %s", args["room"], exc)

    async def leave(self) -> None:
        """Leave the current room or call (``leave``, answered by ``left``); closes every
        peer. Nothing to leave: returns at once."""
        room = self.room
        if room is None:
            return
        ref = next(self._refs)
        refs = {ref}

        def match(m: BaseModel) -> bool:
            return error_for(m, refs) or (isinstance(m, Left) and m.room == room)

        with self._events.subscribe(match) as answers:
            self._send(Leave(type="leave", ref=ref))
            await self._answer(answers, REQUEST_SECONDS)

    async def chat(self, text: str) -> ChatDelivered:
        """Send ``text`` to the room (§4.3) with a random ``chat.id``; returns our own copy as
        delivered (its ``seq``, ``ts``). Resent with the same id after a resume until
        delivered (stored once). Raises :class:`ServerError` (``invalid_text``,
        ``rate_limited``, ``not_joined``, ``store_unavailable``), ``TimeoutError`` after 30 s,
        :class:`ClientError` when the frame would be over ``max_frame_bytes`` (not sent)."""
        chat_id = secrets.token_urlsafe(12)
        ref = next(self._refs)
        refs = {ref}

        def match(m: BaseModel) -> bool:
            return error_for(m, refs) or (
                isinstance(m, ChatDelivered) and m.client_id == chat_id and m.sender == self.id
            )

        with self._events.subscribe(match) as answers:
            self._unacked[chat_id] = text
            self._chat_refs[chat_id] = refs
            try:
                self._send(Chat(type="chat", text=text, id=chat_id, ref=ref))
                return cast(ChatDelivered, await self._answer(answers, REQUEST_SECONDS))
            finally:
                self._unacked.pop(chat_id, None)
                self._chat_refs.pop(chat_id, None)

    async def set_media(
        self, *, mic: bool | None = None, camera: bool | None = None, screen: bool | None = None
    ) -> None:
        """Change the announced media state (§4.2); ``None`` keeps a value. Turning on a
        kind a host muted (§3.7) sends its tracks again. Sent as ``media`` when in a room
        (the server checks nothing against the tracks), else used in the next ``join``.
        Raises :class:`ServerError` when refused."""
        self._media.update(mic=mic, camera=camera, screen=screen)
        self._sync_paused()
        if self.room is not None:
            ref = next(self._refs)
            await self._barrier(self._media.message(ref), ref)

    def add_track(self, track: MediaStreamTrack) -> None:
        """Send ``track`` (``kind`` ``audio`` or ``video``) to every peer, now and later;
        each peer renegotiates. One track feeds every peer (through a relay that reads it
        once: every audio frame reaches each peer, up to 0.5 s late at most; video skips to
        the newest frame, :mod:`salon.client.relay`): do not read it elsewhere. The client
        stops reading it when closed (the track itself is not stopped)."""
        self._media.add(track)
        for peer in self.peers.values():
            peer.add_shared(self._media.handle(track))
        if self._sfu is not None:
            self._sfu.republish()

    async def hang_up(self) -> None:
        """Hang up the direct call we are in (a ``leave`` of its private room, §3.5);
        nothing when in none."""
        if self.room is not None and self.private:
            await self.leave()

    # ------------------------------------------------------------------ events

    def on(self, kind: type[M], handler: Handler[M]) -> None:
        """Call ``handler(message)`` for every server message of class ``kind`` (any class
        of ``salon.protocol.messages``: ``ChatDelivered``, ``MemberJoined``, ``MemberLeft``,
        ``IncomingCall``, ``CallEnded``, ``Joined``, ``Left``, ``RoomEvent``, ``Muted``…),
        after the SDK's own handling (so :attr:`members` and :attr:`peers` are up to date).
        Handlers run in a task of their own, one at a time, in order of arrival (a coroutine
        handler is awaited before the next), so a handler may await the client's requests;
        an exception is logged and stops nothing. ``ChatDelivered`` comes once per ``seq``:
        chat missed while the connection was lost is fetched with ``history`` and delivered
        here in ``seq`` order."""
        self._events.add_handler(kind, cast(Callable[..., Awaitable[None] | None], handler))

    def on_track(self, handler: TrackHandler) -> None:
        """Call ``handler(remote, track)`` for each remote track as it arrives (aiortc's
        ``track`` event), in order with the messages; ``remote`` is the member's
        :class:`Peer` (or, on the SFU, its :class:`SfuRemote`). Runs again for the new tracks
        of a replaced ``peer.pc``, or of the SFU's connection when the room's media starts
        over; the old tracks end (``recv()`` raises ``MediaStreamError``)."""
        self._track_handlers.append(handler)

    def on_peer_closed(self, handler: PeerHandler) -> None:
        """Call ``handler(remote)`` when a peer (or an :class:`SfuRemote`) is closed for
        good: the member left, we left, the room moved to the SFU or its media there started
        over, the client closed (these run before :meth:`close` returns)."""
        self._closed_handlers.append(handler)

    async def wait_for(
        self,
        kind: type[M],
        predicate: Callable[[M], bool] | None = None,
        timeout: float = 10,  # noqa: ASYNC109 - the time limit is part of the public API
    ) -> M:
        """The next server message of class ``kind`` for which ``predicate`` is true (every
        one when ``None``), received after this call. ``TimeoutError`` after ``timeout``
        seconds; :class:`ConnectionLost` when the connection ends for good meanwhile."""

        def match(m: BaseModel) -> bool:
            return isinstance(m, kind) and (predicate is None or predicate(m))

        with self._events.subscribe(match) as found:
            return cast(M, await found.next(timeout))

    # ------------------------------------------------------------------ PeerHost

    def send_signal(self, to: str, part: SignalPart) -> None:
        """(Internal) relay one payload to member ``to`` (§4.1)."""
        if self.lost is not None or self._closing:
            return
        fields: dict[str, Any] = {"type": "signal", "to": to}
        if isinstance(part, SessionDescription):
            fields["description"] = part
        elif isinstance(part, IceCandidate):
            fields["candidate"] = part
        elif isinstance(part, DescriptionRejected):
            fields["rejected"] = part
        elif isinstance(part, PeerReset):
            fields["reset"] = part
        self._send(Signal(**fields))

    def configuration(self) -> RTCConfiguration:
        """(Internal) ``welcome.ice_servers`` (or the latest ``ice_servers``), W3C
        webrtc-pc §4.2.4, without null members (§2.2)."""
        servers = [
            RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
            for s in self.ice_servers
        ]
        return RTCConfiguration(iceServers=servers)

    def shared_tracks(self) -> list[MediaStreamTrack]:
        """(Internal) one relay handle per client-wide track, for a new connection."""
        return self._media.handles()

    def paused_kinds(self) -> frozenset[str]:
        """(Internal) the kinds a host muted (§3.7)."""
        return self._media.paused()

    def track_arrived(self, peer: Remote, track: MediaStreamTrack) -> None:
        """(Internal) queue the ``on_track`` handlers."""
        for handler in self._track_handlers:
            self._events.call_soon(handler, peer, track)

    # ------------------------------------------------------------------ SfuHost

    def next_ref(self) -> int:
        """(Internal) a fresh ``ref``."""
        return next(self._refs)

    def member(self, member_id: str) -> MemberInfo | None:
        """(Internal) the room's member of that id."""
        return self._room.members.get(member_id)

    def remote_closed(self, remote: SfuRemote) -> None:
        """(Internal) queue the ``on_peer_closed`` handlers."""
        self.peer_closed(remote)

    # ------------------------------------------------------------------ RoomHost

    def send(self, message: BaseModel) -> None:
        """Send any client message of :mod:`salon.protocol.messages` the SDK has no method
        for (``Hand``, ``React``, host actions such as ``RoomLock`` or ``Record``), in order
        with everything else; after a lost socket it goes out once resumed. Nothing waits
        for an answer: give it a ``ref`` and :meth:`wait_for` the ``Error`` with that ref,
        or the message that answers it. Dropped once the client is closed."""
        if self.lost is None and not self._closing:
            self._send(message)

    def new_peer(self, member: MemberInfo) -> Peer:
        """(Internal) a peer toward ``member``."""
        return Peer(member, self)

    def peer_closed(self, peer: Remote) -> None:
        """(Internal) queue the ``on_peer_closed`` handlers."""
        for handler in self._closed_handlers:
            self._events.call_soon(handler, peer)

    def deliver(self, message: ChatDelivered) -> None:
        """(Internal) hand a chat message from ``history`` to the handlers."""
        self._events.deliver(message)

    def grace_seconds(self) -> float:
        """(Internal) how long a place is kept after a loss (§2.8)."""
        welcome = self._connection.welcome if self._connection is not None else None
        return welcome.limits.resume_grace_seconds if welcome is not None else 60.0

    # ------------------------------------------------------------------ room messages

    def _on_joined(self, joined: Joined) -> None:
        snapshot = self._room.joined(joined)
        if joined.private and not snapshot:
            # §3.5: the server seats both members of a call announcing mic and camera on,
            # whatever they send: say what this side really sends.
            self._send(self._media.message(None))
        if not joined.sfu:
            self._drop_sfu()
        elif not snapshot or self._sfu is None:
            # A resumed place the server held keeps its connections to the SFU (§3.10); a
            # rebuilt one hears room_media next, and starts over then.
            self._start_sfu()
        if snapshot:
            self._catch_up()

    def _on_room_media(self, message: RoomMedia) -> None:
        """§3.10: the room moved to the SFU (its peers close), or its state there was lost
        (start over)."""
        if message.room == self.room and message.sfu:
            self._room.to_sfu()
            self._start_sfu()

    def _start_sfu(self) -> None:
        if self._sfu is None:
            self._sfu = SfuMedia(self, receive=self._receive)
        self._sfu.start()

    def _drop_sfu(self) -> None:
        """Out of the SFU: its connections close in a task of their own (:meth:`close`
        waits for it)."""
        sfu, self._sfu = self._sfu, None
        if sfu is not None:
            closing = asyncio.ensure_future(sfu.close())
            self._sfu_closing.add(closing)
            closing.add_done_callback(self._sfu_closing.discard)

    async def _close_sfu(self) -> None:
        self._drop_sfu()
        if self._sfu_closing:
            await asyncio.wait(set(self._sfu_closing), timeout=CLOSE_PEERS_SECONDS)

    def _on_sfu_offer(self, message: SfuOffer) -> None:
        if self._sfu is not None:
            self._sfu.offer(message)

    def _on_sfu_answer(self, message: SfuAnswer) -> None:
        if self._sfu is not None:
            self._sfu.answered(message)

    def _on_member_left(self, message: MemberLeft) -> None:
        self._room.member_left(message)
        if self._sfu is not None and message.room == self.room:
            self._sfu.member_left(message.id)

    def _on_media(self, message: MediaChanged) -> None:
        self._room.media(message)
        member = self._room.members.get(message.sender)
        if self._sfu is not None and member is not None:
            self._sfu.member_changed(member)

    def _sync_paused(self) -> None:
        for peer in self.peers.values():
            peer.sync_paused()
        if self._sfu is not None:
            self._sfu.sync_paused()

    def _catch_up(self) -> None:
        """After a resume: missed chat, then our chat not yet acknowledged (§2.8, §4.3)."""
        self._room.ask_history()
        for chat_id, text in self._unacked.items():
            ref = next(self._refs)
            self._chat_refs[chat_id].add(ref)
            self._send(Chat(type="chat", text=text, id=chat_id, ref=ref))

    def _on_left(self, message: Left) -> None:
        if message.room == self.room:
            self._leave_room()

    def _leave_room(self) -> None:
        self._rejoin = None
        self._room.leave()
        self._drop_sfu()

    def _on_ice_servers(self, message: IceServers) -> None:
        self.ice_servers = list(message.ice_servers)

    def _on_muted(self, message: Muted) -> None:
        """§3.7: stop sending that media at once, show it off, say so with ``media``."""
        if message.room != self.room:
            return
        self._media.mute(message.kind)
        self._sync_paused()
        self._send(self._media.message(None))

    def _on_unreachable(self, message: Unreachable) -> None:
        self._reachable = False

    def _on_error(self, message: Error) -> None:
        if self._sfu is not None and self._sfu.refused(message):
            return
        if message.ref is None:
            # A signal to a member who just left is expected (§2.6); anything else is news.
            expected = message.code == ErrorCode.NO_SUCH_MEMBER
            level = logging.INFO if expected else logging.WARNING
            logger.log(level, "the server said %s: %s", message.code, message.message)

    def _spawn(self, job: Awaitable[None]) -> None:
        task = asyncio.ensure_future(job)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
