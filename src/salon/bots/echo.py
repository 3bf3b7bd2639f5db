"""The echo bot: each person gets their own audio and video back, and an answer to each chat.

A connectivity test anyone can run: "do I see and hear myself through the path between me
and the bot?". Each person's media goes back to that person only, on the same peer
connection it came on: the first audio and the first video track of their connection (the
camera, not a screen share sent beside it; the others are not received at all). A person's
track is read by a :class:`Tap` from its arrival until it ends, whether or not the echo is
being sent (a host may mute the bot; aiortc would otherwise queue every decoded frame), and
keeps the newest frames only (video: one, so a slow moment never turns into lasting delay;
audio: a quarter of a second, so a short stall does not crackle). The tap feeds one
:class:`ForwardTrack` per kind, which survives the SDK replacing the peer connection
(docs/PROTOCOL.md §4.1).

The outgoing tracks exist before the person's tracks arrive, with no source yet, so the
first offer or answer already sends them and the person's tracks only become their source
when they arrive — no second negotiation. In a room they are given to each peer as soon as
the member is known; in a direct call (one person at a time) they are the client's own
tracks, which the SDK puts on every new connection before it negotiates.
"""

from __future__ import annotations

import logging

from aiortc import MediaStreamTrack

from salon.bots.base import Bot, first_of_kind
from salon.bots.forward import ForwardTrack, Tap
from salon.client import Client, Peer, Remote
from salon.protocol.messages import ChatDelivered, Joined, MemberJoined

log = logging.getLogger("salon.bots")

PREFIX = "echo: "
MAX_REPLY_CHARS = 2000  # a reply never longer than this (the server's limit is larger)
KEEP_FRAMES = {"audio": 12, "video": 1}  # what a tap keeps for its reader (12 × 20 ms)


class EchoBot(Bot):
    """Sends each member's tracks back to that member and answers chat with
    ``"echo: <text>"`` (never answering an echo, so two echo bots do not talk forever)."""

    default_name = "Echo"
    reads_tracks = True

    def __init__(self) -> None:
        super().__init__()
        self._echoes: dict[tuple[str, str], tuple[Peer, ForwardTrack]] = {}
        self._call: dict[str, ForwardTrack] = {}  # answering: the tracks sent to the caller

    def attach(self, client: Client) -> None:
        if self.answering:
            for kind in ("audio", "video"):
                self._call[kind] = ForwardTrack(kind)
                client.add_track(self._call[kind])
        client.on(Joined, self._on_members)
        client.on(MemberJoined, self._on_members)
        client.on_track(self._on_track)
        client.on_peer_closed(self._on_peer_closed)
        client.on(ChatDelivered, self._on_chat)

    async def seated(self, joined: Joined) -> None:
        await self.client.set_media(mic=True, camera=True)

    async def unseated(self) -> None:
        for track in self._call.values():
            track.switch(None)

    async def close_media(self) -> None:
        for track in [*(echo for _peer, echo in self._echoes.values()), *self._call.values()]:
            track.stop()
        self._echoes.clear()

    def _on_members(self, _message: Joined | MemberJoined) -> None:
        if self.answering:
            return
        for peer in list(self.client.peers.values()):
            for kind in ("audio", "video"):
                self._echo(peer, kind)

    def _on_track(self, peer: Remote, track: MediaStreamTrack) -> None:
        # Each member's media goes back to that member alone: a mesh's peers only (the bot
        # never offers protocol v3, so it is never in a room on the SFU).
        if not isinstance(peer, Peer) or peer.closed or not first_of_kind(peer, track):
            self.ignore(peer, track)  # a screen share beside the camera, a replaced connection
            return
        source = Tap(track, keep=KEEP_FRAMES[track.kind])
        echo = self._call[track.kind] if self.answering else self._echo(peer, track.kind)
        echo.switch(source)  # the same outgoing track after a new connection
        log.info("echoing %s of %r", track.kind, peer.member.name)

    def _echo(self, peer: Peer, kind: str) -> ForwardTrack:
        """The track that sends ``kind`` back to ``peer``'s member (made and added once)."""
        current = self._echoes.get((peer.id, kind))
        if current is not None and current[0] is peer and current[1].readyState == "live":
            return current[1]
        echo = ForwardTrack(kind)
        self._echoes[(peer.id, kind)] = (peer, echo)
        peer.add_track(echo)
        return echo

    def _on_peer_closed(self, peer: Remote) -> None:
        for kind in ("audio", "video"):
            current = self._echoes.get((peer.id, kind))
            if current is not None and current[0] is peer:
                current[1].stop()
                del self._echoes[(peer.id, kind)]

    def _on_chat(self, message: ChatDelivered) -> None:
        if message.sender == self.client.id or message.text.startswith(PREFIX):
            return
        reply = (PREFIX + message.text)[:MAX_REPLY_CHARS]
        self.spawn(self.client.chat(reply), f"answering {message.name}'s chat")
