"""The Redis bus between Salon processes (issue #12), against a real ``redis-server`` of the
test's own: two :class:`RedisBus` in one event loop stand for two processes. Envelopes arrive
in order and broadcasts are not echoed; a room and a reachable name have one holder, taken
over once the holder is gone; a killed process is noticed; Redis stopped, flushed or hung
makes lookups fail fast with BusDown and the bus degraded (told once), and when Redis answers
again the bus re-asserts its keys and says so, without a crash loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from salon.core.names import name_key
from salon.protocol.messages import PresenceChanged
from salon.server.bus import BusDown, LocalBus, Owned, RedisBus
from tests.integration.redis import RedisServer, redis_server

HEARTBEAT = 0.3  # short, so keys of a stopped bus expire within 0.9 s (TTL = 3 heartbeats);
# not shorter: a loaded machine stalls the test loop for a few tenths of a second, and a key
# its heartbeat keeps must not lapse meanwhile


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


class Probe:
    """The callbacks of one bus, recording what they are told; ``owned`` is what it holds."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.lost: list[str] = []
        self.rooms_lost: list[str] = []
        self.outages = 0
        self.restorations = 0
        self.beats = 0  # how many times owned() was asked: once per heartbeat attempt
        self.owned = Owned([], [], [])

    async def handler(self, envelope: dict[str, Any]) -> None:
        self.got.append(envelope)

    def on_peer_lost(self, proc: str) -> None:
        self.lost.append(proc)

    def on_room_lost(self, room: str) -> None:
        self.rooms_lost.append(room)

    def on_outage(self) -> None:
        self.outages += 1

    def on_restored(self) -> None:
        self.restorations += 1

    def owned_now(self) -> Owned:
        self.beats += 1
        return self.owned


@contextlib.asynccontextmanager
async def started(server: RedisServer, probe: Probe | None = None) -> AsyncIterator[RedisBus]:
    probe = probe or Probe()
    bus = RedisBus(server.url, heartbeat_seconds=HEARTBEAT)
    await bus.start(
        probe.handler,
        probe.on_peer_lost,
        probe.on_outage,
        probe.on_restored,
        probe.owned_now,
        on_room_lost=probe.on_room_lost,
    )
    try:
        yield bus
    finally:
        await bus.stop()


async def eventually(check: Callable[[], Any], seconds: float = 5.0) -> None:
    """Poll ``check`` (a function, or one returning an awaitable) until it is true."""
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, f"not within {seconds} s: {check}"
        await asyncio.sleep(0.01)


async def beats(probe: Probe, count: int) -> None:
    """Wait until ``count`` more heartbeats were attempted."""
    until = probe.beats + count
    await eventually(lambda: probe.beats >= until)


def value(server: RedisServer, key: str) -> str | None:
    reply = server.command("GET", key)
    return None if reply.startswith(b"$-1") else reply.split(b"\r\n")[1].decode()


async def test_envelopes_arrive_in_order_and_broadcasts_are_not_echoed(redis: RedisServer) -> None:
    ann_probe, bob_probe = Probe(), Probe()
    async with started(redis, ann_probe) as ann, started(redis, bob_probe) as bob:
        assert len(ann.proc) == 12 and ann.proc != bob.proc
        assert ann.enabled and ann.healthy
        for n in range(500):
            assert ann.send(bob.proc, {"k": "frame", "n": n})
        assert bob.send(ann.proc, {"k": "out", "t": "é ✓"})
        await eventually(lambda: len(bob_probe.got) == 500 and ann_probe.got)
        assert [envelope["n"] for envelope in bob_probe.got] == list(range(500))
        assert ann_probe.got == [{"k": "out", "t": "é ✓"}]

        assert ann.broadcast({"k": "presence", "from": ann.proc, "name": "x"})
        assert ann.send(bob.proc, {"k": "after"})
        await eventually(lambda: bob_probe.got[-1] == {"k": "after"})
        assert bob_probe.got[-2] == {"k": "presence", "from": ann.proc, "name": "x"}
        assert ann_probe.got == [{"k": "out", "t": "é ✓"}]  # its own broadcast is dropped


