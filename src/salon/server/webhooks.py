"""Webhooks: meeting events POSTed to the endpoints an operator registered, signed as the
Standard Webhooks specification (https://www.standardwebhooks.com/) says, retried with
backoff, and never in the way of signaling.

The path of an event (docs/OPERATIONS.md, "Webhooks"):

1. The hub reports it to :meth:`WebhookService.meeting` (an observer: synchronous, in the
   middle of the domain's decision). It is appended to a bounded in-memory queue
   (``webhooks.queue_events``; when full the oldest is dropped, counted and logged) and the
   writer is woken. Nothing is awaited.
2. The writer stores one delivery per endpoint whose events include the type, a batch in one
   transaction. While the database is unavailable the events stay queued and the writer
   retries with backoff.
3. The dispatcher sends due deliveries with one ``httpx.AsyncClient`` (made at the first
   attempt): at most ``concurrency`` at once, and per endpoint one at a time, oldest first —
   a delivery being retried holds back the endpoint's later ones, so each endpoint sees its
   events in order. A 2xx answer within ``timeout_seconds`` delivers; anything else is
   retried after ``min(2**(attempts-1), max_backoff_seconds)`` seconds ±10%, and the delivery
   is ``failed`` after ``max_attempts`` attempts. The dispatcher sleeps until the next
   delivery is due or a new one is stored; it never polls.

Deliveries live in the database: pending ones resume after a restart (an attempt cut short by
the stop is made again — receivers deduplicate by ``webhook-id``, the same on every attempt).
The backlog of an endpoint that is down is bounded: past ``webhooks.max_pending`` pending
deliveries its oldest are failed unsent, and so is any delivery pending for
``webhooks.max_pending_hours``. Delivered and failed ones are pruned after ``retention_days``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import logging
import random
import secrets
from collections import Counter, deque
from collections.abc import Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

import httpx

from salon.core.clock import Clock
from salon.core.errors import SalonError
from salon.core.observe import MeetingEvent, NullObserver
from salon.core.settings import WebhookSettings
from salon.store.webhooks import Delivery, DeliveryIds, Due, SqlWebhookRepository

log = logging.getLogger(__name__)

EventType = Literal[
    "meeting_started", "meeting_ended", "member_joined", "member_left", "recording_ready"
]
EVENT_TYPES: Final[tuple[EventType, ...]] = get_args(EventType)
"""Every event an endpoint can get, and what it gets unless it asks for fewer.
``recording_ready`` has no source yet: Salon does not record (issue #14)."""

MAX_URL_CHARS: Final = 2000
"""An endpoint's URL is at most this long."""

STORE_RETRY_SECONDS: Final = (0.5, 30.0)
"""The writer's and dispatcher's pause while the database is unavailable: from the first,
doubling, up to the second."""

PRUNE_EVERY_SECONDS: Final = 3600.0
"""How often delivered and failed deliveries past ``retention_days`` are deleted (and once at
start)."""

HOLD_SECONDS: Final = 5.0
"""How long an endpoint waits after an attempt whose outcome could not be stored (the
delivery is still pending, so it is sent again): a database that reads but cannot write does
not turn into a flood of repeats."""

CLAIM_MARGIN_SECONDS: Final = 30.0
"""An attempt holds its delivery for the attempt's timeout plus this (storing its outcome
included); past that, another process may try the delivery (its holder died meanwhile)."""

FLUSH_SECONDS: Final = 2.0
"""How long a stopping server gives the writer to store the events still queued."""

WRITE_BATCH: Final = 500
"""Events stored per transaction at most."""


def trim_every(max_pending: int) -> int:
    """Deliveries stored for an endpoint between two checks of ``webhooks.max_pending`` (past
    it, the endpoint's oldest pending are failed unsent, counted and logged): a check reads up
    to ``max_pending`` index entries, so it is made once per a tenth of that, and the backlog
    stays below ``max_pending + trim_every + WRITE_BATCH``. A delivery still pending
    ``webhooks.max_pending_hours`` after its event is failed unsent too (checked at start and
    hourly, with the pruning)."""
    return max(1, max_pending // 10)


class InvalidWebhook(ValueError):
    """An endpoint that cannot be registered as asked; the message says why."""


def check_url(url: str) -> str:
    """``url`` when it is an absolute ``http`` or ``https`` URL with a host, at most
    :data:`MAX_URL_CHARS` characters, that an attempt can be made to: httpx parses it (no
    control characters, a host that IDNA-encodes, and decodes back when it begins with
    ``xn--``, as building the request does) and its port, if given, is 1 to 65535.
    :class:`InvalidWebhook` otherwise."""
    if len(url) > MAX_URL_CHARS:
        raise InvalidWebhook(f"a webhook URL has at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        raise InvalidWebhook("not a URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise InvalidWebhook("a webhook URL is http:// or https:// with a host")
    if any(c.isspace() for c in url):
        raise InvalidWebhook("a webhook URL has no spaces")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise InvalidWebhook("a webhook URL's port is a number from 1 to 65535")
    try:
        parsed = httpx.URL(url)  # as each attempt parses it: IDNA-encodes a host
        parsed.host  # noqa: B018 - IDNA-decodes an xn-- host, as building the request does
    except (httpx.InvalidURL, UnicodeError):  # idna.IDNAError is a UnicodeError
        raise InvalidWebhook(
            "a webhook URL has a valid host name and no control characters"
        ) from None
    if not parsed.raw_host:
        raise InvalidWebhook("a webhook URL is http:// or https:// with a host")
    return url


def check_events(events: Iterable[str] | None) -> tuple[EventType, ...]:
    """The event types asked for, in :data:`EVENT_TYPES` order without repeats (all of them
    when ``events`` is None); :class:`InvalidWebhook` naming an unknown one, or when the list
    is empty."""
    if events is None:
        return EVENT_TYPES
    asked = set(events)
    unknown = sorted(asked - set(EVENT_TYPES))
    if unknown:
        raise InvalidWebhook(f"unknown event {unknown[0]!r}: one of {', '.join(EVENT_TYPES)}")
    if not asked:
        raise InvalidWebhook("ask for at least one event, or leave events out for all")
    return tuple(e for e in EVENT_TYPES if e in asked)


def new_secret() -> str:
    """A signing secret, ``whsec_`` and the base64 of 24 random bytes (192 bits)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def signature(secret: str, delivery_id: str, timestamp_s: int, body: bytes) -> str:
    """The ``webhook-signature`` header: ``v1,`` and the base64 HMAC-SHA256, keyed with the
    base64-decoded part of ``secret`` after ``whsec_``, of ``{id}.{timestamp}.{body}``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{delivery_id}.{timestamp_s}.".encode() + body
    return "v1," + base64.b64encode(hmac.digest(key, signed, hashlib.sha256)).decode()


def rfc3339(ms: int) -> str:
    """Unix milliseconds as RFC 3339 UTC, e.g. ``2025-01-31T12:00:00.250Z``."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_body(event: MeetingEvent) -> str:
    """The JSON body of an event: ``{"type", "timestamp", "data"}``. ``data`` has ``room``
    always; ``member``, ``name``, ``account`` (null for a guest) for member events; ``host``
    for ``member_joined``; ``reason`` for ``member_left`` and ``meeting_ended``."""
    data: dict[str, Any] = {"room": event.room}
    if event.type in ("member_joined", "member_left"):
        data.update(member=event.member, name=event.name, account=event.account)
    if event.type == "member_joined":
        data["host"] = event.host
    if event.type in ("member_left", "meeting_ended") and event.reason is not None:
        data["reason"] = event.reason
    body = {"type": event.type, "timestamp": rfc3339(event.at_ms), "data": data}
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


def backoff_seconds(attempts: int, max_backoff: float, rng: random.Random) -> float:
    """The wait after the ``attempts``-th failed attempt: ``min(2**(attempts-1), max_backoff)``
    seconds, ±10% so that endpoints failing together do not retry together."""
    base = max_backoff if attempts > 64 else min(2.0 ** (attempts - 1), max_backoff)
    return base * rng.uniform(0.9, 1.1)


def _failure(exc: BaseException, timeout: float) -> str:
    """A short reason for a failed attempt, without the URL (it may hold a token): never the
    exception's message, only its kind."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]  # a task group's (anyio's connect) one failure
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect"
    return f"request failed ({type(exc).__name__})"


class WebhookService(NullObserver):
    """One server's webhooks: an observer of meeting events (only :meth:`meeting` does
    anything), a writer task and a dispatcher task. :meth:`start` in the lifespan,
    :meth:`stop` before the database is closed. ``dropped``: events lost to a full queue;
    ``discarded``: pending deliveries failed unsent (``max_pending``, ``max_pending_hours``)."""

    def __init__(
        self,
        store: SqlWebhookRepository,
        settings: WebhookSettings,
        clock: Clock,
        user_agent: str = "Salon",
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.dropped = 0
        # Attempts by how they ended: delivered, retried (failed, tried again later), failed
        # (the last attempt failed). For /metrics, with dropped and discarded.
        self.attempts: Counter[str] = Counter()
        self._user_agent = user_agent
        self._queue: deque[tuple[int, MeetingEvent]] = deque(maxlen=settings.queue_events)
        self._seq = 0  # the number of the newest queued event
        self._unreported_drops = 0
        self._queued = asyncio.Event()  # the writer's wake-up
        self._wake = asyncio.Event()  # the dispatcher's
        self._closing = False
        self._ids = DeliveryIds()
        self._rng = random.Random()
        self._sending: dict[str, asyncio.Task[None]] = {}  # endpoint id -> its attempt
        self._unchecked: dict[str, int] = {}  # endpoint id -> stored since its backlog check
        self.discarded = 0  # pending deliveries failed unsent (too old, too many)
        self._finished = 0  # attempts finished so far
        self._finished_at: dict[str, int] = {}  # endpoint id -> _finished after its last one
        self._tasks: list[asyncio.Task[None]] = []
        self._writer: asyncio.Task[None] | None = None
        self._client: httpx.AsyncClient | None = None  # made by the first attempt (_http)
        self._client_made = asyncio.Lock()

    # ---------------------------------------------------------------- observer

    def meeting(self, event: MeetingEvent) -> None:
        """Queue the event for the writer; never waits (the oldest event is dropped when the
        queue is full)."""
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            self._unreported_drops += 1
        self._seq += 1
        self._queue.append((self._seq, event))
        self._queued.set()

    # --------------------------------------------------------------- lifecycle

    def start(self) -> None:
        # httpx logs every request's URL at INFO, query string and all, and an endpoint's URL
        # may carry a token of its receiver: Salon logs attempts itself, by delivery id.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        self._writer = self._spawn(self._write())
        self._spawn(self._dispatch())
        self._spawn(self._prune())

    async def _http(self) -> httpx.AsyncClient:
        """The HTTP client, made at the first attempt and in a worker thread: most servers
        never send a webhook, and making it (its TLS context loads the CA bundle) costs
        50-80 ms of CPU, which would otherwise be spent at every start or stall the event
        loop, and signaling with it, at the first attempt."""
        async with self._client_made:
            if self._client is None:
                self._client = await asyncio.to_thread(self._new_client)
        return self._client

    def _new_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            timeout=self.settings.timeout_seconds,
            follow_redirects=False,
            headers={"User-Agent": self._user_agent},
            limits=httpx.Limits(max_connections=self.settings.concurrency),
        )

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.append(task)
        return task

    async def stop(self) -> None:
        """Store what is queued (for :data:`FLUSH_SECONDS` at most), cancel every task (an
        attempt under way is made again after a restart) and close the HTTP client."""
        self._closing = True
        self._queued.set()
        if self._writer is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_SECONDS):
                    await asyncio.shield(self._writer)
        if self._queue:
            log.warning("webhooks: %d events not stored at shutdown", len(self._queue))
        tasks = [*self._tasks, *self._sending.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    # ------------------------------------------------------------------ writer

    async def _write(self) -> None:
        """Store queued events as deliveries, in batches, until stopped with nothing queued."""
        pause = STORE_RETRY_SECONDS[0]
        while not (self._closing and not self._queue):
            await self._queued.wait()
            self._queued.clear()
            while self._queue:
                if self._unreported_drops:
                    log.warning(
                        "webhooks: %d events dropped (queue of %d full)",
                        self._unreported_drops,
                        self._queue.maxlen,
                    )
                    self._unreported_drops = 0
                batch = [self._queue[i] for i in range(min(WRITE_BATCH, len(self._queue)))]
                try:
                    await self._store([event for _, event in batch])
                except Exception as exc:
                    self._log_store_trouble(exc, f"{len(self._queue)} events wait")
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, STORE_RETRY_SECONDS[1])
                    continue
                pause = STORE_RETRY_SECONDS[0]
                stored = batch[-1][0]
                while self._queue and self._queue[0][0] <= stored:  # drops may have moved it
                    self._queue.popleft()
                self._wake.set()
                await self._bound_backlogs()

    async def _store(self, events: list[MeetingEvent]) -> None:
        endpoints = await self.store.endpoints()
        deliveries: list[Delivery] = []
        for event in events:
            body = event_body(event)
            for hook in endpoints:
                if event.type not in hook.events:
                    continue
                delivery_id = self._ids.next(event.at_ms)
                deliveries.append(
                    Delivery(
                        id=delivery_id,
                        webhook_id=hook.id,
                        event_type=event.type,
                        payload=body,
                        created_ms=event.at_ms,
                        status="pending",
                        attempts=0,
                        next_attempt_ms=event.at_ms,
                    )
                )
        await self.store.enqueue(deliveries)
        for delivery in deliveries:
            endpoint = delivery.webhook_id
            every = trim_every(self.settings.max_pending)
            self._unchecked[endpoint] = self._unchecked.get(endpoint, every) + 1

    async def _bound_backlogs(self) -> None:
        """Fail unsent the oldest pending deliveries of each endpoint past ``max_pending``,
        checking an endpoint once per :func:`trim_every` deliveries stored for it (and on the
        first after a start): a receiver down for long does not grow the database, nor the
        work of the dispatcher, without bound."""
        cap = self.settings.max_pending
        for endpoint, count in list(self._unchecked.items()):
            if count < trim_every(cap):
                continue
            try:
                failed = await self.store.trim(endpoint, cap, f"not sent: over {cap} pending")
            except Exception as exc:
                self._log_store_trouble(exc, "backlog checked later")
                return
            self._unchecked[endpoint] = 0
            if failed:
                self.discarded += failed
                log.warning(
                    "webhooks: endpoint %s has over %d pending deliveries: "
                    "its %d oldest failed unsent",
                    endpoint,
                    cap,
                    failed,
                )
                self._wake.set()  # its head may have changed

    @staticmethod
    def _log_store_trouble(exc: Exception, what: str) -> None:
        if isinstance(exc, SalonError):
            log.warning("webhooks: %s (%s)", exc.message, what)
        else:
            log.exception("webhooks: unexpected trouble (%s)", what)

    # -------------------------------------------------------------- dispatcher

    async def _dispatch(self) -> None:
        """Start the attempts that are due, then sleep until the next is due or something
        changes (a delivery stored, an attempt finished)."""
        pause = STORE_RETRY_SECONDS[0]
        while True:
            self._wake.clear()
            finished = self._finished
            try:
                heads = await self.store.heads()
            except Exception as exc:
                self._log_store_trouble(exc, "deliveries wait")
                with contextlib.suppress(TimeoutError):  # the writer got through: try now
                    async with asyncio.timeout(pause):
                        await self._wake.wait()
                pause = min(pause * 2, STORE_RETRY_SECONDS[1])
                continue
            pause = STORE_RETRY_SECONDS[0]
            now = self.clock.wall_ms()
            soonest: int | None = None
            for due in heads:
                endpoint, at = due.delivery.webhook_id, due.delivery.next_attempt_ms
                if endpoint in self._sending or self._finished_at.get(endpoint, 0) > finished:
                    continue  # one at a time per endpoint / read before its attempt ended
                if at > now:
                    soonest = at if soonest is None else min(soonest, at)
                elif len(self._sending) < self.settings.concurrency:
                    self._sending[endpoint] = asyncio.create_task(self._attempt(due))
            wait = None if soonest is None else (soonest - now) / 1000
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    async def _attempt(self, due: Due) -> None:
        delivery = due.delivery
        hold = self.settings.timeout_seconds + CLAIM_MARGIN_SECONDS
        until = self.clock.wall_ms() + int(hold * 1000)
        try:
            if await self.store.claim(delivery.id, delivery.next_attempt_ms, until):
                await self._send(due)  # else another process took this attempt
        except asyncio.CancelledError:  # stopping: the attempt is made again, soon
            await self._release(delivery, until)
            raise
        except Exception as exc:  # storing the outcome failed: hold the endpoint a while
            self._log_store_trouble(exc, f"delivery {delivery.id} will be sent again")
            await self._release(delivery, until)
            await asyncio.sleep(HOLD_SECONDS)
        finally:
            del self._sending[delivery.webhook_id]
            self._finished += 1
            self._finished_at[delivery.webhook_id] = self._finished
            self._wake.set()

    async def _release(self, delivery: Delivery, until: int) -> None:
        """Give back a claim whose attempt was cut short (its outcome not stored), so that
        the delivery is due again at once, not when the claim would have ended; a second at
        most, best effort (the claim ends by itself anyway)."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1.0):
                await self.store.release(delivery.id, until, delivery.next_attempt_ms)

    async def _send(self, due: Due) -> None:
        """Make one attempt and store its outcome. Whatever the request raises is a failed
        attempt (counted, backed off, ``failed`` after ``max_attempts``); only the store's
        trouble escapes, to :meth:`_attempt`."""
        delivery, timeout = due.delivery, self.settings.timeout_seconds
        status: int | None = None
        error: str | None = None
        unexpected = False
        try:
            client = await self._http()  # a client that cannot be made fails the attempt
            body = delivery.payload.encode()
            stamp = self.clock.wall_ms() // 1000
            headers = {
                "Content-Type": "application/json",
                "webhook-id": delivery.id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": signature(due.secret, delivery.id, stamp, body),
            }
            async with (
                asyncio.timeout(timeout),  # the whole exchange, not each read
                client.stream("POST", due.url, content=body, headers=headers) as answer,
            ):
                status = answer.status_code  # the answer's body is never read
        except (TimeoutError, httpx.HTTPError) as exc:
            error = _failure(exc, timeout)
        except Exception as exc:  # a URL httpx refuses only when sending, say
            error = _failure(exc, timeout)
            unexpected = True
        now = self.clock.wall_ms()
        if status is not None and 200 <= status < 300:
            self.attempts["delivered"] += 1
            await self.store.delivered(delivery.id, now, status)
            return
        attempts = delivery.attempts + 1
        error = error or f"answered HTTP {status}"
        if attempts >= self.settings.max_attempts:
            log.warning(
                "webhooks: delivery %s to %s failed after %d attempts: %s",
                delivery.id,
                delivery.webhook_id,
                attempts,
                error,
            )
            self.attempts["failed"] += 1
            await self.store.attempt_failed(delivery.id, now, status, error, None)
            return
        self.attempts["retried"] += 1
        wait = backoff_seconds(attempts, self.settings.max_backoff_seconds, self._rng)
        # Never the exception's message nor a traceback: they may repeat the URL.
        log.log(
            logging.WARNING if unexpected else logging.INFO,
            "webhooks: delivery %s to %s attempt %d: %s",
            delivery.id,
            delivery.webhook_id,
            attempts,
            error,
        )
        await self.store.attempt_failed(delivery.id, now, status, error, now + int(wait * 1000))

    # ------------------------------------------------------------------ pruner

    async def _prune(self) -> None:
        """At start and every :data:`PRUNE_EVERY_SECONDS`: fail unsent the deliveries pending
        for over ``max_pending_hours``, then delete the finished ones past
        ``retention_days``."""
        keep_ms = int(self.settings.retention_days * 86_400_000)
        while True:
            try:
                await self._expire()
                gone = await self.store.prune(self.clock.wall_ms() - keep_ms)
                if gone:
                    log.info("webhooks: pruned %d old deliveries", gone)
            except Exception as exc:
                self._log_store_trouble(exc, "pruning later")
            await asyncio.sleep(PRUNE_EVERY_SECONDS)

    async def _expire(self) -> None:
        hours = self.settings.max_pending_hours
        before_ms = self.clock.wall_ms() - int(hours * 3_600_000)
        failed = await self.store.expire(before_ms, f"not sent: pending over {hours:g} h")
        if failed:
            self.discarded += failed
            log.warning("webhooks: %d deliveries pending over %g h failed unsent", failed, hours)
            self._wake.set()  # heads may have changed
