"""Rooms: who is in which room (or waits in its lobby), seating and politeness, hosts passing
on, meetings ending, and the relay between members. Chat is in
:mod:`salon.core.roomchat`, what hosts do in :mod:`salon.core.moderation`, who gets in how in
:mod:`salon.core.admission`.

This is the part of the hub (:class:`~salon.core.hub.Hub` builds on it, through
:class:`~salon.core.moderation.Moderation`) that never asks who is online: it pushes to
:class:`Member` objects and awaits only the stores it was given. Every method either does what
it says or raises a :class:`SalonError` having changed nothing. Decisions (who is in, who is
a host, who gets what) are made without awaiting; after an await (a password checked in a
worker thread) they are made again, as the room may have changed meanwhile.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from salon.core import validate
from salon.core.admission import Joiner, Way, way_in
from salon.core.calls import CallBook
from salon.core.chatlog import ChatRepository
from salon.core.clock import Clock
from salon.core.errors import fail
from salon.core.invites import Invites, Role
from salon.core.member import Member
from salon.core.observe import (
    NO_OBSERVER,
    MeetingEndReason,
    MeetingEvent,
    MeetingEventType,
    MemberLeftReason,
    Observer,
)
from salon.core.passwords import RoomKeys
from salon.core.place import Place
from salon.core.ratelimit import TokenBucket
from salon.core.room import Knock, Room, Seat, remember
from salon.core.roomchat import RATE_KEYS, ChatRooms, address_of, send
from salon.core.settings import LimitSettings
from salon.core.sfu import MAX_TRICKLED, MediaRouter, SfuConnection, SfuError
from salon.core.throttle import KeyedThrottle
from salon.protocol import ErrorCode, Outgoing
from salon.protocol.messages import (
    CallEnded,
    Hands,
    IceCandidate,
    Joined,
    Left,
    Lobby,
    LobbyDenied,
    LobbyWaiting,
    MediaChanged,
    MediaState,
    MemberInfo,
    MemberJoined,
    MemberLeft,
    MemberResumed,
    PresenceChanged,
    RoomAction,
    RoomEvent,
    RoomMedia,
    SessionDescription,
    SfuAnswer,
    SfuQualityLevel,
    Signal,
    SignalRelay,
    Talking,
)
from salon.protocol.version import SFU_VERSION


@contextmanager
def _sfu_refusals() -> Iterator[None]:
    """What the SFU refused (:class:`~salon.core.sfu.SfuError`) is ``sfu_unavailable``."""
    try:
        yield
    except SfuError as exc:
        raise fail(ErrorCode.SFU_UNAVAILABLE, f"{exc}: try again") from None


SFU_RESTARTS_PER_MINUTE = 3
SFU_RESTART_BURST = 3
SFU_PUBLISHES_PER_MINUTE = 30
"""``sfu_publish`` per member: a page publishes when it starts and when a screen share starts
or stops (and again after a lost answer), far below this; a renegotiation that adds or drops
a stream costs every other member one too."""
SFU_PUBLISH_BURST = 10

CALL_ROOM_PREFIX = "call-"
"""Rooms of direct calls; such an id can only be joined while its call is live."""

__all__ = [
    "CALL_ROOM_PREFIX",
    "Rooms",
    "account_of",
    "address_of",
    "polite",
    "send",
    "version_of",
]


def polite(receiver: str, other: str) -> bool:
    """Whether ``receiver`` is the polite side toward ``other`` (W3C webrtc-pc 10.7, perfect
    negotiation): the greater member id in code-point order is polite. Both sides agree without
    talking, whatever order they joined or resumed in, on any process."""
    return receiver > other


def account_of(member: Member) -> str | None:
    """The username a member is signed in as, None for a guest."""
    return member.account if isinstance(member, Place) else None


def version_of(member: Member) -> int:
    """The protocol version a member's connection chose (1 for a member that is no place)."""
    return member.version if isinstance(member, Place) else 1


