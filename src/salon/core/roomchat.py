"""The ground rooms stand on: which rooms are live, who sits where, and each room's chat.

:class:`~salon.core.rooms.Rooms` builds on :class:`ChatRooms`. Chat is numbered per room and
stored once before it is delivered; a write runs in a task of the hub's (:meth:`_complete`), so
a cancelled caller cannot leave the room's counter and the store disagreeing. The chat of a
meeting that had a password is erased from the store when that meeting ends
(:meth:`_erase_chat`), under the same rule.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from collections import Counter
from collections.abc import Coroutine
from typing import Any, TypeVar

from salon.core import validate
from salon.core.chatlog import ChatRepository, SeqTaken
from salon.core.clock import Clock
from salon.core.errors import SalonError, fail
from salon.core.member import Member
from salon.core.place import Place
from salon.core.room import Room
from salon.core.settings import LimitSettings
from salon.core.throttle import KeyedThrottle, take_all
from salon.protocol import ErrorCode, Outgoing
from salon.protocol.messages import ChatDelivered, ChatEntry, History, ServerMessage

log = logging.getLogger(__name__)

RATE_KEYS = 100_000
"""How many members (or room and address pairs) a rate remembers; past that the least
recently seen is forgotten, which at worst gives it a fresh budget."""

T = TypeVar("T")


def send(member: Member, message: ServerMessage) -> None:
    member.push(Outgoing(message))


def address_of(member: Member) -> str | None:
    """The client address of a member's newest connection, None when unknown."""
    return member.address if isinstance(member, Place) else None


