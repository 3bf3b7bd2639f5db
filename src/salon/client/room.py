"""The room (or direct call) a client is in: its members, one peer per member, the chat
position (docs/PROTOCOL.md §3.2, §3.4, §4.2, §4.3; keeping peers through a resume, §2.8).

The client's reader hands each room message to :class:`RoomState`; nothing here does I/O
but closing peers, which runs in tasks of its own that :meth:`RoomState.settle` waits for.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from pydantic import BaseModel

from salon.client.peer import Peer
from salon.protocol.messages import (
    ChatDelivered,
    History,
    HistoryRequest,
    Joined,
    Left,
    MediaChanged,
    MediaState,
    MemberInfo,
    MemberJoined,
    MemberLeft,
    MemberResumed,
    SignalRelay,
)
from salon.protocol.messages import (
    RoomState as RoomStateMessage,
)


class RoomHost(Protocol):
    """What the room needs from its client."""

    def send(self, message: BaseModel) -> None:
        """Queue a client message."""

    def new_peer(self, member: MemberInfo) -> Peer:
        """A peer toward ``member``."""

    def peer_closed(self, peer: Peer) -> None:
        """``peer`` was closed for good (run the ``on_peer_closed`` handlers)."""

    def deliver(self, message: ChatDelivered) -> None:
        """Hand a chat message fetched with ``history`` to the handlers."""

    def grace_seconds(self) -> float:
        """``limits.resume_grace_seconds`` (§2.8)."""


class RoomState:
    """Where the client is: ``room`` (``None`` outside rooms), ``private`` (a direct call's
    room), ``hosts``, ``members`` (the others, by id), ``peers`` (one per member; none while
    the room is on the SFU, ``sfu``, §3.10), and ``last_seq`` (the newest chat ``seq``
    handed to the handlers)."""

    def __init__(self, host: RoomHost) -> None:
        self.room: str | None = None
        self.private = False
        self.sfu = False
        self.hosts: list[str] = []
        self.members: dict[str, MemberInfo] = {}
        self.peers: dict[str, Peer] = {}
        self.last_seq = 0
        self.resuming = False  # a resume was greeted: the next `joined` is its snapshot
        self._host = host
        self._orphans: dict[str, asyncio.TimerHandle] = {}
        self._drops: set[asyncio.Task[None]] = set()  # peers being closed

    # ------------------------------------------------------------------ membership

    def joined(self, joined: Joined) -> bool:
        """Take a ``joined``; True when it is the snapshot after a resume (§2.8)."""
        snapshot = self.resuming and joined.room == self.room
        self.resuming = False
        if not snapshot:
            self.leave()
            self.last_seq = joined.last_seq
        self.room = joined.room
        self.private = joined.private
        self.hosts = list(joined.hosts)
        if joined.sfu:
            self.to_sfu()
        listed = {m.id: m for m in joined.members}
        if snapshot:
            # Peers the snapshot does not list are kept for the grace window: they may be
            # resuming on a restarted server (§2.8).
            for member_id in set(self.peers) - set(listed):
                self._orphan(member_id)
        self.members = listed
        for member in joined.members:
            self._keep_peer(member)
        return snapshot

    def member(self, message: MemberJoined | MemberResumed) -> None:
        """§2.8: ``member_resumed`` of an unknown member is a join; ``member_joined`` of a
        known one is a resume (its peer connection stays); ``member_joined.replaces``: that
        member is gone (the same person signed in again), its peer is closed."""
        if message.room == self.room:
            if isinstance(message, MemberJoined) and message.replaces is not None:
                self.members.pop(message.replaces, None)
                self.drop_soon(message.replaces)
            self.members[message.member.id] = message.member
            self._keep_peer(message.member)

    def member_left(self, message: MemberLeft) -> None:
        if message.room == self.room:
            self.members.pop(message.id, None)
            self.drop_soon(message.id)

    def left(self, message: Left) -> None:
        if message.room == self.room:
            self.leave()

    def leave(self) -> None:
        """Out of the room: every peer is closed."""
        self.room = None
        self.private = False
        self.sfu = False
        self.hosts = []
        self.members = {}
        self.resuming = False
        for timer in self._orphans.values():
            timer.cancel()
        self._orphans.clear()
        for member_id in list(self.peers):
            self.drop_soon(member_id)

    def to_sfu(self) -> None:
        """The room's media is on the SFU (§3.10): every peer is closed, none made again."""
        self.sfu = True
        for timer in self._orphans.values():
            timer.cancel()
        self._orphans.clear()
        for member_id in list(self.peers):
            self.drop_soon(member_id)

    def room_state(self, message: RoomStateMessage) -> None:
        if message.room == self.room:
            self.hosts = list(message.hosts)

    # ------------------------------------------------------------------ peers

    def signal(self, message: SignalRelay) -> None:
        peer = self.peers.get(message.sender)
        if peer is not None:  # §4.1: signals from members we do not know are ignored
            peer.receive(message)

    def media(self, message: MediaChanged) -> None:
        member = self.members.get(message.sender)
        if member is None:
            return
        media = MediaState(
            mic=message.mic,
            camera=message.camera,
            screen=message.screen,
            recording=message.recording,
        )
        updated = member.model_copy(update={"media": media})
        self.members[member.id] = updated
        peer = self.peers.get(member.id)
        if peer is not None:
            peer.set_member(updated)

    def _keep_peer(self, member: MemberInfo) -> None:
        if self.sfu:
            return
        timer = self._orphans.pop(member.id, None)
        if timer is not None:
            timer.cancel()
        peer = self.peers.get(member.id)
        if peer is not None:
            peer.set_member(member)
        else:
            self.peers[member.id] = self._host.new_peer(member)

    def _orphan(self, member_id: str) -> None:
        loop = asyncio.get_running_loop()
        self._orphans[member_id] = loop.call_later(
            self._host.grace_seconds(), lambda: self.drop_soon(member_id)
        )

    def drop_soon(self, member_id: str) -> None:
        """Close a peer in a task of its own (cancelled midway, aiortc would leave its
        sockets open, so :meth:`settle` waits for it)."""
        task = asyncio.ensure_future(self._drop(member_id))
        self._drops.add(task)
        task.add_done_callback(self._drops.discard)

    async def _drop(self, member_id: str) -> None:
        self._orphans.pop(member_id, None)
        peer = self.peers.pop(member_id, None)
        if peer is not None:
            await peer.close()
            self._host.peer_closed(peer)

    async def close(self, limit: float) -> None:
        """Close every peer and wait (up to ``limit`` seconds) until all are closed, those
        closing already included (each closes in a task of its own, never cancelled here)."""
        for timer in self._orphans.values():
            timer.cancel()
        for member_id in list(self.peers):
            self.drop_soon(member_id)
        if self._drops:
            await asyncio.wait(set(self._drops), timeout=limit)

    # ------------------------------------------------------------------ chat

    def take_chat(self, message: ChatDelivered) -> bool:
        """Whether ``message`` goes to the handlers: once per ``seq``, in order (§4.3)."""
        if message.room != self.room or message.seq <= self.last_seq:
            return False  # another room's, or a resend's acknowledgement (same seq)
        if message.seq > self.last_seq + 1:
            # A gap: ask for what is missing; `history` delivers it and this one in order.
            self.ask_history()
            return False
        self.last_seq = message.seq
        return True

    def ask_history(self) -> None:
        self._host.send(HistoryRequest(type="history", since=self.last_seq))

    def history(self, message: History) -> None:
        if message.room != self.room:
            return
        for entry in message.messages:
            if entry.seq > self.last_seq:
                delivered = ChatDelivered.model_validate(
                    {**entry.model_dump(by_alias=True), "type": "chat"}, strict=False
                )
                self.last_seq = entry.seq
                self._host.deliver(delivered)
        if message.more:
            self.ask_history()
