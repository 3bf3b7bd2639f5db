"""Rooms the store knows: those created over REST, with the SHA-256 of the host key their
creator was given and the creating account; and rooms whose meeting is sealed or removed
someone. Also the room password hash (scrypt): a room's password itself lives in memory with
its meeting, never in the store."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.core.passwords import Removed, RoomCreator, Standing, StoredRoom
from salon.store.database import GuardedEngine
from salon.store.tables import rooms as t

# scrypt (RFC 7914) with n=2**14, r=8, p=1: 16 MiB and tens of milliseconds a hash, run in a
# worker thread so the event loop never waits on it.
_N, _R, _P = 2**14, 8, 1


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    encoded = [base64.b64encode(part).decode() for part in (salt, digest)]
    return f"scrypt${_N}${_R}${_P}${encoded[0]}${encoded[1]}"


def verify_password(password: str, stored: str) -> bool:
    _scheme, n, r, p, salt, digest = stored.split("$")
    expected = base64.b64decode(digest)
    got = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(expected),
    )
    return hmac.compare_digest(got, expected)


class SqlRoomRepository:
    """Rooms created over REST, and the :class:`~salon.core.passwords.RoomKeys` the hub
    asks: who created a room, and scrypt hashing of room passwords in worker threads, at most
    ``hash_concurrency`` at once (each takes 16 MiB and tens of milliseconds)."""

    def __init__(self, engine: AsyncEngine, hash_concurrency: int = 2) -> None:
        self._engine = GuardedEngine(engine)  # trouble is store_unavailable
        self._slots = asyncio.Semaphore(hash_concurrency)

    async def create(
        self,
        room_id: str,
        created_ms: int,
        host_key_sha256: str | None,
        account: str | None,
        standing: Standing | None = None,
    ) -> None:
        """Store a new room with the SHA-256 (hex) of its host key (None: nobody holds one)
        and the username of the account that created it (None for a guest or a service), and
        the ``standing`` settings of a room the server API creates."""
        values: dict[str, object] = {
            "id": room_id,
            "created_ms": created_ms,
            "host_key_sha256": host_key_sha256,
            "creator_account": account,
        }
        if standing is not None:
            values |= {
                "password_hash": standing.password_hash,
                "lobby": standing.lobby,
                "locked": standing.locked,
                "host_accounts": json.dumps(list(standing.host_accounts)),
                "large": standing.large,
            }
        async with self._engine.begin() as conn:
            await conn.execute(insert(t).values(**values))

    async def lookup(self, room_id: str) -> StoredRoom | None:
        columns = (
            t.c.host_key_sha256,
            t.c.creator_account,
            t.c.sealed,
            t.c.password_hash,
            t.c.lobby,
            t.c.locked,
            t.c.host_accounts,
            t.c.large,
            t.c.removed,
        )
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(*columns).where(t.c.id == room_id))).first()
        if row is None:
            return None
        creator = None
        if row.host_key_sha256 is not None:
            creator = RoomCreator(row.host_key_sha256, row.creator_account)
        standing = None
        if row.host_accounts is not None:  # set for every room the server API creates
            hosts = tuple(str(name) for name in json.loads(row.host_accounts))
            standing = Standing(
                row.password_hash, bool(row.lobby), bool(row.locked), hosts, bool(row.large)
            )
        removed = None
        if row.removed is not None:
            kept = json.loads(row.removed)
            removed = Removed(
                int(kept["until_ms"]),
                tuple(str(key) for key in kept["ids"]),
                tuple(str(key) for key in kept["accounts"]),
                tuple(str(key) for key in kept["addresses"]),
            )
        return StoredRoom(creator, bool(row.sealed), standing, removed)

    async def seal(self, room: str, sealed: bool, now_ms: int) -> None:
        """Mark ``room`` sealed (inserting its row when it was never created over REST), or
        not."""
        await self._set(room, {"sealed": sealed}, now_ms, insert_missing=sealed)

    async def remember_removed(self, room: str, removed: Removed | None, now_ms: int) -> None:
        """Keep whom the meeting in ``room`` removed (inserting its row when it was never
        created over REST), or forget it (None); and forget the removals of every room past
        their ``until_ms``."""
        value, until = None, None
        if removed is not None:
            value, until = (
                json.dumps(
                    {
                        "until_ms": removed.until_ms,
                        "ids": removed.ids,
                        "accounts": removed.accounts,
                        "addresses": removed.addresses,
                    }
                ),
                removed.until_ms,
            )
        changes: dict[str, object] = {"removed": value, "removed_until_ms": until}
        await self._set(room, changes, now_ms, insert_missing=value is not None)
        # Removals past their time, in rooms whose meeting never ended here (a crash): their
        # client addresses are not kept longer than they can matter.
        async with self._engine.begin() as conn:
            expired = t.c.removed_until_ms < now_ms
            await conn.execute(update(t).where(expired).values(removed=None, removed_until_ms=None))

    async def _set(
        self, room: str, values: dict[str, object], now_ms: int, *, insert_missing: bool
    ) -> None:
        """Update ``room``'s row; with ``insert_missing``, insert it first when there is none."""
        async with self._engine.begin() as conn:
            changed = await conn.execute(update(t).where(t.c.id == room).values(**values))
            if changed.rowcount or not insert_missing:
                return
            try:
                async with conn.begin_nested():
                    await conn.execute(insert(t).values(id=room, created_ms=now_ms, **values))
            except IntegrityError:  # created meanwhile
                await conn.execute(update(t).where(t.c.id == room).values(**values))

    async def hash_password(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(hash_password, password)

    async def verify_password(self, password: str, hashed: str) -> bool:
        async with self._slots:
            return await asyncio.to_thread(verify_password, password, hashed)
