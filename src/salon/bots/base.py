"""What every bot shares: where it goes (a room or calls by name), its life, how it stops.

A bot is a :class:`Bot` subclass that registers its handlers on the SDK's
:class:`~salon.client.Client` (:meth:`Bot.attach`) and reacts when it is seated
(:meth:`Bot.seated`) and when a call ends (:meth:`Bot.unseated`); :func:`run_bot` connects,
joins the room or answers every call, waits until something stops the bot (a signal, the
bot itself, the room sending it away, the connection lost for good) and then closes
everything in order, each step with a deadline so that a stop takes seconds even on a busy
machine: the bot's media (the recorder's files) first, the connection, then the rest.

Every remote track must be read: aiortc decodes each received track in a thread into a
queue without bound, whether or not anyone reads it (a screen share nobody records would
grow the process by megabytes a second). A bot that reads no media (:attr:`Bot.reads_tracks`
false, the default) has every remote track stopped as it arrives; one that does reads the
tracks it uses until they end and hands the others to :meth:`Bot.ignore`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl as _ssl
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

from aiortc import MediaStreamTrack
from aiortc.exceptions import InvalidStateError
from aiortc.mediastreams import MediaStreamError

from salon.client import Client, ClientError, ConnectionLost, Remote, ServerError, parse_link
from salon.protocol.messages import IncomingCall, Joined, Left

log = logging.getLogger("salon.bots")

MEDIA_CLOSE_SECONDS = 5.0  # the longest the bot's media (the recorder's files) take to close
CLOSE_SECONDS = 3.0  # the longest the connection and the start under way take to close


class BotError(Exception):
    """Something the person running the bot must fix (a bad link, a refused join, a file
    that cannot be read): the command prints the message as one line and exits with 2."""


class StopBot(Exception):
    """Raised inside a bot to end it cleanly (exit 0), with the reason as the message."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a bot goes: ``room`` on ``server`` (with ``invite`` and ``password`` when given),
    or, with ``answer``, no room: it goes online as that reachable name and accepts every
    direct call (docs/PROTOCOL.md §4.4, §4.5)."""

    server: str
    room: str | None = None
    invite: str | None = None
    password: str | None = None
    answer: str | None = None

    @classmethod
    def parse(
        cls,
        link: str | None,
        *,
        server: str | None = None,
        answer: str | None = None,
        password: str | None = None,
    ) -> Target:
        """From a meeting link ``https://host:port/r/ROOM[#invite=T]``, or from ``server``
        (or a link without a room) and ``answer``. :class:`BotError` when they do not fit."""
        if link is None and server is None:
            raise BotError("give a meeting link (https://host:port/r/ROOM) or --server URL")
        if link is not None and server is not None:
            raise BotError("give either a meeting link or --server, not both")
        try:
            parsed = parse_link(link if link is not None else str(server))
        except ValueError as exc:
            raise BotError(str(exc)) from None
        if answer is not None:
            if parsed.room is not None:
                raise BotError("--answer answers calls: give the server's address, not a room")
            return cls(server=parsed.server, answer=answer)
        if parsed.room is None:
            raise BotError("the link names no room (https://host:port/r/ROOM); or add --answer")
        return cls(parsed.server, parsed.room, parsed.invite, password)


def first_of_kind(peer: Remote, track: MediaStreamTrack) -> bool:
    """Whether ``track`` is the first track of its kind on ``peer``'s current connection
    (the camera rather than a screen share sent beside it; the microphone). ``False`` for a
    track of a connection the SDK has replaced since."""
    if getattr(track, "screen", False):
        return False  # on the SFU the offer says which is a screen share (SfuTrack.screen)
    first = next(
        (t for t in peer.remote_tracks if t.kind == track.kind and not getattr(t, "screen", False)),
        None,
    )
    return first is track


async def discard_track(peer: Remote, track: MediaStreamTrack) -> None:
    """Receive nothing more on ``track``: its receiver on ``peer.pc`` is stopped (no more
    decoding; its RTP is dropped on arrival), and what was already decoded is read and
    dropped until it ends. A track of a replaced connection is only read to its end."""
    receiver = next((r for r in peer.pc.getReceivers() if r.track is track), None)
    if receiver is not None:
        await receiver.stop()
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


class Bot:
    """Base of the bots. Subclasses set :attr:`default_name` (and :attr:`recording` for a
    recorder, :attr:`reads_tracks` for a bot that receives media) and override the hooks;
    :attr:`client` is set before :meth:`attach`."""

    default_name = "Bot"
    recording = False  # say media.recording = true (protocol v2, docs/PROTOCOL.md §3.9)
    reads_tracks = False  # False: every remote track is stopped as it arrives (ignore())
    sfu = False  # may be in rooms on the SFU (protocol v3): sends the same to everyone

    def __init__(self) -> None:
        self.client: Client
        self.answering = False  # True when the bot answers calls rather than sitting in a room
        self._stopped: asyncio.Future[str] | None = None
        self._stop_early: str | None = None  # stop() before run_bot started it
        self._tasks: set[asyncio.Task[Any]] = set()

    def attach(self, client: Client) -> None:
        """Register handlers on ``client`` (before it connects)."""

    async def seated(self, joined: Joined) -> None:
        """The bot is in a room, or in a call it accepted (``joined`` snapshot)."""

    async def unseated(self) -> None:
        """The call the bot was in ended (answering only); it waits for the next one."""

    async def close_media(self) -> None:
        """Stop sending and receiving (before the connection closes)."""

    async def finish(self) -> None:
        """Final work after the connection closed (for example closing files)."""

    def stop(self, reason: str) -> None:
        """End the bot cleanly (exit 0); ``reason`` is logged. The first reason wins; before
        :func:`run_bot` runs the bot, it stops as soon as it starts."""
        if self._stopped is None:
            self._stop_early = self._stop_early or reason
        elif not self._stopped.done():
            self._stopped.set_result(reason)

    def ignore(self, peer: Remote, track: MediaStreamTrack) -> None:
        """Receive nothing on ``track`` from ``peer`` (:func:`discard_track`), for a remote
        track the bot does not use."""
        log.debug("ignoring a %s track of %r", track.kind, peer.member.name)
        self.spawn(discard_track(peer, track), f"ignoring a track of {peer.member.name}")

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        """Run ``coro`` as a task of the bot: kept until it ends, its failure logged (a
        :class:`StopBot` stops the bot). For work a handler should not await: the SDK runs
        handlers one at a time, so the next messages' handlers would wait for it."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._task_done(t, what))

    def _task_done(self, task: asyncio.Task[Any], what: str) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, StopBot):
            self.stop(str(exc))
        elif isinstance(exc, ServerError):
            log.warning("%s: the server refused: %s", what, exc)
        elif isinstance(exc, ClientError):  # a call that ended first, the connection lost
            log.warning("%s: %s", what, exc)
        elif exc is not None:
            log.error("%s failed", what, exc_info=exc)

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def run_bot(
    bot: Bot, target: Target, *, name: str | None = None, ssl: _ssl.SSLContext | None = None
) -> str:
    """Run ``bot`` at ``target`` until it stops; returns why it stopped.

    Raises :class:`BotError` when it cannot start (the server unreachable or refusing the
    ``hello`` or the ``join``) and :class:`~salon.client.ConnectionLost` when the connection
    is lost for good later. SIGINT and SIGTERM stop it cleanly."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_quiet_closed_transports)
    stopped: asyncio.Future[str] = loop.create_future()
    bot._stopped = stopped
    if bot._stop_early is not None:
        stopped.set_result(bot._stop_early)
    client = Client(
        target.server,
        target.answer or name or bot.default_name,
        reachable=target.answer is not None,
        ssl=ssl,
        recording=bot.recording,
        sfu=bot.sfu,
        receive=bot.reads_tracks,  # on the SFU a bot that reads nothing is sent nothing
    )
    bot.client = client
    bot.answering = target.answer is not None
    bot.attach(client)
    if not bot.reads_tracks:
        client.on_track(bot.ignore)
    _watch_room(bot, client)
    with _signals_stop(bot):
        try:
            start = asyncio.ensure_future(_start(bot, client, target))
            either: set[asyncio.Future[Any]] = {start, stopped}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if not start.done():  # stopped while connecting or joining
                start.cancel()
                await asyncio.wait({start}, timeout=CLOSE_SECONDS)
                return stopped.result()
            start.result()
            return await _until_stopped(stopped, client)
        finally:
            await _shut_down(bot, client)


def _quiet_closed_transports(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """aiortc leaves a task failing with ``InvalidStateError`` when a peer connection is
    closed while it connects (as the SDK does to a connection it replaces): expected, so
    logged for ``--verbose`` only; anything else as asyncio always does."""
    if isinstance(context.get("exception"), InvalidStateError):
        log.debug("a closed connection's task: %s", context.get("message"))
        return
    loop.default_exception_handler(context)


async def _start(bot: Bot, client: Client, target: Target) -> None:
    try:
        await client.connect()
    except ServerError as exc:
        raise BotError(f"the server refused the connection: {exc}") from None
    except (ConnectionLost, OSError) as exc:
        raise BotError(f"cannot connect to {target.server}: {exc}") from None
    except ClientError as exc:
        raise BotError(str(exc)) from None
    if target.room is None:
        log.info("online as %r on %s: answering every call", client.name, target.server)
        return
    try:
        joined = await client.join(target.room, password=target.password, invite=target.invite)
    except ServerError as exc:
        raise BotError(f"cannot join room {target.room}: {exc.code} ({exc.message})") from None
    except TimeoutError:
        raise BotError(f"cannot join room {target.room}: no answer from the server") from None
    others = len(joined.members)
    log.info("joined room %s as %r with %d other member(s)", joined.room, client.name, others)
    await bot.seated(joined)


def _watch_room(bot: Bot, client: Client) -> None:
    """Answer every call when answering; stop when a room sends the bot away otherwise."""

    async def on_incoming(message: IncomingCall) -> None:
        if client.room is not None:
            return  # the server already tells callers "busy" while we are in a call
        bot.spawn(_accept(bot, client, message), f"answering {message.name}")

    async def on_left(message: Left) -> None:
        if bot.answering:
            log.info("the call ended (%s)", message.reason)
            bot.spawn(bot.unseated(), "ending the call")
        else:
            bot.stop(f"the room sent us away ({message.reason})")

    client.on(IncomingCall, on_incoming)
    client.on(Left, on_left)


async def _accept(bot: Bot, client: Client, message: IncomingCall) -> None:
    log.info("accepting a call from %r", message.name)
    joined = await client.accept(message.call)
    await bot.seated(joined)


async def _until_stopped(stopped: asyncio.Future[str], client: Client) -> str:
    closed = asyncio.ensure_future(client.wait_closed())
    try:
        either: set[asyncio.Future[Any]] = {stopped, closed}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closed.cancel()
    if stopped.done():
        return stopped.result()
    raise client.lost or ConnectionLost("the connection ended")


async def _shut_down(bot: Bot, client: Client) -> None:
    """Close in order, each step within its deadline (a step past it is left behind: the
    process exits anyway, and the files come first)."""
    await _within(bot._cancel_tasks(), CLOSE_SECONDS, "stopping the bot's tasks")
    try:
        await _within(bot.close_media(), MEDIA_CLOSE_SECONDS, "closing the media")
    finally:
        try:
            await _within(client.close(), CLOSE_SECONDS, "closing the connection")
        finally:
            await bot.finish()


async def _within(step: Coroutine[Any, Any, None], seconds: float, what: str) -> None:
    task = asyncio.ensure_future(step)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        log.warning("%s took more than %.0f s: going on without it", what, seconds)
        task.cancel()
        return
    task.result()


@contextlib.contextmanager
def _signals_stop(bot: Bot) -> Iterator[None]:
    """SIGINT and SIGTERM stop the bot cleanly while inside (where the loop supports it)."""
    loop = asyncio.get_running_loop()
    handled: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, bot.stop, f"signal {sig.name}")
            handled.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no support
            pass
    try:
        yield
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)
