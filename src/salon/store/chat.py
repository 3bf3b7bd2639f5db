"""Chat history in the database, and in memory for tests and bots."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from salon.core.chatlog import SeqTaken
from salon.protocol.messages import ChatEntry
from salon.store.database import GuardedEngine
from salon.store.tables import chat_messages as t


def _entry(row: Any) -> ChatEntry:
    return ChatEntry(
        room=row.room,
        id=row.id,
        seq=row.seq,
        ts=row.ts,
        sender=row.sender,
        name=row.name,
        text=row.text,
        client_id=row.client_id,
    )


class SqlChatRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = GuardedEngine(engine)  # trouble is store_unavailable

    async def append(self, entry: ChatEntry) -> ChatEntry:
        try:
            async with self._engine.begin() as conn:
                await conn.execute(insert(t).values(**entry.model_dump()))
        except IntegrityError:
            # The unique constraint, not a check in memory, decides what was sent twice.
            stored = await self._by_client_id(entry.room, entry.client_id)
            if stored is None:
                raise SeqTaken(f"seq {entry.seq} of {entry.room} is stored already") from None
            return stored
        return entry

    async def _by_client_id(self, room: str, client_id: str | None) -> ChatEntry | None:
        if client_id is None:
            return None
        query = select(t).where(t.c.room == room, t.c.client_id == client_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return None if row is None else _entry(row)

    async def recent(self, room: str, limit: int) -> list[ChatEntry]:
        if limit <= 0:
            return []
        query = select(t).where(t.c.room == room).order_by(t.c.seq.desc()).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_entry(r) for r in reversed(rows)]

    async def since(self, room: str, seq: int, limit: int) -> list[ChatEntry]:
        query = select(t).where(t.c.room == room, t.c.seq > seq).order_by(t.c.seq).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [_entry(r) for r in rows]

    async def last_seq(self, room: str) -> int:
        query = select(func.coalesce(func.max(t.c.seq), 0)).where(t.c.room == room)
        async with self._engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def erase(self, room: str) -> int:
        async with self._engine.begin() as conn:
            return (await conn.execute(delete(t).where(t.c.room == room))).rowcount

    async def prune(self, room: str, through_seq: int) -> int:
        query = delete(t).where(t.c.room == room, t.c.seq <= through_seq)  # the (room, seq) index
        async with self._engine.begin() as conn:
            return (await conn.execute(query)).rowcount

    async def expire(self, before_ms: int, batch: int = 2000) -> int:
        oldest = select(t.c.id).where(t.c.ts < before_ms).order_by(t.c.ts).limit(batch)
        gone = 0
        while True:
            async with self._engine.begin() as conn:  # the ts index (migration 0009)
                done = (await conn.execute(delete(t).where(t.c.id.in_(oldest)))).rowcount
            gone += done
            if done < batch:
                return gone
            await asyncio.sleep(0)  # chat writes waiting for the lock go between batches


class MemoryChatRepository:
    """Chat kept in memory: for tests of the domain and for throwaway bots."""

    def __init__(self) -> None:
        self.rooms: defaultdict[str, list[ChatEntry]] = defaultdict(list)

    async def append(self, entry: ChatEntry) -> ChatEntry:
        entries = self.rooms[entry.room]
        if entry.client_id is not None:
            for stored in entries:
                if stored.client_id == entry.client_id:
                    return stored
        if any(stored.seq == entry.seq for stored in entries):
            raise SeqTaken(f"seq {entry.seq} of {entry.room} is stored already")
        entries.append(entry)
        return entry

    async def recent(self, room: str, limit: int) -> list[ChatEntry]:
        return self.rooms[room][-limit:] if limit > 0 else []

    async def since(self, room: str, seq: int, limit: int) -> list[ChatEntry]:
        return [e for e in self.rooms[room] if e.seq > seq][:limit]

    async def last_seq(self, room: str) -> int:
        entries = self.rooms[room]
        return entries[-1].seq if entries else 0

    async def erase(self, room: str) -> int:
        return len(self.rooms.pop(room, []))

    async def prune(self, room: str, through_seq: int) -> int:
        entries = self.rooms[room]
        kept = [e for e in entries if e.seq > through_seq]
        self.rooms[room] = kept
        return len(entries) - len(kept)

    async def expire(self, before_ms: int, batch: int = 2000) -> int:
        gone = 0
        for room, entries in self.rooms.items():
            kept = [e for e in entries if e.ts >= before_ms]
            gone += len(entries) - len(kept)
            self.rooms[room] = kept
        return gone
