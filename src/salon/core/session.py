"""One connection's state machine: frames in, messages pushed out, no sockets.

::

    AWAITING_HELLO --hello ok / hello.resume ok--> GREETED --closed--> CLOSED
    AWAITING_HELLO --bad version / name taken / resume_failed--> (error; still AWAITING_HELLO,
                                                                 or closed 4001)
    AWAITING_HELLO --adopt (a place moved here)--> GREETED --export (moved away)--> CLOSED

A greeted session occupies a :class:`~salon.core.place.Place`, the member the hub knows. When
the connection ends with a goodbye (a close frame 1000 or 1001 from the client) the place
departs at once; any other end leaves it away for the grace window, and a new session with
the resume token takes it back.

When several processes serve one deployment, a greeted session can move to another process
(``salon.server.pipes``): :meth:`Session.export` lets its place go here and says what the
other process needs, and :meth:`Session.adopt` takes it up there, without the client noticing.

A transport (the WebSocket endpoint, a test, a bot) feeds frames to :meth:`Session.receive`
and implements :class:`~salon.core.member.Transport` to carry pushes out. Each client message
type has one small handler, found through a table.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Final

from salon.core import validate
from salon.core.errors import SalonError, fail
from salon.core.hub import REPLACED_BY_NEWER, Hub
from salon.core.member import Transport
from salon.core.place import Place
from salon.core.ratelimit import Pacer
from salon.core.resume import Claims
from salon.protocol import (
    CloseCode,
    ErrorCode,
    Outgoing,
    ProtocolError,
    choose_version,
    decode_client,
)
from salon.protocol.messages import (
    Call,
    CallAccept,
    CallCancel,
    CallDecline,
    Chat,
    EndMeeting,
    Error,
    Hand,
    Hello,
    HistoryRequest,
    IceRefresh,
    IceServer,
    IceServers,
    Join,
    Leave,
    Limits,
    LobbyAdmit,
    LobbyDeny,
    LowerHand,
    MakeHost,
    MediaState,
    Mute,
    Ping,
    Pong,
    PresenceWatch,
    React,
    Record,
    Ref,
    Remove,
    Resumed,
    RoomLobby,
    RoomLock,
    RoomPassword,
    ServerPing,
    ServerPong,
    SetMedia,
    SfuCandidate,
    SfuPublish,
    SfuQuality,
    SfuRestart,
    SfuSubscribe,
    Signal,
    SignedInAccount,
    Welcome,
)
from salon.protocol.version import RECORDING_VERSION, SFU_VERSION

# A frame the server cannot read (bad_json, bad_message, unknown_type) costs one strike per
# started block of this many characters (see Session.receive).
UNREADABLE_STRIKE_BYTES: Final = 4096

log = logging.getLogger(__name__)


IceServersFactory = Callable[[str], list[IceServer]]
"""Given a member id, the ICE servers (with fresh TURN credentials) to hand that member."""


class SessionState(Enum):
    AWAITING_HELLO = "awaiting_hello"
    GREETED = "greeted"
    CLOSED = "closed"


class Session:
    """One connection speaking protocol v1 or v2, occupying a member's place once greeted."""

    def __init__(
        self,
        hub: Hub,
        transport: Transport,
        ice_servers: IceServersFactory,
        *,
        account: SignedInAccount | None = None,
        guests_may_join: bool = True,
        address: str | None = None,
        base_url: str | None = None,
    ) -> None:
        """``account``: who the connection is signed in as (its name is then the account's
        display name), None for a guest; ``guests_may_join`` False refuses guests' joins;
        ``address``: the client's address (a host's removal remembers it), None when unknown;
        ``base_url``: the server as this connection reached it, ``scheme://address:port``
        with the local address it came in on (a recorder connects there), None when
        unknown."""
        self.hub = hub
        self.transport = transport
        self.account = account
        self._guests_may_join = guests_may_join
        self.address = address
        self.base_url = base_url
        self.state = SessionState.AWAITING_HELLO
        self.place: Place | None = None
        self._ice_servers = ice_servers
        limits = hub.limits
        self._pacer = Pacer(
            limits.rate_per_second,
            limits.rate_burst,
            limits.rate_strikes_before_close,
            hub.clock.monotonic(),
        )
        self.version: int | None = None

    # ------------------------------------------------------------------ identity

    @property
    def id(self) -> str:
        """The member id once greeted, else ``""``."""
        return "" if self.place is None else self.place.id

    @property
    def name(self) -> str:
        return "" if self.place is None else self.place.name

    @property
    def _member(self) -> Place:
        assert self.place is not None  # handlers other than hello run only when GREETED
        return self.place

    def push(self, out: Outgoing) -> None:
        """Send to this connection only (answers, errors, pings): never kept for a resume."""
        if self.state is not SessionState.CLOSED:
            self.transport.send(out)

    def kick(self, code: CloseCode, reason: str) -> None:
        self.transport.close(code, reason)

    # ------------------------------------------------------------------ input

    async def receive(self, frame: str | bytes) -> None:
        """Handle one WebSocket frame. Never raises: every failure becomes an ``error``."""
        if self.state is SessionState.CLOSED:
            return
        if not self._within_rate():
            return
        if isinstance(frame, bytes):
            self._error(ErrorCode.BINARY_UNSUPPORTED, "frames are JSON text, not binary")
            return
        try:
            message = decode_client(frame, self.hub.limits)
        except ProtocolError as exc:
            self._error(exc.code, exc.message, exc.ref)
            # Reading it cost the server time by its size (a 64 KiB frame it cannot read takes
            # milliseconds to judge): strikes by the started 4 KiB, so a stream of them is
            # closed after a few, while a client's occasional mistake costs nothing.
            self._strike(self.hub.clock.monotonic(), 1 + len(frame) // UNREADABLE_STRIKE_BYTES)
            return
        self.hub.observer.frame(message.type)
        handler = _HANDLERS[type(message)]
        try:
            if self.state is SessionState.AWAITING_HELLO and not isinstance(message, Hello):
                raise fail(ErrorCode.HELLO_REQUIRED, "say hello first")
            await handler(self, message)
        except SalonError as exc:
            self._error(exc.code, exc.message, message.ref)
        except Exception:
            log.exception("handling %s from %s failed", type(message).__name__, self.id)
            self._error(ErrorCode.INTERNAL, "the server could not handle that message", message.ref)

    def _within_rate(self) -> bool:
        """Token bucket per connection. A dropped frame is a strike; strikes leak away at one
        a second, so a client a little over the rate is only slowed, while one that keeps
        flooding reaches ``rate_strikes_before_close`` and is closed (4003). ``rate_limited``
        is sent at most once a second, so the errors cannot flood the outbox either."""
        now = self.hub.clock.monotonic()
        if self._pacer.allow(now):
            return True
        if self._pacer.warn(now):
            self._error(ErrorCode.RATE_LIMITED, "too many messages; slow down")
        self._strike(now, 1)
        return False

    def _strike(self, now: float, count: int) -> None:
        """Add ``count`` strikes (after leaking one a second since the last); at
        ``rate_strikes_before_close`` the connection is closed (4003)."""
        if self._pacer.strike(now, count):
            self.kick(CloseCode.RATE_ABUSE, "kept sending frames it should not")

    def silence(self) -> None:
        """The transport heard nothing for ``ping_after_seconds``: ask for a sign of life."""
        self.push(Outgoing(ServerPing()))

    def closed(
        self,
        *,
        goodbye: bool = True,
        unsent: list[Outgoing] | None = None,
        dropped: bool = False,
    ) -> None:
        """The connection is gone. With a ``goodbye`` (the client closed with 1000 or 1001)
        the member leaves every room and frees its name at once; otherwise its place is kept
        for the grace window, starting with ``unsent`` (what was queued but not written;
        ``dropped`` when the connection discarded some). A place a newer connection took over
        is not this session's any more: nothing happens."""
        place = self.place
        if (
            self.state is SessionState.GREETED
            and place is not None
            and place.transport is self.transport
        ):
            if goodbye:
                self.hub.depart(place)
            else:
                self.hub.lose(place, unsent or [], dropped=dropped)
        self.state = SessionState.CLOSED

    def _error(self, code: ErrorCode, message: str, ref: Ref | None = None) -> None:
        self.hub.observer.error(code)
        self.push(Outgoing(Error(code=code, message=message, ref=ref)))

    # ------------------------------------------------------------------ handlers

    async def _hello(self, msg: Hello) -> None:
        if self.state is not SessionState.AWAITING_HELLO:
            raise fail(ErrorCode.ALREADY_GREETED, "you have already said hello")
        version = choose_version(msg.versions)
        if version is None:
            self._error(ErrorCode.UNSUPPORTED_VERSION, "no common protocol version", msg.ref)
            self.kick(CloseCode.UNSUPPORTED_VERSION, "no common protocol version")
            return
        if msg.resume is not None:
            try:
                await self._resume(msg.resume, version)
            except SalonError as exc:
                if exc.code is ErrorCode.RESUME_FAILED:
                    self.hub.observer.resume("failed")
                raise
            return
        account = self.account
        owns: tuple[str, ...] = ()
        if account is not None:
            name = account.display_name  # hello.name is ignored when signed in
            owns = (account.username, account.display_name)
        else:
            name = validate.display_name(msg.name, self.hub.limits.max_name_chars)
        member_id = secrets.token_urlsafe(9)
        place = self.hub.new_place(member_id, name, None if account is None else account.username)
        if msg.reachable:
            # Newest wins: reachable as the account, this connection is its place from now
            # on. A plain hello waits for a join (a pre-join page, another tab's check).
            self.hub.hold_account(place)
        await self.hub.greet(
            place, signed_in=account is not None, reachable=msg.reachable, owns=owns
        )
        place.attach(self.transport)
        self._greeted(place, version, None, [])

    async def _resume(self, token: str, version: int) -> None:
        """``hello.resume``: take back the place the token names (docs/PROTOCOL.md §2.8)."""
        hub = self.hub
        claims = hub.tokens.verify(token, hub.clock.wall_ms() / 1000)
        account = None if self.account is None else self.account.username
        if claims is None or claims.account != account:
            raise fail(ErrorCode.RESUME_FAILED, "that resume token is not valid here: say hello")
        place = hub.place(claims.member)
        if place is not None:
            rebuilding = place.rebuilding  # this server never held what it was sent before
            kept, missed = hub.take_back(place, self.transport)
            resumed = Resumed(room=place.room, call=place.call, missed=missed or rebuilding)
            self._greeted(place, version, resumed, kept)
            hub.observer.resume("held")
            # Frames written into the connection that died may never have arrived: a snapshot
            # of the room, after what was kept, lets the client reconcile whatever it lost.
            hub.snapshot(place)
            hub.sfu_resumed(place)
            return
        if await hub.ended_anywhere(claims.member):
            raise fail(ErrorCode.RESUME_FAILED, "that place has ended: say hello again")
        place = await self._rebuild(claims, version)
        if place.transport is not None:
            # A newer connection with the same token took the half-built place while it was
            # rebuilt (the held case above): newest wins, as everywhere, so this one yields.
            self.transport.close(CloseCode.REPLACED, REPLACED_BY_NEWER)
            return
        kept, _ = place.attach(self.transport)  # joined and a token, when seated again
        # This server did not hold the place: whatever was sent to it meanwhile is lost.
        self._greeted(place, version, Resumed(room=place.room, call=place.call, missed=True), kept)
        hub.observer.resume("rebuilt")

    async def _rebuild(self, claims: Claims, version: int) -> Place:
        place = self.hub.new_place(claims.member, claims.name, claims.account)
        place.version = version  # what it may be seated in (a room on the SFU needs v3)
        place.rebuilding = True
        try:
            await self.hub.rebuild(place, claims)
        except SalonError as exc:
            if exc.code is not ErrorCode.NAME_TAKEN:
                raise
            raise fail(
                ErrorCode.RESUME_FAILED, "someone else took that name meanwhile: say hello"
            ) from None
        finally:
            place.rebuilding = False
        return place

    def _occupy(self, place: Place, version: int) -> None:
        """This connection now occupies ``place``, speaking ``version``."""
        self.place = place
        place.address = self.address
        place.version = version
        self.version = version
        self.state = SessionState.GREETED

    def _greeted(
        self, place: Place, version: int, resumed: Resumed | None, kept: list[Outgoing]
    ) -> None:
        """Welcome a connection now occupying ``place``, then what was kept for it."""
        limits = self.hub.limits
        self._occupy(place, version)
        self.push(
            Outgoing(
                Welcome(
                    version=version,
                    id=place.id,
                    name=place.name,
                    ice_servers=self._ice_servers(place.id),
                    limits=Limits(
                        max_frame_bytes=limits.max_frame_bytes,
                        max_name_chars=limits.max_name_chars,
                        max_chat_chars=limits.max_chat_chars,
                        max_room_members=limits.max_room_members,
                        rate_per_second=limits.rate_per_second,
                        rate_burst=limits.rate_burst,
                        ping_after_seconds=limits.ping_after_seconds,
                        dead_after_seconds=limits.dead_after_seconds,
                        ring_seconds=limits.ring_seconds,
                        resume_grace_seconds=limits.resume_grace_seconds,
                    ),
                    resume_token=place.token(),
                    account=self.account,
                    resumed=resumed,
                )
            )
        )
        for out in kept:
            self.push(out)

    # ------------------------------------------------------------------ moving

    def export(self) -> dict[str, Any] | None:
        """Let this session's place go, for another process to adopt (:meth:`adopt`): the
        member leaves its room (see :meth:`~salon.core.hub.Hub.release`), this hub forgets
        it without ending it, and the session is closed; the transport is not touched.
        Returns the state to move, ``{"version": int, "token": str, "watching": bool}``
        (``token``: a resume token whose claims place it in no room), or None when there is
        nothing to move (not greeted, closed, or a newer connection took the place)."""
        place = self.place
        if (
            self.state is not SessionState.GREETED
            or place is None
            or place.transport is not self.transport
            or self.version is None
        ):
            return None
        watching = self.hub.watching(place)
        self.hub.release(place)
        state: dict[str, Any] = {
            "version": self.version,
            "token": place.token(),  # minted after leaving: it names no room
            "watching": watching,
        }
        self.state = SessionState.CLOSED
        return state

    async def adopt(self, state: dict[str, Any]) -> None:
        """Take up a place another process let go (:meth:`export`'s ``state``): rebuilt from
        the token's claims, in no room, its reachable name taken back under its member id
        (still claimed in the directory), attached to this session's transport and greeted
        with the version it spoke, without a ``welcome``. A member that watched presence
        watches again (and gets a fresh ``presence`` list). The session must be fresh
        (awaiting hello); its account, address and base URL are its own.

        Errors: ``resume_failed`` (nothing changed) when the state is malformed, the token
        is invalid, expired or for another account, the version is not spoken here, this hub
        already holds the place, or another member here holds its reachable name;
        ``already_greeted`` when the session is not fresh."""
        if self.state is not SessionState.AWAITING_HELLO:
            raise fail(ErrorCode.ALREADY_GREETED, "this connection already occupies a place")
        hub = self.hub
        token, version, watching = state.get("token"), state.get("version"), state.get("watching")
        if (
            not isinstance(token, str)
            or type(version) is not int
            or choose_version([version]) != version
            or not isinstance(watching, bool)
        ):
            raise fail(ErrorCode.RESUME_FAILED, "the moved session's state is not readable")
        claims = hub.tokens.verify(token, hub.clock.wall_ms() / 1000)
        account = None if self.account is None else self.account.username
        if claims is None or claims.account != account:
            raise fail(ErrorCode.RESUME_FAILED, "that resume token is not valid here: say hello")
        if hub.place(claims.member) is not None:
            raise fail(ErrorCode.RESUME_FAILED, "that place is already held here")
        place = hub.new_place(claims.member, claims.name, claims.account)
        try:
            hub.arrive(place, reachable=claims.reachable)
        except SalonError as exc:
            if exc.code is not ErrorCode.NAME_TAKEN:
                raise
            raise fail(
                ErrorCode.RESUME_FAILED, "someone else took that name meanwhile: say hello"
            ) from None
        if claims.reachable:
            hub.hold_account(place)  # it was the account's place where it came from
        place.attach(self.transport)
        self._occupy(place, version)
        if watching:
            await hub.watch_presence(place, True)

    async def _join(self, msg: Join) -> None:
        if self.account is None and not self._guests_may_join:
            raise fail(ErrorCode.SIGN_IN_REQUIRED, "sign in to join a room on this server")
        media = msg.media or MediaState()
        self._speaks_recording(media, "media.recording")
        await self.hub.join(self._member, msg.room, msg.password, media, msg.host_key, msg.invite)

    async def _leave(self, msg: Leave) -> None:
        self.hub.leave(self._member)

    async def _signal(self, msg: Signal) -> None:
        self.hub.signal(self._member, msg)

    async def _media(self, msg: SetMedia) -> None:
        self._speaks_recording(msg, "recording")
        media = MediaState(
            mic=msg.mic, camera=msg.camera, screen=msg.screen, recording=msg.recording
        )
        self.hub.set_media(self._member, media)

    def _speaks_recording(self, given: MediaState | SetMedia, field: str) -> None:
        """A v1 connection knows no ``recording`` field (docs/PROTOCOL.md §1.2): refuse it,
        as the codec refuses any unknown field."""
        if "recording" in given.model_fields_set and self._older_than(RECORDING_VERSION):
            raise fail(ErrorCode.BAD_MESSAGE, f"{field}: unknown field")

    def _older_than(self, version: int) -> bool:
        return self.version is None or self.version < version

    async def _chat(self, msg: Chat) -> None:
        await self.hub.chat(self._member, msg.text, msg.id)

    async def _history(self, msg: HistoryRequest) -> None:
        await self.hub.history(self._member, msg.since)

    async def _call(self, msg: Call) -> None:
        self.hub.call(self._member, msg.name)

    async def _call_accept(self, msg: CallAccept) -> None:
        self.hub.accept(self._member, msg.call)

    async def _call_decline(self, msg: CallDecline) -> None:
        self.hub.decline(self._member, msg.call)

    async def _call_cancel(self, msg: CallCancel) -> None:
        self.hub.cancel(self._member, msg.call)

    async def _presence_watch(self, msg: PresenceWatch) -> None:
        await self.hub.watch_presence(self._member, msg.watch)

    async def _ping(self, msg: Ping) -> None:
        self.push(Outgoing(ServerPong(ref=msg.ref)))

    async def _pong(self, msg: Pong) -> None:
        """Any frame proves the peer alive; the transport already noted it."""

    async def _ice_refresh(self, msg: IceRefresh) -> None:
        self.push(Outgoing(IceServers(ice_servers=self._ice_servers(self.id), ref=msg.ref)))

    async def _hand(self, msg: Hand) -> None:
        self.hub.hand(self._member, msg.raised)

    async def _react(self, msg: React) -> None:
        self.hub.react(self._member, msg.reaction)

    async def _room_lock(self, msg: RoomLock) -> None:
        self.hub.lock(self._member, msg.locked)

    async def _room_password(self, msg: RoomPassword) -> None:
        await self.hub.set_password(self._member, msg.password)

    async def _room_lobby(self, msg: RoomLobby) -> None:
        self.hub.set_lobby(self._member, msg.enabled)

    async def _lobby_admit(self, msg: LobbyAdmit) -> None:
        self.hub.admit(self._member, msg.id)

    async def _lobby_deny(self, msg: LobbyDeny) -> None:
        self.hub.deny(self._member, msg.id)

    async def _make_host(self, msg: MakeHost) -> None:
        self.hub.make_host(self._member, msg.id)

    async def _remove(self, msg: Remove) -> None:
        self.hub.remove(self._member, msg.id)

    async def _mute(self, msg: Mute) -> None:
        self.hub.mute(self._member, msg.id, msg.kind)

    async def _lower_hand(self, msg: LowerHand) -> None:
        self.hub.lower_hand(self._member, msg.id)

    async def _end_meeting(self, msg: EndMeeting) -> None:
        self.hub.end_meeting(self._member)

    async def _record(self, msg: Record) -> None:
        if self._older_than(RECORDING_VERSION):
            raise fail(ErrorCode.UNKNOWN_TYPE, "the message type is missing or unknown")
        self.hub.record(self._member, msg.on, self.base_url)

    def _speaks_sfu(self) -> None:
        if self._older_than(SFU_VERSION):
            raise fail(ErrorCode.UNKNOWN_TYPE, "the message type is missing or unknown")

    async def _sfu_publish(self, msg: SfuPublish) -> None:
        self._speaks_sfu()
        await self.hub.sfu_publish(self._member, msg.description.sdp, msg.screen)

    async def _sfu_subscribe(self, msg: SfuSubscribe) -> None:
        self._speaks_sfu()
        await self.hub.sfu_subscribe(self._member, msg.description.sdp)

    async def _sfu_candidate(self, msg: SfuCandidate) -> None:
        self._speaks_sfu()
        await self.hub.sfu_candidate(self._member, msg.pc, msg.candidate)

    async def _sfu_restart(self, msg: SfuRestart) -> None:
        self._speaks_sfu()
        self.hub.sfu_restart(self._member)

    async def _sfu_quality(self, msg: SfuQuality) -> None:
        self._speaks_sfu()
        await self.hub.sfu_quality(self._member, msg.member, msg.quality)


_HANDLERS: dict[type[Any], Callable[[Session, Any], Awaitable[None]]] = {
    Hello: Session._hello,
    Join: Session._join,
    Leave: Session._leave,
    Signal: Session._signal,
    SetMedia: Session._media,
    Chat: Session._chat,
    HistoryRequest: Session._history,
    Call: Session._call,
    CallAccept: Session._call_accept,
    CallDecline: Session._call_decline,
    CallCancel: Session._call_cancel,
    PresenceWatch: Session._presence_watch,
    Ping: Session._ping,
    Pong: Session._pong,
    IceRefresh: Session._ice_refresh,
    Hand: Session._hand,
    React: Session._react,
    RoomLock: Session._room_lock,
    RoomPassword: Session._room_password,
    RoomLobby: Session._room_lobby,
    LobbyAdmit: Session._lobby_admit,
    LobbyDeny: Session._lobby_deny,
    MakeHost: Session._make_host,
    Remove: Session._remove,
    Mute: Session._mute,
    LowerHand: Session._lower_hand,
    EndMeeting: Session._end_meeting,
    Record: Session._record,
    SfuPublish: Session._sfu_publish,
    SfuSubscribe: Session._sfu_subscribe,
    SfuCandidate: Session._sfu_candidate,
    SfuQuality: Session._sfu_quality,
    SfuRestart: Session._sfu_restart,
}
