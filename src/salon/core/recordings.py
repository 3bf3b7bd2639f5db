"""Recording meetings (docs/PROTOCOL.md §3.9): which room records, who is told what, and the
keys that open the files.

A host's ``record {on: true}`` makes the hub mint a ``recorder`` invitation and ask a
:class:`Recorder` (the server's child processes, :mod:`salon.server.recorder`) to start one
for the room; the recorder then joins like any member, seated past every protection and never
as a host, and the invitation is spent. ``record {on: false}``, the recorder leaving, or the
meeting ending (which it does as soon as nobody but its recorder is left) stop it; the
:class:`Recorder` reports the end with :meth:`RecordingRooms.recording_ended`. The room hears
``room_event`` ``recording_started``/``recording_stopped`` (members speaking version 2 only);
its hosts get ``recordings`` — those who are hosts in the meeting recorded, or signed in to
the account of the host who started it — again every ``KEY_REFRESH_SECONDS`` with fresh keys.

Nothing here does I/O or reads the wall clock but through the hub's clock: the
:class:`Recorder` does the work, and answers what is on disk.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from typing import Final, Protocol

from salon.core.chatlog import ChatRepository
from salon.core.clock import Clock
from salon.core.errors import SalonError, fail
from salon.core.invites import Invite, Invites
from salon.core.member import Member
from salon.core.moderation import Moderation
from salon.core.passwords import RoomKeys
from salon.core.resume import _b64
from salon.core.room import Room
from salon.core.roomchat import RATE_KEYS
from salon.core.rooms import account_of, send, version_of
from salon.core.settings import LimitSettings
from salon.core.throttle import KeyedThrottle
from salon.protocol import ErrorCode, Outgoing
from salon.protocol.messages import Recording, Recordings, RoomAction, RoomEvent
from salon.protocol.version import RECORDING_VERSION

RECORDER_INVITE_SECONDS: Final = 120
"""How long the recorder's invitation lets it in: it joins within seconds of its start."""

DOWNLOAD_KEY_SECONDS: Final = 3600
"""How long a download key in ``recordings`` opens its file (it cannot be revoked: short)."""

KEY_REFRESH_SECONDS: Final = DOWNLOAD_KEY_SECONDS / 2
"""The hosts of a room that was sent ``recordings`` get it again so often, with fresh keys:
a key a host holds is always good for half an hour more."""

MAX_LISTED: Final = 20
"""A ``recordings`` message lists at most this many, the newest (each file listed is a key)."""

_KEY_PURPOSE: Final = b"salon-recording-file-v1."


class DownloadKeys:
    """Keys that open one file of one recording until they expire: ``<expires>.<mac>``, the
    expiry in Unix seconds and an HMAC-SHA256 (RFC 2104) under the resume secret, bound to a
    purpose of its own so that it can pass for no resume token or invitation (nor they for
    it), base64url without padding."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("a download key secret has at least 32 bytes")
        self._secret = secret

    def _mac(self, recording: str, name: str, expires: int) -> str:
        message = _KEY_PURPOSE + f"{recording}/{name}/{expires}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def make(self, recording: str, name: str, expires: int) -> str:
        """The key of file ``name`` of ``recording``, valid until ``expires`` (Unix s)."""
        return f"{expires}.{self._mac(recording, name, expires)}"

    def check(self, key: str | None, recording: str, name: str, now_s: float) -> bool:
        """Whether ``key`` was made for that file and has not expired at ``now_s``."""
        if key is None or len(key) > 100:
            return False
        expires, dot, mac = key.partition(".")
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if not dot or not (expires.isascii() and expires.isdigit()) or len(expires) > 12:
            return False
        wanted = self._mac(recording, name, int(expires))
        return hmac.compare_digest(mac.encode(), wanted.encode()) and int(expires) > now_s


@dataclass(slots=True)
class Run:
    """A recording under way: from ``record {on: true}`` until its recorder is gone."""

    id: str  # the recording's id (its folder's name)
    room: str
    meeting: str  # the meeting it records: see meeting_of
    started_ms: int  # wall clock, ms since the epoch
    by: str  # the host who started it: member id, name, and account when signed in
    by_name: str
    account: str | None
    invite: str | None = None  # the recorder's invitation, until it is seated (one use)
    recorder: str | None = None  # the recorder's member id, once it is seated
    stopping: bool = False  # asked to stop (or it left); it is gone when the Recorder says


def meeting_of(room: Room) -> str:
    """What names the meeting under way in ``room``: the room's id and a random nonce of
    that meeting (a later meeting in the same room is another, however soon it starts)."""
    return f"{room.id}@{room.meeting}"


class Recorder(Protocol):
    """What records, for the hub: the server's child processes and their storage."""

    def unavailable(self, account: str | None) -> str | None:
        """None when a host signed in as ``account`` (None: a guest) may start a recording
        now; else why not, a sentence for the host (recording off, no client extra, only
        signed-in hosts record, the server is shutting down, storage spent, as many running
        as allowed)."""
        ...

    def start(self, run: Run, link: str) -> None:
        """Start recording ``run`` with a recorder that joins through ``link`` (the meeting
        link with the recorder's invitation). Returns at once; when the recorder is gone,
        however it ended, calls :meth:`RecordingRooms.recording_ended` (never from inside
        this call). Raises ``OSError`` when the recording cannot even be stored."""
        ...

    def stop(self, run_id: str) -> None:
        """Ask the recorder of ``run_id`` to finish its files and go. Returns at once."""
        ...

    def listing(self, room: str, meeting: str, account: str | None) -> list[Recording]:
        """The recordings of ``room`` a host signed in as ``account`` (None: a guest) in
        ``meeting`` may download: those of that meeting, and those a host signed in as the
        same account started; the newest ``MAX_LISTED`` of them, the earliest first, with
        download keys valid ``DOWNLOAD_KEY_SECONDS``."""
        ...


