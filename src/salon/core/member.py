"""What a room needs from a member, and what a member needs from a connection.

A browser on this process, a member on another process behind a bus, or a Python bot all
implement :class:`Member`; the domain never sees a socket.
"""

from __future__ import annotations

from typing import Protocol

from salon.protocol import CloseCode, Outgoing


class Member(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    def push(self, out: Outgoing) -> None:
        """Queue a message for this member. Never blocks; a member that cannot keep up is
        kicked by its own transport, never waited for."""
        ...

    def kick(self, code: CloseCode, reason: str) -> None:
        """End this member's connection."""
        ...

    def placed(
        self, room: str | None, call: str | None, peer: str | None, *, guarded: bool = False
    ) -> None:
        """The hub moved this member: into ``room`` (for a direct call, ``call`` and the other
        member ``peer``), or out of every room (all None). ``guarded``: the room had a
        password when the member was let in."""
        ...


class Transport(Protocol):
    def send(self, out: Outgoing) -> None:
        """Queue a message; never blocks. Overflow is the transport's to handle (it kicks)."""
        ...

    def close(self, code: CloseCode, reason: str) -> None:
        """End the connection with a WebSocket close code."""
        ...

    def replace(self, code: CloseCode, reason: str) -> tuple[list[Outgoing], bool]:
        """A newer connection takes the member's place (docs/PROTOCOL.md §2.8): end this one
        with ``code`` and return, in order, the messages it had queued and not begun to
        write (they are the newer connection's now), and whether it discarded any."""
        ...
