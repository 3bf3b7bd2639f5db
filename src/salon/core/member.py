"""What a room needs from a member: an id, a name, a way to push a message and to remove it.

A browser on this process, a member on another process behind a bus, or a Python bot all
implement this; the domain never sees a socket.
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