class RecordingRooms(Moderation):
    """Recording, on top of :class:`~salon.core.moderation.Moderation`."""

    def __init__(
        self, limits: LimitSettings, clock: Clock, chats: ChatRepository, keys: RoomKeys
    ) -> None:
        super().__init__(limits, clock, chats, keys)
        self.recorder: Recorder | None = None  # None: this hub records nothing
        self._runs: dict[str, Run] = {}  # room id -> its recording under way (one at most)
        # Starts by room: each spawns a process (stopping is free).
        per_minute = limits.records_per_hour / 60
        self.record_rate = KeyedThrottle(per_minute, limits.record_burst, RATE_KEYS)
        # Rooms whose hosts were sent ``recordings``, and when (monotonic s) they all last
        # got fresh keys: see refresh_recordings.
        self._listed: dict[str, float] = {}

    def recording(self, room_id: str) -> Run | None:
        """The recording of ``room_id`` under way (stopping included), if any."""
        return self._runs.get(room_id)

    def record(self, host: Member, on: bool, base_url: str | None) -> None:
        """A host starts (``on``) or stops recording its room. ``base_url`` is the server as
        the host's connection reached it (``https://192.0.2.7:8443``), where the recorder
        connects; None when unknown. Already so: nothing changes.
        Errors: ``not_joined``, ``not_host`` (a direct call's room has no host),
        ``recording_unavailable``, ``rate_limited`` (the room started ``record_burst``
        recordings at once, then ``records_per_hour``)."""
        room = self._hosted(host)
        run = self._runs.get(room.id)
        if not on:
            if run is not None and not run.stopping:
                self._stop(room, run, host)
            return
        if run is not None:
            if run.stopping:
                raise _unavailable("this room's last recording is still being finished: retry")
            return
        recorder, invites, base_url = self._may_record(room, host, base_url)
        now = self.clock.wall_ms()
        run = Run(
            secrets.token_hex(8),
            room.id,
            meeting_of(room),
            now,
            host.id,
            host.name,
            account_of(host),
        )
        expires = now // 1000 + RECORDER_INVITE_SECONDS
        run.invite = invites.mint(Invite(room.id, "recorder", expires))
        self._runs[room.id] = run
        try:
            recorder.start(run, f"{base_url}/r/{room.id}#invite={run.invite}")
        except OSError:
            del self._runs[room.id]
            raise _unavailable("the server could not store a recording") from None
        self.record_rate.take(room.id, self.clock.monotonic())
        self._tell_recording(room, "recording_started", host)
        self._recordings_changed(room, run)

    def recording_ended(self, room_id: str, run_id: str) -> None:
        """The recorder of ``run_id`` is gone (stopped, finished, or failed): the room hears
        ``recording_stopped`` unless it was stopped, the recorder's seat is taken back if it
        kept one, and the hosts who may see it get the list with the recording ended (or
        gone: one with nothing in it is deleted)."""
        run = self._runs.get(room_id)
        if run is None or run.id != run_id:
            return
        del self._runs[room_id]
        room = self.rooms.get(room_id)
        if room is None:
            return
        if not run.stopping:
            self._tell_recording(room, "recording_stopped", None)
        seat = None if run.recorder is None else room.seats.get(run.recorder)
        if seat is not None:
            self.leave(seat.member, quiet=True)  # its process is gone: no grace window
        self._recordings_changed(room, run)

    def refresh_recordings(self) -> None:
        """Timer (the hub's sweep): the hosts of each room that were sent ``recordings``
        ``KEY_REFRESH_SECONDS`` ago get it again, with fresh keys."""
        now = self.clock.monotonic()
        for room_id, since in list(self._listed.items()):
            if now - since < KEY_REFRESH_SECONDS:
                continue
            room = self.rooms.get(room_id)
            if room is None or not room.hosts:
                del self._listed[room_id]
                continue
            self._listed[room_id] = now
            for mid in room.host_list():
                self._send_recordings(room.seats[mid].member, room, even_none=False)

    # ------------------------------------------------------------------ checks

    def _may_record(
        self, room: Room, host: Member, base_url: str | None
    ) -> tuple[Recorder, Invites, str]:
        """What ``host`` starting a recording of ``room`` needs; ``recording_unavailable``,
        saying why, when it cannot be recorded now, ``rate_limited`` when the room started
        too many lately (checked last, spending nothing: a refused start costs no try)."""
        recorder, invites = self.recorder, self.invites
        if recorder is None or invites is None:
            raise _unavailable("this server does not record meetings")
        reason = recorder.unavailable(account_of(host))
        if reason is not None:
            raise _unavailable(reason)
        seats = self.sfu.max_members if room.sfu and self.sfu else self.limits.max_room_members
        if len(room) >= seats:
            raise _unavailable("the room is full: its recorder needs a seat")
        if base_url is None:
            raise _unavailable("the server cannot tell its recorder where to connect")
        wait = self.record_rate.due(room.id, self.clock.monotonic())
        if wait > 0:
            raise fail(
                ErrorCode.RATE_LIMITED,
                f"this room started too many recordings: try again in {math.ceil(wait)} s",
            )
        return recorder, invites, base_url

    # ------------------------------------------------------------------ hooks of Rooms

    def _awaits_recorder(self, room_id: str, token: str) -> bool:
        run = self._runs.get(room_id)
        if run is None or run.invite is None or run.stopping:
            return False
        return hmac.compare_digest(run.invite.encode(), token.encode())

    def _recorder_seated(self, room: Room, member: Member) -> None:
        run = self._runs.get(room.id)
        if run is not None and run.recorder is None:
            run.recorder = member.id
            run.invite = None  # spent: nobody else gets in with it

    def _brief_host(self, member: Member, room: Room) -> None:
        super()._brief_host(member, room)
        if member.id in room.hosts:
            self._send_recordings(member, room, even_none=False)

    def _left_room(self, room: Room, member: Member) -> None:
        run = self._runs.get(room.id)
        if run is not None and not run.stopping and member.id == run.recorder:
            self._stop(room, run, None)  # its recorder left (or was removed)

    def _meeting_over(self, room: Room) -> None:
        run = self._runs.get(room.id)
        if run is not None and not run.stopping:
            self._stop(room, run, None)

    # ------------------------------------------------------------------ telling

    def _stop(self, room: Room, run: Run, by: Member | None) -> None:
        run.stopping = True
        self._tell_recording(room, "recording_stopped", by)
        if self.recorder is not None:
            self.recorder.stop(run.id)

    def _tell_recording(self, room: Room, action: RoomAction, by: Member | None) -> None:
        """``room_event`` to the members of ``room`` that speak a version with recording."""
        event = Outgoing(
            RoomEvent(
                room=room.id,
                action=action,
                by=None if by is None else by.id,
                by_name=None if by is None else by.name,
                target=None,
                target_name=None,
            )
        )
        for seat in list(room.seats.values()):
            if version_of(seat.member) >= RECORDING_VERSION:
                seat.member.push(event)

    def _send_recordings(self, host: Member, room: Room, *, even_none: bool) -> None:
        """``recordings`` to one host (that speaks version 2); when there is none to list,
        only if ``even_none``."""
        if self.recorder is None or version_of(host) < RECORDING_VERSION:
            return
        listed = self.recorder.listing(room.id, meeting_of(room), account_of(host))
        if listed or even_none:
            send(host, Recordings(room=room.id, recordings=listed))
            self._listed.setdefault(room.id, self.clock.monotonic())

    def _recordings_changed(self, room: Room, run: Run) -> None:
        """``run`` started or ended: the hosts who may see it (hosts in the meeting it
        records, or signed in to the account of the host who started it) get the list."""
        here = meeting_of(room) == run.meeting
        for mid in room.host_list():
            host = room.seats[mid].member
            if here or (run.account is not None and account_of(host) == run.account):
                self._send_recordings(host, room, even_none=True)


def _unavailable(reason: str) -> SalonError:
    return fail(ErrorCode.RECORDING_UNAVAILABLE, reason)
