"""Pipes between two Salon servers over one real Redis (issue #12, salon.server.pipes).

Two real servers (uvicorn, the ``salon serve`` config) run in threads of this process, sharing
one data folder and resume secret, over a throwaway ``redis-server``; raw WebSocket clients
talk to them. The end-to-end proofs with separate processes (kill -9 and all) are
tests/integration/test_scaling*.py; these pin the pipes themselves: a join or a call moves
the member to where the room or the callee lives, the room has one chat sequence across
processes, a piped member resumes through its front, and Redis trouble is ``bus_unavailable``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from salon.server.state import ServerState
from tests.integration.cluster import resp
from tests.integration.rawws import RawWebSocket
from tests.integration.redis import RedisServer, redis_server
from tests.integration.server import RunningServer, running_server, wait_bus_healthy

SECRET = "pipes-tests-share-this-resume-secret-0123456789"
WAIT = 10.0  # seconds any one expected message may take
# Keys live 3 heartbeats (1.5 s): the two servers share this test's process, and on a loaded
# machine a 0.6 s TTL (heartbeat 0.2 s) lapsed for a moment, so a join elsewhere claimed the room.
HEARTBEAT = 0.5


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@pytest.fixture
def pair(tmp_path: Path, redis: RedisServer) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two servers over ``redis`` (flushed first), one data folder."""
    redis.command("FLUSHALL")
    options = {
        "redis_url": redis.url,
        "resume_secret": SECRET,
        "bus_heartbeat_seconds": HEARTBEAT,
    }
    limits = {"handshake_burst": 1000, "handshakes_per_minute": 6000}
    with (
        running_server(tmp_path, options=options, **limits) as one,
        running_server(tmp_path, options=options, **limits) as two,
    ):
        wait_bus_healthy(one, two)
        yield one, two


