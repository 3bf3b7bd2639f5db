"""The bus over Redis (issue #12): several Salon processes share one Redis.

Keys (prefix ``salon:``; every value a string; TTL = ``3 × heartbeat_seconds``, 3 s by default):

- ``proc:<proc>``: ``"1"``, or ``"draining"`` once :meth:`RedisBus.mark_draining`; TTL.
- ``room:<room id>``: the proc holding the room; TTL, re-set at each heartbeat.
- ``member:<member id>``: the proc holding the place; TTL, re-set at each heartbeat (and set by
  a name claim, so a name is never held by a member whose ``member:`` key is not there yet).
  A home letting the place go (a move) makes it ``"released:<proc>"`` if it is still its own
  (no live owner then, but the key is there: the name stays held); the home adopting or
  rebuilding the place claims it at once (:meth:`RedisBus.claim_place`).
- ``name:<name key>``: ``"<member id> <display name>"`` — the member id (which has no space)
  holding the reachable name, a space, then the name as shown in ``presence`` lists. The
  :class:`~salon.core.directory.Directory` protocol claims names by key and member id only,
  so the display name is learnt from the presence change the hub reports right after
  (``presence(online=True)``); until then (a few ms) the value is the member id alone, and
  :meth:`RedisDirectory.names` leaves such an entry out. A heartbeat that does not know a
  name's display name keeps the value already there (``SET NX`` + ``PEXPIRE``).
- ``ended:<member id>``: ``"1"`` for ``resume_token_seconds``.

A live owner is one whose ``proc:`` key is ``"1"``. Claims are Lua scripts (atomic): a room is
taken over when its owner's ``proc:`` key is missing or ``"draining"``; a name when its holder's
``member:`` key is missing. A room or place claim does nothing when the claimer's own ``proc:``
key is missing: one that Redis runs late (it hung; the caller gave up after 1 s) cannot make a
process the home of a room after its keys expired. The scripts read keys they are not given
(``proc:<owner>``), which is fine on one Redis (not on a Redis Cluster).

Channels: ``salon:to:<proc>`` (envelopes for one process) and ``salon:all`` (broadcasts).
Envelopes are compact JSON objects.

Failures: every operation (connect included) has 1 s and no retry; any failure is a
:class:`BusDown`. A failure of the heartbeat, the publisher or the subscriber is an *outage*:
``healthy`` becomes False, queued envelopes are dropped, ``on_outage()`` is called once, and
while it lasts sends fail and lookups raise BusDown at once (no 1 s wait per request). The first
heartbeat that succeeds after it re-asserts every owned key and resubscribes; the next one
that succeeds, a heartbeat later (every live process has then re-asserted its keys), sets
``healthy`` and calls ``on_restored()``. While degraded, the directory answers from what is
local: a name claim succeeds (names are then unique per process only), ``ended`` is False,
``names`` is None.

One outage of Redis (killed and started again, or hung then answering) is one ``on_outage()``
and one ``on_restored()``, never a flapping series: idle pooled connections are closed when an
outage begins and again before the heartbeat that re-asserts the keys, and the pool checks every
connection it hands out (a socket the old server closed is reconnected, not used: redis-py's
"maintenance notifications", on by default, turn that check off, so they are off here). So the
publisher, the heartbeat and the lookups all use connections opened after Redis came back, and
the subscriber a new pub/sub connection whose subscriptions Redis confirmed, before ``healthy``
is True again. A failure of a publish begun before the outage (an answer Redis never gave)
belongs to that outage and does not start another one.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final, Generic, NamedTuple, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline, PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.maint_notifications import MaintNotificationsConfig

from salon.core.directory import Directory
from salon.core.names import name_key
from salon.protocol.messages import PresenceChanged

log = logging.getLogger(__name__)

T = TypeVar("T")

Handler = Callable[[dict[str, Any]], Awaitable[None] | None]
"""Receives each envelope from the other processes (a JSON object), in arrival order; an
awaitable result is awaited before the next envelope is delivered."""

SEND_QUEUE: Final = 10_000  # envelopes waiting to be published; full -> send() is False
INBOX: Final = 1_000  # messages received, waiting for the handler (the subscriber then waits)
COMMAND_SECONDS: Final = 1.0  # the whole of one operation (connect included): else BusDown
SUBSCRIBE_SECONDS: Final = 1.0  # for Redis to confirm both subscriptions
BACKOFF_FIRST: Final = 0.1  # the subscriber's reconnect delay, doubling ...
BACKOFF_MAX: Final = 2.0  # ... up to this
PUBLISH_BATCH: Final = 256  # envelopes per pipeline
MESSAGE_BYTES: Final = 256 * 1024  # characters of envelopes joined into one Redis message
STOP_FLUSH_SECONDS: Final = 2.0  # what stop() waits for queued envelopes to go out
ENDED_PENDING: Final = 10_000  # ended places whose write failed, re-written when Redis answers
REFRESH_CHUNK: Final = 500  # keys per call of the refresh script

_ERRORS = (RedisError, OSError, TimeoutError)

_CLAIM = """
-- room: or member: key. ARGV: proc, ttl, proc key prefix, '1' to leave a missing key alone.
-- Returns the owner after the claim (maybe ARGV[1]); '' when the key is missing and left
-- alone; '-' when the claimer's own proc: key is missing: a claim Redis runs that late (it
-- hung past a TTL, the caller gave up long ago) must not make a dead process a home.
if redis.call('EXISTS', ARGV[3] .. ARGV[1]) == 0 then return '-' end
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] and redis.call('GET', ARGV[3] .. owner) == '1' then
  return owner
