"""Who gets into a room, and how: the joining rules in their order, as pure decisions.

The hub asks :func:`way_in` for a ``join`` and :func:`way_back` for a place rebuilt from its
resume token; neither changes anything. A refusal is a :class:`SalonError` with its code.
The order (docs/PROTOCOL.md, hosts and lobby):

0. the recorder of a recording under way (a ``recorder`` invitation the server minted):
   seated, never as a host, past everything but a full room;
1. a host by right (the creator's host key, the creating account, an account that was a host
   in this meeting or is one of the room's standing host accounts, a host invitation), or
   whoever joins an empty room that has no standing settings: seated as a host;
2. removed earlier in this meeting (member id, account or client address): knocks, marked
   removed, whatever the lobby setting, password or invitation (unless locked);
3. locked: ``room_locked``;
4. a guest invitation: seated, past the password and the lobby;
5. a password: the right one seats (skipping the lobby), a wrong one is ``wrong_password``, none
   knocks when the lobby is on and is ``wrong_password`` when it is off;
6. lobby on: knocks;
7. else seated. No seat left is ``room_full``; no place left in the lobby (``max_room_members``
   waiting) is ``room_full`` too.

A room created through the server API (standing settings) gives nobody the host role for
coming first: its password, lobby and lock hold for the first joiner too.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum

from salon.core.errors import fail
from salon.core.invites import Role
from salon.core.passwords import RoomCreator, Standing, host_key_opens
from salon.core.resume import Claims
from salon.core.room import Room
from salon.protocol import ErrorCode


class Way(Enum):
    HOST = "host"  # seated, as a host
    SEAT = "seat"  # seated
    RECORDER = "recorder"  # seated, as the room's recorder (never a host)
    KNOCK = "knock"  # waits in the lobby
    KNOCK_REMOVED = "knock_removed"  # waits in the lobby, marked as removed earlier
    CHECK = "check"  # the password given must be checked against the room's first


@dataclass(frozen=True, slots=True)
class Joiner:
    """What decides how a member gets in: who it is and what it brought."""

    id: str
    account: str | None  # username when signed in
    address: str | None  # its connection's client address
    password: str | None = None
    host_key: str | None = None
    invite: Role | None = None  # what a valid invitation for this room lets it do
    opens: str | None = None  # a password hash the password was found to open
    refused: str | None = None  # a password hash the password was found not to open


def host_by_right(room: Room, joiner: Joiner) -> bool:
    """R1 (a) and (b): the creator's host key, the creating account, or an account that was a
    host earlier in this meeting (or is a standing host account), or a host invitation. Such a
    host bypasses lock, lobby, password and removal."""
    if joiner.invite == "host" or host_key_opens(joiner.host_key, room.creator):
        return True
    return account_hosts(joiner.account, room.creator, room.standing, room.host_accounts)


def account_hosts(
    account: str | None,
    creator: RoomCreator | None,
    standing: Standing | None,
    meeting_hosts: Collection[str] = (),
) -> bool:
    """Whether the account (username; None for a guest) is a host of a room by right: it
    created the room, the server API named it among the room's hosts (no host of a meeting
    can take that away), or it was a host earlier in the meeting under way
    (``meeting_hosts``)."""
    if account is None:
        return False
    return (
        (creator is not None and creator.account == account)
        or (standing is not None and account in standing.host_accounts)
        or account in meeting_hosts
    )


def way_in(room: Room, joiner: Joiner, max_members: int) -> Way:
    """How ``joiner`` gets into ``room`` now, or the error that refuses it."""
    if room.allowed is not None:  # a direct call's room
        if joiner.id not in room.allowed:
            raise fail(ErrorCode.NO_SUCH_ROOM, "no such room")
        return _seat(room, Way.SEAT, max_members)
    if joiner.invite == "recorder":
        return _seat(room, Way.RECORDER, max_members)
    # Empty means no seat at all: a recorder's seat keeps the meeting, and with it the lock,
    # the password and the lobby (the hub ends a meeting where only recorders are left).
    if (not room.seats and room.standing is None) or host_by_right(room, joiner):
        return _seat(room, Way.HOST, max_members)
    _unlocked(room)
    if room.was_removed(joiner.id, joiner.account, joiner.address):
        return _knock(room, Way.KNOCK_REMOVED, max_members)
    if joiner.invite == "guest":
        return _seat(room, Way.SEAT, max_members)
    if room.password_hash is not None:
        if joiner.password is None:
            if room.lobby:
                return _knock(room, Way.KNOCK, max_members)
            raise fail(ErrorCode.WRONG_PASSWORD, "this room needs its password")
        if room.password_hash == joiner.refused:
            raise fail(ErrorCode.WRONG_PASSWORD, "that is not this room's password")
        if room.password_hash != joiner.opens:
            return Way.CHECK
        return _seat(room, Way.SEAT, max_members)
    if room.lobby:
        return _knock(room, Way.KNOCK, max_members)
    return _seat(room, Way.SEAT, max_members)


def way_back(room: Room, claims: Claims, max_members: int) -> Way | None:
    """How a place rebuilt from its token comes back into the ordinary room its token names;
    None when it does not (it resumes without a room): the room is full, a host removed that
    member (and did not let it back in; the meeting's removals outlive a restart), or the room
    is locked, has a password or a lobby that its token does not get it past. The member id
    and the account count here, not the client address: the token proves who comes back, and
    the others behind a removed member's address keep their places.

    A token's host claim makes it a host again (R3), past every protection; a guarded token
    (let in under a password) gets back into a room that came back guarded. The first one back
    into an empty room is seated, but a host only by its claim: coming back first is no reason
    to be trusted more than before (until a host is back, the room has none; the role passes
    on when someone leaves, R2)."""
    if len(room) >= max_members:
        return None
    if claims.member in room.removed_ids or (claims.account or "") in room.removed_accounts:
        return None
    if claims.host:
        return Way.HOST
    if not room.seats or (claims.guarded and room.guarded):
        return Way.SEAT
    if room.locked or room.protected or room.lobby:
        return None
    return Way.SEAT


def _unlocked(room: Room) -> None:
    if room.locked:
        raise fail(ErrorCode.ROOM_LOCKED, "a host has locked this room")


def _seat(room: Room, way: Way, max_members: int) -> Way:
    if len(room) >= max_members:
        raise fail(ErrorCode.ROOM_FULL, f"this room is full ({len(room)} people)")
    return way


def _knock(room: Room, way: Way, max_members: int) -> Way:
    if len(room.waiting) >= max_members:
        raise fail(ErrorCode.ROOM_FULL, f"this room's lobby is full ({len(room.waiting)} waiting)")
    return way
