"""Everything one running server owns, built by ``create_app`` and torn down by its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from salon.core.clock import Clock
from salon.core.hub import Hub
from salon.core.settings import Settings
from salon.core.turn import turn_credential
from salon.protocol import CloseCode
from salon.protocol.messages import IceServer
from salon.store.accounts import SqlAccountRepository
from salon.store.rooms import SqlRoomRepository

if TYPE_CHECKING:
    from salon.server.connection import Connection


@dataclass(eq=False)
class ServerState:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    hub: Hub
    rooms: SqlRoomRepository
    accounts: SqlAccountRepository
    connections: set[Connection] = field(default_factory=set)
    _watchdog: asyncio.Task[None] | None = None

    def ice_servers(self, member_id: str) -> list[IceServer]:
        """STUN servers as configured, TURN servers with credentials fresh for this member."""
        s = self.settings
        servers = [IceServer(urls=s.stun_urls)] if s.stun_urls else []
        if s.turn_urls and s.turn_secret:
            now_s = self.clock.wall_ms() // 1000
            cred = turn_credential(s.turn_secret, member_id, now_s, s.turn_ttl_seconds)
            servers.append(
                IceServer(urls=s.turn_urls, username=cred.username, credential=cred.password)
            )
        return servers

    def start(self) -> None:
        self._watchdog = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        for conn in list(self.connections):
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
        await self.engine.dispose()

    async def _watch(self) -> None:
        """Deadlines, swept on one timer: handshake, ping on silence, dead peers, ringing."""
        limits = self.settings.limits
        shortest = min(limits.handshake_seconds, limits.ping_after_seconds, limits.ring_seconds)
        interval = min(1.0, shortest / 4)
        while True:
            await asyncio.sleep(interval)
            self.sweep()

    def sweep(self) -> None:
        limits = self.settings.limits
        now = self.clock.monotonic()
        for conn in list(self.connections):
            session = conn.session
            if session is None or conn.closing:
                continue
            if session.version is None:
                if now - conn.opened_at >= limits.handshake_seconds:
                    conn.close(CloseCode.HANDSHAKE_TIMEOUT, "no hello in time")
                continue
            silent = now - conn.heard_at
            if silent >= limits.dead_after_seconds:
                conn.close(CloseCode.DEAD_PEER, "nothing heard in time")
            elif silent >= limits.ping_after_seconds and not conn.pinged:
                conn.pinged = True
                session.silence()
        self.hub.expire_calls()
