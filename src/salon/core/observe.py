"""What the hub and its sessions report as it happens, for whoever watches a server: metrics
(counters of frames, errors, calls, resumes) and meeting events (webhooks).

The domain calls an :class:`Observer` synchronously, in the middle of its decisions, so an
observer must return at once and never raise: it counts, or queues the event for later I/O.
:class:`Observers` fans one report out to several observers; :data:`NO_OBSERVER` ignores all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, Protocol

from salon.protocol import ErrorCode

log = logging.getLogger(__name__)

MeetingEventType = Literal["meeting_started", "meeting_ended", "member_joined", "member_left"]

MemberLeftReason = Literal["left", "removed", "ended", "disconnected"]
"""Why a member left a meeting: ``left``, its own ``leave`` or a goodbye (its client closed the
connection with 1000 or 1001, docs/PROTOCOL.md §2.7); ``removed``, a host (or the server API)
removed it; ``ended``, the meeting was ended for everyone; ``disconnected``, its connection was
lost and it did not resume within ``resume_grace_seconds``."""

MeetingEndReason = Literal["empty", "ended"]
"""Why a meeting ended: its last member left; a host (or the server API) ended it."""

CallOutcome = Literal["accepted", "declined", "cancelled", "timeout", "offline", "busy"]
"""How a direct call by name ended its ringing (``call_ended`` reasons, and ``accepted``)."""

ResumeOutcome = Literal["held", "rebuilt", "failed"]
"""A ``hello.resume``: the place was held here and taken back; it was rebuilt from its token
(after a restart, or from another process); or it was refused (``resume_failed``)."""


@dataclass(frozen=True, slots=True)
class MeetingEvent:
    """One change in a meeting (an ordinary room; direct calls' private rooms report none).

    ``at_ms``: wall clock, milliseconds since the Unix epoch. ``member``, ``name`` and
    ``account`` (username, None for a guest) are set for member events; ``reason`` is a
    :data:`MemberLeftReason` for ``member_left`` and a :data:`MeetingEndReason` for
    ``meeting_ended``; ``host`` says whether a joining member was seated as a host."""

    type: MeetingEventType
    room: str
    at_ms: int
    member: str | None = None
    name: str | None = None
    account: str | None = None
    reason: str | None = None
    host: bool = False


class Observer(Protocol):
    def frame(self, kind: str) -> None:
        """A client message of this ``type`` was decoded (before it was handled)."""
        ...

    def error(self, code: ErrorCode) -> None:
        """An ``error`` with this code was sent to a client."""
        ...

    def call(self, outcome: CallOutcome) -> None:
        """A direct call stopped ringing this way."""
        ...

    def resume(self, outcome: ResumeOutcome) -> None:
        """A ``hello.resume`` ended this way."""
        ...

    def meeting(self, event: MeetingEvent) -> None:
        """A meeting started or ended, or a member joined or left one."""
        ...


class NullObserver:
    """Ignores every report: the default of a hub nobody watches."""

    def frame(self, kind: str) -> None:
        pass

    def error(self, code: ErrorCode) -> None:
        pass

    def call(self, outcome: CallOutcome) -> None:
        pass

    def resume(self, outcome: ResumeOutcome) -> None:
        pass

    def meeting(self, event: MeetingEvent) -> None:
        pass


NO_OBSERVER = NullObserver()


class Observers:
    """Several observers as one. A failing observer is logged and skipped: watching a server
    never breaks it."""

    def __init__(self, *observers: Observer) -> None:
        self.observers = observers

    def _each(self, report: str, *args: object) -> None:
        for o in self.observers:
            try:
                getattr(o, report)(*args)
            except Exception:
                log.exception("observer %r failed in %s", o, report)

    def frame(self, kind: str) -> None:
        self._each("frame", kind)

    def error(self, code: ErrorCode) -> None:
        self._each("error", code)

    def call(self, outcome: CallOutcome) -> None:
        self._each("call", outcome)

    def resume(self, outcome: ResumeOutcome) -> None:
        self._each("resume", outcome)

    def meeting(self, event: MeetingEvent) -> None:
        self._each("meeting", event)
