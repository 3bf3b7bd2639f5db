"""A room: an ordered set of members in a full mesh, its recent chat and its lock for writes.

Who is polite toward whom does not depend on the order of seats: see ``hub.polite``."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from salon.core.member import Member
from salon.protocol import Outgoing
from salon.protocol.messages import ChatEntry, MediaState


@dataclass(slots=True)
class Seat:
    member: Member
    media: MediaState


@dataclass(eq=False)
class Room:
    id: str
    history: deque[ChatEntry]
    last_seq: int = 0
    protected: bool | None = None  # has a stored password; None until the store was asked
    # A direct call's room: only these member ids may join. ``call`` is the call's id.
    allowed: frozenset[str] | None = None
    call: str | None = None
    seats: dict[str, Seat] = field(default_factory=dict)  # insertion order = join order
    chat_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def private(self) -> bool:
        return self.allowed is not None

    def __len__(self) -> int:
        return len(self.seats)

    def __contains__(self, member_id: object) -> bool:
        return member_id in self.seats

    def unseat(self, member_id: str) -> Seat | None:
        return self.seats.pop(member_id, None)

    def broadcast(self, out: Outgoing, *, exclude: str | None = None) -> None:
        for mid, seat in list(self.seats.items()):
            if mid != exclude:
                seat.member.push(out)

    def idle(self) -> bool:
        """Empty with no chat write in flight: safe to forget (its chat is in the store)."""
        return not self.seats and not self.chat_lock.locked()
