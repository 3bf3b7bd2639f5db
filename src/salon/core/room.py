"""A room: an ordered set of members in a full mesh, its recent chat and its lock for writes,
and its meeting: hosts, password, lock, lobby, removals and raised hands.

A meeting lives while the room has members (seated, or away in the grace window); when the
last one leaves it ends (:meth:`Room.end_meeting`) and the next joiner starts a fresh one.

Who is polite toward whom does not depend on the order of seats: see ``rooms.polite``."""

from __future__ import annotations

import asyncio
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from salon.core.member import Member
from salon.core.passwords import Removed, RoomCreator, Standing
from salon.core.ratelimit import TokenBucket
from salon.protocol import Outgoing
from salon.protocol.messages import ChatEntry, Knocker, MediaState, RoomState


@dataclass(slots=True)
class Seat:
    member: Member
    media: MediaState
    joined_ms: int = 0  # wall clock, ms since the epoch: when it was seated


@dataclass(slots=True)
class Knock:
    """Someone waiting in a room's lobby, and the media it asked to join with."""

    member: Member
    media: MediaState
    removed: bool  # a host removed it from this meeting earlier


def remember(book: dict[str, None], key: str | None, limit: int) -> None:
    """Add ``key`` to an ordered set of at most ``limit`` keys; the oldest go first."""
    if key is None:
        return
    book.pop(key, None)
    book[key] = None
    while len(book) > limit:
        del book[next(iter(book))]


