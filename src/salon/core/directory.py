"""The directory: what the server processes of one deployment must share about members.

One process alone needs nothing shared (:class:`LocalDirectory`, today's behaviour). Several
processes over a bus (``salon.server.bus``) share three things, which the hub asks about or
tells here besides keeping its own (local) truth:

- **reachable names**: a reachable name (``hello.reachable``) is unique across all processes,
  claimed by the member id holding it (it stays the member's when the member moves to
  another process) and released when that member's place ends;
- **ended places**: a place that ended on one process (goodbye, grace window over, removal)
  refuses its resume tokens on every process for ``resume_token_seconds``;
- **presence**: every process's reachable names (for a new watcher's ``presence`` list) and
  each change (``presence_changed``), which the other processes pass on to their watchers
  (:meth:`~salon.core.hub.Hub.on_remote_presence`).

Implementations never raise: when the shared state cannot be reached they answer what keeps
a single process working (see each method) and the caller goes on with its local truth.
"""

from __future__ import annotations

from typing import Protocol

from salon.protocol.messages import PresenceChanged


class Directory(Protocol):
    """What must be shared between processes: reachable names, ended places, presence."""

    async def claim_name(self, key: str, member_id: str) -> bool:
        """Claim the reachable name with name key ``key`` (:func:`~salon.core.validate.name_key`)
        for ``member_id``. True: it is now ``member_id``'s: it was free, was already this
        member's, or its holder's place is gone; also when the shared state cannot be
        reached (names are then unique on each process only). False: a member whose place is
        held somewhere holds it (the hub answers ``name_taken``)."""
        ...

    def release_name(self, key: str, member_id: str) -> None:
        """``member_id`` gives up the name with key ``key`` (only if it still holds it).
        Fire and forget: returns at once; lost when the shared state cannot be reached (the
        claim then expires by itself)."""
        ...

    async def names(self) -> list[str] | None:
        """The reachable names (display names, any order, maybe with duplicates) held on
        every process, this one included. None: unknown (the shared state cannot be
        reached): the caller lists its own only."""
        ...

    def end(self, member_id: str, seconds: float) -> None:
        """``member_id``'s place ended: its resume tokens are refused everywhere for
        ``seconds`` (the tokens' lifetime). Fire and forget."""
        ...

    async def ended(self, member_id: str) -> bool:
        """Whether ``member_id``'s place ended on some process within its tokens' lifetime.
        False when unknown (the shared state cannot be reached)."""
        ...

    def presence(self, change: PresenceChanged) -> None:
        """Tell the other processes' presence watchers ``change`` (a reachable name went
        online, offline, away or back on this process). Fire and forget."""
        ...


class LocalDirectory:
    """The directory of a process that is alone: nothing to share. Every claim succeeds (the
    hub's own check is the whole truth), no other process's names exist (None: the hub lists
    its own), nothing ended elsewhere, and there is nobody to tell."""

    async def claim_name(self, key: str, member_id: str) -> bool:
        return True

    def release_name(self, key: str, member_id: str) -> None:
        return None

    async def names(self) -> list[str] | None:
        return None

    def end(self, member_id: str, seconds: float) -> None:
        return None

    async def ended(self, member_id: str) -> bool:
        return False

    def presence(self, change: PresenceChanged) -> None:
        return None
