"""The signaling connection: handshake, reading, writing, keepalive, resume.

docs/PROTOCOL.md §2.1 (handshake), §2.3 (keepalive), §2.7 (closing), §2.8 (resuming a place),
§2.9 (draining). One reader task reads every frame and hands each decoded message to the
client; one writer task sends queued frames in order. When the socket is lost the reader
reconnects with ``hello.resume`` as the browser client does, while what the client sends
waits in a bounded queue and goes out after the resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Final, Protocol, cast

from pydantic import BaseModel, ValidationError

from salon.client.errors import ConnectionLost, ServerError
from salon.client.transport import ConnectFailed, Connector, Transport, TransportClosed
from salon.protocol import ErrorCode, decode_server
from salon.protocol.messages import (
    CallEnded,
    CallEndReason,
    Error,
    Hello,
    Ping,
    Pong,
    ResumeTokenIssued,
    ServerDraining,
    ServerMessage,
    ServerPing,
    Welcome,
)

logger = logging.getLogger("salon.client")

# §6.2: never resume after 4005/4006; not automatically after 4000, 4001, 4003.
FINAL_CLOSES: Final = frozenset({4000, 4001, 4003, 4005, 4006})
RETRY_DELAYS: Final = (0.0, 0.3, 1.2, 2.7, 4.8)  # §2.8, "What a client does"
RETRY_EVERY: Final = 7.0
REFUSED_HELLOS: Final = frozenset(
    {
        ErrorCode.UNSUPPORTED_VERSION,
        ErrorCode.INVALID_NAME,
        ErrorCode.SIGN_IN_REQUIRED,
        ErrorCode.BAD_MESSAGE,
    }
)
"""Errors of a resume's ``hello`` that another try cannot change: the client gives up. Any
other (``bus_unavailable``, ``server_full``, ``rate_limited``, ``store_unavailable``,
``name_taken`` while the old place times out, a code newer than this client) may pass: it
tries again on the schedule, as the browser client does (web/src/signaling/client.ts)."""
RETRYING: Final = 4000
"""The close code of an attempt given up to try again: not 1000/1001, so the server keeps
the place (a late ``welcome`` may have attached it)."""
JITTER: Final = 0.3  # of a delay, either way
HELLO_SECONDS: Final = 10.0  # the server's own handshake deadline (§2.1)
AWAY_QUEUE: Final = 512  # frames kept while away; the oldest go first past it
KEEPALIVE_TICK: Final = 1.0


class ConnectionEvents(Protocol):
    """What the client hears from its connection."""

    def on_message(self, message: ServerMessage) -> None:
        """A server message, in order (``ping`` already answered)."""

    def on_greeted(self, welcome: Welcome) -> None:
        """A ``welcome`` after a reconnection: ``welcome.resumed`` says whether the place
        was taken back (``None``: the token was refused and this is a new member)."""

    def on_lost(self, error: ConnectionLost) -> None:
        """The connection ended for good (not after :meth:`Connection.close`)."""


def encode(message: BaseModel) -> str:
    """A client message as its JSON text; optional fields that are null are left out (§1.3:
    the same as absent), and so is a version-2 ``recording`` while false (a version-1 server
    refuses the field, §1.2). A required field that is null stays (``sfu_candidate``'s
    ``candidate: null``, the end of a connection's candidates, §3.10)."""
    data = message.model_dump(mode="json", by_alias=True, exclude_none=True)
    for name, field in type(message).model_fields.items():
        if field.is_required() and getattr(message, name) is None:
            data[field.alias or name] = None
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    text.encode("utf-8")  # UnicodeEncodeError here, for a lone surrogate, not in the socket
    return text


def _decode(frame: str) -> ServerMessage | None:
    """A server message, or ``None`` for a type this code does not know (§1.2: ignored). An
    ``error`` with a code newer than this code is kept, with its code as a string, and so is
    a ``call_ended`` with a newer reason."""
    try:
        return decode_server(frame)
    except ValidationError:
        pass
    try:
        data = json.loads(frame)
    except ValueError:
        logger.warning("a frame from the server is not JSON: %.80r", frame)
        return None
    if isinstance(data, dict) and data.get("type") == "error":
        ref = data.get("ref")
        return Error.model_construct(
            code=cast(ErrorCode, str(data.get("code"))),
            message=str(data.get("message", "")),
            ref=ref if isinstance(ref, str | int) else None,
        )
    if isinstance(data, dict) and data.get("type") == "call_ended" and "call" in data:
        # §1.2: an unknown reason (a newer server's) still means the call is over.
        return CallEnded.model_construct(
            call=str(data["call"]), reason=cast(CallEndReason, str(data.get("reason")))
        )
    logger.debug("ignored a server message this client does not know: %.80r", frame)
    return None


def _delays(first: float) -> Iterator[float]:
    yield first
    for delay in RETRY_DELAYS[1:]:
        yield delay * random.uniform(1 - JITTER, 1 + JITTER)
    while True:
        yield RETRY_EVERY * random.uniform(1 - JITTER, 1 + JITTER)


class Pace:
    """Keeps what this side sends under the server's rate (``welcome.limits``, §2.4), with a
    margin for the network bunching frames: 90% of ``rate_per_second``, in bursts of half of
    ``rate_burst``. Frames queued while away go out at that pace after a resume instead of
    all at once, which past ``rate_burst`` meant close 4003 (final)."""

    def __init__(self) -> None:
        self.rate = 0.0  # frames per second; 0: no limit known yet
        self.burst = 0.0
        self.tokens = 0.0
        self.at = 0.0

    def reset(self, rate_per_second: float, rate_burst: int, now: float) -> None:
        """A new connection, whose bucket at the server is full."""
        self.rate = rate_per_second * 0.9
        self.burst = max(1.0, rate_burst / 2)
        self.tokens, self.at = self.burst, now

    def delay(self, now: float) -> float:
        """Seconds to wait before the next frame (0: send it now, and count it)."""
        if self.rate <= 0:
            return 0.0
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class Connection:
    """One member's signaling connection, across reconnections."""

    def __init__(
        self,
        url: str,
        ssl_context: ssl.SSLContext | None,
        connector: Connector,
        hello: Callable[[str | None], Hello],
        events: ConnectionEvents,
    ) -> None:
        self._url = url
        self._ssl = ssl_context
        self._connector = connector
        self._hello = hello
        self._events = events
        self._transport: Transport | None = None
        self._open = asyncio.Event()
        self._outbox: deque[str] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # set while the outbox is empty
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._drain_delay: float | None = None
        self._retry_after = 0.0  # the last refused attempt's Retry-After (seconds)
        self._pace = Pace()
        self._last_heard = time.monotonic()
        self._pinged = False
        self.token: str | None = None
        self.welcome: Welcome | None = None
        self.reconnections = 0

    # ------------------------------------------------------------------ public

    @property
    def is_open(self) -> bool:
        """A socket is up and greeted (not away, not closed)."""
        return self._open.is_set()

    async def open(self) -> Welcome:
        """Connect and say hello; start reading, writing and the keepalive. Raises
        :class:`ServerError` (hello refused) or :class:`ConnectionLost`."""
        try:
            transport = await self._connector(self._url, self._ssl)
        except ConnectFailed as exc:
            raise ConnectionLost(str(exc)) from None
        try:
            welcome = await self._greet(transport, None)
        except TransportClosed as closed:
            raise ConnectionLost("the server closed the connection", closed.code) from None
        except (ServerError, TimeoutError):
            await transport.close(1000)
            raise
        self._install(transport, welcome)
        for job in (self._read(), self._write(), self._keepalive()):
            self._tasks.append(asyncio.create_task(job))
        return welcome

    def send(self, text: str) -> None:
        """Queue one frame; sent in order, after a resume when the socket is lost."""
        if self._closing:
            return
        if len(self._outbox) >= AWAY_QUEUE:
            self._outbox.popleft()
            logger.warning("the send queue is full while away: the oldest frame is dropped")
        self._outbox.append(text)
        self._drained.clear()
        self._wake.set()

    async def close(self) -> None:
        """Send what is queued (for up to 2 s), then close with 1000: a goodbye (§2.7)."""
        if self._closing:
            return
        if self._outbox and self._open.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._drained.wait()
        self._closing = True
        self._open.clear()
        self._wake.set()
        transport = self._transport
        if transport is not None:
            with contextlib.suppress(Exception):
                await transport.close(1000)
        await self._stop_tasks()

    def abort(self) -> None:
        """Drop the socket without a close frame, as a network failure would (tests)."""
        if self._transport is not None:
            self._transport.abort()

    # ------------------------------------------------------------------ handshake

    async def _greet(self, transport: Transport, resume: str | None) -> Welcome:
        await transport.send(encode(self._hello(resume)))
        async with asyncio.timeout(HELLO_SECONDS):
            while True:
                message = _decode(await transport.recv())
                if isinstance(message, Welcome):
                    return message
                if isinstance(message, Error):
                    raise ServerError(str(message.code), message.message, message.ref)

    def _install(self, transport: Transport, welcome: Welcome) -> None:
        self._transport = transport
        self.welcome = welcome
        self.token = welcome.resume_token
        self._drain_delay = None
        self._last_heard = time.monotonic()
        limits = welcome.limits
        self._pace.reset(limits.rate_per_second, limits.rate_burst, time.monotonic())
        self._pinged = False
        self._open.set()
        self._wake.set()

    # ------------------------------------------------------------------ tasks

    async def _stop_tasks(self) -> None:
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _read(self) -> None:
        try:
            await self._read_frames()
        except Exception as exc:  # a bug must not leave a client that silently hears nothing
            logger.exception("the Salon client's reader failed")
            self._lose(ConnectionLost(f"the client failed: {exc}"))

    async def _read_frames(self) -> None:
        while True:
            transport = self._transport
            assert transport is not None
            try:
                frame = await transport.recv()
            except TransportClosed as closed:
                if self._closing or not await self._recover(closed.code):
                    return
                continue
            self._last_heard = time.monotonic()
            self._pinged = False
            message = _decode(frame)
            if message is None:
                continue
            if isinstance(message, ServerPing):
                self.send(encode(Pong(type="pong")))  # §2.3: answer promptly
            elif isinstance(message, ResumeTokenIssued):
                self.token = message.token  # §2.8: keep only the newest
            elif isinstance(message, ServerDraining):
                self._drain_delay = message.retry_after_ms / 1000
            try:
                self._events.on_message(message)
            except Exception:
                logger.exception("the client failed to handle %s", type(message).__name__)

    async def _write(self) -> None:
        while True:
            await self._open.wait()
            if not self._outbox:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = self._pace.delay(time.monotonic())
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            transport = self._transport
            assert transport is not None
            try:
                await transport.send(self._outbox[0])
            except TransportClosed:
                # The reader sees the same end and reconnects; the frame goes out after.
                if self._transport is transport:
                    self._open.clear()
                continue
            if self._outbox:
                self._outbox.popleft()

    async def _keepalive(self) -> None:
        """§2.3: ping a silent server; a server silent past ``dead_after_seconds`` is gone
        (a socket bound to a lost address may never close by itself)."""
        while True:
            welcome = self.welcome
            ping_after = welcome.limits.ping_after_seconds if welcome is not None else 20.0
            await asyncio.sleep(min(KEEPALIVE_TICK, ping_after / 4))
            welcome, transport = self.welcome, self._transport
            if not self._open.is_set() or welcome is None or transport is None:
                continue
            silent = time.monotonic() - self._last_heard
            if silent > welcome.limits.dead_after_seconds:
                logger.info("nothing heard from the server for %.0f s: reconnecting", silent)
                self._open.clear()
                transport.abort()
            elif silent > welcome.limits.ping_after_seconds and not self._pinged:
                self._pinged = True
                self.send(encode(Ping(type="ping")))

    # ------------------------------------------------------------------ resume

    async def _recover(self, code: int | None) -> bool:
        """Reconnect after a loss (§2.8); False when the connection ended for good."""
        self._open.clear()
        welcome = self.welcome
        if code in FINAL_CLOSES or welcome is None:
            self._lose(ConnectionLost("the server closed the connection", code))
            return False
        logger.info("connection lost (%s): resuming", code)
        deadline = time.monotonic() + welcome.limits.resume_grace_seconds
        first = 0.0 if self._drain_delay is None else self._drain_delay * random.uniform(1, 1.5)
        for scheduled in _delays(first):
            # A refusal's Retry-After (429, 503, §1.1) comes first, with jitter.
            later = self._retry_after
            self._retry_after = 0.0
            delay = max(scheduled, later * random.uniform(1, 1 + JITTER))
            if time.monotonic() + delay > deadline:
                break
            await asyncio.sleep(delay)
            greeted = await self._try_resume()
            if greeted is True:
                return True
            if greeted is False:
                return False
        self._lose(ConnectionLost("could not resume within the grace window", code))
        return False

    async def _try_resume(self) -> bool | None:
        """One attempt: True resumed (or greeted anew), False given up, None try again.

        ``resume_failed`` (the place is gone): a plain ``hello`` on the same socket, and no
        token from then on. A hello refused with one of :data:`REFUSED_HELLOS`: given up
        (:class:`ConnectionLost`). Any other refusal (``bus_unavailable``: another server
        process could not be reached), a socket that closes or no answer within
        :data:`HELLO_SECONDS`: this socket is closed with :data:`RETRYING` and the next
        attempt follows on the schedule."""
        try:
            transport = await self._connector(self._url, self._ssl)
        except ConnectFailed as exc:
            logger.info("reconnecting: %s", exc)
            self._retry_after = exc.retry_after or 0.0
            return None
        try:
            try:
                welcome = await self._greet(transport, self.token)
            except ServerError as refused:
                if refused.code != ErrorCode.RESUME_FAILED or self.token is None:
                    raise
                logger.info("the place is gone (resume_failed): saying hello as a new member")
                self._outbox.clear()  # meant for the old member id
                self.token = None  # a later attempt says a plain hello too
                welcome = await self._greet(transport, None)
        except (TransportClosed, TimeoutError) as exc:
            logger.info("reconnecting: the new connection failed (%s)", exc)
            await transport.close(RETRYING)
            return None
        except ServerError as refused:
            if refused.code not in REFUSED_HELLOS:
                logger.info("reconnecting: the server said %s", refused.code)
                await transport.close(RETRYING)
                return None
            await transport.close(1000)
            self._lose(ConnectionLost(f"the server refused the connection: {refused}"))
            return False
        self.reconnections += 1
        self._install(transport, welcome)
        self._events.on_greeted(welcome)
        return True

    def _lose(self, error: ConnectionLost) -> None:
        self._closing = True
        self._outbox.clear()
        logger.warning("Salon connection lost for good: %s", error)
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        self._events.on_lost(error)
