"""The database goes away under a running server (RELIABILITY row 34): a real PostgreSQL
cluster of the test's own is stopped and started again, or hangs behind a TCP proxy that
stops forwarding. Chat sent meanwhile gets a typed error within the store's timeout and
reaches nobody; REST answers 503; nothing crashes and what needs no database goes on; when
the database is back, chat works again with its numbering unbroken. And `salon serve` with a
database it cannot reach says so and exits with status 3."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.integration.peer import Peer
from tests.integration.postgres import Cluster
from tests.integration.rest import same_origin_headers
from tests.integration.server import running_server
from tests.integration.test_hosts import heard
from tests.integration.test_resume import Client, account_headers


async def test_chat_and_rest_say_the_store_is_unavailable_then_recover(
    tmp_path: Path, cluster: tuple[Cluster, str]
) -> None:
    postgres, url = cluster
    with running_server(tmp_path, options={"database_url": url}) as server:
        ann = await Peer.greeted(server, "ann")
        bob = await Peer.greeted(server, "bob")
        await ann.join("r")
        await bob.join("r")
        await ann.send(type="chat", text="before", id="m1")
        assert (await bob.expect("chat"))["seq"] == 1
        await heard(ann)
        signed_in = await account_headers(server, "carla")

        postgres.stop()
        await ann.send(type="chat", text="while down", id="m2", ref="c2")
        error = await ann.expect("error")
        assert (error["code"], error["ref"]) == ("store_unavailable", "c2")
        assert await heard(bob) == []  # nobody got it
        async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as http:
            http.headers.update(await same_origin_headers(http, server.base_url))
            created = await http.post("/api/v1/rooms")
            assert created.status_code == 503
            assert created.json()["detail"]["code"] == "store_unavailable"
            assert created.headers["retry-after"] == "5"
            # The process is alive and serving what needs no database.
            assert (await http.get("/api/v1/health")).status_code == 200
        # A signed-in WebSocket handshake needs the database for its session: refused the same
        # way, before the upgrade.
        with pytest.raises(InvalidStatus) as refused:
            await connect(server.ws_url, ssl=server.ssl_context, additional_headers=signed_in)
        answer = refused.value.response
        assert (answer.status_code, answer.headers["Retry-After"]) == (503, "5")
        assert json.loads(answer.body)["detail"]["code"] == "store_unavailable"
        assert answer.headers["X-Content-Type-Options"] == "nosniff"  # the security headers
        async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as http:
            http.headers.update(await same_origin_headers(http, server.base_url))

            postgres.start()
            await ann.send(type="chat", text="while down", id="m2")  # the resend, same id
            again = await bob.expect("chat")
            assert (again["seq"], again["text"]) == (2, "while down")  # no gap, no repeat
            assert (await http.post("/api/v1/rooms")).status_code == 201
        await ann.close()
        await bob.close()


class HoldingProxy:
    """Forwards TCP from a free port of 127.0.0.1 to ``target``, in a thread of its own (the
    server starts while the test's loop is blocked). While held, it keeps every byte it reads
    (both ways, new connections too) and forwards nothing, as a hung database server or a
    stalled network does. Released, it forwards what it held, in order."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._flowing = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._thread.start()
        self._call(self._start())

    def hold(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def release(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.set)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, work: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(work, self._loop).result(10)

    async def _start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._link, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for end in (writer, up_writer):
                end.transport.abort()
                self._writers.discard(end)
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                chunk = await reader.read(65536)
                await self._flowing.wait()  # held: the chunk waits here, and so does the rest
                if not chunk:
                    writer.write_eof()
                    return
                writer.write(chunk)
                await writer.drain()
        except (OSError, RuntimeError):
            writer.transport.abort()


@contextlib.contextmanager
def holding_proxy(url: str) -> Iterator[tuple[HoldingProxy, str]]:
    """A started :class:`HoldingProxy` in front of the database at ``url``, and the URL that
    reaches the database through it."""
    parsed = make_url(url)
    assert parsed.host is not None and parsed.port is not None
    proxy = HoldingProxy(parsed.host, parsed.port)
    proxy.start()
    try:
        through = parsed.set(host="127.0.0.1", port=proxy.port)
        yield proxy, through.render_as_string(hide_password=False)
    finally:
        proxy.close()


async def test_a_hung_database_is_unavailable_within_the_timeout_then_recovers(
    tmp_path: Path, cluster: tuple[Cluster, str]
) -> None:
    _, direct = cluster
    timeout = 2.0  # every query has it, those before the hold too: room for a loaded machine
    with holding_proxy(direct) as (proxy, url):
        options = {"database_url": url, "store_timeout_seconds": timeout}
        with running_server(tmp_path, options=options) as server:
            ann = await Peer.greeted(server, "ann")
            bob = await Peer.greeted(server, "bob")
            await ann.join("r")
            await bob.join("r")
            # Not under test yet: on a loaded machine (CI, three workers) the first connections
            # through the proxy once took longer than the short timeout, and the chat got
            # store_unavailable. A client sends it again, as after any store_unavailable.
            await heard(ann)  # bob's member_joined
            before = await _resend_until_stored(ann, text="before", id="m1")
            assert before["seq"] == 1
            assert (await bob.expect("chat"))["seq"] == 1
            async with httpx.AsyncClient(
                base_url=server.base_url, verify=server.ssl_context
            ) as http:
                http.headers.update(await same_origin_headers(http, server.base_url))

                proxy.hold()
                started = time.monotonic()
                await ann.send(type="chat", text="while hung", id="m2", ref="c2")
                error = await ann.expect("error", timeout=timeout + 10)
                took = time.monotonic() - started
                assert (error["code"], error["ref"]) == ("store_unavailable", "c2")
                assert timeout * 0.9 <= took < timeout + 5, took  # the timeout, not a hang
                assert await heard(bob) == []  # nobody got it

                created = await http.post("/api/v1/rooms", timeout=timeout + 10)
                assert created.status_code == 503
                assert created.json()["detail"]["code"] == "store_unavailable"
                # What needs no database goes on: health, signals, pings.
                assert (await http.get("/api/v1/health")).status_code == 200
                await ann.send(type="signal", to=bob.id, reset={"reason": "ice_failed"})
                assert (await bob.expect("signal"))["from"] == ann.id
                await bob.alive()
                # A guest's hello checks its name against the accounts': a typed error, and
                # the socket stays open for another hello.
                cat = await Peer.connect(server)
                await cat.send(type="hello", versions=[1], name="cat")
                await cat.error("store_unavailable", timeout=timeout + 10)

                proxy.release()
                again = await _resend_until_stored(ann, text="while hung", id="m2")
                assert (again["seq"], again["client_id"]) == (2, "m2")
                got = await heard(bob)
                assert [(m["seq"], m["text"]) for m in got if m["type"] == "chat"] == [
                    (2, "while hung")
                ]  # stored once: no gap, no repeat
                assert (await http.post("/api/v1/rooms")).status_code == 201
                await _hello_until_welcome(cat, "cat")
            for peer in (ann, bob, cat):
                await peer.close()


async def test_a_resume_after_a_restart_waits_for_the_database(
    tmp_path: Path, cluster: tuple[Cluster, str]
) -> None:
    """A place rebuilt after a restart reads its room from the database (PROTOCOL.md
    `hello`): with the database down, ``store_unavailable``, the connection not greeted and
    nothing rebuilt; the same token works once the database is back, the member in its room.
    (It once resumed at once without a room: a member silently lost its seat.)"""
    postgres, url = cluster
    options = {"database_url": url}
    with running_server(tmp_path, options=options) as first:
        ann = await Client.named(first, "ann")
        await ann.join("r")
        ann.drop()  # no goodbye: the place would be held, but the server stops
        await ann.ws.wait_closed()  # the abort is done by this loop, which the stop blocks
    with running_server(tmp_path, options=options) as second:
        watching = await Client.named(second, "watcher")
        await watching.send(type="presence_watch", watch=True)
        assert (await watching.expect("presence"))["names"] == ["watcher"]
        postgres.stop()
        back = await Client.open(second)
        await back.send(type="hello", versions=[1], name="ann", resume=ann.token, ref="h1")
        assert (await back.error("store_unavailable"))["ref"] == "h1"
        # Nothing was rebuilt: ann is not online (watchers may have seen her for the moment
        # the room was read), and the watcher's fresh list says so.
        await watching.send(type="presence_watch", watch=True)
        listed = await watching.until(
            lambda m: m["type"] == "presence", skip=lambda m: m["type"] == "presence_changed"
        )
        assert listed["names"] == ["watcher"]
        postgres.start()
        welcome = await back.hello("ann", resume=ann.token)
        assert welcome["resumed"] == {"room": "r", "call": None, "missed": True}
        assert (await back.expect("joined"))["room"] == "r"
        changed = await watching.expect("presence_changed")
        assert (changed["name"], changed["online"]) == ("ann", True)
        for client in (back, watching):
            await client.ws.close()


async def _hello_until_welcome(peer: Peer, name: str) -> None:
    for _ in range(5):
        await peer.send(type="hello", versions=[1], name=name)
        message = await peer.recv(timeout=15)
        if message["type"] == "welcome":
            return
        assert (message["type"], message["code"]) == ("error", "store_unavailable"), message
    raise AssertionError("hello was never welcomed after the database came back")


async def _resend_until_stored(peer: Peer, **chat: str) -> dict[str, object]:
    """Send the chat again, as a client that keeps it does, until its own copy comes back; a
    connection the hang left broken may cost a try or two more."""
    for _ in range(5):
        await peer.send(type="chat", ref="again", **chat)
        message = await peer.recv(timeout=15)
        if message["type"] == "chat":
            return message
        assert (message["type"], message["code"]) == ("error", "store_unavailable"), message
    raise AssertionError("the chat was never stored after the database came back")


SALON = Path(sys.executable).parent / "salon"


@pytest.mark.parametrize("database", ["refuses", "never answers"])
def test_serve_without_its_database_exits_3_saying_why(tmp_path: Path, database: str) -> None:
    """`salon serve` tries its database for ``store_start_seconds`` (each try at most
    ``store_timeout_seconds``), then exits with status 3 and one line saying which database
    (never its password) and why: a service manager sees a failed start, not a crash loop
    with a traceback, and nothing listens meanwhile."""
    with socket.socket() as db:
        db.bind(("127.0.0.1", 0))
        if database == "never answers":
            db.listen(8)  # the kernel completes the TCP handshake; nothing ever reads
        db_port = db.getsockname()[1]
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        env = {
            **os.environ,
            "SALON_DATABASE_URL": f"postgresql+asyncpg://salon:s3cret@127.0.0.1:{db_port}/salon",
            "SALON_STORE_TIMEOUT_SECONDS": "0.5",
            "SALON_STORE_START_SECONDS": "2",
        }
        argv = [str(SALON), "serve", "--http", "--host", "127.0.0.1", "--port", str(port)]
        started = time.monotonic()
        done = subprocess.run(
            [*argv, "--data-dir", str(tmp_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        took = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    why = "no answer within 0.5 s" if database == "never answers" else "Connect call failed"
    said = done.stderr.strip().splitlines()[-1]
    shown = f"postgresql+asyncpg://salon:***@127.0.0.1:{db_port}/salon"
    assert said.startswith(f"salon: the database {shown} cannot be reached: "), output
    assert why in done.stderr, output
    assert "s3cret" not in output and "Traceback" not in output
    assert "Salon serving" not in output  # it never said it was serving
    assert 2 <= took < 30, took  # it tried for store_start_seconds, then gave up
