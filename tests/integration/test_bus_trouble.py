"""Two Salon processes when their Redis is in trouble: stopped, hung, or flushed.

The design (docs/SCALING.md): a room whose members are all on one process needs no Redis
and goes on; whatever needs another process (a piped member's frame, a join of a room held
elsewhere, a call to a name elsewhere) gets the typed error ``bus_unavailable`` with the
frame's ``ref`` and changes nothing; ``/ready`` says 503 ``"bus": "degraded"`` so a load
balancer prefers a healthy process, ``/health`` stays 200. When Redis answers again, piped
sockets are closed with 1012 (the client resumes; the home replays what it kept), presence
lists are whole again, and the keys each process owns are written again (a FLUSHALL heals
the same way). Every command has a 1 s timeout: a hung Redis hangs no request.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar

import pytest

from salon.core.names import name_key
from tests.integration.cluster import (
    HEARTBEAT,
    Cluster,
    bus_state,
    eventually,
    note,
    resp,
    salon_cluster,
)
from tests.integration.server import RunningServer
from tests.integration.test_resume import Client
from tests.integration.test_scaling import CANDIDATE, heard_until_closed, relays, seated

T = TypeVar("T")

BOUND = 2.5  # seconds: no request may take longer while Redis hangs (1 s per command)
DEGRADED = (503, "degraded", 200, "degraded")  # ready status and bus, health status and bus
HEALTHY = (200, "ok", 200, "ok")


@pytest.fixture(scope="module")
def salons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with salon_cluster(tmp_path_factory.mktemp("bus-trouble")) as running:
        yield running


@pytest.fixture
async def nodes(salons: Cluster) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """(P1, P2), with Redis up and both ready; the test's clients are closed after it, and a
    Redis the test froze is thawed."""
    salons.up()
    mark = len(Client.opened)
    logs = salons.log_marks()
    try:
        yield salons.nodes[0].as_server(), salons.nodes[1].as_server()
    finally:
        if salons.redis.process is not None:
            salons.redis.thaw()
        await asyncio.wait_for(Client.close_all(since=mark), 20)
        salons.print_logs(logs)


@pytest.fixture
def tag() -> str:
    return secrets.token_hex(3)


async def both_say(salons: Cluster, wanted: tuple[Any, ...], timeout: float = 5.0) -> None:
    """Poll /ready and /health of both processes until both answer ``wanted``."""

    async def check() -> bool:
        states = [await bus_state(node) for node in salons.nodes]
        return all(state == wanted for state in states)

    await eventually(check, f"both processes to say {wanted}", timeout)


async def within(what: str, awaitable: Awaitable[T], bound: float = BOUND) -> T:
    """``awaitable``'s result, which must come within ``bound`` seconds."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    try:
        result = await asyncio.wait_for(awaitable, bound)
    except TimeoutError:
        raise AssertionError(f"{what} took more than {bound} s") from None
    print(f"{what}: {loop.time() - began:.2f} s")
    return result


async def refused(client: Client, ref: str, **frame: Any) -> None:
    """``frame`` (with ``ref``) gets ``bus_unavailable`` naming that ref."""
    await client.send(ref=ref, **frame)
    error = await client.error("bus_unavailable")
    assert error["ref"] == ref, error
    assert error["message"], error


async def setup(p1: RunningServer, p2: RunningServer, tag: str) -> dict[str, Client]:
    """alice and bob in a room on P1 alone; carol (P1) and dave (P2, piped) in a room held
    by P1; eve on P2 in no room; a presence watcher on P2 that sees every name."""
    alice, bob = await seated(f"local-{tag}", (p1, f"alice-{tag}"), (p1, f"bob-{tag}"))
    carol, dave = await seated(f"split-{tag}", (p1, f"carol-{tag}"), (p2, f"dave-{tag}"))
    eve = await Client.named(p2, f"eve-{tag}")
    watcher = await Client.named(p2, f"wat-{tag}")
    await watcher.send(type="presence_watch", watch=True)
    names = set((await watcher.expect("presence"))["names"])
    ours = {c.name for c in (alice, bob, carol, dave, eve, watcher)}
    assert ours <= names, f"missing from presence before the trouble: {ours - names}"
    return {c.name.split("-")[0]: c for c in (alice, bob, carol, dave, eve, watcher)}