@dataclass(eq=False)
class Room:
    id: str
    history: deque[ChatEntry]
    last_seq: int = 0
    # A direct call's room: only these member ids may join. ``call`` is the call's id.
    allowed: frozenset[str] | None = None
    call: str | None = None
    seats: dict[str, Seat] = field(default_factory=dict)  # insertion order = join order
    chat_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    creator: RoomCreator | None = None  # from the store: created over REST (not a meeting's)
    # From the store: the settings every meeting starts with (created through the server API).
    standing: Standing | None = None
    # The chat erase under way after a meeting with a password ended; the room is kept and
    # its new chat waits until it is done. ``erasures`` counts them: a write numbered for
    # an erased meeting is dropped.
    erasing: asyncio.Task[Any] | None = None
    erasures: int = 0
    # Chat writes and seals spawned and not yet finished, each counted from the moment it is
    # spawned (a write queued for chat_lock does not hold it yet): the room is kept meanwhile.
    writes: int = 0
    ended: int = 0  # how many meetings ended: a change prepared for one is not for the next
    # ---- the meeting: reset by end_meeting
    started_ms: int | None = None  # wall clock, ms: when its first member was seated
    # What names this meeting and no other, in this room or a later one of the same id
    # (what a recording of it is filed under: see recordings.meeting_of).
    meeting: str = field(default_factory=lambda: secrets.token_hex(8))
    hosts: set[str] = field(default_factory=set)  # member ids, all seated
    host_accounts: dict[str, None] = field(default_factory=dict)  # usernames, oldest first
    password_hash: str | None = None
    # Its chat is shared under a password: members' tokens say so ("guarded"), so a room
    # rebuilt after a restart comes back locked; its stored chat is erased when it ends.
    guarded: bool = False
    locked: bool = False
    lobby: bool = False
    waiting: dict[str, Knock] = field(default_factory=dict)  # member id -> knock, earliest first
    removed_ids: dict[str, None] = field(default_factory=dict)  # each oldest first
    removed_accounts: dict[str, None] = field(default_factory=dict)
    removed_addresses: dict[str, None] = field(default_factory=dict)
    removed_until_ms: int = 0  # wall clock, ms: the store keeps the removals until then
    removals_queued: bool = False  # a write of the removals waits to read them
    hands: dict[str, None] = field(default_factory=dict)  # raised, earliest first
    # Its media goes through the SFU (salon.core.sfu): from the join that moved it until the
    # meeting ends.
    sfu: bool = False
    # Seated recorders the server runs (docs/PROTOCOL.md §3.9): never hosts, never the
    # first in, and nobody the meeting goes on for.
    recorders: set[str] = field(default_factory=set)
    # Wrong-password budgets by client address (or member id), oldest first; see
    # LimitSettings.password_guesses. Kept for the room's life, not the meeting's.
    guessers: dict[str, TokenBucket] = field(default_factory=dict)

    @property
    def private(self) -> bool:
        return self.allowed is not None

    @property
    def protected(self) -> bool:
        """Joining needs the room's password."""
        return self.password_hash is not None

    def __len__(self) -> int:
        return len(self.seats)

    def __contains__(self, member_id: object) -> bool:
        return member_id in self.seats

    def unseat(self, member_id: str) -> Seat | None:
        """Take a seat away, and with it the member's host role and raised hand."""
        self.hosts.discard(member_id)
        self.hands.pop(member_id, None)
        self.recorders.discard(member_id)
        return self.seats.pop(member_id, None)

    def broadcast(self, out: Outgoing, *, exclude: str | None = None) -> None:
        for mid, seat in list(self.seats.items()):
            if mid != exclude:
                seat.member.push(out)

    def idle(self) -> bool:
        """Empty with no chat write or erase in flight: safe to forget (its chat is in the
        store)."""
        return (
            not self.seats
            and not self.waiting
            and not self.writes
            and not self.chat_lock.locked()
            and self.erasing is None
        )

    # ------------------------------------------------------------------ the meeting

    def people(self) -> list[Seat]:
        """The seats of members who are not the server's recorders, longest seated first."""
        return [seat for mid, seat in self.seats.items() if mid not in self.recorders]

    def host_list(self) -> list[str]:
        """The hosts, longest seated first."""
        return [mid for mid in self.seats if mid in self.hosts]

    def has_host(self) -> bool:
        return bool(self.hosts)

    def state(self) -> RoomState:
        return RoomState(
            room=self.id,
            hosts=self.host_list(),
            locked=self.locked,
            lobby=self.lobby,
            protected=self.protected,
        )

    def knockers(self) -> list[Knocker]:
        return [
            Knocker(id=mid, name=knock.member.name, removed=knock.removed)
            for mid, knock in self.waiting.items()
        ]

    def was_removed(self, member_id: str, account: str | None, address: str | None) -> bool:
        """Whether a host removed this member id, account or client address in this meeting."""
        return (
            member_id in self.removed_ids
            or (account is not None and account in self.removed_accounts)
            or (address is not None and address in self.removed_addresses)
        )

    def removals(self) -> Removed | None:
        """Whom this meeting removed, as the store keeps it; None for nobody."""
        if not (self.removed_ids or self.removed_accounts or self.removed_addresses):
            return None
        return Removed(
            self.removed_until_ms,
            tuple(self.removed_ids),
            tuple(self.removed_accounts),
            tuple(self.removed_addresses),
        )

    def restore_removals(self, removed: Removed, now_ms: int, limit: int) -> None:
        """Take back whom the meeting removed before this process started, unless the store
        kept it past ``until_ms`` (no token from before the removals is valid any more)."""
        if removed.until_ms <= now_ms:
            return
        self.removed_until_ms = max(self.removed_until_ms, removed.until_ms)
        for book, keys in (
            (self.removed_ids, removed.ids),
            (self.removed_accounts, removed.accounts),
            (self.removed_addresses, removed.addresses),
        ):
            for key in keys:
                remember(book, key, limit)

    def end_meeting(self) -> list[Knock]:
        """Forget the meeting (every protection ends with it, but the room's standing settings
        start the next one); returns who was waiting."""
        waiting = list(self.waiting.values())
        self.ended += 1
        self.started_ms = None
        self.meeting = secrets.token_hex(8)
        self.hosts.clear()
        self.host_accounts.clear()
        self.password_hash = None
        self.guarded = self.locked = self.lobby = False
        self.waiting.clear()
        self.removed_ids.clear()
        self.removed_accounts.clear()
        self.removed_addresses.clear()
        self.removed_until_ms = 0
        self.hands.clear()
        self.recorders.clear()
        self.sfu = False
        self.apply_standing()
        return waiting

    def apply_standing(self) -> None:
        """Give the meeting the room's standing settings, if it has any: its password (the
        meeting's chat is then shared under it: guarded), lobby and lock. (Its host accounts
        are hosts by right: see admission.host_by_right.)"""
        standing = self.standing
        if standing is None:
            return
        self.password_hash = standing.password_hash
        self.guarded = standing.password_hash is not None
        self.lobby, self.locked = standing.lobby, standing.locked
