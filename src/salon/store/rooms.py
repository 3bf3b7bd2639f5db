"""Rooms created ahead of time over REST, so their links are known to exist."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.store.tables import rooms as t


class SqlRoomRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, room_id: str, created_ms: int) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(insert(t).values(id=room_id, created_ms=created_ms))

    async def exists(self, room_id: str) -> bool:
        async with self._engine.connect() as conn:
            found = await conn.execute(select(t.c.id).where(t.c.id == room_id))
            return found.first() is not None
