"""Direct calls by name: the state machine of one call and the book of calls under way.

::

    RINGING --accept--> ACCEPTED     (both are seated in a new private room)
    RINGING --decline-> DECLINED
    RINGING --cancel--> CANCELLED
    RINGING --expire--> TIMED_OUT    (nobody answered within ring_seconds)
    RINGING --drop----> OFFLINE      (either side disconnected)

A busy callee never rings: the caller gets ``call_ended`` with reason ``busy`` at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Final

from salon.core.errors import fail
from salon.core.member import Member
from salon.protocol import ErrorCode
from salon.protocol.messages import CallEndReason


class CallState(Enum):
    RINGING = "ringing"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    TIMED_OUT = "timeout"
    OFFLINE = "offline"


_END_REASON: Final[dict[CallState, CallEndReason]] = {
    CallState.DECLINED: "declined",
    CallState.CANCELLED: "cancelled",
    CallState.TIMED_OUT: "timeout",
    CallState.OFFLINE: "offline",
}


@dataclass(eq=False, slots=True)
class Call:
    id: str
    caller: Member
    callee: Member
    deadline: float
    state: CallState = CallState.RINGING

    def end_reason(self) -> CallEndReason:
        return _END_REASON[self.state]

    def move(self, to: CallState) -> None:
        """The one place a transition is checked: only a ringing call can change state."""
        if self.state is not CallState.RINGING:
            raise fail(
                ErrorCode.NO_SUCH_CALL, f"that call is no longer ringing ({self.state.value})"
            )
        self.state = to


class CallBook:
    """Ringing calls, by id and by the members taking part."""

    def __init__(self) -> None:
        self._by_id: dict[str, Call] = {}
        self._by_member: dict[str, Call] = {}

    def ring(self, call: Call) -> None:
        self._by_id[call.id] = call
        self._by_member[call.caller.id] = call
        self._by_member[call.callee.id] = call

    def of(self, member_id: str) -> Call | None:
        return self._by_member.get(member_id)

    def answerable(self, call_id: str, callee_id: str) -> Call:
        """The ringing call ``call_id`` if ``callee_id`` is the one being called."""
        call = self._by_id.get(call_id)
        if call is None or call.callee.id != callee_id:
            raise fail(ErrorCode.NO_SUCH_CALL, "no such call is ringing for you")
        return call

    def cancellable(self, call_id: str, caller_id: str) -> Call:
        call = self._by_id.get(call_id)
        if call is None or call.caller.id != caller_id:
            raise fail(ErrorCode.NO_SUCH_CALL, "you have no such call ringing")
        return call

    def finish(self, call: Call, to: CallState) -> None:
        call.move(to)
        self._by_id.pop(call.id, None)
        for mid in (call.caller.id, call.callee.id):
            if self._by_member.get(mid) is call:
                del self._by_member[mid]

    def overdue(self, now: float) -> list[Call]:
        return [c for c in self._by_id.values() if c.deadline <= now]

    def __len__(self) -> int:
        return len(self._by_id)
