"""The pipes: members living in one process while their WebSockets are held by another.

When several Salon processes serve one deployment (``settings.redis_url``; docs/SCALING.md),
the **front** of a connection is the process holding its WebSocket and the **home** of a member
the process holding its place and :class:`~salon.core.session.Session`. They are one process
unless the member must be with others elsewhere: then it is **piped**, the front forwarding
each client frame (its text, unchanged) to the home over the bus (:mod:`salon.server.bus`),
the home sending the session's pushes back (encoded text) for the front to write. The front
alone decides, frame by frame, where a member lives (:mod:`salon.server.front`); this module
is the switchboard both sides share and the home side:

- :class:`Pipes`, the bus's handler: envelopes in, by kind; the fronts of this process by
  connection id; the remote connections whose members live here; which peers are watched
  (a front's home, a home's fronts: their death must be heard of); the keys this process
  owns (``owned``); what a peer's death, a Redis outage and its end, and a drain do to pipes;
  the idle deadline of the members piped here (:meth:`Pipes.tick`, from the sweep).
- :class:`Remote`, one connection fronted elsewhere whose member lives here: a bounded inbox
  and a task feeding the session in order, and :class:`RemoteTransport`, the session's
  transport (pushes become ``out`` envelopes, a close a ``close`` envelope).

Envelopes (JSON objects; ``c`` is the front's connection id, ``f`` the front process):

- front to home: ``open {f, c, id, ctx, state, t}`` (a session starts here with the frame
  ``t``; ``state`` is a moved session's, see :meth:`Session.export`), ``frame {f, c, t}``,
  ``gone {f, c, goodbye, unsent, dropped}``, ``release {f, c, id}``;
- home to front: ``out {from, c, t}``, ``close {from, c, code, reason}`` (``from``: the
  home; a front that does not pipe ``c`` to it answers ``gone``, so a ``gone`` lost on the
  way leaves no session behind), ``released {c, id, state}`` (``state`` null: nothing to
  move), ``opened {c, id, v}`` (``v``: the session's protocol version once greeted, else null);
- the server API (:class:`salon.server.api.MeetingDesk`), any process to a room's home or to
  every process: ``meeting {from, c: "api", id, op, room, member}`` (``op``: ``list``,
  ``show``, ``remove``, ``end``), answered ``meeting_answer {c: "api", id, result, error}``;
- broadcast: ``presence {from, name, online, reconnecting}`` (the directory's); ``reset
  {from}`` (a front whose messages may have been lost: its remote connections are lost
  everywhere); ``signed_out {from, session}`` and ``sessions_ended {from, account, keep}``
  (account sessions ended: their sockets close with 4006 wherever they are held).

With a :class:`~salon.server.bus.LocalBus` (one process) nothing here is used on any path:
connections hand their frames to their sessions directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, NamedTuple

from salon.core.errors import SalonError
from salon.core.session import Session
from salon.protocol import CloseCode, Outgoing
from salon.protocol.messages import PresenceChanged, SignedInAccount
from salon.server.bus import Bus, Owned
from salon.server.connection import IDLE_REASON, Connection
from salon.server.front import RESTART_REASON, Front, PeerLost
from salon.server.redisbus import BusDown

if TYPE_CHECKING:
    from salon.server.state import ServerState

log = logging.getLogger(__name__)


class _Waiting(NamedTuple):
    peer: str  # the process that is to answer
    future: asyncio.Future[dict[str, Any]]


class Pipes:
    """The bus handler of one process: its fronts and the remote connections it is home to."""

    def __init__(self, state: ServerState, bus: Bus) -> None:
        self.state = state
        self.bus = bus
        self.proc = bus.proc
        self.fronts: dict[str, Front] = {}  # connection id -> the front of a socket held here
        self.remotes: dict[tuple[str, str], Remote] = {}  # (front proc, connection id)
        # (connection id, move id), or ("api", request id) for the server API's meetings
        self._waiting: dict[tuple[str, str], _Waiting] = {}
        self._watched: Counter[str] = Counter()  # peers, by how many pipes need them
        self._no_remotes = asyncio.Event()
        self._no_remotes.set()
        self._tasks: set[asyncio.Task[None]] = set()  # moves, fresh presence lists
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "open": self._open,
            "frame": self._frame,
            "gone": self._gone,
            "release": self._release,
            "out": self._out,
            "close": self._close,
            "released": self._answer,
            "opened": self._answer,
            "meeting_answer": self._answer,
            "presence": self._presence,
            "reset": self._reset,
            "signed_out": self._signed_out,
            "sessions_ended": self._sessions_ended,
        }

    def on(self, kind: str, handler: Callable[[dict[str, Any]], None]) -> None:
        """Hand envelopes of ``kind`` to ``handler`` (the server API's ``meeting``, see
        :class:`salon.server.api.MeetingDesk`)."""
        self._handlers[kind] = handler

    # ------------------------------------------------------------------ life

    async def start(self) -> None:
        await self.bus.start(
            self.handle,
            self.peer_lost,
            self.outage,
            self.restored,
            self.owned,
            on_room_lost=self.room_lost,
        )

    async def stop(self) -> None:
        """Stop the bus (it sends what is queued first); end the remote connections' tasks."""
        await self.bus.stop()
        for remote in list(self.remotes.values()):
            remote.cancel()
        for task in list(self._tasks):
            task.cancel()

    def front(self, conn: Connection, session: Session, signed_session: str | None) -> Front:
        """The front of a connection just accepted here, its member at home here for now."""
        front = Front(self, conn, session, signed_session)
        self.fronts[conn.id] = front
        return front

    def owned(self) -> Owned:
        """What this process holds, for the bus to re-assert at each heartbeat."""
        hub = self.state.hub
        places = [place.id for place in hub.local_places()]
        return Owned(places, hub.held_rooms(), hub.held_names())

    async def claim_place(self, member_id: str) -> None:
        """A place was adopted or rebuilt here: its ``member:`` key names this process at
        once (before the front hears ``opened``), so lookups elsewhere find it here rather
        than at its old home. Never raises: failing that, the heartbeat writes it (once the
        old key is no live process's)."""
        try:
            holder = await self.bus.claim_place(member_id)
        except BusDown as e:
            log.warning("the place of %s is claimed at the next heartbeat (%s)", member_id, e)
            return
        if holder != self.proc:
            log.warning("the place of %s is still held by process %s", member_id, holder)

    async def release_place(self, member_id: str) -> None:
        """A place was let go here (a move): its ``member:`` key no longer names this
        process, before the new home claims it. Never raises: failing that, the key expires
        (this process no longer re-writes it)."""
        try:
            await self.bus.release_place(member_id)
        except BusDown as e:
            log.warning("the place of %s is let go when its key expires (%s)", member_id, e)

    # ------------------------------------------------------------------ peers

    def watch(self, proc: str) -> None:
        self._watched[proc] += 1
        if self._watched[proc] == 1:
            self.bus.watch(proc)

    def unwatch(self, proc: str) -> None:
        self._watched[proc] -= 1
        if self._watched[proc] <= 0:
            del self._watched[proc]
            self.bus.unwatch(proc)

    def expect(self, conn_id: str, move_id: str, peer: str) -> asyncio.Future[dict[str, Any]]:
        """A future for the ``released`` or ``opened`` answering move ``move_id`` (or the
        ``meeting_answer`` to request ``move_id`` of the server API, ``conn_id`` "api")."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[conn_id, move_id] = _Waiting(peer, future)
        return future

    def forget(self, conn_id: str, move_id: str) -> None:
        self._waiting.pop((conn_id, move_id), None)

    def _fail_waiting(self, peer: str | None) -> None:
        """Answers from ``peer`` (None: from anyone) will not come."""
        for key, waiting in list(self._waiting.items()):
            if peer is None or waiting.peer == peer:
                del self._waiting[key]
                if not waiting.future.done():
                    waiting.future.set_exception(PeerLost())

    def peer_lost(self, proc: str) -> None:
        """``proc`` died: the sockets piped to it close with 1012 (their clients resume, which
        rebuilds their places from their tokens); the members living here whose sockets it
        held are lost connections (away for the grace window)."""
        log.warning("process %s is gone: its pipes are closed", proc)
        self._fail_waiting(proc)
        for front in list(self.fronts.values()):
            if front.home == proc:
                front.restart()
        for remote in list(self.remotes.values()):
            if remote.front == proc:
                remote.lose()

    def outage(self) -> None:
        """Redis cannot be reached: moves under way will get no answer."""
        log.warning("the bus is down: moves and piped frames fail until it is back")
        self._fail_waiting(None)

    def restored(self) -> None:
        """Redis answers again, but messages may have been lost meanwhile: every piped socket
        closes with 1012 (its client resumes and gets what its home kept), every remote
        connection is lost (its member away until it resumes), and every presence watcher
        gets a fresh ``presence`` list."""
        log.warning(
            "the bus is back: %d piped sockets restart, %d remote members are away",
            sum(front.home is not None for front in self.fronts.values()),
            len(self.remotes),
        )
        self._fail_waiting(None)
        # A gone of ours may have been lost: every home forgets the connections we front.
        self.bus.broadcast({"k": "reset", "from": self.proc})
        for front in list(self.fronts.values()):
            if front.home is not None:
                front.restart()
        for remote in list(self.remotes.values()):
            remote.lose()
        self.spawn(self._fresh_presence())

    async def _fresh_presence(self) -> None:
        hub = self.state.hub
        for place in hub.local_places():
            if hub.watching(place):
                await hub.watch_presence(place, True)

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``work`` in the background (a front's move, fresh presence lists); cancelled
        at :meth:`stop`."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ drain

    def drain(self, notice: Outgoing, step: float) -> None:
        """Draining: the members living here whose sockets other processes hold are told
        (``notice``) and closed with 1012, one every ``step`` seconds, as the local ones."""
        loop = asyncio.get_running_loop()
        for i, remote in enumerate(list(self.remotes.values())):
            remote.transport.send(notice)
            loop.call_later(
                i * step, remote.transport.close, CloseCode.SERVICE_RESTART, RESTART_REASON
            )

    def tick(self, now: float, idle_seconds: float) -> None:
        """The home's share of the connections' deadlines (``now``: the clock's monotonic
        seconds): a member living here whose socket another process holds, greeted and
        unoccupied (:meth:`~salon.core.hub.Hub.occupied`) for ``idle_seconds``, is closed
        with 4000 as a local one is (:meth:`~salon.server.connection.Connection.tick`),
        through its front; its place is kept for a resume. The other deadlines (no hello in
        time, ping on silence, dead peer) are the front's, which reads the socket."""
        for remote in list(self.remotes.values()):
            remote.tick(now, idle_seconds)

    async def remotes_gone(self) -> None:
        """Return once no remote connection is left."""
        await self._no_remotes.wait()

    # ------------------------------------------------------------------ envelopes

    async def handle(self, envelope: dict[str, Any]) -> None:
        """The bus's handler: one envelope, by its kind ``k``. Never raises."""
        kind = envelope.get("k")
        handler = self._handlers.get(kind) if isinstance(kind, str) else None
        if handler is None:
            log.warning("an envelope of unknown kind %r was dropped", kind)
            return
        try:
            handler(envelope)
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("a malformed %s envelope was dropped: %r", kind, exc)
        except Exception:
            log.exception("a %s envelope could not be handled", kind)

    # home side

    def _open(self, envelope: dict[str, Any]) -> None:
        key = _text(envelope, "f"), _text(envelope, "c")
        old = self.remotes.pop(key, None)
        if old is not None:  # the front opened anew without telling: the old one is lost
            old.lose()
            self.unwatch(old.front)
        remote = Remote(self, key[0], key[1])
        self.remotes[key] = remote
        self._no_remotes.clear()
        self.watch(remote.front)
        remote.put("open", envelope)

    def _frame(self, envelope: dict[str, Any]) -> None:
        front, conn = _text(envelope, "f"), _text(envelope, "c")
        remote = self.remotes.get((front, conn))
        if remote is None:
            # Its session here ended (lost): the front closes the socket, the client resumes.
            closing = _close_envelope(self.proc, conn, CloseCode.SERVICE_RESTART, RESTART_REASON)
            self.bus.send(front, closing)
            return
        remote.put("frame", _text(envelope, "t"))

    def _gone(self, envelope: dict[str, Any]) -> None:
        remote = self.remotes.get((_text(envelope, "f"), _text(envelope, "c")))
        if remote is not None:
            remote.put("gone", envelope)

    def _release(self, envelope: dict[str, Any]) -> None:
        front, conn = _text(envelope, "f"), _text(envelope, "c")
        remote = self.remotes.get((front, conn))
        if remote is None:
            answer = {"k": "released", "c": conn, "id": envelope["id"], "state": None}
            self.bus.send(front, answer)
            return
        remote.put("release", envelope)

    def ended(self, remote: Remote) -> None:
        """``remote`` is over: forget it, and its front unless another pipe needs it."""
        key = remote.front, remote.conn
        if self.remotes.get(key) is remote:
            del self.remotes[key]
            self.unwatch(remote.front)
            if not self.remotes:
                self._no_remotes.set()

    # front side

    def _piping(self, envelope: dict[str, Any]) -> Front | None:
        """The front of the ``out`` or ``close`` ``envelope``'s connection, if it pipes to
        the home that sent it; else that home is told the connection is ``gone`` (its own
        ``gone`` was lost, or it never knew): it must not keep a session no socket reads."""
        home, conn = _text(envelope, "from"), _text(envelope, "c")
        front = self.fronts.get(conn)
        if front is not None and front.home == home:
            return front
        if front is None or not front.moving:  # a move under way may be opening there
            self.bus.send(home, {"k": "gone", "f": self.proc, "c": conn, "goodbye": False})
        return None

    def _out(self, envelope: dict[str, Any]) -> None:
        front = self._piping(envelope)
        if front is not None:
            front.conn.send(Outgoing.encoded(_text(envelope, "t")))

    def _close(self, envelope: dict[str, Any]) -> None:
        front = self._piping(envelope)
        if front is not None:
            code = int(envelope["code"])
            reason = str(envelope.get("reason", ""))
            try:
                front.conn.close(CloseCode(code), reason)
            except ValueError:  # a code this version does not name: 1012, the client resumes
                front.conn.close(CloseCode.SERVICE_RESTART, reason)

    def _answer(self, envelope: dict[str, Any]) -> None:
        waiting = self._waiting.pop((_text(envelope, "c"), _text(envelope, "id")), None)
        if waiting is not None and not waiting.future.done():
            waiting.future.set_result(envelope)

    def _presence(self, envelope: dict[str, Any]) -> None:
        change = PresenceChanged(
            name=_text(envelope, "name"),
            online=bool(envelope["online"]),
            reconnecting=bool(envelope.get("reconnecting", False)),
        )
        self.state.hub.on_remote_presence(change)

    # broadcasts

    def _reset(self, envelope: dict[str, Any]) -> None:
        """A front's messages may have been lost: the connections it fronts are lost here."""
        front = _text(envelope, "from")
        for remote in list(self.remotes.values()):
            if remote.front == front:
                remote.lose()

    def _signed_out(self, envelope: dict[str, Any]) -> None:
        self.state.close_session(_text(envelope, "session"))

    def _sessions_ended(self, envelope: dict[str, Any]) -> None:
        self.state.close_sessions(_text(envelope, "account"), _text(envelope, "keep"))

    def room_lost(self, room: str) -> None:
        """``room``, held here, is now another live process's (both claimed it while Redis
        was in trouble): its members here are handed over. Their sockets close with 1012
        first (so nothing of the hand-over reaches them: no ``member_left``), then their
        places are let go as in a move (:meth:`~salon.core.session.Session.export`; away
        ones by :meth:`~salon.core.hub.Hub.release`) and their ``member:`` keys released:
        each client resumes, finds no home for its place and is rebuilt where the room
        lives now (its token names the room). The room, empty, is forgotten here."""
        hub = self.state.hub
        held = hub.rooms.get(room)
        if held is None:
            return
        places = [hub.place(member) for member in (*held.seats, *held.waiting)]
        members = {place.id: place for place in places if place is not None}
        if not members:
            return
        log.warning("room %s is now another process's: %d members move there", room, len(members))
        sessions: list[Session] = []
        for front in list(self.fronts.values()):
            place = front.place
            if place is not None and place.id in members:
                front.restart()
                sessions.append(front.session)
        for remote in list(self.remotes.values()):
            session = remote.session
            if session is not None and session.id in members:
                remote.transport.close(CloseCode.SERVICE_RESTART, RESTART_REASON)
                sessions.append(session)
        for session in sessions:
            session.export()
        for place in members.values():
            if hub.place(place.id) is place:  # away, or its session could not export it
                hub.release(place)
            self.spawn(self.release_place(place.id))