end
if not owner and ARGV[4] == '1' then return '' end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]
"""

_RELEASE_PLACE = """
-- member: key. ARGV: proc, ttl. Ours: now 'released:<proc>' (no live owner, but the key is
-- there, so the member's reachable name stays held while its new home claims the key).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'released:' .. ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""

_LIVE_OWNER = """
local owner = redis.call('GET', KEYS[1])
if owner and redis.call('GET', ARGV[1] .. owner) == '1' then return owner end
return false
"""

_CLAIM_NAME = """
local held = redis.call('GET', KEYS[1])
local value = ARGV[2]
if held then
  local holder = string.match(held, '^%S+')
  if holder ~= ARGV[1] and redis.call('EXISTS', ARGV[4] .. holder) == 1 then return 0 end
  if holder == ARGV[1] and value == ARGV[1] then value = held end
end
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[3])
return 1
"""

_NAME_HOLDER = """
local held = redis.call('GET', KEYS[1])
if not held then return false end
local holder = string.match(held, '^%S+')
if redis.call('EXISTS', ARGV[1] .. holder) == 1 then return holder end
return false
"""

_REFRESH = """
-- ARGV: proc, ttl, proc key prefix, member key prefix, then per key: kind, value.
-- kind 'o' (room:/member:, value = proc): set unless a live owner (proc key '1') holds it,
-- or this process released it (a move) after owned() was read.
-- kind 'n' (name:, value '<member id> <name>' or '<member id>'): set unless a member whose
-- member: key is there holds it; the member id alone keeps the value already there.
-- Returns the 1-based indexes of the keys held by another live owner (left as they are).
local lost = {}
for i, key in ipairs(KEYS) do
  local kind = ARGV[3 + 2 * i]
  local value = ARGV[4 + 2 * i]
  local held = redis.call('GET', key)
  if kind == 'o' then
    if held == value then
      redis.call('PEXPIRE', key, ARGV[2])
    elseif held == 'released:' .. value then
      -- let go here since owned() was read (a move): left for the new home to claim
    elseif held and redis.call('GET', ARGV[3] .. held) == '1' then
      lost[#lost + 1] = i
    else
      redis.call('SET', key, value, 'PX', ARGV[2])
    end
  else
    local member = string.match(value, '^%S+')
    local holder = held and string.match(held, '^%S+')
    if holder and holder ~= member and redis.call('EXISTS', ARGV[4] .. holder) == 1 then
      lost[#lost + 1] = i
    elseif holder == member and value == member then
      redis.call('PEXPIRE', key, ARGV[2])
    else
      redis.call('SET', key, value, 'PX', ARGV[2])
    end
  end
end
return lost
"""

_RELEASE_NAME = """
local held = redis.call('GET', KEYS[1])
if held and string.match(held, '^%S+') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class BusDown(Exception):
    """Redis could not be reached, or did not answer within its timeout (1 s), or the bus is
    degraded (``healthy`` is False): nothing was read or changed."""


class Owned(NamedTuple):
    """Every key this process holds, re-asserted at each heartbeat: the member ids of the
    places it holds, the room ids of the rooms it holds, and its reachable names as
    ``(name key, member id)``."""

    places: list[str]
    rooms: list[str]
    names: list[tuple[str, str]]


def _lines(batch: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Runs of envelopes for one channel joined into one message of at most MESSAGE_BYTES
    (a run's first envelope always goes, whatever its size), one envelope per line: a JSON
    text from ``json.dumps`` holds no raw newline. The order of the batch is kept."""
    out: list[tuple[str, str]] = []
    run: list[str] = []
    size = 0
    for channel, text in batch:
        if run and (channel != out[-1][0] or size + len(text) > MESSAGE_BYTES):
            out[-1] = (out[-1][0], "\n".join(run))
            run, size = [], 0
        if not run:
            out.append((channel, ""))
        run.append(text)
        size += len(text) + 1
    if run:
        out[-1] = (out[-1][0], "\n".join(run))
    return out


def _nothing_owned() -> Owned:
    return Owned([], [], [])


def _ignore(*_: object) -> None:
    return None


async def _cancel(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and wait until they are done (cancelled again should one swallow it)."""
    pending = set(tasks)
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.1)


class RedisBus:
    """The :class:`~salon.server.bus.Bus` over the Redis at ``url``; see the module docstring.
    ``heartbeat_seconds``: how often this process's keys are re-set (their TTL is three times
    it) and watched peers checked; a dead peer is noticed within about 5 heartbeats."""

    enabled: bool = True

    def __init__(self, url: str, heartbeat_seconds: float = 1.0, *, prefix: str = "salon:") -> None:
        self.proc = secrets.token_hex(6)
        self.healthy = False
        self.draining = False
        self.heartbeat_seconds = heartbeat_seconds
        self.ttl_ms = max(1, round(3 * heartbeat_seconds * 1000))
        self.prefix = prefix
        self._directory = RedisDirectory(self)
        self._processes = SharedRead(self, self._scan_processes)
        self.directory: Directory = self._directory
        self._client: Redis = Redis.from_url(
            url,
            decode_responses=True,
            # No socket_timeout: with one, redis-py sends through asyncio.wait_for, which on
            # Python 3.11 swallows a cancellation that meets a finished send (the task then
            # never stops). Every operation is bounded by _guard (asyncio.timeout) instead.
            socket_timeout=None,
            socket_connect_timeout=COMMAND_SECONDS,
            retry=Retry(NoBackoff(), 0),
            # With them ("auto" by default), the pool skips its check of the connections it
            # hands out, so sockets the old server closed are used after a restart of Redis.
            maint_notifications_config=MaintNotificationsConfig(enabled=False),
        )
        self._claim = self._client.register_script(_CLAIM)
        self._release_place = self._client.register_script(_RELEASE_PLACE)
        self._live_owner = self._client.register_script(_LIVE_OWNER)
        self._claim_name = self._client.register_script(_CLAIM_NAME)
        self._name_holder = self._client.register_script(_NAME_HOLDER)
        self._release_name = self._client.register_script(_RELEASE_NAME)
        self._refresh = self._client.register_script(_REFRESH)
        self._to_me = f"{prefix}to:{self.proc}"
        self._all = f"{prefix}all"
        self._outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue(SEND_QUEUE)
        self._inbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue(INBOX)
        self._subscribed = asyncio.Event()
        self._wake = asyncio.Event()
        self._handler: Handler = _ignore
        self._on_peer_lost: Callable[[str], None] = _ignore
        self._on_outage: Callable[[], None] = _ignore
        self._on_restored: Callable[[], None] = _ignore
        self._on_room_lost: Callable[[str], None] = _ignore
        self._owned: Callable[[], Owned] = _nothing_owned
        self._watched: set[str] = set()
        self._missing: dict[str, float] = {}  # watched proc -> since when (loop time) missing
        self._lost: set[str] = set()  # watched procs whose death was told
        self._tasks: list[asyncio.Task[None]] = []
        self._reader: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._stopped = False
        self._healthy_since = 0  # counts the healthy periods: +1 each time healthy turns True
        # Until then (loop time), a claim of a room with no room: key waits: just restored
        # after an outage, the other processes may not have re-asserted their keys yet.
        self._cautious_until = float("-inf")

    def key(self, kind: str, name: str) -> str:
        """The Redis key ``salon:<kind>:<name>``."""
        return f"{self.prefix}{kind}:{name}"

    # ------------------------------------------------------------------ life

    async def start(
        self,
        handler: Handler,
        on_peer_lost: Callable[[str], None],
        on_outage: Callable[[], None],
        on_restored: Callable[[], None],
        owned: Callable[[], Owned],
        *,
        on_room_lost: Callable[[str], None] = _ignore,
    ) -> None:
        """``on_room_lost(room)``: a heartbeat found the ``room:`` key of a room held here
        held by another live process (the room is now there: close it here)."""
        self._handler = handler
        self._on_room_lost = on_room_lost
        self._on_peer_lost = on_peer_lost
        self._on_outage = on_outage
        self._on_restored = on_restored
        self._owned = owned
        self._tasks = [
            asyncio.create_task(self._dispatch(), name="bus-dispatch"),
            asyncio.create_task(self._publish(), name="bus-publish"),
        ]
        try:
            await self._beat(check_peers=False)
            await self._resubscribe()
        except BusDown as e:
            log.warning("bus %s: Redis is unreachable at start (%s); degraded", self.proc, e)
            self._call(self._on_outage)
        else:
            self._restored()
            log.info("bus %s: started", self.proc)
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="bus-heartbeat"))

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self.healthy:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(STOP_FLUSH_SECONDS):
                    await self._outbox.join()
        await self._halt()
        with contextlib.suppress(BusDown):
            await self._guard(self._client.delete(self.key("proc", self.proc)))
        await self._close()
        log.info("bus %s: stopped", self.proc)

    async def abandon(self) -> None:
        """Stop as a killed process does: tasks ended, connections closed, keys left to expire
        (for tests)."""
        self._stopped = True
        await self._halt()
        await self._close()

    async def _halt(self) -> None:
        tasks = [*self._tasks, *self._background]
        if self._reader is not None:
            tasks.append(self._reader)
        await _cancel(tasks)
        self._tasks, self._reader = [], None
        self._background.clear()
        self.healthy = False

    async def _close(self) -> None:
        with contextlib.suppress(*_ERRORS):
            await self._client.aclose()

    async def mark_draining(self) -> None:
        self.draining = True
        try:
            await self._guard(
                self._client.set(self.key("proc", self.proc), "draining", px=self.ttl_ms)
            )
        except BusDown as e:
            log.warning(
                "bus %s: could not mark draining now (%s): the heartbeat will", self.proc, e
            )

    def refresh_soon(self) -> None:
        self._wake.set()

    # ------------------------------------------------------------------ outages

    async def _guard(self, awaitable: Awaitable[T]) -> T:
        """``await awaitable`` within COMMAND_SECONDS; any Redis trouble -> BusDown."""
        try:
            async with asyncio.timeout(COMMAND_SECONDS):
                return await awaitable
        except _ERRORS as e:
            raise BusDown(f"Redis: {type(e).__name__}: {e}") from e

    async def _execute(self, pipe: Pipeline) -> list[Any]:
        """Run ``pipe`` as :meth:`_guard` does. Whatever happens the pipeline lets go of its
        connection (else redis-py warns of an unclosed session when it is collected); after a
        failure or a cancellation that connection is closed, not pooled: a reply may still be
        unread on it."""
        try:
            result: list[Any] = await self._guard(pipe.execute())
            return result
        except BaseException:
            connection = pipe.connection
            if connection is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(connection.disconnect())
            raise
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(pipe.reset())  # type: ignore[no-untyped-call]

    async def _ask(self, awaitable: Awaitable[T]) -> T:
        """A lookup: BusDown at once while degraded, else :meth:`_guard`."""
        if not self.healthy:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            raise BusDown("the bus is degraded: Redis is unreachable")
        return await self._guard(awaitable)

    def _restored(self) -> None:
        """A healthy period begins (sends are accepted again)."""
        self._healthy_since += 1
        self._directory.forget_names()
        self.healthy = True

    def _trouble(self, where: str, error: BaseException, since: int | None = None) -> None:
        """An outage begins (unless one already is): degraded, queue dropped, idle pooled
        connections closed, told once. ``since``: the healthy period in which the failed
        operation began; a failure from an earlier one belongs to an outage already over."""
        if not self.healthy or self._stopped:
            return
        if since is not None and since != self._healthy_since:
            log.info(
                "bus %s: %s failed late, for an outage already over: %s", self.proc, where, error
            )
            return
        self.healthy = False
        self._subscribed.clear()
        self.spawn(self._forget_connections())
        dropped = 0
        while not self._outbox.empty():
            self._outbox.get_nowait()
            self._outbox.task_done()
            dropped += 1
        log.warning(
            "bus %s: Redis is unreachable (%s: %s); degraded, %d queued envelopes dropped",
            self.proc,
            where,
            error,
            dropped,
        )
        self._call(self._on_outage)

    async def _forget_connections(self) -> None:
        """Close every idle pooled connection (each reconnects when next used): none opened
        before an outage is used after it. Connections in use are left to their command (one
        that fails is closed by redis-py; one that succeeds is sound). Never raises."""
        try:
            async with asyncio.timeout(COMMAND_SECONDS):
                await self._client.connection_pool.disconnect(inuse_connections=False)
        except (*_ERRORS, BusDown) as e:
            log.info("bus %s: could not close idle Redis connections: %s", self.proc, e)

    def _call(self, callback: Callable[..., None], *args: str) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("bus %s: %s failed", self.proc, getattr(callback, "__name__", callback))

    # ------------------------------------------------------------------ heartbeat

    async def _heartbeat(self) -> None:
        """Every ``heartbeat_seconds`` (sooner after :meth:`refresh_soon`): :meth:`_beat`.
        While degraded, a beat that succeeds re-asserts this process's keys and resubscribes
        (on connections opened after the outage); the bus is healthy again (told once) at
        the next beat that succeeds, at least ``heartbeat_seconds`` later, when the other
        processes have had a heartbeat to re-assert their keys too: so the reconcile that
        ``on_restored`` starts (fresh presence lists, resumes that look homes up) sees the
        keys of every live process, not only this one's."""
        reasserted: float | None = None  # when a beat re-asserted the keys, while degraded
        loop = asyncio.get_running_loop()
        period = self.heartbeat_seconds
        next_beat = loop.time() + period
        early = -period  # when the last beat woken by refresh_soon was
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(next_beat):
                    await self._wake.wait()
            now = loop.time()
            if now < next_beat:  # refresh_soon: at most one extra beat per heartbeat period
                if now < early + period:
                    await asyncio.sleep(min(early + period, next_beat) - now)
                if loop.time() < next_beat:
                    early = loop.time()
            self._wake.clear()
            next_beat = loop.time() + period
            restoring = not self.healthy
            if reasserted is not None and not self._subscribed.is_set():
                log.info("bus %s: the new subscription failed; resubscribing", self.proc)
                reasserted = None
            try:
                if restoring and reasserted is None:
                    # What was pooled during the outage may be the old server's.
                    await self._forget_connections()
                await self._beat(check_peers=not restoring)
                if restoring and reasserted is None:
                    await self._resubscribe()
            except BusDown as e:
                reasserted = None
                self._trouble("heartbeat", e)
                continue
            if not restoring:
                continue
            if reasserted is None:
                reasserted = loop.time()
                log.info(
                    "bus %s: Redis answers again; keys re-asserted, resubscribed; healthy "
                    "after one more heartbeat",
                    self.proc,
                )
                continue
            if loop.time() - reasserted < self.heartbeat_seconds or not self._subscribed.is_set():
                continue  # woken early (refresh_soon), or the subscription failed just now
            reasserted = None
            self._restored()
            self._cautious_until = loop.time() + self.ttl_ms / 1000
            self._missing.clear()  # after a restart of Redis, peers re-assert within a beat
            log.warning("bus %s: Redis answers again; healthy, keys re-asserted", self.proc)
            self._call(self._on_restored)

    async def _beat(self, *, check_peers: bool) -> None:
        """One pipeline: this process's ``proc:`` key, every owned key, the watched peers'
        ``proc:`` keys. Raises BusDown."""
        try:
            owned = self._owned()
        except Exception:
            log.exception("bus %s: owned() failed; re-asserting only the proc key", self.proc)
            owned = _nothing_owned()
        shown = self._directory.shown
        self._directory.forget_except({key for key, _ in owned.names})
        watched = sorted(self._watched)
        ttl = self.ttl_ms
        # (key, kind, value): see _REFRESH. A draining process re-writes no room: or member:
        # key: they expire, and the rooms and places are taken over elsewhere.
        refresh: list[tuple[str, str, str]] = []
        if not self.draining:
            refresh += [(self.key("member", m), "o", self.proc) for m in owned.places]
            refresh += [(self.key("room", room), "o", self.proc) for room in owned.rooms]
        for key, member_id in owned.names:
            name = shown.get(key)
            value = member_id if name is None else f"{member_id} {name}"
            refresh.append((self.key("name", key), "n", value))
        chunks = [refresh[i : i + REFRESH_CHUNK] for i in range(0, len(refresh), REFRESH_CHUNK)]
        ended = self._directory.pending_ended()
        pipe = self._client.pipeline(transaction=False)
        pipe.set(self.key("proc", self.proc), "draining" if self.draining else "1", px=ttl)
        fixed: list[str | int] = [self.proc, ttl, self.key("proc", ""), self.key("member", "")]
        for chunk in chunks:
            args = fixed + [part for _, kind, value in chunk for part in (kind, value)]
            await self._refresh(keys=[key for key, _, _ in chunk], args=args, client=pipe)
        for key, ms in ended:
            pipe.set(key, "1", px=ms)
        for peer in watched:
            pipe.exists(self.key("proc", peer))
        results = await self._execute(pipe)
        self._directory.ended_written(ended)
        for chunk, lost in zip(chunks, results[1 : 1 + len(chunks)], strict=True):
            for index in lost:
                self._lost_key(chunk[int(index) - 1][0])
        if check_peers and watched:
            self._check_peers(watched, results[-len(watched) :])

    def _lost_key(self, key: str) -> None:
        """A key re-asserted here is held by another live owner: left to it, told."""
        kind, _, name = key.removeprefix(self.prefix).partition(":")
        log.warning("bus %s: %s %s is held by another process now", self.proc, kind, name)
        if kind == "room":
            self._call(self._on_room_lost, name)

    def _check_peers(self, watched: list[str], found: list[Any]) -> None:
        """A peer is dead once its ``proc:`` key has been missing for a TTL of time (however
        many heartbeats, refresh_soon included, saw it missing meanwhile)."""
        now = asyncio.get_running_loop().time()
        for peer, there in zip(watched, found, strict=True):
            if peer not in self._watched:
                continue
            if there:
                self._missing.pop(peer, None)
                self._lost.discard(peer)
                continue
            if peer in self._lost:
                continue
            since = self._missing.setdefault(peer, now)
            if now - since >= self.ttl_ms / 1000:
                del self._missing[peer]
                self._lost.add(peer)
                log.info("bus %s: process %s is gone", self.proc, peer)
                self._call(self._on_peer_lost, peer)

    def watch(self, proc: str) -> None:
        if proc != self.proc:
            self._watched.add(proc)

    def unwatch(self, proc: str) -> None:
        self._watched.discard(proc)
        self._missing.pop(proc, None)
        self._lost.discard(proc)

    # ------------------------------------------------------------------ receiving

    async def _resubscribe(self) -> None:
        """A fresh pub/sub connection, subscribed to both channels (Redis confirmed both, and
        the connection has not failed since: the caller may set ``healthy`` at once, with no
        await in between). Raises BusDown."""
        if self._reader is not None:
            await _cancel([self._reader])
        self._subscribed.clear()
        self._reader = asyncio.create_task(self._read(), name="bus-subscribe")
        try:
            async with asyncio.timeout(SUBSCRIBE_SECONDS + COMMAND_SECONDS):
                await self._subscribed.wait()
        except TimeoutError as e:
            raise BusDown("Redis did not confirm the subscriptions") from e
        if not self._subscribed.is_set():  # confirmed, then lost at once
            raise BusDown("the subscription was lost as soon as confirmed")

    async def _read(self) -> None:
        """Receive into the inbox; reconnect (backoff 0.1 -> 2 s) when the connection fails."""
        delay = BACKOFF_FIRST
        while True:
            pubsub: PubSub = self._client.pubsub()
            try:
                await self._guard(pubsub.subscribe(self._to_me, self._all))
                confirmed = 0
                async with asyncio.timeout(SUBSCRIBE_SECONDS):
                    while confirmed < 2:
                        message = await pubsub.get_message(timeout=SUBSCRIBE_SECONDS)
                        confirmed += await self._take(message)
                self._subscribed.set()
                delay = BACKOFF_FIRST
                while True:
                    await self._take(await pubsub.get_message(timeout=None))
            except (*_ERRORS, BusDown) as e:
                self._subscribed.clear()
                self._trouble("subscriber", e)
            finally:
                # Shielded: stop() cancels again every 0.1 s, and a close cut short leaves a
                # socket open until the collector warns of it.
                with contextlib.suppress(*_ERRORS):
                    await asyncio.shield(pubsub.aclose())  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(BACKOFF_MAX, delay * 2)

    async def _take(self, message: dict[str, Any] | None) -> int:
        """Queue a received envelope for the handler; 1 for a subscription confirmed."""
        if message is None:
            return 0
        if message["type"] == "message":
            await self._inbox.put((str(message["channel"]), str(message["data"])))
        return 1 if message["type"] == "subscribe" else 0

    async def _dispatch(self) -> None:
        while True:
            channel, data = await self._inbox.get()
            for line in data.split("\n"):
                await self._deliver(channel, line)

    async def _deliver(self, channel: str, line: str) -> None:
        try:
            envelope = json.loads(line)
        except ValueError:
            log.warning("bus %s: dropped a message that is not JSON: %.80r", self.proc, line)
            return
        if not isinstance(envelope, dict):
            log.warning("bus %s: dropped a message that is not an object: %.80r", self.proc, line)
            return
        if channel == self._all and envelope.get("from") == self.proc:
            return
        try:
            result = self._handler(envelope)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception(
                "bus %s: the handler failed on a %r envelope", self.proc, envelope.get("k")
            )

    # ------------------------------------------------------------------ sending

    def send(self, proc: str, envelope: dict[str, Any]) -> bool:
        return self._queue(self.key("to", proc), envelope)

    def broadcast(self, envelope: dict[str, Any]) -> bool:
        return self._queue(self._all, envelope)

    def _queue(self, channel: str, envelope: dict[str, Any]) -> bool:
        if not self.healthy or self._stopped:
            return False
        try:
            self._outbox.put_nowait((channel, json.dumps(envelope, separators=(",", ":"))))
        except asyncio.QueueFull:
            log.warning(
                "bus %s: the send queue is full (%d); envelope dropped", self.proc, SEND_QUEUE
            )
            return False
        return True

    async def _publish(self) -> None:
        """Publish the queue in order, in pipelines of up to PUBLISH_BATCH envelopes; envelopes
        queued one after another for one channel go in one Redis message, a line each."""
        while True:
            batch = [await self._outbox.get()]
            while len(batch) < PUBLISH_BATCH and not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            since = self._healthy_since
            pipe = self._client.pipeline(transaction=False)
            for channel, text in _lines(batch):
                pipe.publish(channel, text)
            try:
                await self._execute(pipe)
            except BusDown as e:
                self._trouble("publisher", e, since)
            finally:
                for _ in batch:
                    self._outbox.task_done()

    # ------------------------------------------------------------------ lookups

    async def alive(self, proc: str) -> bool:
        return await self._ask(self._client.get(self.key("proc", proc))) == "1"

    async def claim_room(self, room: str) -> str:
        """As :class:`~salon.server.bus.Bus`. Within a TTL of a restore after an outage, a
        room with no ``room:`` key at all (it expired, or Redis lost it) is claimed only once
        that TTL is over (the claim waits, then looks again): its home may not have
        re-asserted it yet, and two homes for one room would have to be healed (one of them
        hands its members over: ``on_room_lost``). A room whose owner is dead or draining is
        claimed at once."""
        loop = asyncio.get_running_loop()
        keys = [self.key("room", room)]
        fixed: list[str | int] = [self.proc, self.ttl_ms, self.key("proc", "")]
        cautious = loop.time() < self._cautious_until
        owner = await self._claimed(keys, [*fixed, "1" if cautious else "0"])
        if owner == "":
            log.info("bus %s: room %s has no key just after an outage: waiting", self.proc, room)
            await asyncio.sleep(max(0.0, self._cautious_until - loop.time()))
            owner = await self._claimed(keys, [*fixed, "0"])
        return owner

    async def claim_place(self, member_id: str) -> str:
        keys = [self.key("member", member_id)]
        return await self._claimed(keys, [self.proc, self.ttl_ms, self.key("proc", ""), "0"])

    async def _claimed(self, keys: list[str], args: list[str | int]) -> str:
        """Run the claim script; BusDown when this process's own key is missing (Redis lost
        it, or the claim ran later than its timeout: the next heartbeat writes it again)."""
        owner = str(await self._ask(self._claim(keys=keys, args=args)))
        if owner == "-":
            raise BusDown("this process's key is missing in Redis: nothing claimed")
        return owner

    async def release_place(self, member_id: str) -> None:
        """As :class:`~salon.server.bus.Bus`; tried even while degraded (a room lost at the
        heartbeat that re-asserts the keys after an outage releases its places then)."""
        keys = [self.key("member", member_id)]
        await self._guard(self._release_place(keys=keys, args=[self.proc, self.ttl_ms]))

    async def room_home(self, room: str) -> str | None:
        return await self._owner(self.key("room", room))

    async def place_home(self, member_id: str) -> str | None:
        return await self._owner(self.key("member", member_id))

    async def _owner(self, key: str) -> str | None:
        owner = await self._ask(self._live_owner(keys=[key], args=[self.key("proc", "")]))
        return None if owner is None else str(owner)

    async def processes(self) -> list[str]:
        """As :class:`~salon.server.bus.Bus`: the ``proc:`` keys there are (a SCAN, made at
        most once per heartbeat, :class:`SharedRead`)."""
        return list(await self._processes.get())

    async def _scan_processes(self) -> list[str]:
        start = len(self.key("proc", ""))
        match = self.key("proc", "*")
        return sorted(
            [key[start:] async for key in self._client.scan_iter(match=match, count=1000)]
        )

    async def name_member(self, key: str) -> str | None:
        keys = [self.key("name", key)]
        holder = await self._ask(self._name_holder(keys=keys, args=[self.key("member", "")]))
        return None if holder is None else str(holder)

    def spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run ``coroutine`` in the background (kept until done; cancelled by stop)."""
        if self._stopped:
            coroutine.close()
            return
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)


class SharedRead(Generic[T]):
    """A read of Redis made at most once per heartbeat: callers meanwhile share the last
    answer, or the read in flight (a caller that is cancelled does not cancel it). An answer
    read across an outage is not kept."""

    def __init__(self, bus: RedisBus, read: Callable[[], Coroutine[Any, Any, T]]) -> None:
        self._bus = bus
        self._read = read
        self._at = 0.0  # when (loop time) _cache was read
        self._cache: T | None = None
        self._task: asyncio.Task[T] | None = None

    def forget(self) -> None:
        """Read again at the next :meth:`get` (a new healthy period)."""
        self._cache = None

    async def get(self) -> T:
        """The answer; BusDown as :meth:`RedisBus._ask` (at once while degraded);
        CancelledError when the read was cancelled (the bus stops)."""
        bus = self._bus
        loop = asyncio.get_running_loop()
        if self._cache is not None and loop.time() - self._at < bus.heartbeat_seconds:
            return self._cache
        task = self._task
        if task is None or task.done():
            task = self._task = asyncio.create_task(self._fresh())
            bus._background.add(task)
            task.add_done_callback(bus._background.discard)
        return await asyncio.shield(task)

    async def _fresh(self) -> T:
        bus = self._bus
        since = bus._healthy_since
        value = await bus._ask(self._read())
        if since == bus._healthy_since:
            self._at = asyncio.get_running_loop().time()
            self._cache = value
        return value


class RedisDirectory:
    """The :class:`~salon.core.directory.Directory` of a :class:`RedisBus`: reachable names,
    ended places and presence shared by every process (key formats: module docstring)."""

    def __init__(self, bus: RedisBus) -> None:
        self.bus = bus
        self.shown: dict[str, str] = {}  # name key -> display name, of the names held here
        self._claimed: dict[str, str] = {}  # name key -> member id, claimed here, name not shown
        self._names = SharedRead(bus, self._scan_names)
        self._ended: dict[str, float] = {}  # ended: key -> until (loop time), write failed

    def forget_names(self) -> None:
        """Read the names again at the next :meth:`names` (a new healthy period)."""
        self._names.forget()

    def pending_ended(self) -> list[tuple[str, int]]:
        """The ``ended:`` keys whose write failed, with their remaining time (ms)."""
        now = asyncio.get_running_loop().time()
        for key in [key for key, until in self._ended.items() if until <= now]:
            del self._ended[key]
        return [(key, max(1, round((until - now) * 1000))) for key, until in self._ended.items()]

    def ended_written(self, written: list[tuple[str, int]]) -> None:
        for key, _ in written:
            self._ended.pop(key, None)

    def forget_except(self, held: set[str]) -> None:
        """Forget what is known of the names not ``held`` here any more."""
        for known in (self.shown, self._claimed):
            for key in [key for key in known if key not in held]:
                del known[key]

    async def claim_name(self, key: str, member_id: str) -> bool:
        """True: the name is now this member's (or Redis is unreachable: names are then
        unique per process only); False: a member whose place is held somewhere holds it."""
        bus = self.bus
        name = self.shown.get(key)
        value = member_id if name is None else f"{member_id} {name}"
        keys = [bus.key("name", key), bus.key("member", member_id)]
        args: list[str | int] = [member_id, value, bus.ttl_ms, bus.key("member", ""), bus.proc]
        try:
            claimed = bool(await bus._ask(bus._claim_name(keys=keys, args=args)))
        except BusDown as e:
            log.warning("bus %s: name claimed locally only (%s)", bus.proc, e)
            return True
        if claimed and name is None:
            self._claimed[key] = member_id
        return claimed

    def release_name(self, key: str, member_id: str) -> None:
        if self._claimed.get(key) == member_id:
            del self._claimed[key]
        self.bus.spawn(self._release(key, member_id))

    async def _release(self, key: str, member_id: str) -> None:
        bus = self.bus
        try:
            await bus._guard(bus._release_name(keys=[bus.key("name", key)], args=[member_id]))
        except BusDown as e:
            log.warning("bus %s: could not free a reachable name (%s); it expires", bus.proc, e)

    async def names(self) -> list[str] | None:
        """The display names of every process's reachable names; None while degraded. Read
        at most once per heartbeat: callers meanwhile share the last answer, or the read in
        flight."""
        bus = self.bus
        if not bus.healthy:
            return None
        try:
            return list(await self._names.get())
        except BusDown as e:
            log.warning("bus %s: names of other processes unknown (%s)", bus.proc, e)
            return None
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            return None  # the read was cancelled (the bus stops)

    async def _scan_names(self) -> list[str]:
        client = self.bus._client
        keys = [key async for key in client.scan_iter(match=self.bus.key("name", "*"), count=1000)]
        values = await client.mget(keys) if keys else []
        shown = (value for value in values if isinstance(value, str) and " " in value)
        return [value.split(" ", 1)[1] for value in shown]

    def end(self, member_id: str, seconds: float) -> None:
        bus = self.bus
        bus.spawn(self._end(bus.key("ended", member_id), seconds))

    async def _end(self, key: str, seconds: float) -> None:
        until = asyncio.get_running_loop().time() + seconds
        try:
            await self.bus._guard(self.bus._client.set(key, "1", px=max(1, round(seconds * 1000))))
        except BusDown as e:
            log.warning(
                "bus %s: an ended place is known here only until Redis answers (%s)",
                self.bus.proc,
                e,
            )
            self._ended.pop(key, None)
            self._ended[key] = until
            while len(self._ended) > ENDED_PENDING:  # the oldest dropped
                del self._ended[next(iter(self._ended))]

    async def ended(self, member_id: str) -> bool:
        """Whether the place ended on some process (False while degraded)."""
        try:
            return bool(
                await self.bus._ask(self.bus._client.exists(self.bus.key("ended", member_id)))
            )
        except BusDown as e:
            log.warning("bus %s: ended places elsewhere unknown (%s)", self.bus.proc, e)
            return False

    def presence(self, change: PresenceChanged) -> None:
        """Tell the other processes; learn the display name of a name held here."""
        key = name_key(change.name)
        if change.online:
            self.shown[key] = change.name
            member_id = self._claimed.pop(key, None)
            if member_id is not None:  # show it now rather than at the next heartbeat
                self.bus.spawn(self._show(key, member_id, change.name))
        else:
            self.shown.pop(key, None)
            self._claimed.pop(key, None)
        self.bus.broadcast(
            {
                "k": "presence",
                "from": self.bus.proc,
                "name": change.name,
                "online": change.online,
                "reconnecting": change.reconnecting,
            }
        )

    async def _show(self, key: str, member_id: str, name: str) -> None:
        bus = self.bus
        keys = [bus.key("name", key), bus.key("member", member_id)]
        args: list[str | int] = [
            member_id,
            f"{member_id} {name}",
            bus.ttl_ms,
            bus.key("member", ""),
            bus.proc,
        ]
        try:
            await bus._guard(bus._claim_name(keys=keys, args=args))
        except BusDown as e:
            log.warning("bus %s: a display name is shown at the next heartbeat (%s)", bus.proc, e)
