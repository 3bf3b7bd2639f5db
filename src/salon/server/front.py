"""The front of a connection: where each client frame goes when several processes serve.

A :class:`Front` stands between a WebSocket held here (:class:`~salon.server.connection.
Connection`) and the member's session, which lives here (a local
:class:`~salon.core.session.Session`) or at another process, its **home**, the frames then
piped there over the bus (:mod:`salon.server.pipes`). Only three kinds of frame can change the
member's home, and only here, before any session sees them:

1. ``hello`` with ``resume`` (not greeted yet): the place lives at a live process H, or the
   token's room has a live home H: the connection is piped to H, which takes the place back
   or rebuilds it. Else it is handled here (the token's room, if any, is claimed for this
   process first). A fresh ``hello`` is always handled here.
2. ``join {room}``: the room's home (claimed for this process when it has none) is not the
   member's: the member **moves** there, and the join is handled there.
3. ``call {name}``: the reachable name's member lives at another live process than the
   member: the member moves there first, where the call then rings.

A move: later frames wait in a buffer (at most :data:`MOVE_BUFFER`; more closes 4002); the
current home **releases** the member (:meth:`~salon.core.session.Session.export`), the target
**opens** its session with that state and the frame that caused the move
(:meth:`~salon.core.session.Session.adopt`), then the buffered frames follow. A release or open
without an answer within :data:`MOVE_TIMEOUT` answers the frame ``bus_unavailable`` and closes
1012: the client resumes, and its token rebuilds what was released.

Whenever the bus cannot be reached for a frame (a lookup, a piped frame, a move that could
not start), the client gets the error ``bus_unavailable`` with the frame's ``ref`` and nothing
changes. A socket piped to a process that died, or when Redis comes back after an outage
(messages may have been lost), closes with 1012.

Frames are only peeked at (``json.loads``, and only when they may be one of the three) when
the bus is enabled; with one process alone connections use their sessions directly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections import deque
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from salon.core import validate
from salon.core.errors import SalonError
from salon.core.hub import Hub
from salon.core.place import Place
from salon.core.ratelimit import Pacer, TokenBucket
from salon.core.rooms import CALL_ROOM_PREFIX
from salon.core.session import Session, SessionState
from salon.protocol import CloseCode, ErrorCode, Outgoing, ProtocolError, decode_client
from salon.protocol.messages import Call, Error, Join, ServerPing
from salon.server.bus import BusDown
from salon.server.logs import new_id

if TYPE_CHECKING:
    from salon.server.connection import Connection
    from salon.server.pipes import Pipes

log = logging.getLogger(__name__)

MOVE_BUFFER: Final = 64
"""Client frames a connection may send while its member moves; one more closes it (4002)."""

MOVE_TIMEOUT: Final = 5.0
"""Seconds a release or an open may wait for its answer before the move is given up (the
frame is answered ``bus_unavailable`` and the socket closes with 1012)."""

UNAVAILABLE: Final = "the other server processes cannot be reached; try again"

RESTART_REASON: Final = "server restarting"

MOVES_PER_MINUTE: Final = 10
"""Moves a connection may cause a minute (a burst of as many); one more is ``rate_limited``
and nothing moves."""

_ROUTED_TYPE: Final = re.compile(r'"type"\s*:\s*"(?:hello|join|call)"')
_ESCAPED_TYPE: Final = re.compile(
    r'"[a-z]*\\u[0-9A-Fa-f]{4}(?:[a-z]|\\u[0-9A-Fa-f]{4})*"\s*:|"type"\s*:\s*"[a-z]*\\u'
)
"""A frame matching neither cannot be a hello, join or call, and is not parsed to find out:
the first finds the type spelt plainly; the second a key of letters spelt with a ``\\u``
escape (which may read ``type``), or a ``type`` whose value is spelt with one. Matching is
only a hint: a frame that matches is parsed to know."""


class PeerLost(Exception):
    """The process a move waited on died, or the bus lost messages: no answer will come."""


class _NoAnswer(Exception):
    """A release or open got no answer; ``unsent``: it could not even be published."""

    def __init__(self, unsent: bool) -> None:
        super().__init__()
        self.unsent = unsent


class _Plan(NamedTuple):
    """Handle ``frame`` at process ``target`` (maybe this one); ``release``: the member's
    current home lets it go first (a move); else it is not greeted anywhere yet."""

    target: str
    frame: str
    ref: str | int | None
    release: bool


class _Ending(NamedTuple):
    goodbye: bool
    unsent: list[Outgoing]
    dropped: bool


class Front:
    """One WebSocket held here: its member at home here (:attr:`home` None) or piped."""

    def __init__(
        self, pipes: Pipes, conn: Connection, session: Session, signed_session: str | None
    ) -> None:
        """``session``: a fresh session on ``conn`` (it greets the member here);
        ``signed_session``: the account session the handshake was signed in with."""
        self._pipes = pipes
        self.conn = conn
        self.session = session  # the local one; a new one after the member left and came back
        self.home: str | None = None  # the process the member lives at, None: here
        self._version: int | None = None  # the home's session's version, when piped
        self._buffer: deque[str | bytes] = deque()
        self._pump: asyncio.Task[None] | None = None  # a move and the frames after it
        self._ending: _Ending | None = None  # the socket ended while a move went on
        self._over = False
        limits = session.hub.limits
        now = session.hub.clock.monotonic()
        self._pacer = Pacer(
            limits.rate_per_second, limits.rate_burst, limits.rate_strikes_before_close, now
        )
        self._moves = TokenBucket(MOVES_PER_MINUTE / 60, MOVES_PER_MINUTE, now)
        account = session.account
        self._ctx: dict[str, Any] = {
            "account": None if account is None else account.model_dump(mode="json"),
            "session": signed_session,
            "guests": not pipes.state.settings.require_sign_in,
            "address": session.address,
            "base_url": session.base_url,
        }

    @property
    def moving(self) -> bool:
        """A move is under way (its target may be answering before the front knows it)."""
        return self._pump is not None

    # ------------------------------------------------------------------ as a Receiver

    @property
    def hub(self) -> Hub:
        return self.session.hub

    @property
    def version(self) -> int | None:
        return self.session.version if self.home is None else self._version

    @property
    def place(self) -> Place | None:
        return self.session.place if self.home is None else None

    def silence(self) -> None:
        if self.home is None:
            self.session.silence()
        else:
            self.conn.send(Outgoing(ServerPing()))

    async def receive(self, frame: str | bytes) -> None:
        """Handle one frame: here, piped to the home, or by a move (then in the background,
        later frames buffered meanwhile)."""
        if self._pump is not None:
            if len(self._buffer) >= MOVE_BUFFER:
                self._buffer.clear()
                self.conn.close(CloseCode.SLOW_CONSUMER, "too many frames while moving")
                return
            self._buffer.append(frame)
            return
        plan = await self._route(frame)
        if plan is not None and not self._over:  # the socket may have ended meanwhile
            self._pump = self._pipes.spawn(self._run(plan))

    def closed(
        self,
        *,
        goodbye: bool = True,
        unsent: list[Outgoing] | None = None,
        dropped: bool = False,
    ) -> None:
        """The socket ended (or its account session did: a goodbye): the home hears it."""
        if self._over or self._ending is not None:
            return
        if self._pump is not None:  # told once the move is over, to wherever it led
            self._ending = _Ending(goodbye, unsent or [], dropped)
            return
        self._finish(goodbye, unsent or [], dropped)

    def _finish(self, goodbye: bool, unsent: list[Outgoing], dropped: bool) -> None:
        self._over = True
        pipes = self._pipes
        if pipes.fronts.get(self.conn.id) is self:
            del pipes.fronts[self.conn.id]
        home = self.home
        if home is None:
            self.session.closed(goodbye=goodbye, unsent=unsent, dropped=dropped)
            return
        self._set_home(None)
        envelope = {
            "k": "gone",
            "f": pipes.proc,
            "c": self.conn.id,
            "goodbye": goodbye,
            "unsent": [out.text for out in unsent],
            "dropped": dropped,
        }
        # Lost when the bus is down: the home then loses the connection when it is back.
        pipes.bus.send(home, envelope)

    def restart(self) -> None:
        """The pipe to the home cannot be trusted (it died, or the bus lost messages): close
        with 1012; the client resumes."""
        self.conn.close(CloseCode.SERVICE_RESTART, RESTART_REASON)

    # ------------------------------------------------------------------ routing

    async def _route(self, frame: str | bytes) -> _Plan | None:
        """Handle ``frame`` where the member lives, or say where it must go first."""
        routed = isinstance(frame, str) and _may_route(frame)
        # Frames that cross the bus or cost lookups are paced here, before they do; the
        # others reach the local session, which paces them itself.
        if (routed or self.home is not None) and not self._within_rate():
            return None
        peeked = _peek(frame) if routed and isinstance(frame, str) else None
        if peeked is None:
            await self._deliver(frame)
            return None
        kind, body = peeked
        assert isinstance(frame, str)
        ref = _usable_ref(body.get("ref"))
        here = self._pipes.proc
        current = self.home or here
        try:
            if kind == "hello":
                if self.version is None:
                    return await self._route_hello(frame, body, ref)
                target = current  # already greeted: answered where it lives
            elif self.version is None:
                target = current  # not greeted: hello_required, where it is
            elif kind == "join":
                target = await self._room_home(frame, current)
            else:
                target = await self._name_home(frame, current)
        except BusDown:
            self._unavailable(ref)
            return None
        if target == current:
            await self._deliver(frame)
            return None
        if not self._moves.take(self.hub.clock.monotonic()):
            self._rate_limited(ref)
            return None
        return _Plan(target, frame, ref, release=True)

    async def _route_hello(
        self, frame: str, body: dict[str, Any], ref: str | int | None
    ) -> _Plan | None:
        """A hello while not greeted: fresh, or a resume of a place here, is handled here;
        a resume of a place (or a room) living elsewhere is piped there."""
        pipes = self._pipes
        if self.home is not None:
            # Piped after a resume that failed there: that session is no one's now.
            self._finish_remote(self.home)
        self._fresh_session()
        hub = self.hub
        token = body.get("resume")
        claims = None
        if isinstance(token, str):
            claims = hub.tokens.verify(token, hub.clock.wall_ms() / 1000)
        account = None if self.session.account is None else self.session.account.username
        if claims is None or claims.account != account or hub.place(claims.member) is not None:
            await self._deliver(frame)  # fresh, refused, or its place is here
            return None
        room = claims.room
        try:
            # Where the place lives first: one living elsewhere is taken back there, never
            # rebuilt here because its room is here too.
            target = await pipes.bus.place_home(claims.member)
            if target is None and room is not None:
                if self._holds(room):
                    target = pipes.proc
                else:
                    target = await pipes.bus.claim_room(room)  # rebuilt where its room lives
        except BusDown:
            self._unavailable(ref)
            return None
        if target is None or target == pipes.proc:
            await self._deliver(frame)  # rebuilt here (its room, if any, now claimed here)
            if self.session.version is not None and self.home is None:
                await pipes.claim_place(claims.member)  # found here at once
            return None
        return _Plan(target, frame, ref, release=False)

    def _holds(self, room: str) -> bool:
        """Whether this process holds ``room`` with someone in it (its home, then)."""
        held = self.hub.rooms.get(room)
        return held is not None and bool(held.seats or held.waiting)

    async def _room_home(self, frame: str, current: str) -> str:
        """Where a ``join`` is handled: at the room's home, claimed for this process when it
        has none. A join the session would refuse anyway is handled where the member is."""
        try:
            msg = decode_client(frame, self.hub.limits)
        except ProtocolError:
            return current
        if not isinstance(msg, Join) or not validate.ROOM_ID.fullmatch(msg.room):
            return current
        if msg.room.startswith(CALL_ROOM_PREFIX):
            return current  # a call's room is joined by accepting the call, not by a join
        if self._holds(msg.room):
            return self._pipes.proc
        return await self._pipes.bus.claim_room(msg.room)

    async def _name_home(self, frame: str, current: str) -> str:
        """Where a ``call`` is handled: where the callee lives (else where the caller is,
        which answers ``not_online``)."""
        hub = self.hub
        try:
            msg = decode_client(frame, hub.limits)
            if not isinstance(msg, Call):
                return current
            key = validate.name_key(validate.display_name(msg.name, hub.limits.max_name_chars))
        except (ProtocolError, SalonError):
            return current
        here = self._pipes.proc
        if self.home is None and any(held == key for held, _ in hub.held_names()):
            return here  # both here: no bus needed
        bus = self._pipes.bus
        member = await bus.name_member(key)
        if member is None:
            return current
        if hub.place(member) is not None:
            return here
        return await bus.place_home(member) or current

    # ------------------------------------------------------------------ delivering

    async def _deliver(self, frame: str | bytes) -> None:
        """Hand ``frame`` to the member's session, here or at its home."""
        home = self.home
        if home is None:
            await self.session.receive(frame)
            return
        if not isinstance(frame, str):
            self._error(ErrorCode.BINARY_UNSUPPORTED, "frames are JSON text, not binary", None)
            return
        pipes = self._pipes
        envelope = {"k": "frame", "f": pipes.proc, "c": self.conn.id, "t": frame}
        if not pipes.bus.send(home, envelope):
            self._unavailable(_ref_of(frame))

    def _unavailable(self, ref: str | int | None) -> None:
        self._error(ErrorCode.BUS_UNAVAILABLE, UNAVAILABLE, ref)

    def _within_rate(self) -> bool:
        """The front's :class:`~salon.core.ratelimit.Pacer`, as :meth:`Session._within_rate
        <salon.core.session.Session._within_rate>` (same limits, strikes, 4003)."""
        now = self.hub.clock.monotonic()
        if self._pacer.allow(now):
            return True
        self._rate_limited(None, now)
        return False

    def _rate_limited(self, ref: str | int | None, now: float | None = None) -> None:
        """``rate_limited`` (at most once a second) and a strike; enough strikes close 4003."""
        if now is None:
            now = self.hub.clock.monotonic()
        if self._pacer.warn(now):
            self._error(ErrorCode.RATE_LIMITED, "too many messages; slow down", ref)
        if self._pacer.strike(now):
            self.conn.close(CloseCode.RATE_ABUSE, "kept sending frames it should not")

    def _error(self, code: ErrorCode, message: str, ref: str | int | None) -> None:
        self.hub.observer.error(code)
        self.conn.send(Outgoing(Error(code=code, message=message, ref=ref)))

    # ------------------------------------------------------------------ moving

    async def _run(self, plan: _Plan) -> None:
        """The move ``plan``, then the frames buffered meanwhile (each may move again)."""
        ok = False
        try:
            ok = await self._move(plan)
            while ok and self._buffer and self._ending is None:
                following = await self._route(self._buffer.popleft())
                if following is not None:
                    ok = await self._move(following)
        except Exception:
            log.exception("a move failed")
            self.restart()
        finally:
            self._pump = None
            if not ok:
                self._buffer.clear()
            ending = self._ending
            if ending is not None:
                self._finish(*ending)

    async def _move(self, plan: _Plan) -> bool:
        """Release the member where it lives (when ``plan.release``), open it at
        ``plan.target`` with ``plan.frame``. False: given up, the socket closing (1012)."""
        pipes = self._pipes
        here = pipes.proc
        state: dict[str, Any] | None = None
        if plan.release:
            if self.home is None:
                if not pipes.bus.healthy:
                    self._unavailable(plan.ref)  # nothing changed
                    return True
                member = self.session.id
                state = self.session.export()
                if state is not None:
                    await pipes.release_place(member)  # before the target claims it
            else:
                release = {"k": "release"}
                try:
                    answer = await self._ask(self.home, release)
                except _NoAnswer as failed:
                    self._unavailable(plan.ref)
                    if failed.unsent:
                        return True  # nothing changed
                    self.restart()
                    return False
                state = answer.get("state")
                self._set_home(None)
                if state is None:  # nothing to move (its session there had ended): resume
                    self._unavailable(plan.ref)
                    self.restart()
                    return False
        if plan.target == here:
            session = self._fresh_session()
            if state is not None:
                try:
                    await session.adopt(state)
                except SalonError as exc:
                    log.warning("a moved session could not be adopted: %s", exc.message)
                    self.restart()
                    return False
                await pipes.claim_place(session.id)
                pipes.bus.refresh_soon()
            await session.receive(plan.frame)
            return True
        opening = {"k": "open", "ctx": self._ctx, "state": state, "t": plan.frame}
        try:
            answer = await self._ask(plan.target, opening, home=True)
        except _NoAnswer as failed:
            self._unavailable(plan.ref)
            if failed.unsent and not plan.release:
                return True  # a hello not handled anywhere: nothing changed
            self.restart()  # released, or maybe opened: the client resumes
            return False
        version = answer.get("v")
        self._version = version if type(version) is int else None
        return True

    async def _ask(
        self, peer: str, envelope: dict[str, Any], *, home: bool = False
    ) -> dict[str, Any]:
        """Send a release or open to ``peer`` and wait for its answer; ``home``: ``peer`` is
        the member's home from now on (frames sent after follow the open)."""
        pipes = self._pipes
        move_id = new_id()
        envelope.update(f=pipes.proc, c=self.conn.id, id=move_id)
        answer = pipes.expect(self.conn.id, move_id, peer)
        if not pipes.bus.send(peer, envelope):
            pipes.forget(self.conn.id, move_id)
            raise _NoAnswer(unsent=True)
        if home:
            self._set_home(peer)
        try:
            async with asyncio.timeout(MOVE_TIMEOUT):
                return await answer
        except (TimeoutError, PeerLost):
            raise _NoAnswer(unsent=False) from None
        finally:
            pipes.forget(self.conn.id, move_id)

    def _fresh_session(self) -> Session:
        """The local session, new if the old one was used (the member lived here before)."""
        old = self.session
        if old.state is not SessionState.AWAITING_HELLO:
            self.session = Session(
                old.hub,
                self.conn,
                self._pipes.state.ice_servers,
                account=old.account,
                guests_may_join=self._ctx["guests"],
                address=old.address,
                base_url=old.base_url,
            )
        return self.session

    def _finish_remote(self, home: str) -> None:
        """Stop piping to ``home`` (whose session never greeted): it forgets the connection."""
        pipes = self._pipes
        envelope = {"k": "gone", "f": pipes.proc, "c": self.conn.id, "goodbye": False}
        pipes.bus.send(home, envelope)
        self._set_home(None)
        self._version = None

    def _set_home(self, proc: str | None) -> None:
        if proc == self.home:
            return
        if self.home is not None:
            self._pipes.unwatch(self.home)
        self.home = proc
        if proc is not None:
            self._pipes.watch(proc)


