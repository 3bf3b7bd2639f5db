"""The SDK's connection against an in-memory server: handshake, keepalive, resume and
reconnection (docs/PROTOCOL.md §2.1, §2.3, §2.7-§2.9)."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from salon.client import Client, ClientError, ConnectionLost, ServerError
from salon.client import client as client_module
from salon.client.connection import Pace
from salon.protocol import ErrorCode
from salon.protocol.messages import (
    ChatDelivered,
    Error,
    History,
    IceServer,
    IceServers,
    Resumed,
    ResumeTokenIssued,
    ServerDraining,
    ServerPing,
)
from tests.unit.client_fake import FakeServer, FakeSocket, Frame, chat, joined, seat

pytestmark = pytest.mark.timeout(30)


async def connected(server: FakeServer, **options: bool) -> Client:
    client = Client("https://salon.test", " Ada ", connector=server.connector, **options)
    await client.connect()
    return client


async def test_hello_offers_versions_1_and_2_and_welcome_fills_the_client() -> None:
    server = FakeServer()
    client = await connected(server, reachable=True)
    assert server.frames("hello") == [
        {"type": "hello", "versions": [1, 2], "name": " Ada ", "reachable": True}
    ]
    assert (client.id, client.name, client.version, client.room) == ("m1", "Ada", 2, None)
    await client.close()
    assert server.socket.closed_by_client == 1000  # a goodbye (§2.7)
    assert client.lost is not None


async def test_a_version_1_server_is_spoken_to_in_version_1() -> None:
    server = FakeServer(version=1)
    client = await connected(server)
    assert client.version == 1
    await client.close()


async def test_a_refused_hello_raises_the_servers_error_and_closes() -> None:
    server = FakeServer()
    server.on(
        "hello",
        lambda s, f: s.push(Error(code=ErrorCode.NAME_TAKEN, message="taken", ref=None)),
    )
    client = Client("https://salon.test", "Ada", connector=server.connector)
    with pytest.raises(ServerError) as refused:
        await client.connect()
    assert refused.value.code == "name_taken"
    assert refused.value.known_code is ErrorCode.NAME_TAKEN
    assert server.socket.closed_by_client == 1000


async def test_an_unreachable_server_raises_connection_lost() -> None:
    server = FakeServer()
    server.refuse = 1
    with pytest.raises(ConnectionLost):
        await Client("https://salon.test", "Ada", connector=server.connector).connect()


async def test_recording_needs_version_2() -> None:
    server = FakeServer(version=1)
    client = Client("https://salon.test", "Rec", connector=server.connector, recording=True)
    with pytest.raises(ClientError, match="version 2"):
        await client.connect()
    assert server.socket.closed_by_client == 1000


async def test_recording_is_said_in_join_and_media_and_never_otherwise() -> None:
    server = FakeServer()
    server.on("join", seat())
    recorder = await connected(server, recording=True)
    await recorder.join("r")
    server.on("ping", lambda s, f: s.push({"type": "pong", "ref": f.get("ref")}))
    await recorder.set_media(mic=True)
    assert server.frames("join")[0]["media"] == {
        "mic": False,
        "camera": False,
        "screen": False,
        "recording": True,
    }
    media = server.frames("media")[0]
    assert (media["mic"], media["recording"]) == (True, True)

    plain = await connected(server)
    await plain.join("r")
    assert "recording" not in server.frames("join")[1]["media"]  # v1 servers refuse it
    await recorder.close()
    await plain.close()


async def test_a_server_ping_is_answered_with_pong() -> None:
    server = FakeServer()
    client = await connected(server)
    server.socket.push(ServerPing())
    assert await server.frame("pong") == {"type": "pong"}
    await client.close()


async def test_a_silent_server_is_pinged_then_the_socket_given_up_and_resumed() -> None:
    server = FakeServer(ping_after_seconds=0.2, dead_after_seconds=0.6)
    client = await connected(server)
    first = server.socket
    await server.frame("ping", timeout=2)
    await server.wait(lambda: len(server.sockets) == 2, "a new connection", 3)
    assert first.closed == 1006  # aborted: a socket on a lost network never closes by itself
    hello = await server.frame("hello", since=1)
    assert hello["resume"] == "m1:1"
    await client.close()


async def settle(server: FakeServer, client: Client, room: str = "r") -> FakeSocket:
    server.on("join", seat())
    await client.join(room)
    return server.socket


async def test_a_lost_socket_resumes_with_the_newest_token() -> None:
    server = FakeServer()
    client = await connected(server)
    socket = await settle(server, client)
    socket.push(ResumeTokenIssued(token="m1:newest"))
    await client.wait_for(ResumeTokenIssued)
    socket.cut(1006)
    hello = await server.frame("hello", since=1)
    assert hello["resume"] == "m1:newest"
    assert client.id == "m1"
    await client.close()


async def test_a_refused_reconnection_waits_its_retry_after() -> None:
    # §1.1: a 429 or 503 before the upgrade says when to come back (Retry-After); the next
    # attempt of the schedule (0.3 s) waits for it.
    server = FakeServer()
    client = await connected(server)
    socket = await settle(server, client)
    server.refuse, server.retry_after = 1, 1.5
    socket.cut(1006)
    await server.wait(lambda: len(server.sockets) == 2, "the resumed connection", 10)
    refused, accepted = server.attempt_times[-2:]
    assert accepted - refused >= 1.5
    await client.close()


def test_the_pace_stays_under_the_servers_rate() -> None:
    pace = Pace()
    assert pace.delay(0.0) == 0.0  # no limit known yet
    pace.reset(rate_per_second=50.0, rate_burst=200, now=100.0)
    sent = 0
    now = 100.0
    while now < 110.0:  # ten seconds of a sender that always has something
        wait = pace.delay(now)
        if wait == 0:
            sent += 1
        now += max(wait, 0.001)
    # Half the burst at once, then 90% of the rate: never over what the server allows.
    assert 100 + 45 * 10 - 2 <= sent <= 100 + 45 * 10 + 1
    assert sent < 200 + 50 * 10


async def test_frames_queued_while_away_go_out_at_the_servers_pace() -> None:
    # §2.4: past rate_burst at once the server closes with 4003, which ends the client.
    server = FakeServer(rate_per_second=20.0, rate_burst=10)
    client = await connected(server)
    socket = await settle(server, client)
    server.refuse = 1  # away a while
    socket.cut(1006)
    await server.wait(lambda: server.attempts == 2, "a refused attempt")
    chats = [asyncio.create_task(client.chat(f"{n}")) for n in range(25)]
    await server.wait(lambda: len(server.sockets) == 2, "the resumed connection", 3)
    started = time.monotonic()
    await server.wait(
        lambda: len([f for f in server.socket.frames if f["type"] == "chat"]) == 25,
        "all 25 chats",
        10,
    )
    # 5 at once, then 18 a second: the other 20 take at least a second.
    assert time.monotonic() - started >= 1.0
    for task in chats:
        task.cancel()
    await client.close()


async def test_what_is_sent_while_away_goes_out_after_the_resume() -> None:
    server = FakeServer()
    client = await connected(server)
    socket = await settle(server, client)
    server.refuse = 1  # the first reconnection attempt fails: the client is away a while
    socket.cut(1006)
    await server.wait(lambda: server.attempts == 2, "a refused attempt")
    sending = asyncio.create_task(client.chat("while away"))
    await server.wait(lambda: len(server.sockets) == 2, "the resumed connection", 3)
    sent = await server.frame("chat")
    assert server.socket.frames[0]["type"] == "hello"
    assert sent in server.socket.frames  # on the new connection, after its hello
    server.socket.push(chat("r", 1, "while away", sender="m1", client_id=sent["id"]))
    delivered = await sending
    assert delivered.seq == 1
    await client.close()


async def test_a_frame_over_max_frame_bytes_is_refused_here_and_never_sent() -> None:
    # Sent, the server would close the connection with 1009 and every resume would send the
    # frame again (§7: a client checks welcome.limits first).
    server = FakeServer()
    client = await connected(server)
    await settle(server, client)
    with pytest.raises(ClientError, match="max_frame_bytes"):
        await client.chat("x" * 70_000)
    sending = asyncio.create_task(client.chat("fits"))
    sent = await server.frame("chat")  # the first chat frame the server gets: frames keep order
    assert sent["text"] == "fits"
    server.socket.push(chat("r", 1, "fits", sender="m1", client_id=sent["id"]))
    assert (await sending).seq == 1
    await client.close()


async def test_after_a_resume_missed_chat_comes_from_history_in_order_once() -> None:
    server = FakeServer()
    client = await connected(server)
    socket = await settle(server, client)
    seen: list[int] = []
    client.on(ChatDelivered, lambda m: seen.append(m.seq))
    socket.push(chat("r", 1, "one"))
    await client.wait_for(ChatDelivered)
    socket.cut(1006)
    await server.wait(lambda: len(server.sockets) == 2, "the resumed connection")
    resumed = server.socket
    resumed.push(joined("r", last_seq=3))  # the snapshot (§2.8)
    history = await server.frame("history")
    assert history["since"] == 1
    entries = [chat("r", n, f"m{n}") for n in (2, 3)]
    resumed.push(History(room="r", messages=entries, more=False))
    resumed.push(chat("r", 3, "m3"))  # a duplicate: delivered once
    resumed.push(chat("r", 4, "m4"))
    await client.wait_for(ChatDelivered, lambda m: m.seq == 4)
    await server.wait(lambda: seen == [1, 2, 3, 4], f"chat 1-4 in order, got {seen}", 2)
    assert client.room == "r"
    await client.close()


async def test_chat_not_acknowledged_is_sent_again_with_the_same_id_after_a_resume() -> None:
    server = FakeServer()
    client = await connected(server)
    socket = await settle(server, client)
    sending = asyncio.create_task(client.chat("hello"))
    first = await server.frame("chat")
    socket.cut(1006)
    await server.wait(lambda: len(server.sockets) == 2, "the resumed connection")
    server.socket.push(joined("r"))
    again = await server.frame("chat", since=1)
    assert (again["id"], again["text"]) == (first["id"], "hello")
    server.socket.push(chat("r", 1, "hello", sender="m1", client_id=first["id"]))
    assert (await sending).client_id == first["id"]
    await client.close()


async def test_resume_failed_says_hello_anew_and_rejoins_the_room() -> None:
    server = FakeServer()
    client = await connected(server)
    server.on("join", seat())
    await client.join("r", password="secret")
    server.resume_ok = False
    server.socket.cut(1006)
    await server.wait(lambda: len(server.frames("join")) == 2, "the room joined again", 3)
    hellos = server.frames("hello")
    assert [h.get("resume") for h in hellos] == [None, "m1:1", None]
    assert server.frames("join")[1]["password"] == "secret"
    await server.wait(lambda: client.room == "r", "seated again")
    assert client.id == "m2"  # a new member (§2.8)
    await client.close()


async def test_a_resume_refused_bus_unavailable_is_tried_again_on_the_schedule() -> None:
    """``bus_unavailable`` (another server process could not be reached) is retryable: the
    socket is given up keeping the place (not 1000) and the next attempt, about 0.3 s later,
    resumes the same member with the same token (as web/src/signaling/client.ts does)."""
    server = FakeServer()
    client = await connected(server)
    server.on("join", seat())
    await client.join("r")
    refusals = [ErrorCode.BUS_UNAVAILABLE, ErrorCode.BUS_UNAVAILABLE]

    def flaky(socket: FakeSocket, frame: Frame) -> None:
        if refusals:
            socket.push(Error(code=refusals.pop(), message="try again", ref=None))
            return
        member = frame["resume"].split(":")[0]
        resumed = Resumed(room="r", call=None, missed=False)
        socket.push(server.welcome(member, frame["name"], max(frame["versions"]), resumed))

    server.on("hello", flaky)
    server.socket.cut(1006)
    await server.wait(lambda: len(server.frames("hello")) == 4, "the third resume", 5)
    refused = server.sockets[1:3]
    assert [s.closed_by_client for s in refused] == [4000, 4000]  # the place is kept
    gaps = [b - a for a, b in itertools.pairwise(server.attempt_times[1:])]
    assert 0.2 <= gaps[0] <= 0.7 and 0.8 <= gaps[1] <= 2.0  # 0.3 s, 1.2 s, ±30 %
    assert [h.get("resume") for h in server.frames("hello")[1:]] == ["m1:1"] * 3
    server.socket.push(joined("r"))
    await server.wait(lambda: client.room == "r", "seated again")
    assert client.id == "m1" and client.lost is None
    await client.close()


@pytest.mark.parametrize("code", ["invalid_name", "unsupported_version", "sign_in_required"])
async def test_a_resume_refused_for_good_gives_up(code: str) -> None:
    server = FakeServer()
    client = await connected(server)
    server.on(
        "hello", lambda s, f: s.push({"type": "error", "code": code, "message": "no", "ref": None})
    )
    server.socket.cut(1006)
    async with asyncio.timeout(5):
        await client.wait_closed()
    assert client.lost is not None and code in str(client.lost)
    assert server.attempts == 2 and server.socket.closed_by_client == 1000


@pytest.mark.parametrize("code", [4000, 4001, 4003, 4005, 4006])
async def test_no_reconnection_after_a_close_that_forbids_it(code: int) -> None:
    server = FakeServer()
    client = await connected(server)
    server.socket.cut(code)
    async with asyncio.timeout(5):
        await client.wait_closed()
    assert client.lost is not None and client.lost.code == code
    assert server.attempts == 1
    with pytest.raises(ConnectionLost):
        await client.join("r")


@pytest.mark.parametrize("code", [1001, 1006, 1011, 1012, 4002, 4004])
async def test_reconnects_after_a_close_that_keeps_the_place(code: int) -> None:
    server = FakeServer()
    client = await connected(server)
    server.socket.cut(code)
    hello = await server.frame("hello", since=1)
    assert hello["resume"] == "m1:1"
    assert client.lost is None
    await client.close()


async def test_reconnection_backs_off_then_gives_up_after_the_grace_window() -> None:
    # The third attempt comes 1.5 s (±30 %) after the first; a grace of 2.5 s leaves room for
    # a loaded machine's lag, and a fourth, at least 2.94 s after the first, cannot fit.
    server = FakeServer(resume_grace_seconds=2.5)
    client = await connected(server)
    server.refuse = 100
    lost_at = time.monotonic()
    server.socket.cut(1006)
    async with asyncio.timeout(5):
        await client.wait_closed()
    times = server.attempt_times[1:]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert times[0] - lost_at < 0.5  # at once (some slack for a loaded machine)
    assert 0.2 <= gaps[0] <= 0.7  # about 0.3 s, ±30 %
    assert 0.8 <= gaps[1] <= 2.0  # about 1.2 s, ±30 %
    assert len(times) == 3  # the next (about 2.7 s later) would pass the 2.5 s window
    assert client.lost is not None and "grace" in str(client.lost)


async def test_draining_waits_retry_after_before_resuming() -> None:
    server = FakeServer()
    client = await connected(server)
    server.socket.push(ServerDraining(retry_after_ms=400))
    await client.wait_for(ServerDraining)
    cut_at = time.monotonic()
    server.socket.cut(1012)
    await server.wait(lambda: len(server.sockets) == 2, "the resumed connection", 3)
    assert time.monotonic() - cut_at >= 0.4
    await client.close()


async def test_unknown_messages_are_ignored_and_unknown_error_codes_still_fail() -> None:
    server = FakeServer()
    client = await connected(server)

    def refuse(socket: FakeSocket, frame: Frame) -> None:
        socket.push({"type": "from_the_future", "x": 1})
        socket.push({"type": "error", "code": "brand_new", "message": "no", "ref": frame["ref"]})

    server.on("join", refuse)
    with pytest.raises(ServerError) as refused:
        await client.join("r")
    assert (refused.value.code, refused.value.known_code) == ("brand_new", None)
    await client.close()


async def test_turn_credentials_are_refreshed_at_half_their_life(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_module, "MIN_REFRESH_SECONDS", 0.05)  # 60 s in real life
    server = FakeServer()
    expiry = int(time.time()) + 1
    server.ice_servers = [
        IceServer(urls=["stun:s.test"]),
        IceServer(urls=["turn:t.test"], username=f"{expiry}:m1", credential="old"),
    ]
    fresh = [IceServer(urls=["turn:t.test"], username=f"{expiry + 3600}:m1", credential="new")]
    server.on("ice_refresh", lambda s, f: s.push(IceServers(ice_servers=fresh, ref=f["ref"])))
    client = await connected(server)
    await server.frame("ice_refresh", timeout=3)
    await server.wait(lambda: client.ice_servers == fresh, "the fresh credentials in use")
    assert client.configuration().iceServers[0].credential == "new"  # for new connections
    await client.close()


async def test_a_handler_may_close_the_client_and_the_handlers_after_it_still_run() -> None:
    server = FakeServer()
    client = await connected(server)
    seen: list[str] = []

    async def close_on_ping(message: ServerPing) -> None:
        seen.append("closing")
        await client.close()  # returns without waiting for the handlers (itself among them)
        seen.append("closed")

    client.on(ServerPing, close_on_ping)
    client.on(ServerPing, lambda message: seen.append("next handler"))
    server.socket.push(ServerPing(type="ping", ref=1))
    async with asyncio.timeout(2):  # not the 10 s the handlers are given to end
        await client.wait_closed()
    assert seen == ["closing", "closed", "next handler"]
    assert server.socket.closed_by_client == 1000
    await client.close()  # again, from outside: nothing left to do
