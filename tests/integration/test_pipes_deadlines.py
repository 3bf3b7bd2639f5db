"""The deadlines and the sign-out of piped connections (issue #12, salon.server.pipes).

A piped member's socket is held by its front, its place by its home. The deadlines of a
connection hold for it as for a local one: the idle rule (``idle_greeted_seconds``, 4000)
is checked by the home, which alone knows whether the member is occupied, and it closes the
socket through the front; no hello in time (4000), the ping on silence and the dead peer
(4004) are the front's, which reads the socket. A sign-out (4006) closes the socket at the
front and ends the place at the home at once.

Two real servers in threads of this process over one throwaway ``redis-server``, as in
tests/integration/test_pipes.py (whose raw clients these tests use), each test with its own
limits, set low.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.peer import Peer
from tests.integration.redis import RedisServer, redis_server
from tests.integration.rest import same_origin_headers
from tests.integration.server import RunningServer, running_server, wait_bus_healthy
from tests.integration.test_pipes import (
    HEARTBEAT,
    SECRET,
    WAIT,
    Client,
    Refused,
    connect,
    hello,
    join,
    server_state,
    token_room,
)

QUIET: dict[str, Any] = {"handshake_burst": 1000, "handshakes_per_minute": 6000}


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        yield server


@contextlib.contextmanager
def pair(
    tmp_path: Path, redis: RedisServer, **limits: Any
) -> Iterator[tuple[RunningServer, RunningServer]]:
    """Two servers over ``redis`` (flushed first), one data folder, these ``limits``."""
    redis.command("FLUSHALL")
    options = {
        "redis_url": redis.url,
        "resume_secret": SECRET,
        "bus_heartbeat_seconds": HEARTBEAT,
        "accounts": {"ip_attempts_burst": 1000, "account_attempts_burst": 1000},
    }
    with (
        running_server(tmp_path, options=options, **QUIET, **limits) as one,
        running_server(tmp_path, options=options, **QUIET, **limits) as two,
    ):
        wait_bus_healthy(one, two)
        yield one, two


def piped_to(front: RunningServer, home: RunningServer) -> int:
    """How many sockets ``front`` holds whose members live at ``home``."""
    pipes, proc = server_state(front).pipes, server_state(home).bus.proc
    assert pipes is not None
    return sum(f.home == proc for f in list(pipes.fronts.values()))


async def piped_member(
    one: RunningServer, two: RunningServer, room: str
) -> tuple[Client, Client, contextlib.AsyncExitStack]:
    """A (socket and place on ``one``) in ``room``; B joined it from ``two``: piped to one."""
    stack = contextlib.AsyncExitStack()
    a = await stack.enter_async_context(connect(one, "A"))
    b = await stack.enter_async_context(connect(two, "B"))
    await hello(a, "Ann")
    await join(a, room)
    await hello(b, "Bob")
    await join(b, room)
    assert (await a.kind("member_joined", room=room))["member"]["id"] == b.id
    assert piped_to(two, one) == 1
    return a, b, stack


async def test_an_idle_piped_member_is_closed_4000_by_its_home(
    tmp_path: Path, redis: RedisServer
) -> None:
    with pair(tmp_path, redis, idle_greeted_seconds=1.0) as (one, two):
        a, b, stack = await piped_member(one, two, "idle-room")
        async with stack:
            b.send({"type": "leave"})  # still piped to one, now in no room: idle there
            await b.kind("left", room="idle-room")
            assert (await a.kind("member_left", room="idle-room"))["id"] == b.id
            assert await b.closed() == 4000
            # Closed as a local idle connection is: the place is kept for a resume.
            async with connect(two, "B2") as again:
                welcome = await hello(again, "Bob", resume=b.token)
                assert welcome["id"] == b.id and welcome["resumed"]["room"] is None
            # A, seated (occupied), outlived B's idle limit and is still served.
            a.send({"type": "ping", "ref": "still"})
            assert (await a.kind("pong"))["ref"] == "still"


async def test_a_piped_socket_without_a_hello_in_time_is_closed_4000_by_its_front(
    tmp_path: Path, redis: RedisServer
) -> None:
    with pair(tmp_path, redis, handshake_seconds=1.0) as (one, two):
        async with connect(one, "A") as a:
            await hello(a, "Ann")
            await join(a, "hello-room")
            async with connect(one, "B") as b:  # opened now: its hello deadline is short
                await hello(b, "Bob")
                await join(b, "hello-room")
                b.ws.goodbye()  # B's place ends; its room lives on at one
                assert (await a.kind("member_left", room="hello-room"))["id"] == b.id
        async with connect(two, "C") as c:
            # Its token names the room held at one: the resume is piped there, and refused.
            with pytest.raises(Refused, match="resume_failed"):
                await hello(c, "Bob", resume=b.token)
            assert piped_to(two, one) == 1  # piped, and not greeted: no hello in time
            assert await c.closed() == 4000


class Listener:
    """A :class:`Peer` read in the background, answering the server's pings, so that it is
    never closed for silence while the test waits on others."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            await self.messages.put(await self.peer.recv(timeout=3600))  # pings answered

    async def kind(self, kind: str, **fields: Any) -> dict[str, Any]:
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.messages.get()
                if message["type"] == kind and all(message.get(k) == v for k, v in fields.items()):
                    return message

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        await self.peer.close()