def _may_route(frame: str) -> bool:
    """Whether ``frame`` may be a ``hello``, ``join`` or ``call`` (else it surely is not)."""
    return _ROUTED_TYPE.search(frame) is not None or (
        "\\u" in frame and _ESCAPED_TYPE.search(frame) is not None
    )


def _peek(frame: str) -> tuple[str, dict[str, Any]] | None:
    """The type and body of a ``hello``, ``join`` or ``call`` frame; None for any other."""
    if not _may_route(frame):
        return None
    try:
        body = json.loads(frame)
    except (ValueError, RecursionError):
        return None
    if type(body) is not dict:
        return None
    kind = body.get("type")
    if kind == "hello" or kind == "join" or kind == "call":
        return kind, body
    return None


def _ref_of(frame: str) -> str | int | None:
    try:
        body = json.loads(frame)
    except (ValueError, RecursionError):
        return None
    return _usable_ref(body.get("ref")) if type(body) is dict else None


def _usable_ref(ref: object) -> str | int | None:
    """A ``ref`` an error may carry back (as the protocol allows it), else None."""
    if isinstance(ref, str) and len(ref) <= 64:
        return ref
    if isinstance(ref, int) and not isinstance(ref, bool) and abs(ref) <= 2**53:
        return ref
    return None
