"""Room passwords, kept by the store so a protected room stays protected after it empties
(its stored chat included). The domain only asks; hashing is the store's business."""

from __future__ import annotations

from typing import Protocol


class RoomPasswords(Protocol):
    async def protect(self, room: str, password: str, created_ms: int) -> bool:
        """Give ``room`` this password unless it has one already; ``True`` when it was set."""
        ...

    async def check(self, room: str, password: str | None) -> bool | None:
        """``None`` when ``room`` has no password, else whether ``password`` opens it."""
        ...


class MemoryRoomPasswords:
    """Passwords in memory, in clear: for tests of the domain and throwaway bots."""

    def __init__(self) -> None:
        self.passwords: dict[str, str] = {}

    async def protect(self, room: str, password: str, created_ms: int) -> bool:
        if room in self.passwords:
            return False
        self.passwords[room] = password
        return True

    async def check(self, room: str, password: str | None) -> bool | None:
        stored = self.passwords.get(room)
        return None if stored is None else stored == password
