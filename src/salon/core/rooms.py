"""Rooms: who is in which room, seating and politeness, the relay between members, and chat.

This is the part of the hub (:class:`~salon.core.hub.Hub` builds on it) that never asks who is
online: it pushes to :class:`Member` objects and awaits only the stores it was given. Every
method either does what it says or raises a :class:`SalonError` having changed nothing.
Decisions (who is in, which sequence number, who gets what) are made without awaiting; a write
that must happen together with a decision runs in a task of its own (:meth:`Rooms._complete`),
so a cancelled caller cannot leave memory and the store disagreeing.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter, deque
from collections.abc import Coroutine
from typing import Any, TypeVar

from salon.core import validate
from salon.core.calls import CallBook
from salon.core.chatlog import ChatRepository
from salon.core.clock import Clock
from salon.core.errors import SalonError, fail
from salon.core.member import Member
from salon.core.passwords import RoomPasswords
from salon.core.room import Room, Seat
from salon.core.settings import LimitSettings
from salon.protocol import ErrorCode, Outgoing
from salon.protocol.messages import (
    CallEnded,
    ChatDelivered,
    ChatEntry,
    History,
    Joined,
    Left,
    MediaChanged,
    MediaState,
    MemberInfo,
    MemberJoined,
    MemberLeft,
    MemberResumed,
    PresenceChanged,
    ServerMessage,
    Signal,
    SignalRelay,
)

log = logging.getLogger(__name__)

CALL_ROOM_PREFIX = "call-"
"""Rooms of direct calls; such an id can only be joined while its call is live."""

T = TypeVar("T")


def send(member: Member, message: ServerMessage) -> None:
    member.push(Outgoing(message))


def polite(receiver: str, other: str) -> bool:
    """Whether ``receiver`` is the polite side toward ``other`` (W3C webrtc-pc 10.7, perfect
    negotiation): the greater member id in code-point order is polite. Both sides agree without
    talking, whatever order they joined or resumed in, on any process."""
    return receiver > other


class Rooms:
    """The rooms of one hub and the state they share with it (names, watchers, calls)."""

    def __init__(
        self, limits: LimitSettings, clock: Clock, chats: ChatRepository, passwords: RoomPasswords
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.chats = chats
        self.passwords = passwords
        self.rooms: dict[str, Room] = {}
        self.calls = CallBook()
        self._names: dict[str, Member] = {}  # name_key -> member
        self._where: dict[str, Room] = {}  # member id -> room
        self._watchers: dict[str, Member] = {}
        self._loading: Counter[str] = Counter()  # room id -> activations reading the store
        self._hung_up: dict[str, float] = {}  # call room id -> until when it stays closed
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ presence watchers

    def _tell_watchers(self, message: PresenceChanged) -> None:
        out = Outgoing(message)
        for watcher in list(self._watchers.values()):
            watcher.push(out)

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

    async def _activate(
        self, room_id: str, *, allowed: frozenset[str] | None = None, call: str | None = None
    ) -> Room:
        """Bring a room to life, with its recent chat from the store and the seq it goes on
        from. ``allowed`` and ``call`` make it a direct call's private room (brought back after
        a restart; like a call's new room it is not held to ``max_rooms``)."""
        if allowed is None and len(self.rooms) >= self.limits.max_rooms:
            raise fail(ErrorCode.SERVER_FULL, "this server has as many rooms open as it allows")
        # While we read, the room may open, take chat and empty again; it is kept (see
        # _forget_if_idle) so we join it rather than a copy with a stale last_seq.
        self._loading[room_id] += 1
        try:
            keep = self.limits.history_on_join
            history = await self.chats.recent(room_id, keep)
            if history:
                last_seq = history[-1].seq
            elif keep > 0:
                last_seq = 0  # no recent message means no message at all: one query, not two
            else:
                last_seq = await self.chats.last_seq(room_id)
        finally:
            self._loading -= Counter({room_id: 1})  # drops the key at zero
        existing = self.rooms.get(room_id)  # someone else activated it while we awaited
        if existing is not None:
            return existing
        room = Room(room_id, deque(history, maxlen=self.limits.history_on_join), last_seq)
        room.allowed, room.call = allowed, call
        self.rooms[room_id] = room
        return room

    def _seat(
        self, member: Member, room: Room, media: MediaState, *, returning: bool = False
    ) -> None:
        """Seat ``member``: it gets ``joined`` and a token naming the room; the others get
        ``member_joined`` (``member_resumed`` for a place rebuilt from its token)."""
        room.seats[member.id] = Seat(member, media)
        self._where[member.id] = room
        self._send_joined(member, room)
        peer = None if room.allowed is None else next(iter(room.allowed - {member.id}), None)
        member.placed(room.id, room.call, peer, guarded=room.protected is True)
        if returning:
            self._announce_back(member)
        else:
            self._announce(room, member, media, MemberJoined)

    def _send_joined(self, member: Member, room: Room) -> None:
        members = [
            MemberInfo(
                id=s.member.id,
                name=s.member.name,
                polite=polite(member.id, s.member.id),
                media=s.media,
            )
            for s in room.seats.values()
            if s.member.id != member.id
        ]
        send(
            member,
            Joined(
                room=room.id,
                private=room.private,
                members=members,
                history=list(room.history),
                last_seq=room.last_seq,
                hosts=[],
                locked=False,
                lobby=False,
                protected=room.protected is True,
                hands=[],
            ),
        )

    def _announce(
        self,
        room: Room,
        member: Member,
        media: MediaState,
        kind: type[MemberJoined] | type[MemberResumed],
    ) -> None:
        """Tell the others about ``member``; ``polite`` differs by receiver, so at most two
        encodings are made."""
        out = {
            flag: Outgoing(
                kind(
                    room=room.id,
                    member=MemberInfo(id=member.id, name=member.name, polite=flag, media=media),
                )
            )
            for flag in (False, True)
        }
        for mid, seat in list(room.seats.items()):
            if mid != member.id:
                seat.member.push(out[polite(mid, member.id)])

    def _announce_back(self, member: Member) -> None:
        room = self._where.get(member.id)
        if room is not None:
            self._announce(room, member, room.seats[member.id].media, MemberResumed)
        self._tell_watchers(PresenceChanged(name=member.name, online=True, reconnecting=False))

    def leave(self, member: Member, *, quiet: bool = False) -> None:
        """Take ``member`` out of its room. Leaving a call's room hangs up for both."""
        room = self._where.pop(member.id, None)
        if room is None:
            if not quiet:
                raise fail(ErrorCode.NOT_JOINED, "you are not in a room")
            return
        room.unseat(member.id)
        if room.call is not None and not quiet:
            send(member, CallEnded(call=room.call, reason="hangup"))
        if not quiet:
            send(member, Left(room=room.id))
            member.placed(None, None, None)
        room.broadcast(Outgoing(MemberLeft(room=room.id, id=member.id)))
        if room.call is not None:
            room.allowed = frozenset()  # the call is over: nobody may come back in
            # ... not even with a resume token that names it, while such tokens live.
            self._hung_up[room.id] = self.clock.monotonic() + self.limits.resume_token_seconds
            for seat in list(room.seats.values()):
                self.leave(seat.member)  # tells them call_ended (hangup), then left
        self._forget_if_idle(room)

    def _forget_if_idle(self, room: Room) -> None:
        if room.idle() and room.id not in self._loading and self.rooms.get(room.id) is room:
            del self.rooms[room.id]

    def signal(self, member: Member, msg: Signal) -> None:
        """Relay a signal's payload to one member of the sender's room, stamping the sender.
        A member that is away keeps it until it resumes."""
        room = self.room_of(member)
        target = room.seats.get(msg.to) if msg.to != member.id else None
        if target is None:
            # The same answer whether ``to`` is elsewhere or nowhere: no probing who is where.
            raise fail(ErrorCode.NO_SUCH_MEMBER, "no such member in your room")
        out = SignalRelay(
            sender=member.id,
            description=msg.description,
            candidate=msg.candidate,
            rejected=msg.rejected,
            reset=msg.reset,
        )
        send(target.member, out)

    def set_media(self, member: Member, media: MediaState) -> None:
        room = self.room_of(member)
        room.seats[member.id].media = media
        changed = MediaChanged(
            sender=member.id, mic=media.mic, camera=media.camera, screen=media.screen
        )
        room.broadcast(Outgoing(changed), exclude=member.id)

    # ------------------------------------------------------------------ chat

    async def chat(self, member: Member, text: str, client_id: str | None = None) -> None:
        """Number, store, then deliver a message to the whole room, sender included.

        One write at a time per room, so seq order is delivery order; stored before it is
        delivered, so nobody sees a message that could be lost. The write runs to its end even
        when the caller is cancelled (its connection reset mid-write), so the room's counter
        and the store never disagree. A ``client_id`` already stored in the room is not stored
        again: the sender alone gets the stored entry again (its resend is acknowledged).
        """
        room = self.room_of(member)
        text = validate.chat_text(text, self.limits.max_chat_chars)
        await self._complete(self._write_chat(room, member, text, client_id))

    async def _write_chat(
        self, room: Room, member: Member, text: str, client_id: str | None
    ) -> None:
        try:
            await self._numbered_write(room, member, text, client_id)
        finally:
            self._forget_if_idle(room)  # everyone may have left while it was written

    async def _numbered_write(
        self, room: Room, member: Member, text: str, client_id: str | None
    ) -> None:
        async with room.chat_lock:
            entry = ChatEntry(
                room=room.id,
                id=secrets.token_urlsafe(9),
                seq=room.last_seq + 1,
                ts=self.clock.wall_ms(),
                sender=member.id,
                name=member.name,
                text=text,
                client_id=client_id,
            )
            stored = await self.chats.append(entry)
            if stored.seq != entry.seq:
                send(member, ChatDelivered(**stored.model_dump()))  # a resend, stored before
            else:
                room.last_seq = entry.seq
                room.history.append(entry)  # maxlen history_on_join; 0 keeps nothing
                room.broadcast(Outgoing(ChatDelivered(**entry.model_dump())))

    async def _complete(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` in a task of the hub's and wait for it. Cancelling the caller stops
        the wait, not the work: a change that awaits I/O completes or fails as a whole."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()  # retrieved here in case its caller is gone
        if error is not None and not isinstance(error, SalonError):
            log.warning("a store write failed: %r", error)

    async def history(self, member: Member, since: int) -> None:
        room = self.room_of(member)
        page = self.limits.history_page
        found = await self.chats.since(room.id, since, page + 1)
        send(member, History(room=room.id, messages=found[:page], more=len(found) > page))
