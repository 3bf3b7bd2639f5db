"""Everything one running server owns, built by ``create_app`` and torn down by its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy.ext.asyncio import AsyncEngine

from salon.core.clock import Clock
from salon.core.devices import KnownDevices
from salon.core.hub import Hub
from salon.core.settings import Settings
from salon.core.throttle import KeyedThrottle
from salon.core.turn import turn_credential
from salon.protocol import CloseCode, Outgoing
from salon.protocol.messages import IceServer, ServerDraining
from salon.server.bus import Bus, LocalBus
from salon.server.connection import Connection
from salon.server.janus import SfuLink
from salon.server.metrics import Metrics
from salon.server.recorder import SWEEP_SECONDS, Recorders
from salon.server.sfu import JanusRouter
from salon.store.accounts import SqlAccountRepository
from salon.store.rooms import SqlRoomRepository

if TYPE_CHECKING:
    from salon.server.pipes import Pipes

log = logging.getLogger(__name__)

DRAIN_RETRY_AFTER_MS = 1000
"""What ``server_draining`` asks clients to wait before reconnecting: a restarted server is
usually listening again within a second or two, and clients back off from there."""

FULL_ADDRESS_RETRY_SECONDS = 10
"""The ``Retry-After`` of a handshake refused because its address holds as many connections
as it may: one of them must end first, which takes a while."""

FULL_SERVER_RETRY_SECONDS = 10
"""The ``Retry-After`` of a handshake refused because the server holds ``max_connections``."""


class Refusal(NamedTuple):
    """A WebSocket handshake refused before the upgrade: HTTP ``status`` (429: the client's
    address holds or opens too many; 503: the server holds as many as it may) with
    ``Retry-After: retry_after`` seconds, and a one-line ``reason`` as the body."""

    status: int
    retry_after: int
    reason: str


CHAT_EXPIRY_SECONDS = 3600.0
"""How often chat older than ``chat_retention_days`` is deleted (and once at start)."""

STORE_WRITES_GRACE_SECONDS = 5.0
"""How long a stopping server waits for the hub's store writes under way (chat, erasures,
seals) before it closes the database; a write past it is lost with the process, as on a
crash."""


class SignedSession(NamedTuple):
    """The account session a WebSocket handshake was signed in with (salon.server.accounts)."""

    account_id: str
    session_id: str  # what the store keeps of the session's token (store.accounts.token_id)


@dataclass(eq=False)
class ServerState:
    settings: Settings
    clock: Clock
    engine: AsyncEngine
    hub: Hub
    rooms: SqlRoomRepository
    accounts: SqlAccountRepository
    devices: KnownDevices  # signs the known-device cookies of sign-ins
    metrics: Metrics = field(default_factory=Metrics)  # served at /metrics
    recorders: Recorders | None = None  # the recorders of rooms being recorded, their files
    bus: Bus = field(default_factory=LocalBus)  # the other processes (LocalBus: none)
    pipes: Pipes | None = None  # members living here, sockets held elsewhere (salon.server.pipes)
    sfu: SfuLink | None = None  # the link to Janus, when an SFU is configured (docs/SFU.md)
    router: JanusRouter | None = None  # the rooms' media through that Janus
    connections: set[Connection] = field(default_factory=set)
    draining: bool = False  # SIGTERM: not ready, no new sockets, members being closed
    by_address: Counter[str] = field(default_factory=Counter)  # WebSockets held per address
    held: int = 0  # WebSockets held in all (admitted and not yet released)
    handshakes: KeyedThrottle = field(init=False)  # WebSocket handshakes per address
    room_creations: KeyedThrottle = field(init=False)  # POST /api/v1/rooms per address
    # Connections signed in to an account, and with which session: closed with 4006 when it
    # ends (sign-out, a password change elsewhere, a new sign-in in the same browser).
    signed: dict[Connection, SignedSession] = field(default_factory=dict)
    revocations: int = 0  # account sessions ended so far (see _close_signed)
    _watchdog: asyncio.Task[None] | None = None
    _emptied: asyncio.Event = field(default_factory=asyncio.Event)

    def ice_servers(self, member_id: str) -> list[IceServer]:
        """STUN servers as configured, TURN servers with credentials fresh for this member."""
        s = self.settings
        servers = [IceServer(urls=s.stun_urls)] if s.stun_urls else []
        if s.turn_urls and s.turn_secret:
            now_s = self.clock.wall_ms() // 1000
            cred = turn_credential(s.turn_secret, member_id, now_s, s.turn_ttl_seconds)
            self.metrics.turn_credentials.inc()
            servers.append(
                IceServer(urls=s.turn_urls, username=cred.username, credential=cred.password)
            )
        return servers

    def __post_init__(self) -> None:
        limits = self.settings.limits
        keys = self.settings.accounts.throttle_keys
        rate, burst = limits.handshakes_per_minute, limits.handshake_burst
        self.handshakes = KeyedThrottle(rate, burst, keys)
        rate, burst = limits.room_creations_per_minute, limits.room_creation_burst
        self.room_creations = KeyedThrottle(rate, burst, keys)

    def admit(self, address: str) -> Refusal | None:
        """Whether a WebSocket handshake from ``address`` may go on (None), or its refusal:
        503 when the server holds ``max_connections`` already (checked first: a refusal
        spends none of the address's handshakes); 429 when the address holds
        ``max_connections_per_address``, or opened more than ``handshake_burst``, then
        ``handshakes_per_minute``. An admitted address holds one more connection until
        :meth:`release`."""
        limits = self.settings.limits
        if self.held >= limits.max_connections:
            reason = "the server holds as many connections as it may"
            return Refusal(503, FULL_SERVER_RETRY_SECONDS, reason)
        if self.by_address[address] >= limits.max_connections_per_address:
            reason = "too many connections from your address"
            return Refusal(429, FULL_ADDRESS_RETRY_SECONDS, reason)
        wait = self.handshakes.take(address, self.clock.monotonic())
        if wait > 0:
            return Refusal(429, max(1, math.ceil(wait)), "too many connections from your address")
        self.by_address[address] += 1
        self.held += 1
        return None

    def release(self, address: str) -> None:
        """A connection :meth:`admit` let in from ``address`` ended."""
        self.held -= 1
        self.by_address[address] -= 1
        if self.by_address[address] <= 0:
            del self.by_address[address]

    def opened(self, conn: Connection) -> None:
        self.connections.add(conn)
        self._emptied.clear()

    def ended(self, conn: Connection) -> None:
        self.connections.discard(conn)
        self.signed.pop(conn, None)
        if not self.connections:
            self._emptied.set()

    def session_ended(self, session_id: str) -> int:
        """One account session just ended in the store (signed out, or replaced by a new
        sign-in in the same browser): close its connections, here and (told over the bus)
        at the other processes. See :meth:`_close_signed`."""
        self.bus.broadcast({"k": "signed_out", "from": self.bus.proc, "session": session_id})
        return self.close_session(session_id)

    def sessions_ended(self, account_id: str, keep: str) -> int:
        """Every session of ``account_id`` but ``keep`` just ended in the store (a password
        change): close their connections, here and at the other processes. See
        :meth:`_close_signed`."""
        ended = {"k": "sessions_ended", "from": self.bus.proc, "account": account_id}
        self.bus.broadcast({**ended, "keep": keep})
        return self.close_sessions(account_id, keep)

    def close_session(self, session_id: str) -> int:
        """:meth:`session_ended`, for the connections held here only."""
        return self._close_signed(lambda signed: signed.session_id == session_id)

    def close_sessions(self, account_id: str, keep: str) -> int:
        """:meth:`sessions_ended`, for the connections held here only."""
        return self._close_signed(
            lambda signed: signed.account_id == account_id and signed.session_id != keep
        )

    def _close_signed(self, ended: Callable[[SignedSession], bool]) -> int:
        """Close the connections signed in with an ``ended`` session with 4006; their places
        end at once, as after a goodbye (docs/PROTOCOL.md §2.7, §6.2): the room hears
        ``member_left`` and the resume tokens are refused. Returns how many were closed.

        Bumps :attr:`revocations` first, so a handshake that looked its session up before
        the store changed, and is not registered yet, looks again (salon.server.accounts)."""
        self.revocations += 1
        closed = [conn for conn, signed in self.signed.items() if ended(signed)]
        for conn in closed:
            del self.signed[conn]
            conn.close(CloseCode.SIGNED_OUT, "the session was signed out")
            if conn.session is not None:
                conn.session.closed()  # the place ends now, not after the resume window
        if closed:
            log.info("closed %d connections of ended sessions", len(closed))
        return len(closed)

    def start(self) -> None:
        self._watchdog = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self.recorders is not None:
            await self.recorders.close()  # first: each finishes its files while it can
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        for conn in list(self.connections):
            conn.close(CloseCode.GOING_AWAY, "server shutting down")
        await self.hub.settle(STORE_WRITES_GRACE_SECONDS)  # chat, erasures, seals under way
        if self.pipes is not None:
            await self.pipes.stop()  # sends what is queued, lets the others take over at once
        else:
            await self.bus.stop()
        await self.engine.dispose()

    async def drain(self) -> None:
        """Tell every member the server is going, close them with 1012 spread over
        ``drain_spread_seconds`` (so they do not all come back at once), and return when no
        connection is left or ``drain_seconds`` have passed. Members keep their places: with
        their resume tokens they take them back on the next server. Recordings stop first
        (each recorder finishes its files, within ``recordings.stop_seconds``).

        With other processes (``bus.enabled``) this one first marks itself draining, so its
        rooms and places are taken over by whoever needs them next; the members living here
        whose sockets other processes hold are closed with 1012 too, and waited for."""
        self.draining = True
        pipes = self.pipes if self.bus.enabled else None
        if pipes is not None:
            await self.bus.mark_draining()
        if self.recorders is not None:
            await self.recorders.stop_all()
        settings = self.settings
        members = sorted(self.connections, key=lambda c: c.opened_at)
        log.info("draining: %d connections", len(members))
        notice = Outgoing(ServerDraining(retry_after_ms=DRAIN_RETRY_AFTER_MS))
        loop = asyncio.get_running_loop()
        step = settings.drain_spread_seconds / max(1, len(members))
        for i, conn in enumerate(members):
            conn.send(notice)
            loop.call_later(i * step, conn.close, CloseCode.SERVICE_RESTART, "server restarting")
        if pipes is not None:
            pipes.drain(notice, step)
        if not self.connections:
            self._emptied.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settings.drain_seconds):
                await self._emptied.wait()
                if pipes is not None:
                    await pipes.remotes_gone()

    async def _watch(self) -> None:
        """Deadlines, swept on one timer: each connection's, then the hub's (rings, places
        away, tokens to refresh)."""
        limits = self.settings.limits
        shortest = min(
            limits.handshake_seconds,
            limits.idle_greeted_seconds,
            limits.ping_after_seconds,
            limits.ring_seconds,
            limits.resume_grace_seconds,
        )
        interval = min(1.0, shortest / 4)
        expire_at = self.clock.monotonic()  # the chat's retention: at start, then hourly
        recordings_at = expire_at  # the recordings' retention: the same
        while True:
            await asyncio.sleep(interval)
            self.sweep()
            now = self.clock.monotonic()
            if now >= expire_at:
                expire_at = now + CHAT_EXPIRY_SECONDS
                self.hub.expire_chat()  # in a task of the hub's; a failure is logged
            if self.recorders is not None and now >= recordings_at:
                recordings_at = now + SWEEP_SECONDS
                self.recorders.sweep_soon()  # in a task of its own; a failure is logged

    def sweep(self) -> None:
        limits = self.settings.limits
        now = self.clock.monotonic()
        for conn in list(self.connections):
            conn.tick(now, limits)
        if self.pipes is not None:
            self.pipes.tick(now, limits.idle_greeted_seconds)  # members piped here
        self.hub.sweep()
