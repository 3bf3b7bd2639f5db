"""The hub: who is online under which name, the rooms, the relay between members and calls.

The hub never touches a socket: it pushes to :class:`Member` objects and awaits only the
chat repository it was given. Every method either does what it says or raises a
:class:`SalonError` having changed nothing.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter, deque

from salon.core import validate
from salon.core.calls import Call, CallBook, CallState
from salon.core.chatlog import ChatRepository
from salon.core.clock import Clock
from salon.core.errors import fail
from salon.core.member import Member
from salon.core.names import NoReservedNames, ReservedNames, skeleton
from salon.core.passwords import RoomPasswords
from salon.core.room import Room
from salon.core.settings import LimitSettings
from salon.protocol import ErrorCode, Outgoing
from salon.protocol.messages import (
    CallAccepted,
    CallEnded,
    CallEndReason,
    ChatDelivered,
    ChatEntry,
    History,
    IceCandidate,
    IncomingCall,
    Joined,
    Left,
    MediaChanged,
    MediaState,
    MemberInfo,
    MemberJoined,
    MemberLeft,
    Presence,
    PresenceChanged,
    Ringing,
    ServerMessage,
    SessionDescription,
    SignalRelay,
)

log = logging.getLogger(__name__)

CALL_ROOM_PREFIX = "call-"
"""Rooms of direct calls; such an id can only be joined while its call is live."""


def _send(member: Member, message: ServerMessage) -> None:
    member.push(Outgoing(message))


class Hub:
    def __init__(
        self,
        limits: LimitSettings,
        clock: Clock,
        chats: ChatRepository,
        passwords: RoomPasswords,
        reserved: ReservedNames | None = None,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.chats = chats
        self.passwords = passwords
        self.reserved = reserved or NoReservedNames()
        self.rooms: dict[str, Room] = {}
        self.calls = CallBook()
        self._names: dict[str, Member] = {}  # name_key -> member
        self._where: dict[str, Room] = {}  # member id -> room
        self._watchers: dict[str, Member] = {}
        self._loading: Counter[str] = Counter()  # room id -> activations reading the store

    # ------------------------------------------------------------------ presence

    async def greet(self, member: Member, *, signed_in: bool) -> None:
        """:meth:`arrive`, but a guest first: ``name_taken`` when a registered account's
        username or display name looks like the guest's (same confusable skeleton)."""
        if not signed_in and await self.reserved.reserved(skeleton(member.name)):
            raise fail(
                ErrorCode.NAME_TAKEN,
                f"{member.name!r} belongs to a registered account: sign in to use it",
            )
        self.arrive(member)

    def arrive(self, member: Member) -> None:
        """Make ``member`` reachable by its name; ``name_taken`` when someone online has it."""
        key = validate.name_key(member.name)
        if key in self._names:
            raise fail(ErrorCode.NAME_TAKEN, f"someone online is already called {member.name!r}")
        self._names[key] = member
        self._tell_watchers(PresenceChanged(name=member.name, online=True))

    def depart(self, member: Member) -> None:
        """Forget a disconnected member everywhere: calls end, rooms are told, name is freed."""
        call = self.calls.of(member.id)
        if call is not None:
            self._end_call(call, CallState.OFFLINE)
        self.leave(member, quiet=True)
        self._watchers.pop(member.id, None)
        key = validate.name_key(member.name)
        if self._names.get(key) is member:
            del self._names[key]
            self._tell_watchers(PresenceChanged(name=member.name, online=False))

    def watch_presence(self, member: Member, watch: bool) -> None:
        if not watch:
            self._watchers.pop(member.id, None)
            return
        self._watchers[member.id] = member
        _send(
            member, Presence(names=sorted((m.name for m in self._names.values()), key=str.casefold))
        )

    def _tell_watchers(self, message: PresenceChanged) -> None:
        out = Outgoing(message)
        for watcher in list(self._watchers.values()):
            watcher.push(out)

    def online(self) -> int:
        return len(self._names)

    # ------------------------------------------------------------------ rooms

    def room_of(self, member: Member) -> Room:
        room = self._where.get(member.id)
        if room is None:
            raise fail(ErrorCode.NOT_JOINED, "join a room first")
        return room

    async def join(
        self, member: Member, room_id: str, password: str | None, media: MediaState
    ) -> None:
        room_id = validate.room_id(room_id)
        password = validate.password(password, self.limits.max_password_chars)
        current = self._where.get(member.id)
        if current is not None and current.id == room_id:
            raise fail(ErrorCode.ALREADY_JOINED, "you are already in this room")
        if self.calls.of(member.id) is not None:
            raise fail(ErrorCode.IN_CALL, "answer or cancel your ringing call first")
        room = self.rooms.get(room_id)
        if room is None:
            if room_id.startswith(CALL_ROOM_PREFIX):
                raise fail(ErrorCode.NO_SUCH_ROOM, "no such room")
            room = await self._activate(room_id)
        self._loading[room.id] += 1  # keep the room while we wait on its password
        try:
            self._admit(member, room)  # refuse before a first joiner's password is stored
            await self._unlock(room, password)
            if self._names.get(validate.name_key(member.name)) is not member:
                return  # disconnected while we waited: seat no ghost
            self._admit(member, room)
            if member.id in self._where:
                self.leave(member)
            self._seat(member, room, media)
        finally:
            self._loading -= Counter({room.id: 1})
            self._forget_if_idle(room)  # a refused first joiner leaves no empty room behind

    async def _unlock(self, room: Room, password: str | None) -> None:
        """Check the room's password; the first joiner of an empty, open room may set one."""
        if room.private or (room.protected is False and room.seats):
            return  # a call's room, or an open room in use: a password is not asked
        verdict = await self.passwords.check(room.id, password)
        if verdict is None:
            if password is None or room.seats:
                room.protected = False
                return
            if await self.passwords.protect(room.id, password, self.clock.wall_ms()):
                room.protected = True
                return
            verdict = await self.passwords.check(room.id, password)  # set by someone else
        room.protected = True
        if not verdict:
            raise fail(ErrorCode.WRONG_PASSWORD, "this room needs the right password")

    def _admit(self, member: Member, room: Room) -> None:
        if room.allowed is not None and member.id not in room.allowed:
            raise fail(ErrorCode.NO_SUCH_ROOM, "no such room")
        if self.calls.of(member.id) is not None:
            raise fail(ErrorCode.IN_CALL, "answer or cancel your ringing call first")
        if len(room) >= self.limits.max_room_members:
            raise fail(ErrorCode.ROOM_FULL, f"this room is full ({len(room)} people)")

    async def _activate(self, room_id: str) -> Room:
        """Bring a room to life, with its recent chat from the store."""
        if len(self.rooms) >= self.limits.max_rooms:
            raise fail(ErrorCode.SERVER_FULL, "this server has as many rooms open as it allows")
        # While we read, the room may open, take chat and empty again; it is kept (see
        # _forget_if_idle) so we join it rather than a copy with a stale last_seq.
        self._loading[room_id] += 1
        try:
            history = await self.chats.recent(room_id, self.limits.history_on_join)
            last_seq = history[-1].seq if history else await self.chats.last_seq(room_id)
        finally:
            self._loading -= Counter({room_id: 1})  # drops the key at zero
        existing = self.rooms.get(room_id)  # someone else activated it while we awaited
        if existing is not None:
            return existing
        room = Room(room_id, deque(history, maxlen=self.limits.history_on_join), last_seq)
        self.rooms[room_id] = room
        return room

    def _seat(self, member: Member, room: Room, media: MediaState) -> None:
        present = room.seat(member, media)
        self._where[member.id] = room
        _send(
            member,
            Joined(
                room=room.id,
                private=room.private,
                members=present,
                history=list(room.history),
                last_seq=room.last_seq,
            ),
        )
        newcomer = MemberInfo(id=member.id, name=member.name, polite=False, media=media)
        room.broadcast(Outgoing(MemberJoined(room=room.id, member=newcomer)), exclude=member.id)

    def leave(self, member: Member, *, quiet: bool = False) -> None:
        """Take ``member`` out of its room. Leaving a call's room hangs up for both."""
        room = self._where.pop(member.id, None)
        if room is None:
            if not quiet:
                raise fail(ErrorCode.NOT_JOINED, "you are not in a room")
            return
        room.unseat(member.id)
        if room.call is not None and not quiet:
            _send(member, CallEnded(call=room.call, reason="hangup"))
        if not quiet:
            _send(member, Left(room=room.id))
        room.broadcast(Outgoing(MemberLeft(room=room.id, id=member.id)))
        if room.call is not None:
            room.allowed = frozenset()  # the call is over: nobody may come back in
            for seat in list(room.seats.values()):
                self.leave(seat.member)  # tells them call_ended (hangup), then left
        self._forget_if_idle(room)

    def _forget_if_idle(self, room: Room) -> None:
        if room.idle() and room.id not in self._loading and self.rooms.get(room.id) is room:
            del self.rooms[room.id]

    def signal(
        self,
        member: Member,
        to: str,
        description: SessionDescription | None,
        candidate: IceCandidate | None,
    ) -> None:
        """Relay to one member of the sender's room, stamping the sender."""
        room = self.room_of(member)
        target = room.seats.get(to) if to != member.id else None
        if target is None:
            # The same answer whether ``to`` is elsewhere or nowhere: no probing who is where.
            raise fail(ErrorCode.NO_SUCH_MEMBER, "no such member in your room")
        out = SignalRelay(sender=member.id, description=description, candidate=candidate)
        _send(target.member, out)

    def set_media(self, member: Member, media: MediaState) -> None:
        room = self.room_of(member)
        room.seats[member.id].media = media
        changed = MediaChanged(
            sender=member.id, mic=media.mic, camera=media.camera, screen=media.screen
        )
        room.broadcast(Outgoing(changed), exclude=member.id)

    # ------------------------------------------------------------------ chat

    async def chat(self, member: Member, text: str) -> None:
        """Number, store, then deliver a message to the whole room, sender included.

        One write at a time per room, so seq order is delivery order; stored before it is
        delivered, so nobody sees a message that could be lost.
        """
        room = self.room_of(member)
        text = validate.chat_text(text, self.limits.max_chat_chars)
        async with room.chat_lock:
            entry = ChatEntry(
                room=room.id,
                id=secrets.token_urlsafe(9),
                seq=room.last_seq + 1,
                ts=self.clock.wall_ms(),
                sender=member.id,
                name=member.name,
                text=text,
            )
            await self.chats.append(entry)
            room.last_seq = entry.seq
            room.history.append(entry)  # maxlen history_on_join; 0 keeps nothing
            room.broadcast(Outgoing(ChatDelivered(**entry.model_dump())))
        self._forget_if_idle(room)

    async def history(self, member: Member, since: int) -> None:
        room = self.room_of(member)
        page = self.limits.history_page
        found = await self.chats.since(room.id, since, page + 1)
        _send(member, History(room=room.id, messages=found[:page], more=len(found) > page))

    # ------------------------------------------------------------------ calls

    def call(self, caller: Member, name: str) -> None:
        name = validate.display_name(name, self.limits.max_name_chars)
        callee = self._names.get(validate.name_key(name))
        if callee is None:
            raise fail(ErrorCode.NOT_ONLINE, f"nobody called {name!r} is online")
        if callee is caller:
            raise fail(ErrorCode.SELF_CALL, "you cannot call yourself")
        if self.calls.of(caller.id) is not None or self._in_call_room(caller):
            raise fail(ErrorCode.IN_CALL, "you are already in a call")
        call = Call(
            id=secrets.token_urlsafe(12),
            caller=caller,
            callee=callee,
            deadline=self.clock.monotonic() + self.limits.ring_seconds,
        )
        if self.calls.of(callee.id) is not None or callee.id in self._where:
            _send(caller, CallEnded(call=call.id, reason="busy"))
            return
        self.calls.ring(call)
        _send(caller, Ringing(call=call.id, name=callee.name))
        _send(callee, IncomingCall(call=call.id, sender=caller.id, name=caller.name))

    def _in_call_room(self, member: Member) -> bool:
        room = self._where.get(member.id)
        return room is not None and room.call is not None

    def accept(self, callee: Member, call_id: str) -> None:
        call = self.calls.answerable(call_id, callee.id)
        self.calls.finish(call, CallState.ACCEPTED)
        room_id = CALL_ROOM_PREFIX + secrets.token_urlsafe(12)
        room = Room(room_id, deque(maxlen=self.limits.history_on_join))
        room.allowed = frozenset({call.caller.id, call.callee.id})
        room.call = call.id
        self.rooms[room_id] = room
        for member in (call.caller, call.callee):
            if member.id in self._where:
                self.leave(member)
            _send(member, CallAccepted(call=call.id, room=room_id))
        for member in (call.caller, call.callee):
            self._seat(member, room, MediaState(mic=True, camera=True))

    def decline(self, callee: Member, call_id: str) -> None:
        self._end_call(self.calls.answerable(call_id, callee.id), CallState.DECLINED)

    def cancel(self, caller: Member, call_id: str) -> None:
        self._end_call(self.calls.cancellable(call_id, caller.id), CallState.CANCELLED)

    def expire_calls(self) -> int:
        """End every call that rang past its deadline; the server calls this from a timer."""
        overdue = self.calls.overdue(self.clock.monotonic())
        for call in overdue:
            self._end_call(call, CallState.TIMED_OUT)
        return len(overdue)

    def _end_call(self, call: Call, state: CallState) -> None:
        self.calls.finish(call, state)
        reason: CallEndReason = call.end_reason()
        out = Outgoing(CallEnded(call=call.id, reason=reason))
        call.caller.push(out)
        call.callee.push(out)
