"""The play bot: a media file played to everyone in the room (or to whoever calls it).

The file plays like a broadcast: it starts when the bot is seated, and someone who joins
later sees it from where it is. Without ``loop``, the bot leaves when the file ends (in a
room), or hangs up and plays it from the start for the next call (answering calls).

The bot sends one audio and one video track as the client's own (``Client.add_track``: the
SDK hands them to every peer connection it makes, through its relay, before it
negotiates, so nobody needs a second negotiation). They are :class:`ForwardTrack`\\ s fed by
the playing :class:`FileSource`, so a new playing (the next call) keeps the same tracks.
It receives nothing: the tracks people send it are stopped as they arrive
(:attr:`Bot.reads_tracks` is false).
"""

from __future__ import annotations

import logging
from pathlib import Path

from salon.bots.base import Bot, BotError, StopBot
from salon.bots.forward import ForwardTrack
from salon.bots.source import FileError, FileSource
from salon.client import Client
from salon.protocol.messages import Joined

log = logging.getLogger("salon.bots")


class PlayBot(Bot):
    """Plays ``path`` (anything PyAV opens) to every peer; ``loop`` repeats it forever.
    :class:`BotError` at construction when the file cannot be played."""

    default_name = "Player"
    sfu = True  # the same to everyone, or everyone into files: fine through the SFU

    def __init__(self, path: Path, *, loop: bool = False) -> None:
        super().__init__()
        self.path = path
        self.loop = loop
        try:
            self._source = FileSource(path, loop=loop)
        except FileError as exc:
            raise BotError(str(exc)) from None
        self._kinds = [
            kind
            for kind, present in (
                ("audio", self._source.has_audio),
                ("video", self._source.has_video),
            )
            if present
        ]
        self._out: dict[str, ForwardTrack] = {}

    def attach(self, client: Client) -> None:
        for kind in self._kinds:
            self._out[kind] = ForwardTrack(kind)
            client.add_track(self._out[kind])

    async def seated(self, joined: Joined) -> None:
        source = self._source
        for kind, track in self._out.items():
            track.switch(source.subscribe(kind))
        source.start()
        self.spawn(self._watch_end(source), "playing")
        await self.client.set_media(mic=source.has_audio, camera=source.has_video)
        log.info("playing %s", self.path)

    async def unseated(self) -> None:
        await self._source.stop()
        try:  # the next call plays the file from the start
            self._source = FileSource(self.path, loop=self.loop)
        except FileError as exc:
            raise StopBot(f"cannot play {self.path} again: {exc}") from None

    async def close_media(self) -> None:
        await self._source.stop()
        for track in self._out.values():
            track.stop()

    async def _watch_end(self, source: FileSource) -> None:
        await source.ended.wait()
        if source is not self._source or self.client.room is None:
            return
        if not self.answering:
            self.stop(f"{self.path.name} ended")
        else:
            log.info("%s ended: hanging up", self.path.name)
            await self.client.hang_up()
