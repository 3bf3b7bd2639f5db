"""The persistence the domain needs for chat, as an interface the store layer implements."""

from __future__ import annotations

from typing import Protocol

from salon.protocol.messages import ChatEntry


class SeqTaken(Exception):
    """``append`` found the seq already stored with another message: a write this process
    thought had failed (its commit outran a timeout) was stored after all."""


class ChatRepository(Protocol):
    async def append(self, entry: ChatEntry) -> ChatEntry:
        """Persist one message and return it; when the room already holds a message with the
        same ``client_id``, store nothing and return that one. Raises :class:`SeqTaken` when
        the seq is taken by another message, and otherwise when it could not be stored."""
        ...

    async def recent(self, room: str, limit: int) -> list[ChatEntry]:
        """The newest ``limit`` messages of a room, oldest first."""
        ...

    async def since(self, room: str, seq: int, limit: int) -> list[ChatEntry]:
        """Up to ``limit`` messages with a seq above ``seq``, oldest first."""
        ...

    async def last_seq(self, room: str) -> int:
        """The highest seq stored for a room, 0 when it has none."""
        ...

    async def erase(self, room: str) -> int:
        """Delete every stored message of a room (its meeting had a password and ended);
        returns how many were deleted. Raises when it could not."""
        ...

    async def prune(self, room: str, through_seq: int) -> int:
        """Delete a room's messages with a seq up to ``through_seq`` (the oldest, past the
        room's quota); returns how many. Raises when it could not."""
        ...

    async def expire(self, before_ms: int, batch: int = 2000) -> int:
        """Delete every message stored before ``before_ms`` (milliseconds since the Unix
        epoch, the entries' ``ts``), in all rooms, in batches of at most ``batch`` rows each
        in a transaction of its own (a long delete would hold SQLite's write lock and stop
        all chat); returns how many. Raises when a batch could not be deleted (the batches
        before it stay deleted)."""
        ...
