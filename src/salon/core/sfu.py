"""What the rooms need of an SFU (docs/SFU.md, docs/PROTOCOL.md §3.10): a room whose media goes
through a selective forwarding unit instead of a full mesh. The rooms decide who is in which
room and when a room moves to the SFU; the server's implementation (``salon.server.sfu``,
Janus VideoRoom) holds each member's sessions with the SFU and relays descriptions.

The rule for moving: a mesh room whose next member would make it larger than ``mesh_limit``
(any next member in a room the server API created as large) moves to the SFU when one is
``available``, if everyone in it (and the joiner) speaks protocol
v3 and no server recorder is seated; it stays on the SFU until its meeting ends. A room on the
SFU holds up to ``max_members``; a mesh room, ``max_room_members`` as without an SFU.
"""

from __future__ import annotations

from typing import Final, Literal, Protocol

from salon.core.member import Member
from salon.protocol.messages import IceCandidate, SfuQualityLevel

SfuConnection = Literal["publisher", "subscriber"]


MAX_TRICKLED: Final = 64
"""Candidates a member may trickle into one of its connections to the SFU per description it
sent (Chromium gathers a handful per network interface); more get ``rate_limited``. Janus
keeps those that come before the description's ICE starts in a list with no bound of its
own."""


class SfuError(Exception):
    """The SFU refused a request or did not answer; nothing changed on Salon's side."""


class MediaRouter(Protocol):
    """A room's media through an SFU. Every method that names a member raises
    :class:`SfuError` when the SFU fails; none blocks the rooms' state: the rooms change
    first and tell the router after."""

    @property
    def available(self) -> bool:
        """The SFU answers now (a room may move to it)."""
        ...

    @property
    def mesh_limit(self) -> int:
        """The most members a mesh room holds before it moves to the SFU."""
        ...

    @property
    def max_members(self) -> int:
        """The most members a room on the SFU holds."""
        ...

    def enter(self, room: str, meeting: str, member: Member) -> None:
        """``member`` is seated in ``room``, whose meeting ``meeting`` is on the SFU: open its
        place there (in the background; what it publishes and receives follows). From then
        on the router tells the member ``sfu_offer`` and ``talking`` itself."""
        ...

    def leave(self, meeting: str, member_id: str) -> None:
        """``member_id`` left the meeting: close its place on the SFU (in the background)."""
        ...

    def close(self, meeting: str) -> None:
        """The meeting ended: close it on the SFU (in the background)."""
        ...

    async def publish(self, member: Member, sdp: str, screen: str | None) -> str:
        """``member``'s offer for what it sends (``screen``: the mid of its screen share);
        the SFU's answer SDP."""
        ...

    async def subscribe(self, member: Member, sdp: str) -> None:
        """``member``'s answer to the SFU's latest offer for what it receives."""
        ...

    async def candidate(
        self, member: Member, pc: SfuConnection, candidate: IceCandidate | None
    ) -> bool:
        """A candidate trickled by ``member`` for one of its connections (None: the end).
        False, and nothing sent, past the router's bound on candidates per description."""
        ...

    def resumed(self, member: Member) -> None:
        """``member`` resumed (messages may have been lost): send again the offer it has not
        answered, if any."""
        ...

    async def quality(self, member: Member, publisher: str, level: SfuQualityLevel) -> None:
        """Which simulcast layer of ``publisher``'s video ``member`` receives."""
        ...