async def test_a_silent_piped_socket_is_pinged_then_closed_4004_by_its_front(
    tmp_path: Path, redis: RedisServer
) -> None:
    with pair(tmp_path, redis, ping_after_seconds=0.5, dead_after_seconds=1.5) as (one, two):
        a = Listener(await Peer.greeted(one, "Ann"))
        try:
            await a.peer.send(type="join", room="quiet-room")
            await a.kind("joined", room="quiet-room")
            async with connect(two, "B") as b:
                await hello(b, "Bob")
                await join(b, "quiet-room")
                assert piped_to(two, one) == 1
                await b.kind("ping")  # from the front: B never answers
                assert await b.closed() == 4004
            # Lost, not gone: its home keeps the place for a resume.
            away = await a.kind("member_reconnecting", room="quiet-room")
            assert away["id"] == b.id
        finally:
            await a.close()


async def sign_up(server: RunningServer, page: httpx.AsyncClient, username: str) -> str:
    """Sign ``username`` up through ``page``; its session cookie."""
    body = {"username": username, "password": "correct horse"}
    assert (await page.post("/api/v1/accounts", json=body)).status_code == 201
    return page.cookies["salon_session"]


async def signed_in(server: RunningServer, cookie: str) -> Peer:
    """A WebSocket to ``server`` signed in with the session ``cookie``."""
    headers = {"Cookie": f"salon_session={cookie}", "Origin": server.base_url}
    return await Peer.connect(server, additional_headers=headers)


async def until(peer: Peer, kind: str) -> dict[str, Any]:
    """The next message of ``kind`` (resume tokens included, kept in ``peer.token``)."""
    async with asyncio.timeout(WAIT):
        while (message := await peer.recv(tokens=True))["type"] != kind:
            pass
    return message


async def test_sign_out_of_a_piped_member_closes_4006_and_ends_its_place_at_its_home(
    tmp_path: Path, redis: RedisServer
) -> None:
    with pair(tmp_path, redis) as (one, two):
        async with (
            connect(one, "A") as a,
            httpx.AsyncClient(base_url=two.base_url, verify=two.ssl_context or False) as page,
        ):
            await hello(a, "Ann")
            await join(a, "signed-room")
            page.headers.update(await same_origin_headers(page, two.base_url))
            member = await signed_in(two, await sign_up(two, page, "nell"))
            welcome = await member.hello("ignored")
            assert welcome["account"]["username"] == "nell"
            first_token = member.token  # names no room
            await member.join("signed-room")  # moves to one, where the room lives
            await until(member, "resume_token")
            room_token = member.token
            assert token_room(room_token) == "signed-room"
            assert piped_to(two, one) == 1
            assert (await a.kind("member_joined", room="signed-room"))["member"]["id"] == member.id

            assert (await page.delete("/api/v1/session")).status_code == 204
            assert await member.closed_with() == 4006
            assert (await a.kind("member_left", room="signed-room"))["id"] == member.id

            # Its tokens are refused on both processes, even signed in to the account again.
            body = {"username": "nell", "password": "correct horse"}
            assert (await page.post("/api/v1/session", json=body)).status_code == 200
            cookie = page.cookies["salon_session"]
            for server, token in ((two, room_token), (one, room_token), (two, first_token)):
                again = await signed_in(server, cookie)
                try:
                    await again.send(type="hello", versions=[1], name="nell", resume=token)
                    await again.error("resume_failed")
                finally:
                    await again.close()


async def test_sign_out_on_another_process_closes_the_socket_4006(
    tmp_path: Path, redis: RedisServer
) -> None:
    """The REST call reaches process one; the socket is held by process two: the ended
    session is broadcast, and two closes it."""
    with pair(tmp_path, redis) as (one, two):
        async with (
            httpx.AsyncClient(base_url=two.base_url, verify=two.ssl_context or False) as page,
            httpx.AsyncClient(base_url=one.base_url, verify=one.ssl_context or False) as other,
        ):
            page.headers.update(await same_origin_headers(page, two.base_url))
            cookie = await sign_up(two, page, "otto")
            member = await signed_in(two, cookie)
            welcome = await member.hello("ignored")
            assert welcome["account"]["username"] == "otto"
            other.headers.update(await same_origin_headers(other, one.base_url))
            other.cookies.set("salon_session", cookie)
            assert (await other.delete("/api/v1/session")).status_code == 204
            assert await member.closed_with() == 4006