def presence_news(m: dict[str, Any]) -> bool:
    return bool(m["type"] in ("presence", "presence_changed"))


async def piped_member_comes_back(
    dave: Client, carol: Client, p2: RunningServer, room: str
) -> Client:
    """Once Redis answers again: dave's socket (piped P2 -> P1) was closed with 1012; he
    resumes on P2 and is seated again; carol saw no member_left."""
    heard, code = await heard_until_closed(dave, timeout=10)
    note(f"dave closed {code}")
    assert code == 1012, (code, heard)
    back, welcome = await resume_retrying(dave, p2)
    note("dave resumed")
    assert welcome["id"] == dave.id and welcome["resumed"]["room"] == room, welcome
    joined = await back.expect("joined")
    assert [m["id"] for m in joined["members"]] == [carol.id]
    resumed = await carol.until(
        lambda m: m["type"] == "member_resumed",
        skip=lambda m: m["type"] == "member_reconnecting",  # never member_left
    )
    assert resumed["member"]["id"] == dave.id
    await relays(back, carol, candidate=CANDIDATE)
    await relays(carol, back, candidate=CANDIDATE)
    return back


async def resume_retrying(client: Client, server: RunningServer) -> tuple[Client, dict[str, Any]]:
    """``client.resume(server=server)``, again while it is refused with ``bus_unavailable``
    (as clients do: just after an outage a process claims no room whose key is missing for
    a TTL, its home having maybe not re-asserted it yet)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while True:
        new = await Client.open(server, client.headers)
        await new.send(
            type="hello", versions=[1], name=client.name, reachable=True, resume=client.token
        )
        answer = await new.recv()
        if answer["type"] == "welcome":
            assert answer["resumed"] is not None, answer
            new.welcome = answer
            new.id, new.name, new.token = answer["id"], answer["name"], answer["resume_token"]
            new.tokens.append(new.token)
            return new, answer
        assert answer["type"] == "error" and answer["code"] == "bus_unavailable", answer
        assert loop.time() < deadline, "resumes refused with bus_unavailable for 10 s"
        note(f"{client.name}'s resume: bus_unavailable, again")
        await new.ws.close()
        await asyncio.sleep(0.2)


async def one_room_again(
    carol: Client, dave: Client, p1: RunningServer, p2: RunningServer, room: str
) -> tuple[Client, Client]:
    """After an outage during which the room's key expired: dave (piped P2 -> P1) is closed
    with 1012 and resumes on P2. Either P1 had re-asserted the room (dave is piped to it
    again), or P2 claimed it first and P1, finding it held there, hands carol over (1012):
    she resumes on P1 and is piped to P2. Either way they end up in one room at one home,
    with one chat sequence, and neither ever hears member_left. (carol, dave) now."""
    heard, code = await heard_until_closed(dave, timeout=10)
    assert code == 1012, (code, heard)
    assert "member_left" not in heard, heard
    dave2, welcome = await resume_retrying(dave, p2)
    assert welcome["id"] == dave.id and welcome["resumed"]["room"] == room, welcome
    members = [m["id"] for m in (await dave2.expect("joined"))["members"]]
    if members == [carol.id]:  # P1 is still the room's home
        note("dave piped to P1 again")
        resumed = await carol.until(
            lambda m: m["type"] == "member_resumed",
            skip=lambda m: m["type"] == "member_reconnecting",  # never member_left
        )
        assert resumed["member"]["id"] == dave.id
        carol2 = carol
    else:  # healed: P2 claimed the room first, P1 handed carol over
        note("the room moved to P2: carol is handed over")
        assert members == [], members
        heard, code = await heard_until_closed(carol, timeout=10)
        assert code == 1012, (code, heard)
        assert "member_left" not in heard, heard
        carol2, welcome = await resume_retrying(carol, p1)
        assert welcome["id"] == carol.id and welcome["resumed"]["room"] == room, welcome
        joined = await carol2.expect("joined")
        assert [m["id"] for m in joined["members"]] == [dave.id], joined
        back = await dave2.until(
            lambda m: m["type"] in ("member_joined", "member_resumed"),
            skip=lambda m: m["type"] == "resume_token",
        )
        assert back["member"]["id"] == carol.id, back

    # A room rebuilt at P2 may have passed its host role on (room_state): nothing else.
    def host_news(m: dict[str, Any]) -> bool:
        return bool(m["type"] == "room_state")

    for sender, receiver in ((dave2, carol2), (carol2, dave2)):
        await sender.send(type="signal", to=receiver.id, candidate=CANDIDATE)
        got = await receiver.until(lambda m: m["type"] == "signal", skip=host_news)
        assert got["from"] == sender.id and got["candidate"] == CANDIDATE, got
    await carol2.send(type="chat", text="one room")
    chats = [await c.until(lambda m: m["type"] == "chat", skip=host_news) for c in (carol2, dave2)]
    assert {chat["text"] for chat in chats} == {"one room"}, chats
    assert len({chat["seq"] for chat in chats}) == 1, chats  # one room, one chat sequence
    return carol2, dave2


# ----------------------------------------------------------------------------- the tests


async def test_redis_stopped_then_started_again(
    nodes: tuple[RunningServer, RunningServer], salons: Cluster, tag: str
) -> None:
    p1, p2 = nodes
    c = await setup(p1, p2, tag)
    alice, bob, carol, dave, eve, watcher = (
        c[k] for k in ("alice", "bob", "carol", "dave", "eve", "wat")
    )

    salons.redis.stop()
    note("Redis stopped")
    await both_say(salons, DEGRADED)
    note("both degraded")

    # A room held here with all its members here goes on: signals and chat.
    await relays(alice, bob, candidate=CANDIDATE)
    await relays(bob, alice, candidate=CANDIDATE)
    await alice.send(type="chat", text="Redis is down")
    assert {(await m.expect("chat"))["seq"] for m in (alice, bob)} == {1}

    # What needs the other process gets a typed error naming the frame, and changes nothing.
    await refused(dave, "d1", type="chat", text="lost?")
    await refused(dave, "d2", type="signal", to=carol.id, candidate=CANDIDATE)
    await refused(eve, "e1", type="join", room=f"split-{tag}")
    await refused(eve, "e2", type="call", name=alice.name)
    await carol.silent(0.3)
    await alice.silent(0.1)
    # A presence list asked for now holds what this process knows: its own names only.
    await watcher.send(type="presence_watch", watch=True)
    message = await watcher.until(lambda m: m["type"] == "presence", skip=presence_news)
    assert watcher.name in message["names"] and alice.name not in message["names"], message

    salons.redis.start()  # the same port, empty
    note("Redis started")
    await both_say(salons, HEALTHY, timeout=10)
    note("both healthy")

    # The watcher is told the whole list again, the other process's names included.
    ours = {m.name for m in (alice, bob, carol, dave, eve, watcher)}

    def whole(m: dict[str, Any]) -> bool:
        return m["type"] == "presence" and ours <= set(m["names"])

    await watcher.until(whole, skip=presence_news, timeout=10)
    dave2 = await piped_member_comes_back(dave, carol, p2, f"split-{tag}")
    # And what was refused works now: eve joins the room held by P1.
    joined = await eve.join(f"split-{tag}")
    assert sorted(m["id"] for m in joined["members"]) == sorted([carol.id, dave.id])
    for member in (carol, dave2):
        assert (await member.expect("member_joined"))["member"]["id"] == eve.id
    await bob.send(type="chat", text="and back")  # the local room never noticed
    assert {(await m.expect("chat"))["seq"] for m in (alice, bob)} == {2}


async def test_a_hung_redis_hangs_no_request(
    nodes: tuple[RunningServer, RunningServer], salons: Cluster, tag: str
) -> None:
    p1, p2 = nodes
    c = await setup(p1, p2, tag)
    alice, bob, carol, dave, eve = (c[k] for k in ("alice", "bob", "carol", "dave", "eve"))

    key = {"Authorization": f"Bearer {await salons.api_key()}"}
    salons.redis.freeze()  # connections stay open, nothing answers
    note("Redis frozen")
    try:
        # At once, before any process has noticed: a join of a room held elsewhere.
        await within("a join needing Redis", refused(eve, "e1", type="join", room=f"split-{tag}"))
        async with salons.nodes[0].http(timeout=BOUND) as api:
            # The server API's list asks every process: typed 503, in bounded time.
            listed = await within("the server API's list", api.get("/api/v1/meetings", headers=key))
            assert listed.status_code == 503, listed.text
            assert listed.json()["detail"]["code"] == "bus_unavailable"
            assert listed.headers["Retry-After"] == "5"
        for node in salons.nodes:
            await within(f"{node.label}'s health", node.get("/api/v1/health", timeout=BOUND))

        async def degraded() -> bool:
            states = [await within("ready and health", bus_state(n)) for n in salons.nodes]
            return all(state == DEGRADED for state in states)

        await eventually(degraded, "both processes to say degraded", timeout=5)
        await within("a piped frame", refused(dave, "d1", type="chat", text="hung?"))
        await within("a call to a name elsewhere", refused(eve, "e2", type="call", name=alice.name))
        await within("a local room's chat", local_chat(alice, bob, "Redis hangs"))
        newcomer = await Client.open(p2)
        await newcomer.send(type="hello", versions=[1], name=f"new-{tag}", reachable=True)
        answer = await within("a fresh hello", newcomer.recv())
        assert answer["type"] == "welcome" or answer.get("code"), answer  # typed, whatever
        await carol.silent(0.2)
    finally:
        salons.redis.thaw()
        note("Redis thawed")

    await both_say(salons, HEALTHY, timeout=10)
    async with salons.nodes[0].http() as api:
        assert (await api.get("/api/v1/meetings", headers=key)).status_code == 200
    carol, dave = await one_room_again(carol, dave, p1, p2, f"split-{tag}")
    joined = await eve.join(f"split-{tag}")  # what was refused works now
    assert sorted(m["id"] for m in joined["members"]) == sorted([carol.id, dave.id])
    for member in (carol, dave):
        assert (await member.expect("member_joined"))["member"]["id"] == eve.id


async def local_chat(alice: Client, bob: Client, text: str) -> None:
    await alice.send(type="chat", text=text)
    assert (await alice.expect("chat"))["text"] == text
    assert (await bob.expect("chat"))["text"] == text


async def test_flushall_heals_within_a_few_heartbeats(
    nodes: tuple[RunningServer, RunningServer], salons: Cluster, tag: str
) -> None:
    p1, p2 = nodes
    room = f"flush-{tag}"
    alice, bob = await seated(room, (p1, f"alice-{tag}"), (p2, f"bob-{tag}"))
    keys = [
        f"salon:room:{room}",
        f"salon:member:{alice.id}",
        f"salon:member:{bob.id}",
        f"salon:name:{name_key(alice.name)}",
        f"salon:name:{name_key(bob.name)}",
    ]

    def all_there() -> list[str]:
        missing = [key for key in keys if not salons.exists(key)]
        if len(salons.keys("salon:proc:*")) != len(salons.nodes):
            missing.append("salon:proc:* (one per process)")
        return missing

    assert all_there() == [], "the keys this test watches are not the design's"
    assert resp(salons.redis.command("FLUSHALL")) == "OK"
    note("FLUSHALL")

    async def healed() -> bool:
        return not all_there()

    await eventually(healed, f"the keys back ({all_there()})", timeout=10 * HEARTBEAT)
    await both_say(salons, HEALTHY)

    # The room is still one room: signals cross, a newcomer on P2 joins it (not a new one).
    await relays(alice, bob, candidate=CANDIDATE)
    await relays(bob, alice, candidate=CANDIDATE)
    carol = await Client.named(p2, f"carol-{tag}")
    joined = await carol.join(room)
    assert sorted(m["id"] for m in joined["members"]) == sorted([alice.id, bob.id])
    for member in (alice, bob):
        assert (await member.expect("member_joined"))["member"]["id"] == carol.id
    # Names are still held across processes and listed whole.
    impostor = await Client.open(p2)
    await impostor.send(type="hello", versions=[1], name=alice.name, reachable=True)
    await impostor.error("name_taken")
    await carol.send(type="presence_watch", watch=True)
    names = set((await carol.expect("presence"))["names"])
    assert {alice.name, bob.name, carol.name} <= names, names