class Remote:
    """A connection another process fronts, whose member lives here: the envelopes for it
    wait in a bounded inbox (``outbox_messages`` frames; more closes it with 4002), one task
    feeding them to its session in order."""

    def __init__(self, pipes: Pipes, front: str, conn: str) -> None:
        self.pipes = pipes
        self.front = front  # the process holding the socket
        self.conn = conn  # its connection id there
        self.transport = RemoteTransport(self)
        self.session: Session | None = None
        self.closing = False  # a close was sent (or could not be): frames are ignored now
        self.dropped = False  # pushes were discarded since
        self.idle_since: float | None = None  # greeted and unoccupied since (monotonic)
        self._inbox: deque[tuple[str, Any]] = deque()
        self._frames = 0  # frames in the inbox
        self._wake = asyncio.Event()
        self._over = False
        self._task = asyncio.create_task(self._run())

    def put(self, kind: str, value: Any) -> None:
        if self._over:
            return
        if kind == "frame":
            if self.closing:
                return  # as a socket stops being read once the server closes it
            if self._frames >= self.pipes.state.settings.limits.outbox_messages:
                self.transport.close(CloseCode.SLOW_CONSUMER, "too many frames waiting")
                return
            self._frames += 1
        self._inbox.append((kind, value))
        self._wake.set()

    def tick(self, now: float, idle_seconds: float) -> None:
        """Close the connection (4000, through its front) once its member has been greeted
        and unoccupied for ``idle_seconds``; see :meth:`Pipes.tick`."""
        session = self.session
        if session is None or self.closing or self._over:
            return
        place = session.place
        if (
            session.version is None
            or place is None
            or place.transport is not self.transport
            or self.pipes.state.hub.occupied(place)
        ):
            self.idle_since = None
            return
        if self.idle_since is None:
            self.idle_since = now
        if now - self.idle_since >= idle_seconds:
            self.transport.close(CloseCode.HANDSHAKE_TIMEOUT, IDLE_REASON)

    def lose(self) -> None:
        """The front is gone, or messages to or from it may have been lost: the connection
        is lost for this home (its member away), after the frame being handled, if any."""
        if self._over:
            return
        self.closing = True
        self._inbox.clear()
        self._frames = 0
        self._inbox.append(("lost", None))
        self._wake.set()

    def cancel(self) -> None:
        self._over = True
        self._task.cancel()
        self.pipes.ended(self)

    async def _run(self) -> None:
        try:
            while not self._over:
                await self._wake.wait()
                self._wake.clear()
                while self._inbox and not self._over:
                    kind, value = self._inbox.popleft()
                    await self._step(kind, value)
        except Exception:
            log.exception("a remote connection failed")
            if self.session is not None:
                self.session.closed(goodbye=False, dropped=True)
        finally:
            self._over = True
            self.pipes.ended(self)

    async def _step(self, kind: str, value: Any) -> None:
        session = self.session
        if kind == "frame":
            self._frames -= 1
            if session is not None:
                await session.receive(value)
        elif kind == "open":
            await self._open(value)
        elif kind == "gone":
            self._over = True
            if session is not None:
                unsent = [Outgoing.encoded(text) for text in value.get("unsent") or ()]
                session.closed(
                    goodbye=bool(value.get("goodbye")),
                    unsent=unsent,
                    dropped=bool(value.get("dropped")) or self.dropped,
                )
        elif kind == "release":
            self._over = True
            member = session.id if session is not None else ""
            state = session.export() if session is not None else None
            if session is not None and state is None:
                session.closed(goodbye=False, dropped=True)  # not movable: lost here
            if state is not None:
                await self.pipes.release_place(member)  # before the new home claims it
            answer = {"k": "released", "c": self.conn, "id": value["id"], "state": state}
            self.pipes.bus.send(self.front, answer)
        elif kind == "lost":
            self._over = True
            if session is not None:
                session.closed(goodbye=False, dropped=True)

    async def _open(self, envelope: dict[str, Any]) -> None:
        pipes = self.pipes
        state = pipes.state
        ctx = envelope.get("ctx") or {}
        account = ctx.get("account")
        session = Session(
            state.hub,
            self.transport,
            state.ice_servers,
            account=None if account is None else SignedInAccount.model_validate(account),
            guests_may_join=bool(ctx.get("guests", True)),
            address=_optional(ctx.get("address")),
            base_url=_optional(ctx.get("base_url")),
        )
        self.session = session
        moved = envelope.get("state")
        if moved is not None:
            try:
                await session.adopt(moved)
            except SalonError as exc:
                # Not expected (the state comes from a release a moment ago): the client
                # resumes, and its token rebuilds the place where its room is.
                log.warning("a moved session could not be adopted: %s", exc.message)
                self.transport.close(CloseCode.SERVICE_RESTART, RESTART_REASON)
            else:
                # Found here before the frame that moved it is answered (a join, a call).
                await pipes.claim_place(session.id)
        text = envelope.get("t")
        if isinstance(text, str) and not self.closing:
            await session.receive(text)
        answer = {"k": "opened", "c": self.conn, "id": envelope["id"], "v": session.version}
        pipes.bus.send(self.front, answer)  # at once after the frame's answers, as they go
        if session.version is not None:
            if moved is None:  # a resume greeted (maybe rebuilt) here: found here now
                await pipes.claim_place(session.id)
            pipes.bus.refresh_soon()  # its room's key too, now rather than in a second
        if state.draining:  # routed here before the front knew: on to a process that stays
            self.transport.close(CloseCode.SERVICE_RESTART, RESTART_REASON)

    def unreachable(self) -> None:
        """A push or close could not be published: the connection is lost for this home
        (its member away, having missed messages)."""
        if not self.closing:
            self.dropped = True
            self.lose()


