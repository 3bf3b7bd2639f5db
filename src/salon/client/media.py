"""What a client sends: the media state it announces (docs/PROTOCOL.md §4.2), the tracks it
sends to every peer, and the kinds a host muted (§3.7)."""

from __future__ import annotations

from typing import Final

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpTransceiver

from salon.client.relay import Relay, RelayedTrack
from salon.protocol.messages import MediaState, MuteKind, SetMedia

MUTED_KINDS: Final[dict[str, str]] = {"mic": "audio", "camera": "video"}


class LocalMedia:
    """The announced state (``state``), the client-wide tracks, the muted kinds.

    One track feeds every peer through a :class:`~salon.client.relay.Relay`: each
    connection gets a handle of its own (:meth:`handles`), stopped with that connection."""

    def __init__(self, *, recording: bool) -> None:
        self.state = MediaState()
        self.recording = recording  # v2: say media.recording = true (§3.9)
        self._tracks: list[MediaStreamTrack] = []
        self._relay = Relay()
        self._paused: set[str] = set()

    def announced(self) -> MediaState:
        """The state to send; ``recording`` is left out of the JSON while false (a
        version-1 server refuses the field, §1.2)."""
        return self.state.model_copy(update={"recording": self.recording})

    def message(self, ref: int | None) -> SetMedia:
        """A ``media`` message announcing the state."""
        media = self.announced()
        return SetMedia(
            type="media",
            mic=media.mic,
            camera=media.camera,
            screen=media.screen,
            recording=media.recording,
            ref=ref,
        )

    def update(self, *, mic: bool | None, camera: bool | None, screen: bool | None) -> None:
        """Change the state (``None`` keeps a value); a muted kind turned on is sent again."""
        update = {"mic": mic, "camera": camera, "screen": screen}
        self.state = self.state.model_copy(
            update={k: v for k, v in update.items() if v is not None}
        )
        for field, kind in MUTED_KINDS.items():
            if update[field]:
                self._paused.discard(kind)

    def mute(self, kind: MuteKind) -> None:
        """A host muted ``kind``: it is off and its tracks are not sent (§3.7)."""
        self._paused.add(MUTED_KINDS[kind])
        self.state = self.state.model_copy(update={kind: False})

    def paused(self) -> frozenset[str]:
        """The track kinds (``audio``/``video``) not sent now."""
        return frozenset(self._paused)

    def add(self, track: MediaStreamTrack) -> None:
        """Send ``track`` to every peer."""
        self._tracks.append(track)

    def handle(self, track: MediaStreamTrack) -> RelayedTrack:
        """A handle on ``track`` for one connection: every audio frame (a bounded queue,
        see :mod:`salon.client.relay` for why), the newest video frame (a slow connection
        skips pictures rather than falling behind)."""
        return self._relay.subscribe(track)

    def handles(self) -> list[MediaStreamTrack]:
        """One handle per track, for a new connection."""
        return [self.handle(t) for t in self._tracks]

    async def close(self) -> None:
        """Stop reading the tracks (the client closed)."""
        await self._relay.close()


def pause_senders(
    pc: RTCPeerConnection,
    paused: frozenset[str],
    memo: dict[RTCRtpTransceiver, MediaStreamTrack],
) -> None:
    """Send nothing of the kinds in ``paused`` on ``pc`` (each sender's track is kept in
    ``memo``), and send again the kinds no longer paused; what a relayed track captured
    meanwhile is skipped, never sent late (§3.7)."""
    for transceiver in pc.getTransceivers():
        sender = transceiver.sender
        if transceiver.kind in paused and sender.track is not None:
            memo[transceiver] = sender.track
            sender.replaceTrack(None)
        elif transceiver.kind not in paused and transceiver in memo:
            track = memo.pop(transceiver)
            if isinstance(track, RelayedTrack):
                track.skip_queued()
            sender.replaceTrack(track)
