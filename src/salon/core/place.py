"""A member's place: the part of a member that outlives its connection.

A place is what the hub knows as a member (id, name, room, call). A connection occupies it;
when the connection is lost the place stays for the grace window, keeping what is addressed
to it, and a new connection presenting the resume token takes it back. Pure state: the hub
decides when a place is away, back or gone, with its injected clock.

::

    ATTACHED --connection lost--> AWAY --resume--> ATTACHED
    AWAY --grace window over--> (departed by the hub)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from salon.core.clock import Clock
from salon.core.member import Transport
from salon.core.resume import Claims, ResumeTokens
from salon.protocol import CloseCode, Outgoing, decode_server
from salon.protocol.messages import ResumeTokenIssued, Welcome

# Room in a connection's outbox for what a resume queues around the kept messages at once:
# the ``welcome`` before them, then the room's snapshot (``joined``, a host's ``lobby``, an
# SFU room's ``room_media``) and a fresh token. All of it must fit the outbox, or the new
# connection would be closed as a slow consumer before it could read a byte.
GREETING_ROOM = 8


def kept_bound(outbox_messages: int) -> int:
    """How many messages may be kept for a member while it is away, for a connection outbox
    of ``outbox_messages`` (``outbox_messages - GREETING_ROOM``, at least 1)."""
    return max(1, outbox_messages - GREETING_ROOM)


@dataclass(frozen=True, slots=True)
class TokenMint:
    """Issues the resume tokens of places: the signer, the clock and the tokens' lifetime."""

    tokens: ResumeTokens
    clock: Clock
    lifetime_seconds: float

    def mint(self, place: Place) -> str:
        expires = self.clock.wall_ms() // 1000 + int(self.lifetime_seconds)
        return self.tokens.issue(
            Claims(
                place.id,
                place.name,
                place.account,
                place.room,
                place.call,
                place.peer,
                expires,
                place.guarded,
                place.host,
                place.reachable,
            )
        )


class Place:
    """A :class:`~salon.core.member.Member` whose connection can go and come back."""

    def __init__(
        self,
        member_id: str,
        name: str,
        account: str | None,
        mint: TokenMint,
        keep: int,
        keep_bytes: int = 1024 * 1024,
    ) -> None:
        """``keep`` and ``keep_bytes`` bound what is kept while away (messages, and their
        encoded size)."""
        self._id = member_id
        self._name = name
        self.account = account  # username when signed in
        self.room: str | None = None
        self.call: str | None = None
        self.peer: str | None = None
        self.guarded = False  # its room had a password when it was let in
        self.host = False  # a host of its room (the hub sets it and refreshes the token)
        self.reachable = False  # its name is reachable for direct calls (hello.reachable)
        self.address: str | None = None  # its newest connection's client address
        self.version = 1  # the protocol version its newest connection chose
        self._mint = mint
        self._transport: Transport | None = None
        self._kept: deque[Outgoing] = deque()
        self._keep = keep
        self._keep_bytes = keep_bytes
        self._kept_bytes = 0
        self.missed = False  # kept messages were dropped since the connection was lost
        self.away_since: float | None = None  # monotonic seconds; None while attached
        self.token_at = mint.clock.monotonic()  # when the newest token was issued
        # For a place rebuilt from a token, that token's expiry (Unix seconds): of two
        # rebuilt places claiming one name, the one with the newer token has it.
        self.claimed_until = math.inf
        # Being rebuilt from a token (the store is read): a connection that takes it meanwhile
        # is told it missed messages, as the one rebuilding it would have been.
        self.rebuilding = False

    @property
    def id(self) -> str:
        return self._id

    @property
    def name(self) -> str:
        return self._name

    @property
    def transport(self) -> Transport | None:
        return self._transport

    def push(self, out: Outgoing) -> None:
        if self._transport is not None:
            self._transport.send(out)
        elif not self.missed:
            size = len(out.text)  # encoded once; the same text is what a resume sends
            if len(self._kept) >= self._keep or self._kept_bytes + size > self._keep_bytes:
                # Past the bound nothing kept can be trusted to be whole: drop it all and
                # tell the member on resume, so it takes a fresh snapshot and renegotiates.
                self._lose_kept()
            else:
                self._kept.append(out)
                self._kept_bytes += size

    def kick(self, code: CloseCode, reason: str) -> None:
        if self._transport is not None:
            self._transport.close(code, reason)

    def replace(self, code: CloseCode, reason: str) -> None:
        """A newer connection takes the place: the attached one (if any) is closed with
        ``code``, and what it had queued and not begun to write is kept for the newer one as
        if the place had been away (within the same bounds; when it discarded messages, or
        past the bounds, the member missed messages). :meth:`attach` hands it over. Its
        ``welcome``, when not written yet, is not (:meth:`_keep_unsent`)."""
        if self._transport is None:
            return
        unsent, dropped = self._transport.replace(code, reason)
        self._transport = None
        self.missed = self.missed or dropped
        self._keep_unsent(unsent)

    def placed(
        self, room: str | None, call: str | None, peer: str | None, *, guarded: bool = False
    ) -> None:
        self.room, self.call, self.peer, self.guarded = room, call, peer, guarded
        self.refresh_token()

    def token(self) -> str:
        self.token_at = self._mint.clock.monotonic()
        return self._mint.mint(self)

    def refresh_token(self) -> None:
        """Send the member a token that names where it is now."""
        self.push(Outgoing(ResumeTokenIssued(token=self.token())))

    # ------------------------------------------------------------------ connection

    def attach(self, transport: Transport) -> tuple[list[Outgoing], bool]:
        """A connection takes the place. Returns what was kept for it, oldest first, and
        whether kept messages were dropped (then the list is empty and the member needs a
        fresh snapshot). The caller sends the kept messages after its ``welcome``."""
        self._transport = transport
        self.away_since = None
        kept, missed = list(self._kept), self.missed
        self._kept.clear()
        self._kept_bytes = 0
        self.missed = False
        return kept, missed

    def detach(self, now: float, unsent: Sequence[Outgoing] = (), *, dropped: bool = False) -> None:
        """The connection is gone: keep messages from now on, starting with ``unsent``
        (what the connection had queued but not written). ``dropped``: the connection lost
        messages on its way out (its outbox overflowed, or pushes came after it closed), so
        the member is told it missed some."""
        self._transport = None
        self.away_since = now
        self.missed = dropped
        self._keep_unsent(unsent)

    def _keep_unsent(self, unsent: Sequence[Outgoing]) -> None:
        """Keep what a connection that ended had not written, but its own ``welcome``: that
        answered its hello, and the next connection gets one of its own (docs/PROTOCOL.md
        §2.8). A ``welcome`` that said messages were missed still says so: the member is told
        on its resume, and what followed it is not kept (a snapshot follows instead)."""
        for out in unsent:
            welcome = _welcome(out)
            if welcome is None:
                self.push(out)
            elif welcome.resumed is not None and welcome.resumed.missed:
                self._lose_kept()

    def _lose_kept(self) -> None:
        """Drop everything kept: the member is told it missed messages, and a snapshot
        follows its resume."""
        self._kept.clear()
        self._kept_bytes = 0
        self.missed = True

    @property
    def away(self) -> bool:
        return self.away_since is not None


_WELCOME_TEXT = '{"type":"welcome"'


def _welcome(out: Outgoing) -> Welcome | None:
    """``out`` as a ``welcome``, else None; also one that came back encoded from another
    process (its ``message`` unknown: the text says)."""
    message = out.message
    if message is None and out.text.startswith(_WELCOME_TEXT):
        message = decode_server(out.text)
    return message if isinstance(message, Welcome) else None
