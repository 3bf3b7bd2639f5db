"""What the hub asks the store about a room's keys: who created it (the SHA-256 of the host key
``POST /api/v1/rooms`` returned, and the creating account), and how a room password is hashed
and checked.

A room's password lives hashed in memory with the live room and ends with it; it is never
stored. Only the fact that a meeting with a password is under way is (the room is *sealed*),
so that a restart cannot hand that meeting's chat to someone else; and whom its hosts removed
(:class:`Removed`), so that a restart cannot seat them again by their old resume tokens.
Hashing is slow on purpose
(scrypt), so the store runs it in a worker thread and the domain only awaits it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class RoomCreator:
    """A room created over REST: the SHA-256 (hex) of its host key, and the username of the
    account that created it (None for a guest)."""

    key_sha256: str
    account: str | None = None


@dataclass(frozen=True, slots=True)
class Standing:
    """The settings of a room created through the server API: every meeting in it starts
    with them. ``password_hash``: the room's password (hashed as by
    :meth:`RoomKeys.hash_password`), None for none; ``host_accounts``: usernames that are
    hosts by right; ``large``: a large meeting, on the SFU from its first member on."""

    password_hash: str | None = None
    lobby: bool = False
    locked: bool = False
    host_accounts: tuple[str, ...] = ()
    large: bool = False


@dataclass(frozen=True, slots=True)
class Removed:
    """Whom a meeting's hosts removed (member ids, accounts, client addresses, each oldest
    first), kept by the store until ``until_ms`` (Unix ms): the last removal plus the longest a
    resume token lives, past which no token issued before it can come back."""

    until_ms: int
    ids: tuple[str, ...] = ()
    accounts: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredRoom:
    """What the store knows of a room: who created it over REST (None when it was not, or
    before host keys), whether it is sealed (a meeting with a password is under way), its
    standing settings when it was created through the server API, and whom the meeting under
    way removed."""

    creator: RoomCreator | None = None
    sealed: bool = False
    standing: Standing | None = None
    removed: Removed | None = None


def host_key_digest(host_key: str) -> str:
    """The form a host key is stored and compared in: SHA-256, hex."""
    return hashlib.sha256(host_key.encode()).hexdigest()


def host_key_opens(host_key: str | None, creator: RoomCreator | None) -> bool:
    """Whether ``host_key`` is the key its room's creator was given (constant time)."""
    if host_key is None or creator is None:
        return False
    return hmac.compare_digest(host_key_digest(host_key), creator.key_sha256)


class RoomKeys(Protocol):
    async def lookup(self, room: str) -> StoredRoom | None:
        """What the store knows of ``room`` (one query); None when it knows nothing."""
        ...

    async def seal(self, room: str, sealed: bool, now_ms: int) -> None:
        """Remember that a meeting with a password is under way in ``room`` (or is not any
        more). What outlives a restart of the meeting's protection: its chat is erased before
        anyone but its members comes back (see Rooms._activate)."""
        ...

    async def remember_removed(self, room: str, removed: Removed | None, now_ms: int) -> None:
        """Keep whom the meeting under way in ``room`` removed (None: nobody, the meeting
        ended), in place of what was kept before. What outlives a restart of a removal: a
        member rebuilt from an older token is not seated again (see Hub.rebuild)."""
        ...

    async def hash_password(self, password: str) -> str:
        """A salted, slow hash of a room password (never the password itself)."""
        ...

    async def verify_password(self, password: str, hashed: str) -> bool:
        """Whether ``password`` is the one ``hashed`` was made from."""
        ...


class MemoryRoomKeys:
    """Room creators in memory and a fast salted hash: for tests of the domain and bots."""

    def __init__(self) -> None:
        self.creators: dict[str, RoomCreator] = {}
        self.seals: set[str] = set()
        self.standing: dict[str, Standing] = {}
        self.removed: dict[str, Removed] = {}

    async def lookup(self, room: str) -> StoredRoom | None:
        known = (self.creators, self.seals, self.standing, self.removed)
        if not any(room in book for book in known):
            return None
        return StoredRoom(
            self.creators.get(room),
            room in self.seals,
            self.standing.get(room),
            self.removed.get(room),
        )

    async def remember_removed(self, room: str, removed: Removed | None, now_ms: int) -> None:
        if removed is None:
            self.removed.pop(room, None)
        else:
            self.removed[room] = removed

    async def seal(self, room: str, sealed: bool, now_ms: int) -> None:
        if sealed:
            self.seals.add(room)
        else:
            self.seals.discard(room)

    async def hash_password(self, password: str) -> str:
        salt = secrets.token_hex(8)
        return f"sha256${salt}${hashlib.sha256((salt + password).encode()).hexdigest()}"

    async def verify_password(self, password: str, hashed: str) -> bool:
        _scheme, salt, digest = hashed.split("$")
        expected = hashlib.sha256((salt + password).encode()).hexdigest()
        return hmac.compare_digest(expected, digest)
