"""The hub: who is online under which name, members' places across connections, and calls.

It builds on :class:`~salon.core.moderation.Moderation` (hosts' actions and hands) and
:class:`~salon.core.rooms.Rooms` (rooms, lobby, relay, chat) and keeps its promise: it
never touches a socket, and every method either does what it says or raises a
:class:`SalonError` having changed nothing.

Places (:class:`~salon.core.place.Place`) outlive their connections: a lost connection makes a
member *away* (its room is told ``member_reconnecting``) until it resumes or the grace window
ends (:meth:`Hub.sweep`).

The hub's own dicts are the truth of this process. When several processes serve one
deployment, its :class:`~salon.core.directory.Directory` adds what they share: reachable names
are claimed there too, ended places are told there (and asked about on resume), presence
changes go to the other processes and their names into a new watcher's ``presence`` list. A
member moving to another process is let go quietly (:meth:`Hub.release`).
"""

from __future__ import annotations

import secrets
from collections import deque
from collections.abc import Collection
from typing import Final

from salon.core import validate
from salon.core.admission import Way, way_back
from salon.core.calls import Call, CallState
from salon.core.chatlog import ChatRepository
from salon.core.clock import Clock
from salon.core.directory import Directory, LocalDirectory
from salon.core.errors import SalonError, fail
from salon.core.invites import Invites
from salon.core.member import Member, Transport
from salon.core.names import NoReservedNames, ReservedNames
from salon.core.observe import CallOutcome, MemberLeftReason
from salon.core.passwords import RoomKeys
from salon.core.place import Place, TokenMint, kept_bound
from salon.core.recordings import RecordingRooms
from salon.core.resume import Claims, ResumeTokens
from salon.core.room import Room
from salon.core.rooms import CALL_ROOM_PREFIX, account_of, send
from salon.core.settings import LimitSettings
from salon.protocol import CloseCode, ErrorCode, Outgoing
from salon.protocol.messages import (
    CallAccepted,
    CallEnded,
    CallEndReason,
    IncomingCall,
    LobbyWaiting,
    MediaState,
    MemberReconnecting,
    Presence,
    PresenceChanged,
    Ringing,
    Unreachable,
)

_OUTCOMES: Final[dict[CallState, CallOutcome]] = {
    CallState.DECLINED: "declined",
    CallState.CANCELLED: "cancelled",
    CallState.TIMED_OUT: "timeout",
    CallState.OFFLINE: "offline",
}


REPLACED_BY_ACCOUNT: Final = "this account took its place from another connection"
REPLACED_BY_NEWER: Final = "this place was taken by a newer connection"