class RemoteTransport:
    """The transport of a session whose socket another process holds: each push is an
    ``out`` envelope to that process, a close a ``close`` envelope. One that cannot be
    published loses the connection (:meth:`Remote.unreachable`)."""

    __slots__ = ("_remote",)

    def __init__(self, remote: Remote) -> None:
        self._remote = remote

    def send(self, out: Outgoing) -> None:
        remote = self._remote
        if remote.closing:
            remote.dropped = True  # as a socket that is closing: the place learns it missed some
            return
        envelope = {"k": "out", "from": remote.pipes.proc, "c": remote.conn, "t": out.text}
        if not remote.pipes.bus.send(remote.front, envelope):
            remote.unreachable()

    def close(self, code: CloseCode, reason: str) -> None:
        remote = self._remote
        if remote.closing:
            return
        remote.closing = True
        envelope = _close_envelope(remote.pipes.proc, remote.conn, code, reason)
        if not remote.pipes.bus.send(remote.front, envelope):
            remote.closing = False
            remote.unreachable()

    def replace(self, code: CloseCode, reason: str) -> tuple[list[Outgoing], bool]:
        """Close. What was pushed is in the front's outbox already, or on its way there, and
        the front writes it into the replaced socket, which may be half-open: nothing comes
        back, so the member is told it missed messages (it catches up from the snapshot)."""
        self.close(code, reason)
        return [], True


def _close_envelope(home: str, conn: str, code: CloseCode, reason: str) -> dict[str, Any]:
    return {"k": "close", "from": home, "c": conn, "code": int(code), "reason": reason}


def _text(envelope: dict[str, Any], key: str) -> str:
    value = envelope[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is not a string")
    return value


def _optional(value: object) -> str | None:
    return value if isinstance(value, str) else None


__all__ = ["PeerLost", "Pipes", "Remote", "RemoteTransport"]