class Rooms(ChatRooms):
    """The rooms of one hub and the state they share with it (names, watchers, calls)."""

    def __init__(
        self, limits: LimitSettings, clock: Clock, chats: ChatRepository, keys: RoomKeys
    ) -> None:
        super().__init__(limits, clock, chats)
        self.keys = keys
        self.observer: Observer = NO_OBSERVER  # told what happens: metrics, webhooks
        self.invites: Invites | None = None  # checks join.invite; None: invitations ignored
        self.sfu: MediaRouter | None = None  # the SFU big rooms move to; None: mesh only
        per_minute = limits.reaction_rate_per_second * 60
        self.reaction_rate = KeyedThrottle(per_minute, limits.reaction_burst, RATE_KEYS)
        # Joins by room and client address: one stranger's loop spends its own budget only.
        joins = limits.room_joins_per_minute
        self.join_rate = KeyedThrottle(joins, limits.room_join_burst, RATE_KEYS)
        # Password tries by room, from all addresses together (an address with a member in
        # the room is exempt): many addresses guessing in parallel gain nothing.
        guesses = limits.room_password_guesses_per_minute
        self.room_guesses = KeyedThrottle(guesses, limits.room_password_guess_burst, RATE_KEYS)
        # sfu_restart by member: each one costs Janus a session and everyone a renegotiation.
        self.sfu_restarts = KeyedThrottle(SFU_RESTARTS_PER_MINUTE, SFU_RESTART_BURST, RATE_KEYS)
        self.sfu_publishes = KeyedThrottle(SFU_PUBLISHES_PER_MINUTE, SFU_PUBLISH_BURST, RATE_KEYS)
        self.calls = CallBook()
        self._names: dict[str, Member] = {}  # name_key -> member, reachable names only
        self._online: dict[str, Member] = {}  # member id -> every greeted member
        self._waiting: dict[str, Room] = {}  # member id -> the room whose lobby it waits in
        # Rooms rebuilt after a restart that have members but no host yet, and since when
        # (monotonic seconds): see Hub.sweep.
        self._hostless: dict[Room, float] = {}
        self._watchers: dict[str, Member] = {}
        self._hung_up: dict[str, float] = {}  # call room id -> until when it stays closed

    # ------------------------------------------------------------------ presence watchers

    def _reachable(self, member: Member) -> bool:
        """Whether ``member`` is callable by its name (and listed in ``presence``)."""
        return self._names.get(validate.name_key(member.name)) is member

    def _tell_watchers(self, message: PresenceChanged, *, about: str | None = None) -> None:
        """Push ``message`` to every watcher but ``about``: the member whose connection it is
        about is not told of its own loss and return (§4.4; its return would otherwise reach
        it before its ``welcome``, and its loss after it, among what was kept)."""
        out = Outgoing(message)
        for watcher in list(self._watchers.values()):
            if watcher.id != about:
                watcher.push(out)

    # ------------------------------------------------------------------ joining

    async def join(
        self,
        member: Member,
        room_id: str,
        password: str | None,
        media: MediaState,
        host_key: str | None = None,
        invite: str | None = None,
    ) -> None:
        """Join ``room_id`` with ``media``, or knock on it, by the rules of
        :mod:`salon.core.admission`; ``password`` opens a protected room (it never sets one),
        ``host_key`` is the key ``POST /api/v1/rooms`` gave the room's creator, ``invite`` an
        invitation the server API minted (:mod:`salon.core.invites`); a wrong key or an
        invalid invitation is ignored. Seated: ``joined`` (and a token), the room
        ``member_joined``. Knocking: ``lobby_waiting``, the hosts ``lobby``. Either way the
        member first leaves the room it was in and stops waiting elsewhere.

        Errors: ``invalid_room``; ``wrong_password`` (over ``max_password_chars``, wrong, or
        missing); ``already_joined`` (in that room or waiting for it); ``in_call`` (a call
        rings); ``no_such_room`` (a call's room); ``server_full``; ``room_locked``;
        ``room_full`` (no seat, or ``max_room_members`` waiting already); ``rate_limited``
        (the room's joins, or the address's or the room's password tries, are spent)."""
        room_id = validate.room_id(room_id)
        password = validate.password(password, self.limits.max_password_chars)
        self._joinable(member, room_id)
        room = self.rooms.get(room_id)
        if room is None:
            if room_id.startswith(CALL_ROOM_PREFIX):
                raise fail(ErrorCode.NO_SUCH_ROOM, "no such room")
            room = await self._activate(room_id)
        self._loading[room.id] += 1  # keep the room while its password is checked
        try:
            role = self._invited(invite, room_id)
            joiner = Joiner(
                member.id, account_of(member), address_of(member), password, host_key, role
            )
            way = await self._way_in(member, room, joiner)
            if way is None:
                return  # disconnected while we waited: seat no ghost
            self._may_enter(room, joiner)
            if member.id in self._where:
                self.leave(member)
            self._stop_waiting(member)
            replaced = self._seated_older_place(member, room)
            self._taking_place(member)
            if way in (Way.KNOCK, Way.KNOCK_REMOVED):
                self._knock(member, room, media, removed=way is Way.KNOCK_REMOVED)
            else:
                recorder = way is Way.RECORDER
                self._seat(
                    member,
                    room,
                    media,
                    host=way is Way.HOST,
                    recorder=recorder,
                    replaces=None if recorder else replaced,
                )
            self._took_place(member)
        finally:
            self._loading -= Counter({room.id: 1})
            self._forget_if_idle(room)  # a refused first joiner leaves no empty room behind

    def _seat_taken_back(self, member: Member, room: Room) -> Way | None:
        """How ``member`` is seated when it is the same person as a member seated in ``room``
        whose place it takes over (the hub knows accounts): the way that member sat; None
        for anyone else, who gets in by the rules."""
        return None

    def _seated_older_place(self, member: Member, room: Room) -> str | None:
        """The id of the member seated in ``room`` (not as its recorder) that is the same
        person as ``member`` and whose place it takes over (the hub knows accounts)."""
        return None

    def _taking_place(self, member: Member) -> None:
        """``member`` is about to be seated or to wait in a lobby (the hub closes the older
        place of the same person now, so that it hears nothing of this)."""

    def _took_place(self, member: Member) -> None:
        """``member`` was just seated or began to wait in a lobby (the hub then ends the older
        place of the same person, :meth:`~salon.core.hub.Hub.hold_account`)."""

    def _invited(self, token: str | None, room_id: str) -> Role | None:
        """What a valid invitation for ``room_id`` lets its holder do; None for none. A
        recorder's is good once, for the recording of that room that waits for its recorder
        and minted it; any other is refused (``recording_unavailable``): a recorder late for
        a recording that is over must not come in as somebody else, let alone host an empty
        room."""
        if token is None or self.invites is None:
            return None
        invite = self.invites.check(token, room_id, self.clock.wall_ms() / 1000)
        if invite is None:
            return None
        if invite.role == "recorder" and not self._awaits_recorder(room_id, token):
            raise fail(ErrorCode.RECORDING_UNAVAILABLE, "this recorder's recording is over")
        return invite.role

    def _awaits_recorder(self, room_id: str, token: str) -> bool:
        """Whether a recording of ``room_id`` waits for the recorder it minted ``token`` for
        (see :mod:`salon.core.recordings`); never, in rooms that record nothing."""
        return False

    def _joinable(self, member: Member, room_id: str) -> None:
        current = self._where.get(member.id) or self._waiting.get(member.id)
        if current is not None and current.id == room_id:
            raise fail(ErrorCode.ALREADY_JOINED, "you are already in (or waiting for) this room")
        if self.calls.of(member.id) is not None:
            raise fail(ErrorCode.IN_CALL, "answer or cancel your ringing call first")

    async def _way_in(self, member: Member, room: Room, joiner: Joiner) -> Way | None:
        """Decide, checking the password in a worker thread when one is needed, and decide
        again after it (the room may have changed meanwhile). None: the member left."""
        for _ in range(3):
            if self._online.get(member.id) is not member:
                return None
            self._joinable(member, room.id)
            if room.sfu and version_of(member) < SFU_VERSION:
                raise fail(
                    ErrorCode.ROOM_FULL,
                    "this room's media goes through the SFU, which your client cannot use "
                    f"(it needs protocol v{SFU_VERSION})",
                )
            taken = self._seat_taken_back(member, room)
            if taken is not None:
                return taken
            way = way_in(room, joiner, self.capacity(room, member))
            if way is not Way.CHECK:
                return way
            hashed, password = room.password_hash, joiner.password
            assert hashed is not None, "way_in asks for a check only when there is a password"
            assert password is not None, "... and one was given"
            self._may_guess_room(room, joiner)
            self._may_guess(room, joiner)
            self._guessed(room, joiner)
            if await self.keys.verify_password(password, hashed):
                joiner = replace(joiner, opens=hashed)
            else:
                joiner = replace(joiner, refused=hashed)
        raise fail(ErrorCode.WRONG_PASSWORD, "the room's password changed meanwhile: try again")

    def _may_enter(self, room: Room, joiner: Joiner) -> None:
        """Spend one of the joins of this room from the joiner's client address (member id
        without one): ``room_join_burst`` at once, then ``room_joins_per_minute``, or refuse
        with ``rate_limited``. A script joining and leaving in a loop cannot flood the
        members with ``member_joined``/``member_left``, and spends nobody else's joins. Only
        a join that would seat or knock spends one; a refused one disturbs nobody."""
        who = f"{room.id}\n{joiner.address or joiner.id}"
        wait = self.join_rate.take(who, self.clock.monotonic())
        if wait > 0:
            raise fail(
                ErrorCode.RATE_LIMITED,
                f"too many joins of this room: try again in {math.ceil(wait)} s",
            )

    def _may_guess_room(self, room: Room, joiner: Joiner) -> None:
        """Refuse with ``rate_limited``, spending nothing, when the room's password tries from
        all addresses together are spent (``room_password_guess_burst`` at once, then
        ``room_password_guesses_per_minute``): a thousand addresses guess no faster than one
        room allows. A joiner from the address of a member seated in the room is exempt, so
        strangers spending the room's tries cannot lock out the members' colleagues."""
        if self._known_address(room, joiner):
            return
        wait = self.room_guesses.due(room.id, self.clock.monotonic())
        if wait > 0:
            raise fail(
                ErrorCode.RATE_LIMITED,
                f"too many passwords tried for this room: try again in {math.ceil(wait)} s",
            )

    def _guessed(self, room: Room, joiner: Joiner) -> None:
        """Spend one of the room's password tries (see :meth:`_may_guess_room`)."""
        if not self._known_address(room, joiner):
            self.room_guesses.take(room.id, self.clock.monotonic())

    def _known_address(self, room: Room, joiner: Joiner) -> bool:
        """Whether a member seated in ``room`` connects from the joiner's client address."""
        address = joiner.address
        if address is None:
            return False
        return any(address_of(seat.member) == address for seat in room.seats.values())

    def _may_guess(self, room: Room, joiner: Joiner) -> None:
        """Spend one of the joiner's password tries on ``room`` (a token bucket per client
        address: ``password_guesses`` in a row, then one per ``password_retry_seconds``), or
        refuse with ``rate_limited`` before any check: a four-digit code takes days, not
        minutes. Tries come back with time, so a person who mistyped waits seconds."""
        limits, now = self.limits, self.clock.monotonic()
        who = joiner.address or joiner.id
        bucket = room.guessers.pop(who, None)
        if bucket is None:
            rate = 1.0 / limits.password_retry_seconds
            bucket = TokenBucket(rate, limits.password_guesses, now)
            while len(room.guessers) >= limits.max_room_guessers:
                del room.guessers[next(iter(room.guessers))]  # the least recent guesser
        room.guessers[who] = bucket  # most recent last
        wait = bucket.wait(now)
        if wait > 0:
            raise fail(
                ErrorCode.RATE_LIMITED,
                f"too many passwords tried for this room: try again in {math.ceil(wait)} s",
            )

    async def _activate(
        self,
        room_id: str,
        *,
        allowed: frozenset[str] | None = None,
        call: str | None = None,
        member_of_sealed: bool = False,
    ) -> Room:
        """Bring a room to life, with its recent chat from the store, the seq it goes on from
        and what the store knows of it (one query: who created it over REST, whether it is
        sealed). ``allowed`` and ``call`` make it a direct call's private room (brought back
        after a restart; like a call's new room it is not held to ``max_rooms``).

        A room the store says is sealed had a meeting with a password under way when this
        process last heard of it (it restarted since): unless ``member_of_sealed`` (a member
        of that meeting comes back with its token: the room comes back locked), its chat is
        erased and the seal broken first, so nobody else reads what was said under the
        password."""
        if allowed is None and len(self.rooms) >= self.limits.max_rooms:
            raise fail(ErrorCode.SERVER_FULL, "this server has as many rooms open as it allows")
        # While we read, the room may open, take chat and empty again; it is kept (see
        # _forget_if_idle) so we join it rather than a copy with a stale last_seq.
        self._loading[room_id] += 1
        try:
            stored = None if allowed is not None else await self.keys.lookup(room_id)
            sealed = stored is not None and stored.sealed
            if sealed and not member_of_sealed:
                await self._complete(self._break_seal(room_id))
                sealed = False
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
        if stored is not None:
            room.creator, room.standing = stored.creator, stored.standing
            if stored.removed is not None:
                limit = self.limits.max_room_removed
                room.restore_removals(stored.removed, self.clock.wall_ms(), limit)
        room.apply_standing()
        if sealed:
            # Kept for a member of the sealed meeting: unless it is the room's standing one,
            # its password died with the old process, so the room stays locked.
            room.guarded = True
            room.locked = room.locked or not room.protected
        self.rooms[room_id] = room
        return room

    def _seat(
        self,
        member: Member,
        room: Room,
        media: MediaState,
        *,
        returning: bool = False,
        host: bool = False,
        recorder: bool = False,
        replaces: str | None = None,
    ) -> None:
        """Seat ``member`` (a ``host``, the room's ``recorder``, or neither): it gets
        ``joined``, a token naming the room, and as a host what hosts are told (the ``lobby``
        when someone waits); the others get ``member_joined`` (``member_resumed`` for a place
        rebuilt from its token), and ``room_state`` when it came in as a host. A knock
        elsewhere ends. ``replaces``: the seated member whose place this one takes over (the
        same person, docs/PROTOCOL.md §2.8): ``joined`` does not list it, and
        ``member_joined.replaces`` names it."""
        self._stop_waiting(member)
        if recorder:  # the server's recorder always shows that it records (§3.9)
            media = media.model_copy(update={"recording": True})
        else:
            self._route(room, member)
        now_ms = self.clock.wall_ms()
        starting = room.started_ms is None
        if starting:
            room.started_ms = now_ms
        room.seats[member.id] = Seat(member, media, now_ms)
        self._where[member.id] = room
        if recorder:
            room.recorders.add(member.id)
            self._recorder_seated(room, member)
        elif host and room.allowed is None:
            self._crown(room, member)
        if not returning:
            if starting:
                self._report("meeting_started", room)
            self._report("member_joined", room, member, host=member.id in room.hosts)
        self._send_joined(member, room, without=replaces)
        self._placed(member, room)
        self._brief_host(member, room)
        if returning:
            self._announce_back(member)
        else:
            self._announce(room, member, media, MemberJoined, replaces=replaces)
        if host and len(room) > 1:
            room.broadcast(Outgoing(room.state()), exclude=member.id)
        if room.sfu and self.sfu is not None:
            if returning:  # a place rebuilt from its token: its old connections are dead
                send(member, RoomMedia(room=room.id, sfu=True))
            self.sfu.enter(room.id, room.meeting, member)

    # ------------------------------------------------------------------ the SFU

    def capacity(self, room: Room, joiner: Member) -> int:
        """The most members ``room`` may hold when ``joiner`` comes in: ``max_members`` of
        the SFU for a room on it, or that would move to it, else ``max_room_members``
        (salon.core.sfu); none for a member older than v3 when the room is on the SFU."""
        if room.sfu and self.sfu is not None:
            return self.sfu.max_members if version_of(joiner) >= SFU_VERSION else 0
        if self._would_move(room, joiner):
            return max(len(room) + 1, self.sfu.max_members if self.sfu else 0)
        return self.limits.max_room_members

    def _all_speak_sfu(self, room: Room) -> bool:
        return all(version_of(s.member) >= SFU_VERSION for s in room.seats.values())

    def _would_move(self, room: Room, joiner: Member) -> bool:
        """Whether seating ``joiner`` moves the mesh ``room`` to the SFU (salon.core.sfu)."""
        router = self.sfu
        if router is None or room.sfu or room.private:
            return False
        large = room.standing is not None and room.standing.large
        if (len(room) + 1 <= router.mesh_limit and not large) or not router.available:
            return False
        # The server's recorder speaks v3 too: a recording, under way or on its way, moves
        # with its room.
        return version_of(joiner) >= SFU_VERSION and self._all_speak_sfu(room)

    def _route(self, room: Room, joiner: Member) -> None:
        """Move ``room`` to the SFU before ``joiner`` is seated when it would hold more than
        the mesh limit (salon.core.sfu has the rule): everyone seated hears ``room_media``
        and re-publishes there."""
        router = self.sfu
        if router is None or not self._would_move(room, joiner):
            return
        room.sfu = True
        room.broadcast(Outgoing(RoomMedia(room=room.id, sfu=True)))
        for seat in room.seats.values():
            router.enter(room.id, room.meeting, seat.member)

    def _sfu_room(self, member: Member) -> tuple[Room, MediaRouter]:
        room = self.room_of(member)
        if not room.sfu or self.sfu is None:
            raise fail(ErrorCode.NOT_SFU_ROOM, "your room's media is a mesh, not the SFU")
        return room, self.sfu

    def sfu_restart(self, member: Member) -> None:
        """``sfu_restart``: a new place on the SFU for ``member``, whose connections there do
        not work; it hears ``room_media`` and publishes anew. Errors: ``not_joined``,
        ``not_sfu_room``, ``rate_limited`` (``SFU_RESTART_BURST`` at once, then
        ``SFU_RESTARTS_PER_MINUTE``)."""
        room, router = self._sfu_room(member)
        if not router.available:  # a new place would fail the same way: spend nothing
            raise fail(ErrorCode.SFU_UNAVAILABLE, "the SFU does not answer: try again later")
        wait = self.sfu_restarts.take(member.id, self.clock.monotonic())
        if wait > 0:
            raise fail(
                ErrorCode.RATE_LIMITED,
                f"too many restarts of your media: try again in {math.ceil(wait)} s",
            )
        send(member, RoomMedia(room=room.id, sfu=True))
        router.enter(room.id, room.meeting, member)

    def sfu_resumed(self, member: Member) -> None:
        """``member`` resumed: the SFU's offer it has not answered is sent again (it, or the
        answer, may have been lost with the old connection)."""
        room = self._where.get(member.id)
        if room is not None and room.sfu and self.sfu is not None:
            self.sfu.resumed(member)

    async def sfu_publish(self, member: Member, sdp: str, screen: str | None) -> None:
        """``sfu_publish``: relay ``member``'s offer to the SFU and its answer back
        (``sfu_answer``). Errors: ``not_joined``, ``not_sfu_room``, ``bad_message`` (more
        than one audio and two video m-lines, or any other), ``rate_limited``
        (``SFU_PUBLISH_BURST`` at once, then ``SFU_PUBLISHES_PER_MINUTE``),
        ``sfu_unavailable``."""
        _, router = self._sfu_room(member)
        wait = self.sfu_publishes.take(member.id, self.clock.monotonic())
        if wait > 0:
            raise fail(ErrorCode.RATE_LIMITED, f"too many offers: try again in {math.ceil(wait)} s")
        kinds = Counter(
            line[2:].split(" ", 1)[0] for line in sdp.splitlines() if line.startswith("m=")
        )
        if kinds["audio"] > 1 or kinds["video"] > 2 or set(kinds) - {"audio", "video"}:
            raise fail(
                ErrorCode.BAD_MESSAGE,
                "description: at most one audio and two video m-lines (camera and screen)",
            )
        with _sfu_refusals():
            answer = await router.publish(member, sdp, screen)
        send(member, SfuAnswer(description=SessionDescription(type="answer", sdp=answer)))

    async def sfu_subscribe(self, member: Member, sdp: str) -> None:
        """``sfu_subscribe``: relay ``member``'s answer to the SFU's latest offer. Errors:
        ``not_joined``, ``not_sfu_room``, ``sfu_unavailable``."""
        _, router = self._sfu_room(member)
        with _sfu_refusals():
            await router.subscribe(member, sdp)

    async def sfu_quality(self, member: Member, publisher: str, level: SfuQualityLevel) -> None:
        """``sfu_quality``: receive ``level`` of ``publisher``'s simulcast video. Errors:
        ``not_joined``, ``not_sfu_room``, ``no_such_member`` (not another member of the
        room), ``sfu_unavailable``."""
        room, router = self._sfu_room(member)
        if publisher == member.id or publisher not in room.seats:
            raise fail(ErrorCode.NO_SUCH_MEMBER, "no such member in your room")
        with _sfu_refusals():
            await router.quality(member, publisher, level)

    async def sfu_candidate(
        self, member: Member, pc: SfuConnection, candidate: IceCandidate | None
    ) -> None:
        """``sfu_candidate``: trickle one of ``member``'s candidates to the SFU. Errors:
        ``not_joined``, ``not_sfu_room``, ``rate_limited`` (past the router's bound on
        candidates per description of that connection), ``sfu_unavailable``."""
        _, router = self._sfu_room(member)
        with _sfu_refusals():
            taken = await router.candidate(member, pc, candidate)
        if not taken:
            raise fail(ErrorCode.RATE_LIMITED, f"at most {MAX_TRICKLED} candidates per description")

    def _crown(self, room: Room, member: Member) -> None:
        """Make ``member`` a host of ``room``: for the room's life, its account too."""
        room.hosts.add(member.id)
        self._hostless.pop(room, None)
        remember(room.host_accounts, account_of(member), self.limits.max_room_host_accounts)

    def _placed(self, member: Member, room: Room | None) -> None:
        """Give ``member`` a token naming where it is now and what it is there (a host, let
        in under a password)."""
        if isinstance(member, Place):
            member.host = room is not None and member.id in room.hosts
        if room is None:
            member.placed(None, None, None)
            return
        peer = None if room.allowed is None else next(iter(room.allowed - {member.id}), None)
        member.placed(room.id, room.call, peer, guarded=room.guarded)

    def _send_joined(self, member: Member, room: Room, without: str | None = None) -> None:
        """``joined`` for ``member``, listing everyone seated but itself and ``without``."""
        members = [
            MemberInfo(
                id=s.member.id,
                name=s.member.name,
                polite=polite(member.id, s.member.id),
                media=s.media,
                signed_in=account_of(s.member) is not None,
                recorder=s.member.id in room.recorders,
            )
            for s in room.seats.values()
            if s.member.id not in (member.id, without)
        ]
        send(
            member,
            Joined(
                room=room.id,
                private=room.private,
                members=members,
                history=list(room.history),
                last_seq=room.last_seq,
                hosts=room.host_list(),
                locked=room.locked,
                lobby=room.lobby,
                protected=room.protected,
                hands=list(room.hands),
                sfu=room.sfu,
            ),
        )

    def _recorder_seated(self, room: Room, member: Member) -> None:
        """The recorder of a recording of ``room`` took its seat (see
        :mod:`salon.core.recordings`)."""

    def _brief_host(self, member: Member, room: Room) -> None:
        """Tell ``member``, when it is a host of ``room``, what only hosts are told: who
        waits in the lobby (and, in :mod:`salon.core.recordings`, the room's recordings)."""
        self._send_lobby(member, room)

    def _send_lobby(self, host: Member, room: Room) -> None:
        """Tell a host who waits, when someone does."""
        if host.id in room.hosts and room.waiting:
            send(host, Lobby(room=room.id, waiting=room.knockers()))

    def _lobby_changed(self, room: Room) -> None:
        """Tell every host of ``room`` who waits now."""
        out = Outgoing(Lobby(room=room.id, waiting=room.knockers()))
        for mid in room.host_list():
            room.seats[mid].member.push(out)

    def _announce(
        self,
        room: Room,
        member: Member,
        media: MediaState,
        kind: type[MemberJoined] | type[MemberResumed],
        replaces: str | None = None,
    ) -> None:
        """Tell the others about ``member`` (``replaces``: see :meth:`_seat`); ``polite``
        differs by receiver, so at most two encodings are made."""

        def message(flag: bool) -> MemberJoined | MemberResumed:
            info = MemberInfo(
                id=member.id,
                name=member.name,
                polite=flag,
                media=media,
                signed_in=account_of(member) is not None,
                recorder=member.id in room.recorders,
            )
            if kind is MemberJoined:
                return MemberJoined(room=room.id, member=info, replaces=replaces)
            return MemberResumed(room=room.id, member=info)

        out = {flag: Outgoing(message(flag)) for flag in (False, True)}
        for mid, seat in list(room.seats.items()):
            if mid != member.id:
                seat.member.push(out[polite(mid, member.id)])

    def _announce_back(self, member: Member) -> None:
        room = self._where.get(member.id)
        if room is not None:
            self._announce(room, member, room.seats[member.id].media, MemberResumed)
        if self._reachable(member):
            back = PresenceChanged(name=member.name, online=True, reconnecting=False)
            self._tell_watchers(back, about=member.id)

    # ------------------------------------------------------------------ the lobby

    def _knock(self, member: Member, room: Room, media: MediaState, *, removed: bool) -> None:
        """``member`` waits in ``room``'s lobby: it gets ``lobby_waiting``, hosts ``lobby``."""
        room.waiting[member.id] = Knock(member, media, removed)
        self._waiting[member.id] = room
        send(member, LobbyWaiting(room=room.id))
        self._lobby_changed(room)

    def _withdraw(self, member: Member) -> Room | None:
        """Take ``member`` out of the lobby it waits in, telling nobody; that room, if any."""
        room = self._waiting.pop(member.id, None)
        if room is not None:
            del room.waiting[member.id]
        return room

    def _stop_waiting(self, member: Member) -> Room | None:
        """``member`` no longer waits in a lobby (hosts hear ``lobby``); the room it waited
        for, if any."""
        room = self._withdraw(member)
        if room is not None:
            self._lobby_changed(room)
            self._forget_if_idle(room)
        return room

    # ------------------------------------------------------------------ leaving

    def leave(
        self,
        member: Member,
        *,
        quiet: bool = False,
        hung_up: bool = False,
        reason: MemberLeftReason = "left",
    ) -> None:
        """Take ``member`` out of its room (answered ``left``; the room hears ``member_left``,
        and ``room_state`` and ``room_event`` when its last host left and the role passed
        on), or out of the lobby it waits in (answered ``left``). Leaving a call's room hangs
        up for both: the other is told ``left{reason: "hangup"}`` (``hung_up``). ``quiet``:
        the member is going away (no answer, no error). ``reason``: what observers are told.

        Errors: ``not_joined`` when in no room and no lobby."""
        room = self._where.get(member.id)
        if room is None:
            waited = self._stop_waiting(member)
            if waited is not None and not quiet:
                send(member, Left(room=waited.id))
            elif waited is None and not quiet:
                raise fail(ErrorCode.NOT_JOINED, "you are not in a room")
            return
        if room.call is not None and not quiet:
            send(member, CallEnded(call=room.call, reason="hangup"))
        farewell = Left(room=room.id, reason="hangup" if hung_up else "left")
        self._take_out(member, room, None if quiet else farewell, reason)
        if room.call is not None:
            room.allowed = frozenset()  # the call is over: nobody may come back in
            # ... not even with a resume token that names it, while such tokens live.
            self._hung_up[room.id] = self.clock.monotonic() + self.limits.resume_token_seconds
            for seat in list(room.seats.values()):
                self.leave(seat.member, hung_up=True)  # call_ended (hangup), then left
        self._forget_if_idle(room)

    def _take_out(
        self, member: Member, room: Room, farewell: Left | None, reason: MemberLeftReason
    ) -> None:
        """Unseat ``member``; ``farewell`` is what it is told (None: nothing, it is going
        away), ``reason`` what observers are told. The others hear ``member_left`` (and
        ``hands`` when its hand was up); the role of host passes on when no host is left; the
        meeting ends when nobody is, or nobody but the server's recorders."""
        raised = member.id in room.hands
        del self._where[member.id]
        room.unseat(member.id)
        if room.sfu and self.sfu is not None:
            self.sfu.leave(room.meeting, member.id)
        self._report("member_left", room, member, reason=reason)
        if farewell is not None:
            send(member, farewell)
            self._placed(member, None)
        room.broadcast(Outgoing(MemberLeft(room=room.id, id=member.id)))
        if raised:
            self._hands_changed(room)
        if room.allowed is not None:
            return  # a call's room: no hosts, no meeting
        if not room.people():
            # Nobody but the server's recorders (if any) is left: they are nobody to hold a
            # meeting for, so it ends now, its lock and password with it (the recorders are
            # told ``left{ended}``), and whoever comes next starts another.
            self._clear_seats(room, Left(room=room.id, reason="ended"))
            self._end_meeting(room, "empty")
            return
        if not room.has_host() and room.standing is None:
            # R2; not in a room of the server API, whose hosts are the ones it names.
            self._pass_host(room)
        self._left_room(room, member)

    def _clear_seats(self, room: Room, farewell: Left) -> None:
        """Unseat everyone in ``room``, telling each ``farewell`` (observers: ``ended``);
        the others are gone, or go too: nobody hears ``member_left``."""
        for mid, seat in list(room.seats.items()):
            del self._where[mid]
            room.unseat(mid)
            if room.sfu and self.sfu is not None:
                self.sfu.leave(room.meeting, mid)
            self._report("member_left", room, seat.member, reason="ended")
            send(seat.member, farewell)
            self._placed(seat.member, None)

    def _left_room(self, room: Room, member: Member) -> None:
        """``member`` left ``room``, where people are still seated (see
        :mod:`salon.core.recordings`: a recording whose recorder left stops)."""

    def _pass_host(self, room: Room) -> None:
        """R2: no host is left among the seated: the longest seated becomes one (never the
        room's recorder; with only recorders left, nobody)."""
        people = room.people()
        if not people:
            return
        heir = people[0].member
        self._crown(room, heir)
        self._placed(heir, room)
        room.broadcast(Outgoing(room.state()))
        self._tell(room, "host_passed", None, heir)
        self._brief_host(heir, room)

    def _tell(
        self, room: Room, action: RoomAction, by: Member | None, target: Member | None
    ) -> None:
        """``room_event`` to every member of ``room``."""
        event = RoomEvent(
            room=room.id,
            action=action,
            by=None if by is None else by.id,
            by_name=None if by is None else by.name,
            target=None if target is None else target.id,
            target_name=None if target is None else target.name,
        )
        room.broadcast(Outgoing(event))

    async def _break_seal(self, room_id: str) -> None:
        await self.chats.erase(room_id)
        await self.keys.seal(room_id, False, self.clock.wall_ms())

    def _reseal(self, room: Room) -> None:
        """Tell the store whether a meeting with a password is under way in ``room``
        (``room.guarded`` when the write runs), in a task of the hub's, after the chat writes
        and erase queued before it (the chat lock is first come, first served)."""

        async def write() -> None:
            try:
                async with room.chat_lock:
                    await self.keys.seal(room.id, room.guarded, self.clock.wall_ms())
            finally:
                room.writes -= 1
                self._forget_if_idle(room)

        room.writes += 1  # the room is kept until the seal is written
        self._spawn(write())

    def _keep_removals(self, room: Room) -> None:
        """Tell the store whom the meeting in ``room`` removed (what the room holds when the
        write runs: nobody once the meeting ended), in a task of the hub's, in turn with the
        room's other writes, as :meth:`_reseal` does; one write at most waits at a time (it
        reads the removals when its turn comes). A write that fails is logged; the removals
        still hold in memory, only a restart before the next write forgets them."""

        async def write() -> None:
            try:
                async with room.chat_lock:
                    room.removals_queued = False  # what changes from here needs a write
                    now = self.clock.wall_ms()
                    await self.keys.remember_removed(room.id, room.removals(), now)
            finally:
                room.writes -= 1
                self._forget_if_idle(room)

        if room.removals_queued:
            return  # the write waiting for the lock will read this change too
        room.removals_queued = True
        room.writes += 1
        self._spawn(write())

    def _hands_changed(self, room: Room) -> None:
        room.broadcast(Outgoing(Hands(room=room.id, raised=list(room.hands))))

    def _end_meeting(self, room: Room, reason: MeetingEndReason) -> None:
        """Nobody is seated any more: the meeting ends with all its protections (``reason``
        is what observers are told). Whoever waits hears ``lobby_denied{ended}``; chat shared
        under a password is erased."""
        if room.started_ms is not None:
            self._report("meeting_ended", room, reason=reason)
        if room.sfu and self.sfu is not None:
            self.sfu.close(room.meeting)
        self._meeting_over(room)
        erase, removals = room.guarded, room.removals()
        for knock in room.end_meeting():
            self._waiting.pop(knock.member.id, None)
            send(knock.member, LobbyDenied(room=room.id, reason="ended"))
        if erase:
            self._erase_chat(room)
            self._reseal(room)  # after the erase: the meeting is over, nothing to protect
        if removals is not None:
            self._keep_removals(room)  # the next meeting starts with nobody removed

    def _meeting_over(self, room: Room) -> None:
        """The meeting in ``room`` is ending: nobody is seated any more (see
        :mod:`salon.core.recordings`: its recording stops)."""

    def _report(
        self,
        kind: MeetingEventType,
        room: Room,
        member: Member | None = None,
        *,
        reason: str | None = None,
        host: bool = False,
    ) -> None:
        """Tell the observer about a meeting (a direct call's room is none)."""
        if room.allowed is not None:
            return
        event = MeetingEvent(
            type=kind,
            room=room.id,
            at_ms=self.clock.wall_ms(),
            member=None if member is None else member.id,
            name=None if member is None else member.name,
            account=None if member is None else account_of(member),
            reason=reason,
            host=host,
        )
        self.observer.meeting(event)

    # ------------------------------------------------------------------ relay

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
        """``member``'s media state is now ``media`` (the server's recorder always says it
        records); the others hear ``media``."""
        room = self.room_of(member)
        if member.id in room.recorders:
            media = media.model_copy(update={"recording": True})
        was = room.seats[member.id].media
        room.seats[member.id].media = media
        room.broadcast(Outgoing(MediaChanged.of(member.id, media)), exclude=member.id)
        if was.mic and not media.mic:
            self._mic_went_off(room, member.id)

    @staticmethod
    def _mic_went_off(room: Room, member_id: str) -> None:
        """In a room on the SFU, everyone hears ``talking: false`` for a microphone turned off
        (by its member or a host's ``mute``): the SFU hears no more packets from it, so it
        never says that the member stopped talking (§4.2)."""
        if room.sfu:
            room.broadcast(Outgoing(Talking(room=room.id, member=member_id, talking=False)))
