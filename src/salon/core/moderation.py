"""What hosts do to their room, and raised hands: the part of the hub that acts on a meeting.

Every host action is checked here, in this order: the sender is not seated → ``not_joined``;
seated but not a host of its room (a direct call's room has none) → ``not_host``; the target
is not seated in the sender's room, or is the sender itself where that makes no sense →
``no_such_member``. A refused action changes nothing and nobody else hears of it. What the
room sees of a done action: ``room_state`` when hosts or protections changed, and one
``room_event`` saying who did what to whom.
"""

from __future__ import annotations

import math

from salon.core import validate
from salon.core.errors import fail
from salon.core.member import Member
from salon.core.room import Knock, Room, Seat, remember
from salon.core.rooms import Rooms, account_of, address_of, send
from salon.protocol import ErrorCode, Outgoing
from salon.protocol.messages import (
    Left,
    LobbyDenied,
    MediaChanged,
    Muted,
    MuteKind,
    Reacted,
    ReactionName,
)


class Moderation(Rooms):
    """Host actions and hands, on top of :class:`~salon.core.rooms.Rooms`."""

    # ------------------------------------------------------------------ anyone in a room

    def hand(self, member: Member, raised: bool) -> None:
        """Raise or lower one's own hand; the room hears ``hands`` when it changed.
        Errors: ``not_joined``."""
        room = self.room_of(member)
        if raised == (member.id in room.hands):
            return
        if raised:
            room.hands[member.id] = None
        else:
            del room.hands[member.id]
        self._hands_changed(room)

    def react(self, member: Member, reaction: ReactionName) -> None:
        """Show a reaction to everyone in the member's room or direct call, the sender too
        (``reaction``). At most ``reaction_rate_per_second`` per member, in bursts of up to
        ``reaction_burst``. Errors: ``not_joined``; ``rate_limited`` over the rate (then
        nobody hears of it)."""
        room = self.room_of(member)
        if self.reaction_rate.take(member.id, self.clock.monotonic()) > 0:
            raise fail(ErrorCode.RATE_LIMITED, "too many reactions; wait a moment")
        room.broadcast(Outgoing(Reacted(sender=member.id, reaction=reaction)))

    # ------------------------------------------------------------------ protections

    def lock(self, host: Member, locked: bool) -> None:
        """Lock the room (nobody new may join or knock; those waiting keep waiting) or
        unlock it. Errors: ``not_joined``, ``not_host``."""
        room = self._hosted(host)
        if room.locked == locked:
            return
        room.locked = locked
        room.broadcast(Outgoing(room.state()))
        self._tell(room, "locked" if locked else "unlocked", host, None)

    async def set_password(self, host: Member, password: str | None) -> None:
        """Give the room a password (hashed in a worker thread, kept in memory with the
        meeting), change it, or remove it (None or empty). Members present stay; their tokens
        say the room is guarded. Errors: ``not_joined``, ``not_host``, ``wrong_password``
        (over ``max_password_chars``); ``not_joined`` or ``not_host`` too when the sender left
        or stopped being a host while the password was hashed."""
        room = self._hosted(host)
        password = validate.password(password, self.limits.max_password_chars)
        if password is None:
            if not room.protected and not room.guarded:
                return
            self._protect(room, host, None)
            return
        meeting = room.ended
        hashed = await self.keys.hash_password(password)
        if self._hosted(host) is not room or room.ended != meeting:
            raise fail(ErrorCode.NOT_JOINED, "the meeting ended while its password was set")
        self._protect(room, host, hashed)

    def _protect(self, room: Room, host: Member, hashed: str | None) -> None:
        room.password_hash = hashed
        sealed, room.guarded = room.guarded, hashed is not None
        if room.guarded != sealed:
            self._reseal(room)
        for seat in list(room.seats.values()):
            self._placed(seat.member, room)  # a token that says whether it is guarded
        room.broadcast(Outgoing(room.state()))
        self._tell(room, "password_removed" if hashed is None else "password_set", host, None)

    def set_lobby(self, host: Member, enabled: bool) -> None:
        """Turn the lobby on or off. Off admits everyone waiting, earliest first, as long as
        there are seats, except people removed earlier (they keep waiting).
        Errors: ``not_joined``, ``not_host``."""
        room = self._hosted(host)
        if room.lobby == enabled:
            return
        room.lobby = enabled
        room.broadcast(Outgoing(room.state()))
        self._tell(room, "lobby_on" if enabled else "lobby_off", host, None)
        if enabled:
            return
        admitted = False
        for knock in list(room.waiting.values()):
            if len(room) >= self.capacity(room, knock.member):
                continue  # no seat for this one (an older client, a room on the SFU)
            if not knock.removed:
                self._let_in(room, host, knock)
                admitted = True
        if admitted:
            self._lobby_changed(room)

    # ------------------------------------------------------------------ the lobby

    def admit(self, host: Member, knocker_id: str) -> None:
        """Let one person waiting in the lobby in: it gets ``joined``, the room
        ``member_joined`` and ``room_event{admitted}``, the hosts ``lobby``.
        Errors: ``not_joined``, ``not_host``, ``no_such_member`` (nobody waits with that id),
        ``room_full`` (the person keeps waiting)."""
        room = self._hosted(host)
        if knocker_id not in room.waiting:
            raise fail(ErrorCode.NO_SUCH_MEMBER, "nobody with that id waits in the lobby")
        knock = room.waiting[knocker_id]
        if len(room) >= self.capacity(room, knock.member):
            raise fail(ErrorCode.ROOM_FULL, f"this room is full ({len(room)} people)")
        self._let_in(room, host, knock)
        self._lobby_changed(room)

    def _let_in(self, room: Room, host: Member, knock: Knock) -> None:
        self._withdraw(knock.member)  # the hosts hear ``lobby`` after the room's news
        if knock.removed:
            # A host let a removed member back in: its place (and its account's) may come
            # back after a restart. Its address still makes a later join knock, marked removed.
            room.removed_ids.pop(knock.member.id, None)
            room.removed_accounts.pop(account_of(knock.member) or "", None)
            self._keep_removals(room)
        self._seat(knock.member, room, knock.media)
        self._tell(room, "admitted", host, knock.member)

    def deny(self, host: Member, knocker_id: str) -> None:
        """Turn one person waiting away: it gets ``lobby_denied{denied}``, the room
        ``room_event{denied}``, the hosts ``lobby``.
        Errors: ``not_joined``, ``not_host``, ``no_such_member``."""
        room = self._hosted(host)
        knock = room.waiting.get(knocker_id)
        if knock is None:
            raise fail(ErrorCode.NO_SUCH_MEMBER, "nobody with that id waits in the lobby")
        self._withdraw(knock.member)
        send(knock.member, LobbyDenied(room=room.id, reason="denied"))
        self._tell(room, "denied", host, knock.member)
        self._lobby_changed(room)

    # ------------------------------------------------------------------ members

    def make_host(self, host: Member, target_id: str) -> None:
        """Make a member of the room a host too (no change when it is one already).
        Errors: ``not_joined``, ``not_host``, ``no_such_member`` (also for the room's
        recorder: it is never a host)."""
        room = self._hosted(host)
        target = self._target(room, host, target_id, others_only=False).member
        if target.id in room.recorders:
            raise fail(ErrorCode.NO_SUCH_MEMBER, "the room's recorder cannot be a host")
        if target.id in room.hosts:
            return
        self._crown(room, target)
        self._placed(target, room)
        room.broadcast(Outgoing(room.state()))
        self._tell(room, "host_granted", host, target)
        self._brief_host(target, room)

    def remove(self, host: Member, target_id: str) -> None:
        """Take another member out of the room: it gets ``left{removed, by}``, the room
        ``member_left`` and ``room_event{removed}``. The meeting remembers its member id,
        account and client address: a later join from any of them knocks, marked removed. A
        removed host's account is no longer one of the meeting's host accounts.
        Errors: ``not_joined``, ``not_host``, ``no_such_member`` (also for oneself)."""
        room = self._hosted(host)
        self._remove(room, host, self._target(room, host, target_id).member)

    def remove_by_server(self, room_id: str, target_id: str) -> None:
        """:meth:`remove`, asked by the server API rather than a host: the member gets
        ``left{removed}`` and the room ``room_event{removed}``, both with ``by`` null.
        Errors: ``no_such_room`` (no meeting live there), ``no_such_member``."""
        room = self._live_meeting(room_id)
        seat = room.seats.get(target_id)
        if seat is None:
            raise fail(ErrorCode.NO_SUCH_MEMBER, "no such member in that meeting")
        self._remove(room, None, seat.member)

    def _remove(self, room: Room, by: Member | None, target: Member) -> None:
        bound = self.limits.max_room_removed
        remember(room.removed_ids, target.id, bound)
        account = account_of(target)
        room.host_accounts.pop(account or "", None)  # a removed host does not come back one
        remember(room.removed_accounts, account, bound)
        remember(room.removed_addresses, address_of(target), bound)
        # Kept until no token issued before this removal can come back (a restart forgets
        # what is only in memory; Hub.rebuild asks the room).
        lifetime_ms = math.ceil(self.limits.resume_token_seconds * 1000)
        room.removed_until_ms = self.clock.wall_ms() + lifetime_ms
        self._keep_removals(room)
        farewell = Left(
            room=room.id,
            reason="removed",
            by=None if by is None else by.id,
            by_name=None if by is None else by.name,
        )
        self._take_out(target, room, farewell, "removed")
        self._tell(room, "removed", by, target)

    def mute(self, host: Member, target_id: str, kind: MuteKind) -> None:
        """Turn another member's microphone or camera off: it gets ``muted`` (its client
        stops sending and says ``media``), the others ``media`` from it, and the room
        ``room_event{muted_mic|stopped_camera}``. Only the member turns it back on.
        Errors: ``not_joined``, ``not_host``, ``no_such_member`` (also for oneself)."""
        room = self._hosted(host)
        seat = self._target(room, host, target_id)
        target, media = seat.member, seat.media
        off = {"mic": False} if kind == "mic" else {"camera": False}
        seat.media = media.model_copy(update=off)
        send(target, Muted(room=room.id, kind=kind, by=host.id, by_name=host.name))
        changed = MediaChanged.of(target.id, seat.media)
        room.broadcast(Outgoing(changed), exclude=target.id)
        if media.mic and not seat.media.mic:
            self._mic_went_off(room, target.id)
        self._tell(room, "muted_mic" if kind == "mic" else "stopped_camera", host, target)

    def lower_hand(self, host: Member, target_id: str) -> None:
        """Lower a member's raised hand: the room hears ``hands`` and
        ``room_event{hand_lowered}`` (no change when it is not raised).
        Errors: ``not_joined``, ``not_host``, ``no_such_member``."""
        room = self._hosted(host)
        target = self._target(room, host, target_id, others_only=False).member
        if target.id not in room.hands:
            return
        del room.hands[target.id]
        self._hands_changed(room)
        self._tell(room, "hand_lowered", host, target)

    def end_meeting(self, host: Member) -> None:
        """End the meeting for everyone: every seated member (the host too) gets
        ``left{ended, by}``, everyone waiting ``lobby_denied{ended}``; the room's protections
        end (and its chat is erased when it had a password). Errors: ``not_joined``,
        ``not_host``."""
        room = self._hosted(host)
        self._end(room, Left(room=room.id, reason="ended", by=host.id, by_name=host.name))

    def end_by_server(self, room_id: str) -> None:
        """:meth:`end_meeting`, asked by the server API: everyone gets ``left{ended}`` with
        ``by`` null. Errors: ``no_such_room`` (no meeting live there)."""
        room = self._live_meeting(room_id)
        self._end(room, Left(room=room.id, reason="ended"))

    def _end(self, room: Room, farewell: Left) -> None:
        self._clear_seats(room, farewell)
        self._end_meeting(room, "ended")
        self._forget_if_idle(room)

    def _live_meeting(self, room_id: str) -> Room:
        """The meeting under way in ``room_id`` (someone is seated or waits), not a call's."""
        room = self.rooms.get(room_id)
        if room is None or room.allowed is not None or not (room.seats or room.waiting):
            raise fail(ErrorCode.NO_SUCH_ROOM, "no meeting is under way in that room")
        return room

    # ------------------------------------------------------------------ checks

    def _hosted(self, member: Member) -> Room:
        """The room ``member`` is seated in and a host of."""
        room = self.room_of(member)
        if member.id not in room.hosts:
            raise fail(ErrorCode.NOT_HOST, "only a host of this room can do that")
        return room

    def _target(
        self, room: Room, host: Member, target_id: str, *, others_only: bool = True
    ) -> Seat:
        seat = room.seats.get(target_id)
        if seat is None or (others_only and target_id == host.id):
            raise fail(ErrorCode.NO_SUCH_MEMBER, "no such member in your room")
        return seat