def publishes(server: RedisServer) -> int:
    """PUBLISH commands Redis has run (INFO commandstats)."""
    for line in server.command("INFO", "commandstats").decode().splitlines():
        if line.startswith("cmdstat_publish:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


async def test_envelopes_queued_together_share_redis_messages_in_order(redis: RedisServer) -> None:
    ann_probe, bob_probe = Probe(), Probe()
    async with started(redis, ann_probe) as ann, started(redis, bob_probe) as bob:
        before = publishes(redis)
        big = "x" * (200 * 1024)  # two of these exceed one message's 256 KiB
        sent: list[dict[str, Any]] = []
        for n in range(300):
            envelope = {"k": "frame", "n": n, "t": "line\nbreak" if n % 7 else big}
            sent.append(envelope)
            assert ann.send(bob.proc, envelope)  # queued without an await: one batch
        assert ann.send(ann.proc, {"k": "self"})
        assert ann.broadcast({"k": "presence", "from": ann.proc})
        assert ann.send(bob.proc, {"k": "last"})
        await eventually(lambda: len(bob_probe.got) == 302)
        assert bob_probe.got[:300] == sent
        assert bob_probe.got[300:] == [{"k": "presence", "from": ann.proc}, {"k": "last"}]
        assert ann_probe.got == [{"k": "self"}]
        # 300 envelopes in two pipelines at most, each run split where 256 KiB is reached
        # (43 of them are 200 KiB, so at least 43 messages), plus the three others.
        assert 46 <= publishes(redis) - before < 100


async def test_a_failing_handler_does_not_stop_the_subscriber(redis: RedisServer) -> None:
    probe = Probe()
    got = probe.got

    async def handler(envelope: dict[str, Any]) -> None:
        if envelope.get("boom"):
            raise RuntimeError("boom")
        got.append(envelope)

    probe.handler = handler  # type: ignore[method-assign]
    async with started(redis, probe) as bus:
        redis.command("PUBLISH", f"salon:to:{bus.proc}", "not json")
        assert bus.send(bus.proc, {"boom": True})
        assert bus.send(bus.proc, {"k": "fine"})
        await eventually(lambda: got == [{"k": "fine"}])
        assert bus.healthy and probe.outages == 0


async def test_a_room_has_one_home_taken_over_when_it_is_gone(redis: RedisServer) -> None:
    async with started(redis) as ann, started(redis) as bob:
        assert await ann.room_home("r") is None
        homes = await asyncio.gather(ann.claim_room("r"), bob.claim_room("r"))
        winner = homes[0]
        assert homes[1] == winner and winner in (ann.proc, bob.proc)
        assert await ann.room_home("r") == winner == await bob.room_home("r")
        assert await ann.alive(bob.proc) and await bob.alive(ann.proc)
        assert not await ann.alive("0" * 12)

        # A draining owner is not live: the next claim takes its room over at once.
        owner, other = (ann, bob) if winner == ann.proc else (bob, ann)
        await owner.mark_draining()
        assert not await other.alive(owner.proc)
        assert await other.room_home("r") is None
        assert await other.claim_room("r") == other.proc
        assert await owner.claim_room("r") == other.proc

    # Killed (keys left behind): the room is taken over once the owner's proc key expires.
    async with started(redis) as ann, started(redis) as bob:
        assert await ann.claim_room("s") == ann.proc
        await ann.abandon()
        assert await bob.claim_room("s") == ann.proc  # its proc key has not expired yet
        # Waiting for a TTL is the point here: the key of a killed process expires by itself.
        await eventually(lambda: _is(bob.claim_room("s"), bob.proc), seconds=5.0)
        assert await bob.room_home("s") == bob.proc


async def _is(awaitable: Any, expected: Any) -> bool:
    return bool(await awaitable == expected)


async def test_places_and_rooms_held_are_kept_by_the_heartbeat(redis: RedisServer) -> None:
    probe = Probe()
    probe.owned = Owned(places=["m1"], rooms=["r1"], names=[])
    async with started(redis, probe) as ann, started(redis) as bob:
        assert await bob.place_home("m1") == ann.proc
        assert await bob.room_home("r1") == ann.proc
        assert await bob.place_home("m2") is None
        await beats(probe, 5)  # longer than the TTL: kept alive by the heartbeats
        assert await bob.place_home("m1") == ann.proc
        probe.owned = Owned([], [], [])
        # Waiting for a TTL is the point: what is no longer owned expires.
        await eventually(lambda: _is(bob.place_home("m1"), None), seconds=5.0)
        await ann.mark_draining()
        assert value(redis, f"salon:proc:{ann.proc}") == "draining"
        await beats(probe, 2)
        assert value(redis, f"salon:proc:{ann.proc}") == "draining"
    assert value(redis, f"salon:proc:{ann.proc}") is None  # stop() removes it


async def test_a_draining_owner_does_not_rewrite_its_rooms_and_places(
    redis: RedisServer,
) -> None:
    probe, bob_probe = Probe(), Probe()
    probe.owned = Owned(places=["m1"], rooms=["r1"], names=[])
    async with started(redis, probe) as ann, started(redis, bob_probe) as bob:
        assert await ann.claim_room("r1") == ann.proc
        await ann.mark_draining()
        assert await bob.claim_room("r1") == bob.proc  # a draining owner is not live
        bob_probe.owned = Owned([], ["r1"], [])
        await beats(probe, 4)  # longer than the TTL
        assert value(redis, "salon:room:r1") == bob.proc  # not overwritten by ann
        assert value(redis, "salon:member:m1") is None  # expired: not re-written
        assert probe.rooms_lost == []
        assert value(redis, f"salon:proc:{ann.proc}") == "draining"


async def test_a_room_held_by_another_live_process_is_reported_not_overwritten(
    redis: RedisServer,
) -> None:
    probe = Probe()
    probe.owned = Owned(places=["m1"], rooms=["r1"], names=[])
    async with started(redis, probe) as ann, started(redis) as bob:
        assert await ann.claim_room("r1") == ann.proc
        redis.command("SET", "salon:room:r1", bob.proc)
        redis.command("SET", "salon:member:m1", bob.proc)
        await eventually(lambda: probe.rooms_lost == ["r1"])
        assert value(redis, "salon:room:r1") == bob.proc
        assert value(redis, "salon:member:m1") == bob.proc  # left too (not reported)
        # Its owner dead (proc key not "1"): the key is taken back by the heartbeat.
        redis.command("SET", "salon:room:r1", "0" * 12)
        await eventually(lambda: value(redis, "salon:room:r1") == ann.proc)
        assert probe.rooms_lost[0] == "r1"


async def test_a_flush_racing_a_claim_elsewhere_does_not_split_a_room(redis: RedisServer) -> None:
    ann_probe, bob_probe = Probe(), Probe()
    ann_probe.owned = Owned([], ["r1"], [])
    async with started(redis, ann_probe) as ann, started(redis, bob_probe) as bob:
        assert await ann.claim_room("r1") == ann.proc
        redis.command("FLUSHALL")
        while True:  # races ann's re-writing heartbeat
            try:
                home = await bob.claim_room("r1")
                break
            except BusDown:  # bob's own proc: key was flushed too: none until its heartbeat
                await asyncio.sleep(0.01)
        if home == bob.proc:
            bob_probe.owned = Owned([], ["r1"], [])
        await beats(ann_probe, 3)
        await beats(bob_probe, 3)
        owner = value(redis, "salon:room:r1")
        assert owner in (ann.proc, bob.proc)
        loser, loser_probe = (bob, bob_probe) if owner == ann.proc else (ann, ann_probe)
        if loser is ann or home == bob.proc:  # it held the room: told (each beat it still does)
            assert set(loser_probe.rooms_lost) == {"r1"}
            loser_probe.owned = Owned([], [], [])
        await beats(ann_probe, 3)
        assert value(redis, "salon:room:r1") == owner  # stable: no ping-pong
        assert await ann.room_home("r1") == owner == await bob.room_home("r1")


async def test_a_refresh_burst_after_a_flush_does_not_kill_a_live_peer(redis: RedisServer) -> None:
    probe = Probe()
    async with started(redis, probe) as ann, started(redis) as bob:
        ann.watch(bob.proc)
        await beats(probe, 2)
        redis.command("FLUSHALL")
        for _ in range(20):
            ann.refresh_soon()
            await asyncio.sleep(0.005)
        beats_before = probe.beats
        await asyncio.sleep(0.1)
        assert probe.beats - beats_before <= 2  # coalesced: not one beat per refresh_soon
        await beats(probe, 5)
        assert probe.lost == []
        assert await ann.alive(bob.proc)


async def test_names_are_read_once_per_heartbeat(redis: RedisServer) -> None:
    probe = Probe()
    async with started(redis, probe) as ann:
        alice = name_key("Alice")
        assert await ann.directory.claim_name(alice, "m1")
        # Held, so that the heartbeats keep the keys (they live 0.9 s) however slow this runs.
        probe.owned = Owned(["m1"], [], [(alice, "m1")])
        ann.directory.presence(PresenceChanged(name="Alice", online=True))
        await eventually(lambda: value(redis, f"salon:name:{alice}") == "m1 Alice")
        directory: Any = ann.directory
        reads = 0
        shared = directory._names  # a SharedRead of the SCAN
        read = shared._read

        async def counted() -> list[str]:
            nonlocal reads
            reads += 1
            await asyncio.sleep(0.02)
            return list(await read())

        shared._read = counted
        await asyncio.sleep(HEARTBEAT)  # what was cached before is stale
        results = await asyncio.gather(*(ann.directory.names() for _ in range(20)))
        assert results == [["Alice"]] * 20 and reads == 1  # one read in flight, shared
        assert await ann.directory.names() == ["Alice"] and reads == 1  # cached
        await asyncio.sleep(HEARTBEAT)
        assert await ann.directory.names() == ["Alice"] and reads == 2


async def test_processes_are_those_whose_key_is_there(redis: RedisServer) -> None:
    """What the server API's list asks (every process): each running process's ``proc:``
    key; one that stopped is gone from it (it removes its key; a killed one's expires)."""
    ann_probe, bob_probe = Probe(), Probe()
    async with started(redis, ann_probe) as ann:
        async with started(redis, bob_probe) as bob:
            assert sorted(await ann.processes()) == sorted([ann.proc, bob.proc])

        async def bob_gone() -> bool:
            return await ann.processes() == [ann.proc]

        await eventually(bob_gone)


async def test_a_reachable_name_has_one_holder(redis: RedisServer) -> None:
    ann_probe, bob_probe = Probe(), Probe()
    alice = name_key("Alice")
    async with started(redis, ann_probe) as ann, started(redis, bob_probe) as bob:
        assert await ann.directory.claim_name(alice, "m1")
        ann_probe.owned = Owned(["m1"], [], [(alice, "m1")])
        assert not await bob.directory.claim_name(alice, "m2")
        assert await ann.directory.claim_name(alice, "m1")  # its holder again: fine
        assert await bob.name_member(alice) == "m1"
        assert await bob.name_member("nobody") is None

        # The display name comes with the presence change the hub tells right after.
        ann.directory.presence(PresenceChanged(name="Alice", online=True))
        await eventually(lambda: _is(bob.directory.names(), ["Alice"]))
        await eventually(lambda: bob_probe.got)
        assert bob_probe.got == [
            {"k": "presence", "from": ann.proc, "name": "Alice", "online": True,
             "reconnecting": False}
        ]  # fmt: skip
        assert value(redis, f"salon:name:{alice}") == "m1 Alice"
        await beats(ann_probe, 2)  # the heartbeat keeps the display name
        assert value(redis, f"salon:name:{alice}") == "m1 Alice"
        assert ann_probe.got == []  # not echoed

        # Released (only by its holder): free for another member.
        ann.directory.release_name(alice, "m2")
        ann.directory.release_name(alice, "m1")
        ann_probe.owned = Owned(["m1"], [], [])
        await eventually(lambda: _is(bob.name_member(alice), None))
        assert await bob.directory.claim_name(alice, "m2")
        assert await bob.directory.names() == []  # no display name known for it yet

        # The holder's process killed: the name is free once its member key expired.
        assert await ann.directory.claim_name("carol", "m3")
        await ann.abandon()
        assert not await bob.directory.claim_name("carol", "m4")
        # Waiting for a TTL is the point: the member key of a killed process expires.
        await eventually(lambda: bob.directory.claim_name("carol", "m4"), seconds=5.0)
        assert await bob.name_member("carol") == "m4"


async def test_an_ended_place_is_known_everywhere(redis: RedisServer) -> None:
    async with started(redis) as ann, started(redis) as bob:
        ann.directory.end("m1", 60)
        await eventually(lambda: bob.directory.ended("m1"))
        assert not await bob.directory.ended("m2")
        ttl = int(redis.command("PTTL", "salon:ended:m1")[1:].split(b"\r\n")[0])
        assert 55_000 < ttl <= 60_000


async def test_a_watched_process_that_dies_is_told_once(redis: RedisServer) -> None:
    probe = Probe()
    async with started(redis, probe) as ann, started(redis) as bob, started(redis) as cid:
        ann.watch(bob.proc)
        ann.watch(cid.proc)
        ann.watch(ann.proc)  # itself: ignored
        await beats(probe, 3)
        assert probe.lost == []
        await bob.abandon()  # killed: its proc key expires after the TTL
        await eventually(lambda: probe.lost == [bob.proc], seconds=5.0)
        await cid.stop()  # stopped: its proc key is removed at once
        await eventually(lambda: probe.lost == [bob.proc, cid.proc], seconds=5.0)
        await beats(probe, 5)
        assert probe.lost == [bob.proc, cid.proc]  # once per death
        ann.unwatch(bob.proc)


async def test_redis_stopped_then_started_again(redis: RedisServer) -> None:
    probe, other_probe = Probe(), Probe()
    probe.owned = Owned(["m1"], ["r1"], [(name_key("Alice"), "m1")])
    async with started(redis, probe) as ann, started(redis, other_probe) as bob:
        assert await ann.claim_room("r1") == ann.proc
        redis.stop()
        started_at = time.monotonic()
        with pytest.raises(BusDown):
            await ann.room_home("r1")
        assert time.monotonic() - started_at < 1.0
        await eventually(lambda: probe.outages == 1 and other_probe.outages == 1, seconds=5.0)
        assert not ann.healthy
        assert not ann.send(bob.proc, {"k": "x"}) and not ann.broadcast({"k": "x"})
        for lookup in (ann.room_home("r1"), ann.place_home("m1"), ann.claim_room("r2")):
            started_at = time.monotonic()
            with pytest.raises(BusDown):
                await lookup
            assert time.monotonic() - started_at < 0.5  # degraded: no wait (a wait is >= 1 s)
        assert await ann.directory.names() is None
        assert not await ann.directory.ended("m1")
        assert await ann.directory.claim_name("bob", "m2")  # local uniqueness only meanwhile
        ann.directory.end("m9", 60)  # its write fails: written when Redis answers again
        await beats(probe, 5)
        assert probe.outages == 1 and probe.restorations == 0

        redis.start()
        await eventually(lambda: probe.restorations == 1 and other_probe.restorations == 1)
        assert ann.healthy and bob.healthy
        assert value(redis, f"salon:proc:{ann.proc}") == "1"
        assert value(redis, "salon:room:r1") == ann.proc
        assert value(redis, "salon:member:m1") == ann.proc
        assert value(redis, f"salon:name:{name_key('Alice')}") == "m1"
        assert value(redis, "salon:ended:m9") == "1"
        assert await bob.directory.ended("m9")
        assert ann.send(bob.proc, {"k": "back"})
        await eventually(lambda: other_probe.got == [{"k": "back"}])

        # Flushed with Redis up: healed within a heartbeat, no outage.
        redis.command("FLUSHALL")
        await eventually(lambda: value(redis, "salon:room:r1") == ann.proc)
        assert await bob.room_home("r1") == ann.proc
        assert await bob.place_home("m1") == ann.proc
        await beats(probe, 5)
        assert (probe.outages, probe.restorations) == (1, 1)  # no crash loop
        assert (other_probe.outages, other_probe.restorations) == (1, 1)


async def test_redis_hung_then_answering_again(redis: RedisServer) -> None:
    probe, other_probe = Probe(), Probe()
    probe.owned = Owned(["m1"], ["r1"], [])
    async with started(redis, probe) as ann, started(redis, other_probe) as bob:
        redis.freeze()
        try:
            started_at = time.monotonic()
            with pytest.raises(BusDown):
                await bob.place_home("m1")
            assert time.monotonic() - started_at < 2.5  # the command timeout is 1 s
            await eventually(lambda: probe.outages == 1 and other_probe.outages == 1, seconds=5.0)
            assert not ann.send(bob.proc, {"k": "x"})
        finally:
            redis.thaw()
        await eventually(lambda: probe.restorations == 1 and other_probe.restorations == 1)
        assert await bob.place_home("m1") == ann.proc
        assert ann.send(bob.proc, {"k": "back"})
        await eventually(lambda: other_probe.got == [{"k": "back"}])
        await beats(probe, 5)
        assert (probe.outages, probe.restorations) == (1, 1)


async def traffic(
    buses: tuple[RedisBus, RedisBus], probes: tuple[Probe, Probe], seconds: float
) -> None:
    """For ``seconds``: envelopes both ways (each send must be accepted, and arrive, in order)
    and lookups side by side on both buses (none may fail), so that each bus uses several
    pooled connections at once."""
    ann, bob = buses
    ann_probe, bob_probe = probes
    ann_probe.got.clear()
    bob_probe.got.clear()
    sent = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(20):
            assert ann.send(bob.proc, {"k": "a", "n": sent}), f"ann's send {sent} refused"
            assert bob.send(ann.proc, {"k": "b", "n": sent}), f"bob's send {sent} refused"
            sent += 1
        for bus, other in buses, (bob, ann):
            await asyncio.gather(
                *(bus.alive(other.proc) for _ in range(3)),
                *(bus.room_home("r1") for _ in range(3)),
                *(bus.place_home("m1") for _ in range(3)),
                bus.directory.ended("m1"),
            )
        await eventually(lambda n=sent: len(ann_probe.got) == len(bob_probe.got) == n, seconds=5.0)
    assert [envelope["n"] for envelope in bob_probe.got] == list(range(sent))
    assert [envelope["n"] for envelope in ann_probe.got] == list(range(sent))


async def test_a_restart_of_redis_is_one_outage_and_one_restoration(redis: RedisServer) -> None:
    """Connections pooled before Redis was killed are never used after it is back: the
    restart is told once (not a second outage a few ms after the restoration), twice over."""
    probes = Probe(), Probe()
    probes[0].owned = Owned(["m1"], ["r1"], [])
    async with started(redis, probes[0]) as ann, started(redis, probes[1]) as bob:
        buses = ann, bob
        await traffic(buses, probes, seconds=0.5)  # several connections pooled on each bus
        for cycle in (1, 2):
            redis.stop()
            await eventually(lambda n=cycle: all(p.outages == n for p in probes), seconds=5.0)
            assert not ann.send(bob.proc, {"k": "x"}) and not bob.send(ann.proc, {"k": "x"})
            redis.start()
            await eventually(lambda n=cycle: all(p.restorations == n for p in probes))
            assert ann.healthy and bob.healthy
            await traffic(buses, probes, seconds=3.0)
            for probe in probes:
                assert (probe.outages, probe.restorations) == (cycle, cycle)
            # Re-asserted after the restart. (Read until seen: with a 0.9 s TTL, a beat late on
            # a loaded machine lets it lapse for a moment before the next one writes it again.)
            await eventually(lambda: value(redis, "salon:room:r1") == ann.proc)


async def test_a_bus_started_while_redis_is_down_recovers(redis: RedisServer) -> None:
    redis.stop()
    probe = Probe()
    async with started(redis, probe) as bus:
        assert not bus.healthy and probe.outages == 1
        redis.start()
        await eventually(lambda: probe.restorations == 1)
        assert bus.send(bus.proc, {"k": "hello"})
        await eventually(lambda: probe.got == [{"k": "hello"}])


async def test_the_local_bus_shares_nothing() -> None:
    bus = LocalBus()
    probe = Probe()
    await bus.start(
        probe.handler, probe.on_peer_lost, probe.on_outage, probe.on_restored, probe.owned_now
    )
    assert not bus.enabled and bus.healthy and len(bus.proc) == 12
    assert await bus.claim_room("r") == bus.proc
    assert await bus.room_home("r") is None and await bus.place_home("m") is None
    assert await bus.name_member("k") is None
    assert not bus.send(bus.proc, {"k": "x"}) and not bus.broadcast({"k": "x"})
    assert await bus.directory.claim_name("k", "m") and await bus.directory.names() is None
    await bus.stop()


async def test_a_moved_place_is_found_at_its_new_home_at_once(redis: RedisServer) -> None:
    ann_probe, bob_probe = Probe(), Probe()
    async with started(redis, ann_probe) as ann, started(redis, bob_probe) as bob:
        alice = name_key("Alice")
        assert await ann.directory.claim_name(alice, "m1")  # m1's place and name at ann
        ann_probe.owned = Owned(["m1"], [], [(alice, "m1")])
        assert await bob.place_home("m1") == ann.proc
        assert await bob.claim_place("m1") == ann.proc  # a live owner keeps it
        # ann lets the place go (a move): no live home, but the name stays held ...
        await ann.release_place("m1")
        assert value(redis, "salon:member:m1") == f"released:{ann.proc}"
        assert await bob.place_home("m1") is None
        assert await bob.name_member(alice) == "m1"
        await beats(ann_probe, 2)  # ann's heartbeat, owned() not yet told: no re-write
        assert value(redis, "salon:member:m1") in (f"released:{ann.proc}", None)  # or expired
        # ... until bob, adopting it, claims it at once; ann's release comes too late.
        assert await bob.claim_place("m1") == bob.proc
        await ann.release_place("m1")
        assert await ann.place_home("m1") == bob.proc
        bob_probe.owned = Owned(["m1"], [], [(alice, "m1")])
        ann_probe.owned = Owned([], [], [])
        await beats(bob_probe, 2)
        assert bob_probe.rooms_lost == [] and await ann.name_member(alice) == "m1"
        assert (value(redis, f"salon:name:{alice}") or "").split(" ")[0] == "m1"


async def test_a_claim_redis_runs_after_the_claimers_key_expired_does_nothing(
    redis: RedisServer,
) -> None:
    async with started(redis) as ann:
        redis.command("DEL", f"salon:proc:{ann.proc}")  # as after a hang past the TTL
        with pytest.raises(BusDown):
            await ann.claim_room("r-late")
        with pytest.raises(BusDown):
            await ann.claim_place("m-late")
        assert value(redis, "salon:room:r-late") is None
        assert value(redis, "salon:member:m-late") is None
        await eventually(lambda: value(redis, f"salon:proc:{ann.proc}") == "1")
        assert await ann.claim_room("r-late") == ann.proc