class Hub(RecordingRooms):
    invites: Invites  # always set here (a bare Rooms has none)

    def __init__(
        self,
        limits: LimitSettings,
        clock: Clock,
        chats: ChatRepository,
        keys: RoomKeys,
        reserved: ReservedNames | None = None,
        tokens: ResumeTokens | None = None,
        directory: Directory | None = None,
    ) -> None:
        """``tokens`` signs resume tokens; None makes a random secret (tokens then die with
        this hub, which is right for tests and throwaway hubs). ``directory``: what is shared
        with the other processes of the deployment; None: this process is alone
        (:class:`~salon.core.directory.LocalDirectory`)."""
        super().__init__(limits, clock, chats, keys)
        self.directory: Directory = directory or LocalDirectory()
        self.reserved = reserved or NoReservedNames()
        self.tokens = tokens or ResumeTokens(secrets.token_bytes(32))
        # Join links the server API mints: signed under the same secret, for another purpose.
        self.invites = Invites(self.tokens.secret)
        self.mint = TokenMint(self.tokens, clock, limits.resume_token_seconds)
        self._places: dict[str, Place] = {}  # member id -> place, attached or away
        self._ended: dict[str, float] = {}  # member id -> until when its tokens are refused
        self._accounts: dict[str, Place] = {}  # username -> the place signed in as it

    # ------------------------------------------------------------------ presence

    async def greet(
        self,
        member: Member,
        *,
        signed_in: bool,
        reachable: bool = False,
        owns: Collection[str] = (),
    ) -> None:
        """:meth:`arrive`, but a guest first: ``name_taken`` when a registered account's
        username or display name has the guest's :func:`~salon.core.names.name_key`.
        A signed-in member ``owns`` its account's names: a guest holding one of them as its
        reachable name is moved aside first (it gets ``unreachable``). A signed-in member
        takes its account's place (:meth:`hold_account`) only when ``reachable``: until it
        joins a room or calls, the account's other place keeps its own.

        A reachable name is also claimed in the directory: ``name_taken`` when a member of
        another process holds it; nothing changed then. A name a local guest holds and this
        member moves aside is this process's to give, whatever the directory answers (the
        guest's claim is released, and this process's names are re-asserted there with every
        heartbeat)."""
        if not signed_in and await self.reserved.reserved(validate.name_key(member.name)):
            raise fail(
                ErrorCode.NAME_TAKEN,
                f"{member.name!r} belongs to a registered account: sign in to use it",
            )
        key = validate.name_key(member.name)
        aside = self._aside(signed_in, owns)
        if reachable and key in self._names and key not in aside:
            raise fail(ErrorCode.NAME_TAKEN, f"someone online is already called {member.name!r}")
        if reachable and not await self.directory.claim_name(key, member.id) and key not in aside:
            raise fail(ErrorCode.NAME_TAKEN, f"someone online is already called {member.name!r}")
        # The claim may have waited for the other processes: look again before changing anything.
        aside = self._aside(signed_in, owns)
        if reachable and key in self._names and key not in aside:
            self.directory.release_name(key, member.id)
            raise fail(ErrorCode.NAME_TAKEN, f"someone online is already called {member.name!r}")
        for held in aside:
            self._move_aside(held)
        self.arrive(member, reachable=reachable)
        if reachable:
            self.hold_account(member)  # again: another connection may have taken it meanwhile

    def _aside(self, signed_in: bool, owns: Collection[str]) -> set[str]:
        """The name keys of ``owns`` that guests hold as reachable names: a signed-in member
        moves them aside."""
        keys = {validate.name_key(name) for name in owns} if signed_in else set()
        return {key for key in keys if self._held_by_guest(key)}

    def arrive(self, member: Member, *, reachable: bool = False) -> None:
        """Count ``member`` online. ``reachable``: also callable by its name and listed in
        ``presence``; ``name_taken`` when another reachable member's name has its key.
        Names that are not reachable need not be unique. A signed-in member does not take its
        account's place by arriving: the callers do (:meth:`hold_account`) when it is
        reachable, and later when it joins, calls, or is seated again after a rebuild."""
        key = validate.name_key(member.name)
        if reachable and key in self._names:
            raise fail(ErrorCode.NAME_TAKEN, f"someone online is already called {member.name!r}")
        self._online[member.id] = member
        if isinstance(member, Place):
            self._places[member.id] = member
            member.reachable = reachable
        if reachable:
            self._names[key] = member
            self._tell_watchers(PresenceChanged(name=member.name, online=True))

    def _held_by_guest(self, key: str) -> bool:
        held = self._names.get(key)
        return held is not None and not (isinstance(held, Place) and held.account is not None)

    def _move_aside(self, key: str) -> None:
        """A guest holding a signed-in account's name as its reachable name loses it: it stays
        online under that name in its room, but is no longer callable nor in ``presence``."""
        if not self._held_by_guest(key):
            return
        held = self._names.pop(key)
        self.directory.release_name(key, held.id)
        send(held, Unreachable(name=held.name))
        if isinstance(held, Place):
            held.reachable = False
            held.refresh_token()  # a rebuilt place must not claim the name back
        self._tell_watchers(PresenceChanged(name=held.name, online=False))

    def depart(self, member: Member, reason: MemberLeftReason = "left") -> None:
        """Forget a member everywhere: calls end, rooms are told, name is freed. Its resume
        tokens are refused from now on, on every process (the directory is told); its
        reachable name is released there too. ``reason``: what observers are told."""
        call = self.calls.of(member.id)
        if call is not None:
            self._end_call(call, CallState.OFFLINE)
        self.leave(member, quiet=True, reason=reason)
        self._watchers.pop(member.id, None)
        if self._places.pop(member.id, None) is not None:
            lifetime = self.limits.resume_token_seconds
            self._ended[member.id] = self.clock.monotonic() + lifetime
            self.directory.end(member.id, lifetime)
        if self._online.get(member.id) is member:
            del self._online[member.id]
        account = member.account if isinstance(member, Place) else None
        if account is not None and self._accounts.get(account) is member:
            del self._accounts[account]
        key = validate.name_key(member.name)
        if self._names.get(key) is member:
            del self._names[key]
            self.directory.release_name(key, member.id)
            self._tell_watchers(PresenceChanged(name=member.name, online=False))

    def release(self, place: Place) -> None:
        """Let ``place`` go quietly: its member moves to another process, which adopts it
        (:meth:`~salon.core.session.Session.adopt`). Its ringing call ends (``offline``); it
        leaves its room as by ``leave`` (it hears ``left`` and gets a token naming no room;
        the others hear ``member_left``; leaving a call's room hangs up) or stops waiting in
        its lobby (it hears ``left``); it stops watching presence; and this hub forgets it.
        Its place does *not* end (its tokens stay good) and its reachable name stays claimed
        in the directory under its member id, which moves with it; watchers hear nothing (the
        name stays online). Its transport is not touched. Never raises."""
        call = self.calls.of(place.id)
        if call is not None:
            self._end_call(call, CallState.OFFLINE)
        if place.id in self._where or place.id in self._waiting:
            self.leave(place)  # in a room or a lobby: cannot be not_joined
        self._watchers.pop(place.id, None)
        self._forget(place)
        if place.room is not None:  # leave() placed it nowhere; a token minted now says so
            place.room = place.call = place.peer = None
            place.guarded = place.host = False

    async def watch_presence(self, member: Member, watch: bool) -> None:
        """Start (or stop) telling ``member`` of reachable names going online or offline.
        Starting sends it ``presence``: the reachable names of every process (this one's
        alone when the directory cannot say), sorted case-insensitively, one per name key."""
        if not watch:
            self._watchers.pop(member.id, None)
            return
        self._watchers[member.id] = member  # changes from now on, even during the wait
        remote = await self.directory.names()
        if self._watchers.get(member.id) is not member:
            return  # it stopped watching, or left, meanwhile
        send(member, Presence(names=self._presence_names(remote)))

    def _presence_names(self, remote: list[str] | None) -> list[str]:
        names = {key: member.name for key, member in self._names.items()}
        for name in remote or ():
            names.setdefault(validate.name_key(name), name)
        return sorted(names.values(), key=str.casefold)

    def watching(self, member: Member) -> bool:
        """Whether ``member`` watches presence."""
        return self._watchers.get(member.id) is member

    def _tell_watchers(self, message: PresenceChanged, *, about: str | None = None) -> None:
        """Tell this process's watchers (but ``about``), and the other processes' through
        the directory."""
        super()._tell_watchers(message, about=about)
        self.directory.presence(message)

    def on_remote_presence(self, change: PresenceChanged) -> None:
        """Another process says a reachable name changed: tell this process's watchers."""
        super()._tell_watchers(change)

    def online(self) -> int:
        """How many members are greeted (attached or away), reachable or not."""
        return len(self._online)

    def occupied(self, place: Place) -> bool:
        """Whether a greeted member is doing something the server keeps its connection for:
        seated in a room, waiting in a lobby, in a call (ringing included), reachable by its
        name, or watching presence. One that is none of these is idle
        (``idle_greeted_seconds``)."""
        member_id = place.id
        return (
            place.reachable
            or member_id in self._where
            or member_id in self._waiting
            or member_id in self._watchers
            or self.calls.of(member_id) is not None
        )

    # ------------------------------------------------------------------ places

    def new_place(self, member_id: str, name: str, account: str | None) -> Place:
        """A place with this hub's token mint and limits on what is kept while away."""
        limits = self.limits
        keep = kept_bound(limits.outbox_messages)
        return Place(member_id, name, account, self.mint, keep, limits.resume_keep_bytes)

    def place(self, member_id: str) -> Place | None:
        """The live place (attached or away) of a member id."""
        return self._places.get(member_id)

    def ended(self, member_id: str) -> bool:
        """Whether this member's place ended here (left, or its grace window passed)."""
        return member_id in self._ended

    async def ended_anywhere(self, member_id: str) -> bool:
        """Whether this member's place ended here or, as the directory says, on another
        process (False there when the directory cannot say)."""
        return self.ended(member_id) or await self.directory.ended(member_id)

    def local_places(self) -> list[Place]:
        """Every place this process holds, attached or away."""
        return list(self._places.values())

    def held_rooms(self) -> list[str]:
        """The ids of the live rooms this process holds with someone in them: seated, or
        waiting in the lobby."""
        return [room.id for room in self.rooms.values() if room.seats or room.waiting]

    def held_names(self) -> list[tuple[str, str]]:
        """The reachable names held here: (name key, member id) pairs."""
        return [(key, member.id) for key, member in self._names.items()]

    def hold_account(self, member: Member) -> None:
        """Make ``member`` its account's one place on this process (newest wins,
        docs/PROTOCOL.md §2.8): the account's other place, if any, is closed with 4005 and
        ends at once (its room hears ``member_left``). Called when a signed-in member joins
        a room or a lobby, calls, or says a reachable ``hello`` (before it arrives: then only
        the other place ends). A guest, or the member that holds its account already:
        nothing."""
        if not isinstance(member, Place) or member.account is None:
            return
        held = self._older_place(member)
        if held is not None:
            held.kick(CloseCode.REPLACED, REPLACED_BY_ACCOUNT)
            self.depart(held)
        if self._online.get(member.id) is member:
            self._accounts[member.account] = member

    def _older_place(self, member: Member) -> Place | None:
        """The place that holds ``member``'s account, when it is another one."""
        account = account_of(member)
        held = self._accounts.get(account) if account is not None else None
        return None if held is member else held

    def _seat_taken_back(self, member: Member, room: Room) -> Way | None:
        """A signed-in member whose account's place is seated in ``room`` takes that seat
        over, past the lock, the lobby, the password and a full room, as a host when that
        place was one: the same person, proven by its session, not a newcomer."""
        held = self._seated_older_place(member, room)
        if held is None or room.allowed is not None:
            return None
        return Way.HOST if held in room.hosts else Way.SEAT

    def _seated_older_place(self, member: Member, room: Room) -> str | None:
        held = self._older_place(member)
        if held is None or held.id not in room.seats or held.id in room.recorders:
            return None
        return held.id

    def _taking_place(self, member: Member) -> None:
        held = self._older_place(member)
        if held is not None:
            held.kick(CloseCode.REPLACED, REPLACED_BY_ACCOUNT)  # ends just after the seating

    def _took_place(self, member: Member) -> None:
        self.hold_account(member)

    def lose(self, place: Place, unsent: list[Outgoing], *, dropped: bool = False) -> None:
        """The place's connection is gone without a goodbye: keep the place for the grace
        window. Its room hears ``member_reconnecting``, presence watchers ``reconnecting``.
        ``dropped``: the connection lost messages, so the member missed some."""
        place.detach(self.clock.monotonic(), unsent, dropped=dropped)
        room = self._where.get(place.id)
        if room is not None:
            out = Outgoing(MemberReconnecting(room=room.id, id=place.id))
            room.broadcast(out, exclude=place.id)
        if self._reachable(place):
            away = PresenceChanged(name=place.name, online=True, reconnecting=True)
            self._tell_watchers(away, about=place.id)

    def take_back(self, place: Place, transport: Transport) -> tuple[list[Outgoing], bool]:
        """A new connection takes ``place``: newest wins, an old one still attached is closed
        with 4005, and what it had queued but not begun to write goes to the new one (§2.8:
        a half-open socket the client gave up on is never written to again). Returns what
        was kept for the member and whether messages were missed."""
        was_away = place.away
        place.replace(CloseCode.REPLACED, REPLACED_BY_NEWER)
        kept, missed = place.attach(transport)
        if was_away:
            self._announce_back(place)
        return kept, missed

    def snapshot(self, member: Member) -> None:
        """Send a member a fresh ``joined`` for the room it is in, and to a host the
        ``lobby`` when someone waits; or ``lobby_waiting`` again while it waits in a lobby
        (after missed messages)."""
        room = self._where.get(member.id)
        if room is not None:
            self._send_joined(member, room)
            self._brief_host(member, room)
        elif (waited := self._waiting.get(member.id)) is not None:
            send(member, LobbyWaiting(room=waited.id))

    async def rebuild(self, place: Place, claims: Claims) -> None:
        """A place this hub does not hold (it restarted, or the place lived on another
        process), rebuilt from a verified token: the name is taken back (from an older claim
        too) and the member seated again in its room by :func:`~salon.core.admission.way_back`
        (a host again by its token's host claim; an empty room it comes back to guarded, the
        password forgotten, comes back locked), or in its call's private room. A room that is
        full, removed it or is protected against this token, or a call that was hung up here,
        leaves the member without a room. The place stays detached: the caller attaches it and
        sends what was kept (``joined``) after its ``welcome``.

        A reachable name is claimed in the directory too: ``name_taken`` when a member of
        another process holds it."""
        place.detach(self.clock.monotonic())
        place.claimed_until = claims.expires
        # No look-up of reserved names: the token proves the name was this member's a few
        # minutes ago (resume_token_seconds), and a thousand members coming back after a
        # restart should not cost a thousand database queries.
        key = validate.name_key(place.name)
        if claims.reachable:
            # A refusal while a local member holds the name is that member's own claim: what
            # follows decides (it is displaced, or arrive answers name_taken).
            if not await self.directory.claim_name(key, place.id) and key not in self._names:
                raise fail(ErrorCode.NAME_TAKEN, f"someone online is already called {place.name!r}")
            if place.account is not None:
                self._move_aside(key)  # a signed-in member always gets its own name
            held = self._names.get(key)
            if isinstance(held, Place) and held.claimed_until < claims.expires:
                # Two places rebuilt from tokens claim one reachable name: this token is
                # newer, so the other gave the name up (a goodbye this server never saw).
                held.kick(CloseCode.REPLACED, "a newer claim to this name came back")
                self.depart(held)
        try:
            self.arrive(place, reachable=claims.reachable)
        except SalonError:
            if claims.reachable:
                self.directory.release_name(key, place.id)
            raise
        if claims.reachable:
            self.hold_account(place)
        if claims.room is None:
            return
        try:
            room = await self._room_for(claims)
        except SalonError:
            self._abandon(place)  # store_unavailable: the token stays good, try again later
            raise
        if room is None:
            return
        way = self._way_back(place, room, claims)
        if way is None:
            self._forget_if_idle(room)  # brought to life for nobody
            return
        if claims.guarded and room.allowed is None and not room.seats and not room.protected:
            room.guarded = room.locked = True  # its password died with the old process
            self._reseal(room)  # still sealed (in case the seal was not written before)
        self._seat(place, room, MediaState(), returning=True, host=way is Way.HOST)
        self.hold_account(place)  # seated again: the account's place (newest wins)
        if room.allowed is None and not room.has_host() and room.standing is None:
            self._hostless.setdefault(room, self.clock.monotonic())  # see sweep

    def _abandon(self, place: Place) -> None:
        """Undo a rebuild whose room could not be read: the half-built ``place`` is forgotten
        as if it had not come back (not ended: its tokens stay good), unless a newer
        connection took it meanwhile, which keeps it."""
        if self._places.get(place.id) is not place or not place.away:
            return
        if self._forget(place):
            self.directory.release_name(validate.name_key(place.name), place.id)
            self._tell_watchers(PresenceChanged(name=place.name, online=False))

    def _forget(self, place: Place) -> bool:
        """Drop ``place`` from this hub's places, members online, accounts and reachable names
        (not from the directory, and telling nobody). Whether it held its reachable name."""
        if self._places.get(place.id) is place:
            del self._places[place.id]
        if self._online.get(place.id) is place:
            del self._online[place.id]
        if place.account is not None and self._accounts.get(place.account) is place:
            del self._accounts[place.account]
        key = validate.name_key(place.name)
        if self._names.get(key) is not place:
            return False
        del self._names[key]
        return True

    def _way_back(self, place: Place, room: Room, claims: Claims) -> Way | None:
        if place.id in self._where or place.id in self._waiting:
            # A newer connection took the half-built place while the room was read, and
            # joined or knocked somewhere itself: that is where it is.
            return None
        if self._online.get(place.id) is not place:
            return None
        if room.allowed is not None:
            return Way.SEAT  # its call's room: _room_for checked it is one of the two
        return way_back(room, claims, self.capacity(room, place))

    async def _room_for(self, claims: Claims) -> Room | None:
        assert claims.room is not None
        room = self.rooms.get(claims.room)
        if claims.call is None:
            if room is None:
                try:
                    room = await self._activate(claims.room, member_of_sealed=claims.guarded)
                except SalonError as exc:
                    if exc.code is not ErrorCode.SERVER_FULL:
                        raise  # store_unavailable: the place is not rebuilt (see rebuild)
                    return None  # resumed without a room
            return room
        if room is None:
            if claims.room in self._hung_up or claims.peer is None:
                return None
            # Its chat is in the store: the room goes on from its last seq, like any room.
            allowed = frozenset({claims.member, claims.peer})
            room = await self._activate(claims.room, allowed=allowed, call=claims.call)
        return room if room.allowed is not None and claims.member in room.allowed else None

    def sweep(self) -> None:
        """Timers: end ringing calls past their deadline, places away past the grace window,
        give attached places a new token at half their token's life, pass the host role
        on in rooms rebuilt after a restart whose hosts have not come back within the grace
        window, and give hosts fresh download keys for their room's recordings."""
        now = self.clock.monotonic()
        self.expire_calls()
        grace = self.limits.resume_grace_seconds
        refresh = self.limits.resume_token_seconds / 2
        for place in list(self._places.values()):
            if place.away_since is not None:
                if now - place.away_since >= grace:
                    self.depart(place, "disconnected")
            elif now - place.token_at >= refresh:
                place.refresh_token()
        for book in (self._ended, self._hung_up):
            for key in [k for k, until in book.items() if until <= now]:
                del book[key]
        for room, since in list(self._hostless.items()):
            # A room rebuilt after a restart whose hosts did not come back within the grace
            # window: they are gone as surely as if they had left, so the role passes on (R2).
            if self.rooms.get(room.id) is not room or room.has_host() or not room.people():
                del self._hostless[room]
            elif now - since >= grace:
                self._pass_host(room)  # crowns, which takes it off the list
        self.refresh_recordings()

    # ------------------------------------------------------------------ calls

    def call(self, caller: Member, name: str) -> None:
        """Ring the member whose reachable name has ``name``'s key; names that are only
        shown in rooms cannot be called."""
        name = validate.display_name(name, self.limits.max_name_chars)
        callee = self._names.get(validate.name_key(name))
        if callee is None:
            raise fail(ErrorCode.NOT_ONLINE, f"nobody reachable as {name!r} is online")
        account = account_of(caller)
        if callee is caller or (account is not None and account_of(callee) == account):
            raise fail(ErrorCode.SELF_CALL, "you cannot call yourself")  # or your other tab
        if self.calls.of(caller.id) is not None or self._in_call_room(caller):
            raise fail(ErrorCode.IN_CALL, "you are already in a call")
        call = Call(
            id=secrets.token_urlsafe(12),
            caller=caller,
            callee=callee,
            deadline=self.clock.monotonic() + self.limits.ring_seconds,
        )
        if self.calls.of(callee.id) is not None or callee.id in self._where:
            send(caller, CallEnded(call=call.id, reason="busy"))
            self.observer.call("busy")
            return
        self.hold_account(caller)  # newest wins: a call is made from this connection
        self.calls.ring(call)
        send(caller, Ringing(call=call.id, name=callee.name))
        send(callee, IncomingCall(call=call.id, sender=caller.id, name=caller.name))

    def _in_call_room(self, member: Member) -> bool:
        room = self._where.get(member.id)
        return room is not None and room.call is not None

    def accept(self, callee: Member, call_id: str) -> None:
        call = self.calls.answerable(call_id, callee.id)
        self.calls.finish(call, CallState.ACCEPTED)
        self.observer.call("accepted")
        room_id = CALL_ROOM_PREFIX + secrets.token_urlsafe(12)
        room = Room(room_id, deque(maxlen=self.limits.history_on_join))
        room.allowed = frozenset({call.caller.id, call.callee.id})
        room.call = call.id
        self.rooms[room_id] = room
        for member in (call.caller, call.callee):
            if member.id in self._where:
                self.leave(member)
            send(member, CallAccepted(call=call.id, room=room_id))
        for member in (call.caller, call.callee):
            self._seat(member, room, MediaState(mic=True, camera=True))

    def decline(self, callee: Member, call_id: str) -> None:
        self._end_call(self.calls.answerable(call_id, callee.id), CallState.DECLINED)

    def cancel(self, caller: Member, call_id: str) -> None:
        self._end_call(self.calls.cancellable(call_id, caller.id), CallState.CANCELLED)

    def expire_calls(self) -> int:
        """End every call that rang past its deadline (called by :meth:`sweep`)."""
        overdue = self.calls.overdue(self.clock.monotonic())
        for call in overdue:
            self._end_call(call, CallState.TIMED_OUT)
        return len(overdue)

    def _end_call(self, call: Call, state: CallState) -> None:
        self.calls.finish(call, state)
        reason: CallEndReason = call.end_reason()
        self.observer.call(_OUTCOMES[state])
        out = Outgoing(CallEnded(call=call.id, reason=reason))
        call.caller.push(out)
        call.callee.push(out)