class ChatRooms:
    """The live rooms of one hub, where each member sits, and the chat of each room."""

    def __init__(self, limits: LimitSettings, clock: Clock, chats: ChatRepository) -> None:
        self.limits = limits
        self.clock = clock
        self.chats = chats
        self.rooms: dict[str, Room] = {}
        self._where: dict[str, Room] = {}  # member id -> room
        self._loading: Counter[str] = Counter()  # room id -> activations reading the store
        self._tasks: set[asyncio.Task[Any]] = set()
        # Rates by member (not by seat: leaving and joining again starts no new budget), and
        # by client address (a new connection is no new budget either).
        self.chat_rate = KeyedThrottle(limits.chat_per_minute, limits.chat_burst, RATE_KEYS)
        per_address = limits.address_chat_per_minute
        self.address_chat_rate = KeyedThrottle(per_address, limits.address_chat_burst, RATE_KEYS)

    def room_of(self, member: Member) -> Room:
        room = self._where.get(member.id)
        if room is None:
            raise fail(ErrorCode.NOT_JOINED, "join a room first")
        return room

    def _forget_if_idle(self, room: Room) -> None:
        if room.idle() and room.id not in self._loading and self.rooms.get(room.id) is room:
            del self.rooms[room.id]

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
        self._may_chat(member)
        room.writes += 1  # until the write ends: the room is not forgotten under it
        write = self._write_chat(room, member, text, client_id, room.erasures)
        await self._complete(write)

    def _may_chat(self, member: Member) -> None:
        """Spend one of the member's messages (``chat_burst`` at once, then
        ``chat_per_minute``, whatever rooms it joins) and one of its client address's
        (``address_chat_burst``, then ``address_chat_per_minute``, whatever connections it
        opens), or refuse with ``rate_limited`` spending neither: one connection cannot fill
        the store at the frame rate (50 messages of 4,000 characters a second), nor can one
        address by opening connection after connection."""
        budgets = [(self.chat_rate, member.id)]
        address = address_of(member)
        if address is not None:
            budgets.append((self.address_chat_rate, address))
        wait = take_all(budgets, self.clock.monotonic())
        if wait > 0:
            raise fail(
                ErrorCode.RATE_LIMITED,
                f"too many messages: try again in {math.ceil(wait)} s",
            )

    async def _write_chat(
        self, room: Room, member: Member, text: str, client_id: str | None, erasures: int
    ) -> None:
        try:
            await self._after_erase(room)
            await self._numbered_write(room, member, text, client_id, erasures)
        finally:
            room.writes -= 1
            self._forget_if_idle(room)  # everyone may have left while it was written

    async def _numbered_write(
        self, room: Room, member: Member, text: str, client_id: str | None, erasures: int
    ) -> None:
        async with room.chat_lock:
            if room.erasures != erasures:
                return  # its meeting ended under a password meanwhile: its chat is gone
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
            try:
                stored = await self.chats.append(entry)
            except SeqTaken:
                # An earlier write was stored after all (its commit outran the store's
                # timeout): number from what the store holds, and let the sender resend.
                room.last_seq = await self.chats.last_seq(room.id)
                raise fail(
                    ErrorCode.STORE_UNAVAILABLE, "the chat was busy: send it again"
                ) from None
            if stored.seq != entry.seq:
                send(member, ChatDelivered(**stored.model_dump()))  # a resend, stored before
                return
            room.last_seq = entry.seq
            room.history.append(entry)  # maxlen history_on_join; 0 keeps nothing
            room.broadcast(Outgoing(ChatDelivered(**entry.model_dump())))
            # The room's quota: now and then (every tenth of it) the oldest past it go, in a
            # task of its own: the message is delivered, whatever becomes of the pruning.
            keep = self.limits.max_room_chat_messages
            if entry.seq > keep and entry.seq % max(1, keep // 10) == 0:
                self._spawn(self.chats.prune(room.id, entry.seq - keep))

    def expire_chat(self) -> asyncio.Task[int]:
        """Delete the chat older than ``chat_retention_days``, stored and in the live rooms'
        history, in a task of the hub's (a stopping server waits for it); its result is how
        many stored messages went. ``history`` pages of a live room simply find them gone."""
        horizon = self.clock.wall_ms() - int(self.limits.chat_retention_days * 86_400_000)
        return self._spawn(self._expire(horizon))

    async def _expire(self, horizon: int) -> int:
        gone = await self.chats.expire(horizon)
        for room in self.rooms.values():  # once the store let them go
            while room.history and room.history[0].ts < horizon:
                room.history.popleft()
        return gone

    def _erase_chat(self, room: Room) -> None:
        """Erase the stored chat of a meeting that had a password, in a task of the hub's:
        cancelling nobody's wait stops it. Until it is done the room is kept (so no
        activation reads that chat) and its new chat and history wait; a write numbered for
        the erased meeting and not yet stored is dropped."""
        room.history.clear()
        room.erasures += 1
        room.erasing = self._spawn(self._erase(room))

    async def _erase(self, room: Room) -> None:
        try:
            async with room.chat_lock:  # after the writes under way
                await self.chats.erase(room.id)
        finally:
            if room.erasing is asyncio.current_task():
                room.erasing = None
                self._forget_if_idle(room)

    async def _after_erase(self, room: Room) -> None:
        while room.erasing is not None:
            await asyncio.wait({room.erasing})  # its failure is logged by _finished

    async def settle(self, seconds: float) -> None:
        """Wait up to ``seconds`` for the store writes under way (chat, erasures, seals): a
        server stopping calls it before it closes the store."""
        pending = set(self._tasks)
        if pending:
            await asyncio.wait(pending, timeout=seconds)

    async def _complete(self, work: Coroutine[Any, Any, T]) -> T:
        """Run ``work`` in a task of the hub's and wait for it. Cancelling the caller stops
        the wait, not the work: a change that awaits I/O completes or fails as a whole."""
        return await asyncio.shield(self._spawn(work))

    def _spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``work`` in a task of the hub's: kept until done (see :meth:`settle`), its
        failure logged."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()  # retrieved here in case its caller is gone
        if error is None:
            return
        if isinstance(error, SalonError) and error.code is not ErrorCode.STORE_UNAVAILABLE:
            return  # a refusal, reported to whoever asked
        log.warning("a store write failed: %r", error)

    async def history(self, member: Member, since: int) -> None:
        room = self.room_of(member)
        page = self.limits.history_page
        await self._after_erase(room)
        found = await self.chats.since(room.id, since, page + 1)
        send(member, History(room=room.id, messages=found[:page], more=len(found) > page))
