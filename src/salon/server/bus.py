"""The bus: how the Salon processes of one deployment reach each other (issue #12).

:class:`LocalBus` is one process alone (today's behaviour: nothing is shared). :class:`RedisBus`
(:mod:`salon.server.redisbus`) shares what must be shared through Redis: which process is the
home of a room or of a member's place, the reachable names, ended places, presence changes,
and the envelopes the fronts and homes send each other (``docs/SCALING.md``). Both have the
surface :class:`Bus`; every lookup raises :class:`BusDown` when Redis cannot be reached.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any, Protocol

from salon.core.directory import Directory, LocalDirectory

# Defined with RedisBus (which needs them), named here: the rest of the server imports this module.
from salon.server.redisbus import BusDown, Handler, Owned, RedisBus


class Bus(Protocol):
    """What the server needs from the other processes; see :class:`LocalBus` and
    :class:`~salon.server.redisbus.RedisBus`."""

    proc: str  # this process's id: 12 hex characters, new at each start
    enabled: bool  # False: LocalBus (one process, today's behaviour)
    healthy: bool  # False while Redis is unreachable (between on_outage and on_restored)
    directory: Directory  # reachable names, ended places and presence, backed by this bus

    async def start(
        self,
        handler: Handler,
        on_peer_lost: Callable[[str], None],
        on_outage: Callable[[], None],
        on_restored: Callable[[], None],
        owned: Callable[[], Owned],
        *,
        on_room_lost: Callable[[str], None] = ...,
    ) -> None:
        """Subscribe and start the background tasks; returns once subscribed (or once it is
        known that Redis is down: then ``on_outage`` has been called). Never raises BusDown.
        ``on_peer_lost(proc)``: a watched process died (once per death). ``on_outage()``:
        Redis became unreachable (once per outage). ``on_restored()``: it answers again, this
        process is resubscribed and its keys re-asserted (messages may have been lost).
        ``owned()``: the keys to re-assert at each heartbeat. ``on_room_lost(room)``: a
        heartbeat found a room held here held by another live process (it is that one's
        now: its members here must resume there); by default nothing is done."""
        ...

    async def stop(self) -> None:
        """Send what is queued (at most a few seconds), stop the tasks, remove this process's
        ``proc:`` key so the others take its rooms over at once. Never raises."""
        ...

    def send(self, proc: str, envelope: dict[str, Any]) -> bool:
        """Queue ``envelope`` for process ``proc`` (delivered in the order sent); False at once
        when the bus is degraded or its queue is full (nothing queued)."""
        ...

    def broadcast(self, envelope: dict[str, Any]) -> bool:
        """Queue ``envelope`` for every other process (not echoed here); False as ``send``.
        The envelope must carry ``"from": proc``."""
        ...

    async def alive(self, proc: str) -> bool:
        """Whether ``proc`` runs and is not draining. Raises BusDown."""
        ...

    async def claim_room(self, room: str) -> str:
        """Make this process the home of ``room`` unless a live process is; returns the home
        after the claim (maybe this process). Raises BusDown."""
        ...

    async def room_home(self, room: str) -> str | None:
        """The live (not draining) process holding ``room``, or None. Raises BusDown."""
        ...

    async def place_home(self, member_id: str) -> str | None:
        """The live (not draining) process holding the member's place, or None. Raises BusDown."""
        ...

    async def claim_place(self, member_id: str) -> str:
        """This process now holds the member's place (it adopted or rebuilt it): its key
        names this process at once, unless a live process holds it; returns the holder after
        the claim (maybe this process). Raises BusDown."""
        ...

    async def release_place(self, member_id: str) -> None:
        """This process let the member's place go (a move): its key no longer names this
        process, if it still did (the member's reachable name stays held until the new home
        claims the place, or a TTL). Raises BusDown."""
        ...

    async def processes(self) -> list[str]:
        """The processes whose ``proc:`` key is in Redis, this one included, draining or not
        (a draining process still holds the meetings its members have not left): one killed
        less than a key's lifetime ago still counts, one cut off from Redis does not.
        Raises BusDown."""
        ...

    async def name_member(self, key: str) -> str | None:
        """The member id holding the reachable name with this name key (its place still
        held somewhere), or None. Raises BusDown."""
        ...

    def watch(self, proc: str) -> None:
        """Tell ``on_peer_lost(proc)`` when ``proc`` dies (its ``proc:`` key expires)."""
        ...

    def unwatch(self, proc: str) -> None:
        """No longer tell of ``proc``'s death."""
        ...

    async def mark_draining(self) -> None:
        """Mark this process draining: lookups elsewhere no longer count it as live, so its
        rooms and places are taken over by whoever needs them next. Never raises."""
        ...

    def refresh_soon(self) -> None:
        """Re-assert the ``owned()`` keys now rather than at the next heartbeat (after a
        place arrived here, say); coalesced."""
        ...


class LocalBus:
    """One process alone: nothing is shared, every lookup finds nothing, sends fail, and the
    directory is a :class:`~salon.core.directory.LocalDirectory`."""

    enabled: bool = False
    healthy: bool = True

    def __init__(self) -> None:
        self.proc = secrets.token_hex(6)
        self.directory: Directory = LocalDirectory()

    async def start(
        self,
        handler: Handler,
        on_peer_lost: Callable[[str], None],
        on_outage: Callable[[], None],
        on_restored: Callable[[], None],
        owned: Callable[[], Owned],
        *,
        on_room_lost: Callable[[str], None] | None = None,
    ) -> None:
        return None

    async def stop(self) -> None:
        return None

    def send(self, proc: str, envelope: dict[str, Any]) -> bool:
        return False

    def broadcast(self, envelope: dict[str, Any]) -> bool:
        return False

    async def alive(self, proc: str) -> bool:
        return proc == self.proc

    async def claim_room(self, room: str) -> str:
        return self.proc

    async def room_home(self, room: str) -> str | None:
        return None

    async def place_home(self, member_id: str) -> str | None:
        return None

    async def claim_place(self, member_id: str) -> str:
        return self.proc

    async def release_place(self, member_id: str) -> None:
        return None

    async def processes(self) -> list[str]:
        return [self.proc]

    async def name_member(self, key: str) -> str | None:
        return None

    def watch(self, proc: str) -> None:
        return None

    def unwatch(self, proc: str) -> None:
        return None

    async def mark_draining(self) -> None:
        return None

    def refresh_soon(self) -> None:
        return None


__all__ = ["Bus", "BusDown", "Handler", "LocalBus", "Owned", "RedisBus"]
