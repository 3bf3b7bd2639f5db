"""Rooms the store knows: created over REST, or protected by a password."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

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


@dataclass(frozen=True, slots=True)
class StoredRoom:
    id: str
    protected: bool


class SqlRoomRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, room_id: str, created_ms: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(t).values(id=room_id, created_ms=created_ms))

    async def lookup(self, room_id: str) -> StoredRoom | None:
        async with self._engine.connect() as conn:
            query = select(t.c.id, t.c.password_hash).where(t.c.id == room_id)
            row = (await conn.execute(query)).first()
        return None if row is None else StoredRoom(row.id, row.password_hash is not None)

    async def protect(self, room: str, password: str, created_ms: int) -> bool:
        hashed = await asyncio.to_thread(hash_password, password)
        async with self._engine.begin() as conn:
            changed = await conn.execute(
                update(t)
                .where(t.c.id == room, t.c.password_hash.is_(None))
                .values(password_hash=hashed)
            )
            if changed.rowcount:
                return True
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        insert(t).values(id=room, created_ms=created_ms, password_hash=hashed)
                    )
            except IntegrityError:
                return False  # it exists and already has a password
            return True

    async def check(self, room: str, password: str | None) -> bool | None:
        async with self._engine.connect() as conn:
            query = select(t.c.password_hash).where(t.c.id == room)
            stored = (await conn.execute(query)).scalar_one_or_none()
        if stored is None:
            return None
        if password is None:
            return False
        return await asyncio.to_thread(verify_password, password, stored)