class Client:
    """A raw WebSocket client speaking JSON; remembers everything it received."""

    def __init__(self, ws: RawWebSocket, label: str) -> None:
        self.ws = ws
        self.label = label
        self.seen: list[dict[str, Any]] = []
        self._unread: list[dict[str, Any]] = []
        self.id = ""
        self.token = ""

    def send(self, message: dict[str, Any]) -> None:
        self.ws.text(json.dumps(message))

    async def next(self, wanted: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first message (unread so far) that is ``wanted``; the others stay unread."""
        for i, message in enumerate(self._unread):
            if wanted(message):
                del self._unread[i]
                return message
        async with asyncio.timeout(WAIT):
            while True:
                text = await self.ws.recv()
                if text is None:
                    raise AssertionError(
                        f"{self.label}: closed {self.ws.close_code} waiting for {what}; "
                        f"seen {self.seen}"
                    )
                message = json.loads(text)
                self.seen.append(message)
                if message.get("type") == "resume_token":
                    self.token = message["token"]
                if wanted(message):
                    return message
                self._unread.append(message)

    async def kind(self, kind: str, **fields: Any) -> dict[str, Any]:
        return await self.next(
            lambda m: m.get("type") == kind and all(m.get(k) == v for k, v in fields.items()),
            f"{kind} {fields}",
        )

    async def closed(self) -> int | None:
        """Read to the end (noting tokens); the server's close code."""
        async with asyncio.timeout(WAIT):
            while (text := await self.ws.recv()) is not None:
                message = json.loads(text)
                self.seen.append(message)
                if message.get("type") == "resume_token":
                    self.token = message["token"]
        return self.ws.close_code


@contextlib.asynccontextmanager
async def connect(server: RunningServer, label: str) -> AsyncIterator[Client]:
    ws = await RawWebSocket.open("127.0.0.1", server.port, server.ssl_context)
    try:
        yield Client(ws, label)
    finally:
        ws.abandon()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(ws.writer.wait_closed(), WAIT)


async def hello(
    client: Client, name: str, *, reachable: bool = False, resume: str | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {"type": "hello", "versions": [1, 2], "name": name}
    if reachable:
        message["reachable"] = True
    if resume is not None:
        message["resume"] = resume
    client.send(message)
    welcome = await client.next(lambda m: m.get("type") in ("welcome", "error"), "welcome")
    if welcome["type"] == "error":
        raise Refused(welcome["code"])
    client.id, client.token = welcome["id"], welcome["resume_token"]
    return welcome


class Refused(Exception):
    """The server answered hello with an error (its code)."""


async def join(client: Client, room: str, ref: str = "j") -> dict[str, Any]:
    """Join ``room``; returns ``joined`` once the token naming the room arrived too."""
    client.send({"type": "join", "room": room, "ref": ref})
    joined = await client.kind("joined", room=room)
    await client.next(
        lambda m: m.get("type") == "resume_token" and token_room(m["token"]) == room,
        f"a token naming {room}",
    )
    return joined


def token_room(token: str) -> str | None:
    """The room a resume token names (salon.core.resume's format)."""
    payload = token.partition(".")[0]
    room = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["r"]
    return None if room is None else str(room)


async def test_piped_join_has_one_room_and_one_chat_sequence(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    one, two = pair
    async with connect(one, "A") as a, connect(two, "B") as b:
        await hello(a, "Ann")
        await join(a, "pipes-room")
        await hello(b, "Bob")
        joined = await join(b, "pipes-room")  # B's socket is on two; the room lives on one
        assert [m["id"] for m in joined["members"]] == [a.id]
        arrived = await a.kind("member_joined", room="pipes-room")
        assert arrived["member"]["id"] == b.id
        b.send({"type": "chat", "text": "from two", "id": "c1"})
        first = await a.kind("chat", text="from two")
        a.send({"type": "chat", "text": "from one", "id": "c2"})
        second = await b.kind("chat", text="from one")
        assert (first["seq"], second["seq"]) == (1, 2)
        # A ping is answered by the front, a frame with a ref by the home, in order.
        b.send({"type": "ping", "ref": 7})
        assert (await b.kind("pong"))["ref"] == 7


async def test_join_elsewhere_moves_out_of_the_room_here(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    one, two = pair
    async with connect(one, "A") as a, connect(two, "B") as b, connect(two, "C") as c:
        await hello(a, "Ann")
        await join(a, "room-on-one")
        await hello(b, "Bob")
        await join(b, "room-on-two")
        await hello(c, "Cid")
        await join(c, "room-on-two")
        await b.kind("member_joined", room="room-on-two")
        joined = await join(b, "room-on-one")  # moves B from two to one
        assert [m["id"] for m in joined["members"]] == [a.id]
        assert (await b.kind("left", room="room-on-two"))["room"] == "room-on-two"
        gone = await c.kind("member_left", room="room-on-two")
        assert gone["id"] == b.id
        # And back: B (piped to one) joins the room on two, where its socket is.
        back = await join(b, "room-on-two", ref="back")
        assert [m["id"] for m in back["members"]] == [c.id]
        assert (await a.kind("member_left", room="room-on-one"))["id"] == b.id


async def test_call_moves_the_caller_to_the_callee(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    one, two = pair
    async with connect(one, "A") as a, connect(two, "B") as b:
        await hello(a, "Alice", reachable=True)
        await hello(b, "Bobby", reachable=True)
        b.send({"type": "call", "name": "alice", "ref": "ring"})
        incoming = await a.kind("incoming_call")
        assert incoming["from"] == b.id and incoming["name"] == "Bobby"
        ringing = await b.kind("ringing")
        a.send({"type": "call_accept", "call": ringing["call"]})
        accepted = await b.kind("call_accepted")
        await a.kind("call_accepted")
        await b.kind("joined", room=accepted["room"])
        joined = await a.kind("joined", room=accepted["room"])  # seated second: sees B
        assert [m["id"] for m in joined["members"]] == [b.id]
        b.send({"type": "chat", "text": "hi", "id": "h1"})
        assert (await a.kind("chat", text="hi"))["seq"] == 1


async def test_a_piped_member_resumes_through_any_front(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    one, two = pair
    async with connect(one, "A") as a:
        await hello(a, "Ann")
        await join(a, "resume-room")
        async with connect(two, "B") as b:
            await hello(b, "Bob")
            await join(b, "resume-room")
            await a.kind("member_joined", room="resume-room")
            token = b.token
            b.ws.reset()  # lost: B is away at its home (one)
        assert (await a.kind("member_reconnecting", room="resume-room"))["id"] == b.id
        a.send({"type": "chat", "text": "while away", "id": "w1"})
        async with connect(two, "B2") as again:
            welcome = await hello(again, "Bob", resume=token)  # piped to one again
            assert welcome["id"] == b.id
            assert welcome["resumed"]["room"] == "resume-room"
            kept = await again.kind("chat", text="while away")
            assert kept["seq"] == 1
            await a.kind("member_resumed", room="resume-room")


async def test_redis_down_is_bus_unavailable_and_changes_nothing(
    pair: tuple[RunningServer, RunningServer], redis: RedisServer
) -> None:
    one, two = pair
    try:
        async with connect(one, "A") as a, connect(two, "B") as b:
            await hello(a, "Ann")
            await join(a, "held-on-one")
            await hello(b, "Bob")
            await join(b, "held-on-two")
            redis.stop()
            # A room held here still works without Redis; one held nowhere here does not.
            b.send({"type": "join", "room": "held-on-one", "ref": "far"})
            refused = await b.kind("error", ref="far")
            assert refused["code"] == "bus_unavailable"
            b.send({"type": "chat", "text": "still here", "id": "s1"})
            assert (await b.kind("chat", text="still here"))["seq"] == 1
    finally:
        redis.start()


async def bus_health(server: RunningServer) -> str:
    async with httpx.AsyncClient(verify=server.ssl_context or False) as http:
        answer = await http.get(f"{server.base_url}/api/v1/health")
    return str(answer.json()["bus"])


async def until_bus(server: RunningServer, wanted: str) -> None:
    """Poll ``/api/v1/health`` (another thread's state: no event to await here)."""
    async with asyncio.timeout(WAIT):
        while True:
            if await bus_health(server) == wanted:
                return
            await asyncio.sleep(0.05)


async def test_redis_back_restarts_piped_sockets_and_they_resume(
    pair: tuple[RunningServer, RunningServer], redis: RedisServer
) -> None:
    one, two = pair
    try:
        async with connect(one, "A") as a:
            await hello(a, "Ann")
            await join(a, "outage-room")
            async with connect(two, "B") as b:
                await hello(b, "Bob")
                await join(b, "outage-room")  # piped: socket on two, member on one
                await a.kind("member_joined", room="outage-room")
                redis.stop()
                await until_bus(two, "degraded")
                b.send({"type": "chat", "text": "lost?", "id": "x1", "ref": "x1"})
                assert (await b.kind("error", ref="x1"))["code"] == "bus_unavailable"
                redis.start()
                assert await b.closed() == 1012  # the pipe may have lost messages: resume
                token = b.token
            # Until every process is back (each resubscribes on its own), a resume may be
            # refused with bus_unavailable: the client tries again, as clients do.
            async with asyncio.timeout(WAIT):
                while True:
                    async with connect(two, "B2") as again:
                        try:
                            welcome = await hello(again, "Bob", resume=token)
                        except Refused as refused:
                            if str(refused) != "bus_unavailable":
                                raise
                            await asyncio.sleep(0.1)
                            continue
                    break
            assert welcome["id"] == b.id
            assert welcome["resumed"]["room"] == "outage-room"
            assert not [m for m in a.seen if m.get("type") == "chat"]  # "lost?" never sent
    finally:
        if redis.process is None:
            redis.start()


async def test_a_home_gone_closes_its_piped_sockets_1012(
    tmp_path: Path, redis: RedisServer
) -> None:
    redis.command("FLUSHALL")
    options = {"redis_url": redis.url, "resume_secret": SECRET, "bus_heartbeat_seconds": HEARTBEAT}
    with running_server(tmp_path, options=options) as two:
        with running_server(tmp_path, options=options) as one:
            async with connect(one, "A") as a:
                await hello(a, "Ann")
                await join(a, "orphan-room")
                b_cm = connect(two, "B")
                b = await b_cm.__aenter__()
                await hello(b, "Bob")
                await join(b, "orphan-room")  # piped to one
                await a.kind("member_joined", room="orphan-room")
        # one stopped: two hears of it and closes B with 1012; B's resume rebuilds on two.
        try:
            assert await b.closed() == 1012
        finally:
            await b_cm.__aexit__(None, None, None)
        async with connect(two, "B2") as again:
            welcome = await hello(again, "Bob", resume=b.token)
            assert welcome["id"] == b.id
            assert welcome["resumed"]["room"] == "orphan-room"
            assert welcome["resumed"]["missed"] is True


def server_state(server: RunningServer) -> ServerState:
    """The state of a server running in a thread of this process (its app's)."""
    state: ServerState = server.server.config.app.state.salon
    return state


async def test_a_draining_home_closes_its_piped_members_1012(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    one, two = pair
    async with connect(one, "A") as a, connect(two, "B") as b:
        await hello(a, "Ann")
        await join(a, "drained-room")
        await hello(b, "Bob")
        await join(b, "drained-room")  # piped: socket on two, member on one
        state = server_state(one)
        assert state._watchdog is not None
        draining = asyncio.run_coroutine_threadsafe(state.drain(), state._watchdog.get_loop())
        await b.kind("server_draining")
        assert await b.closed() == 1012  # closed by one, through its front
        # one is draining: the room is taken over by two, where B's resume rebuilds it.
        async with connect(two, "B2") as again:
            welcome = await hello(again, "Bob", resume=b.token)
            assert welcome["id"] == b.id
            assert welcome["resumed"]["room"] == "drained-room"
        assert await a.closed() == 1012
        await asyncio.wrap_future(draining)


def ghost_room(redis: RedisServer, room: str) -> None:
    """Make ``room``'s home a process that looks alive but never answers."""
    ghost = "feedfeedfeed"
    redis.command("SET", f"salon:proc:{ghost}", "1", "PX", "30000")
    redis.command("SET", f"salon:room:{room}", ghost, "PX", "30000")


async def test_a_move_without_answer_is_bus_unavailable_then_1012(
    pair: tuple[RunningServer, RunningServer], redis: RedisServer
) -> None:
    _, two = pair
    ghost_room(redis, "ghost-room")
    async with connect(two, "B") as b:
        await hello(b, "Bob")
        b.send({"type": "join", "room": "ghost-room", "ref": "g"})
        refused = await b.kind("error", ref="g")  # after MOVE_TIMEOUT (5 s)
        assert refused["code"] == "bus_unavailable"
        assert await b.closed() == 1012
    async with connect(two, "B2") as again:  # the place released here is rebuilt
        welcome = await hello(again, "Bob", resume=b.token)
        assert welcome["id"] == b.id


async def test_frames_past_the_move_buffer_close_4002(
    pair: tuple[RunningServer, RunningServer], redis: RedisServer
) -> None:
    _, two = pair
    ghost_room(redis, "ghost-room-2")
    async with connect(two, "B") as b:
        await hello(b, "Bob")
        b.send({"type": "join", "room": "ghost-room-2", "ref": "g"})
        for i in range(65):  # MOVE_BUFFER is 64
            b.send({"type": "ping", "ref": i})
        assert await b.closed() == 4002


async def remotes_of(server: RunningServer, wanted: int) -> None:
    """Wait until ``server`` is home to ``wanted`` remote connections."""
    pipes = server_state(server).pipes
    assert pipes is not None
    async with asyncio.timeout(WAIT):
        while True:
            if len(pipes.remotes) == wanted:
                return
            await asyncio.sleep(0.05)


async def test_a_lost_gone_leaves_no_ghost_at_the_home(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    """Two's ``gone`` is dropped on the way: one's next push for that connection is
    answered ``gone`` by two, which no longer pipes it, and one forgets it."""
    one, two = pair
    bus = server_state(two).bus
    async with connect(one, "A") as a:
        await hello(a, "Ann")
        await join(a, "ghost-room")
        async with connect(two, "B") as b:
            await hello(b, "Bob")
            await join(b, "ghost-room")
            await a.kind("member_joined", room="ghost-room")
            await remotes_of(one, 1)
            send = bus.send

            def lossy(proc: str, envelope: dict[str, Any]) -> bool:
                return False if envelope.get("k") == "gone" else send(proc, envelope)

            bus.send = lossy  # type: ignore[method-assign]
        try:
            pipes = server_state(two).pipes
            assert pipes is not None
            async with asyncio.timeout(WAIT):
                while True:  # until B's socket ended at two, its gone lost
                    if not pipes.fronts:
                        break
                    await asyncio.sleep(0.05)
        finally:
            bus.send = send  # type: ignore[method-assign]
        assert len(server_state(one).pipes.remotes) == 1  # type: ignore[union-attr]
        a.send({"type": "chat", "text": "anyone?", "id": "g1"})
        await remotes_of(one, 0)


@pytest.mark.parametrize(
    "text",
    [
        r'{"type":"j\u006fin","room":"escaped-room","ref":"e"}',
        r'{"\u0074ype" : "join","room":"escaped-room","ref":"e"}',
    ],
)
async def test_a_join_spelt_with_escapes_is_still_routed(
    pair: tuple[RunningServer, RunningServer], text: str
) -> None:
    one, two = pair
    async with connect(one, "A") as a, connect(two, "B") as b:
        await hello(a, "Ann")
        await join(a, "escaped-room")
        await hello(b, "Bob")
        b.ws.text(text)
        joined = await b.kind("joined", room="escaped-room")
        assert [m["id"] for m in joined["members"]] == [a.id]
        assert (await a.kind("member_joined", room="escaped-room"))["member"]["id"] == b.id


def test_the_peek_reads_only_what_may_be_routed() -> None:
    from salon.server.front import _peek

    sdp = json.dumps({"type": "signal", "to": "x", "data": {"sdp": "v=0\r\nа\u0001"}})
    assert "\\u" in sdp and _peek(sdp) is None
    assert _peek('{"type":"chat","text":"\\"type\\":\\"join\\""}') is None
    assert _peek('{"type" :\t"call","name":"x"}') is not None
    assert _peek(r'{"typ\u0065":"hell\u006f"}') is not None
    assert _peek('{"type":"join","type":"chat"}') is None  # the last key is the one read


async def resume_retrying(server: RunningServer, label: str, name: str, token: str) -> Client:
    """A new connection resuming ``token`` at ``server``, again while it is refused with
    ``bus_unavailable`` (as clients do); the caller closes it (``ws.abandon``)."""
    async with asyncio.timeout(WAIT):
        while True:
            ws = await RawWebSocket.open("127.0.0.1", server.port, server.ssl_context)
            client = Client(ws, label)
            try:
                welcome = await hello(client, name, resume=token)
                assert welcome["resumed"] is not None, welcome
            except Refused as refused:
                ws.abandon()
                if str(refused) != "bus_unavailable":
                    raise
                await asyncio.sleep(0.1)
                continue
            except BaseException:
                ws.abandon()  # a failure or the deadline: no socket left for the collector
                raise
            return client


async def test_a_room_held_by_another_live_process_moves_its_members_there(
    pair: tuple[RunningServer, RunningServer], redis: RedisServer
) -> None:
    one, two = pair
    room = "lost-room"
    async with connect(one, "A") as a, connect(two, "B") as b:
        await hello(a, "Ann")
        await join(a, room)
        await hello(b, "Bob")
        await join(b, room)  # piped: socket on two, member on one
        await a.kind("member_joined", room=room)
        a.send({"type": "chat", "text": "before", "id": "c1"})
        assert (await b.kind("chat", text="before"))["seq"] == 1
        # Two live processes claimed the room (as after a Redis outage): two holds its key.
        owner = server_state(two).bus.proc
        assert resp(redis.command("SET", f"salon:room:{room}", owner, "PX", "30000")) == "OK"
        # one's heartbeat finds it so: the room's members here close with 1012 ...
        assert await a.closed() == 1012
        assert await b.closed() == 1012
    # ... and resume where the room lives now, in one room, whatever front they come to.
    a2 = await resume_retrying(one, "A2", "Ann", a.token)
    b2 = await resume_retrying(two, "B2", "Bob", b.token)
    try:
        # A came back first: the room was rebuilt at two with A alone, then B joined A.
        assert (await a2.kind("joined", room=room))["members"] == []
        assert [m["id"] for m in (await b2.kind("joined", room=room))["members"]] == [a.id]
        back = await a2.next(lambda m: m.get("type") in ("member_joined", "member_resumed"), "B")
        assert back.get("member", back).get("id") == b.id, back
        b2.send({"type": "chat", "text": "after", "id": "c2"})
        seqs = {(await c.kind("chat", text="after"))["seq"] for c in (a2, b2)}
        assert len(seqs) == 1, seqs  # one room, one chat sequence
        for client in (a, b, a2, b2):
            assert not [m for m in client.seen if m.get("type") == "member_left"], client.seen
        assert room not in server_state(one).hub.held_rooms()  # not held there any more
        assert room in server_state(two).hub.held_rooms()
        assert resp(redis.command("GET", f"salon:room:{room}")) == owner
    finally:
        a2.ws.abandon()
        b2.ws.abandon()
