"""Direct calls (docs/PROTOCOL.md §4.5): place one, accept or decline one. Hanging up is
leaving the call's private room (:meth:`salon.client.Client.hang_up`)."""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from salon.client.errors import CallFailed
from salon.client.events import Subscription
from salon.client.exchange import REQUEST_SECONDS, Exchange, error_for
from salon.protocol.messages import (
    Call,
    CallAccept,
    CallAccepted,
    CallCancel,
    CallDecline,
    CallEnded,
    Joined,
    MemberJoined,
    Ringing,
)


class DirectCalls(Exchange):
    """The call requests of :class:`salon.client.Client`."""

    async def call(self, name: str) -> str:
        """Place a direct call to the reachable ``name`` (§4.5) and return the call id once
        it is accepted and both are in its private room (``joined``, then the callee's
        ``member_joined``: its :class:`Peer` exists).
        Raises :class:`ServerError` (``not_online``, ``self_call``, ``in_call``,
        ``invalid_name``) or :class:`CallFailed` (reason ``declined``, ``timeout``, ``busy``,
        ``offline``, ``cancelled``; ``timeout`` too when no end came ``ring_seconds`` and 30 s
        after it rang: the call is then cancelled, its end perhaps lost while away). When the
        awaiting task is cancelled while it rings, the call is cancelled (``call_cancel``).
        The call's room is known from ``call_accepted``, or, when that was missed while away
        (§2.8), from the ``joined`` of the private room the server seats us in."""
        ref = next(self._refs)
        refs = {ref}

        def match(m: BaseModel) -> bool:
            kinds = Ringing | CallEnded | CallAccepted | Joined | MemberJoined
            return error_for(m, refs) or isinstance(m, kinds)

        ringing: list[str] = []  # the call's id, once `ringing` names it
        with self._events.subscribe(match) as answers:
            self._send(Call(type="call", name=name, ref=ref))
            try:
                return await self._call_progress(answers, ringing)
            except asyncio.CancelledError:
                self._cancel(ringing)
                raise
            except TimeoutError:
                if not ringing:
                    raise
                self._cancel(ringing)
                raise CallFailed(ringing[0], "timeout") from None

    def _cancel(self, ringing: list[str]) -> None:
        if ringing and self.lost is None and not self._closing:
            self._send(CallCancel(type="call_cancel", call=ringing[0]))

    async def _call_progress(self, answers: Subscription, ringing: list[str]) -> str:
        room: str | None = None
        limit = self._ring_seconds() + REQUEST_SECONDS
        while True:
            answer = await self._answer(answers, limit)
            if isinstance(answer, Ringing) and not ringing:
                ringing.append(answer.call)
            elif isinstance(answer, CallEnded) and (not ringing or ringing[0] == answer.call):
                raise CallFailed(answer.call, answer.reason)
            elif isinstance(answer, CallAccepted) and ringing and answer.call == ringing[0]:
                room = answer.room
            elif room is None and ringing and isinstance(answer, Joined) and answer.private:
                room = answer.room  # call_accepted missed while away: its room's snapshot
                if _callee_in(answer, room):
                    return ringing[0]
            elif _callee_in(answer, room):
                return ringing[0]

    def _ring_seconds(self) -> float:
        connection = self._connection
        welcome = connection.welcome if connection is not None else None
        return welcome.limits.ring_seconds if welcome is not None else 30.0

    async def accept(self, call_id: str) -> Joined:
        """Accept an incoming call (from an ``IncomingCall`` handler); returns the
        ``joined`` of the call's private room. Raises :class:`ServerError` ``no_such_call``
        (not ringing any more), :class:`CallFailed` when it ended meanwhile."""
        ref = next(self._refs)
        refs = {ref}

        def match(m: BaseModel) -> bool:
            return (
                error_for(m, refs)
                or (isinstance(m, CallAccepted | CallEnded) and m.call == call_id)
                or isinstance(m, Joined)
            )

        with self._events.subscribe(match) as answers:
            self._send(CallAccept(type="call_accept", call=call_id, ref=ref))
            room: str | None = None
            while True:
                answer = await self._answer(answers, REQUEST_SECONDS)
                if isinstance(answer, CallEnded):
                    raise CallFailed(call_id, answer.reason)
                if isinstance(answer, CallAccepted):
                    room = answer.room
                elif isinstance(answer, Joined) and (
                    answer.room == room or (room is None and answer.private)
                ):
                    return answer  # (without call_accepted when it was missed while away)

    async def decline(self, call_id: str) -> None:
        """Decline an incoming call. Raises :class:`ServerError` ``no_such_call``."""
        ref = next(self._refs)
        await self._barrier(CallDecline(type="call_decline", call=call_id, ref=ref), ref)


def _callee_in(message: BaseModel, room: str | None) -> bool:
    """The caller is seated first (§3.5): the call is on once the callee is in its room,
    listed in our ``joined`` or announced by ``member_joined``."""
    if isinstance(message, MemberJoined):
        return message.room == room
    return isinstance(message, Joined) and message.room == room and bool(message.members)
