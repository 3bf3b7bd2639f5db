"""``salon serve --workers N`` as a real process tree, over plain HTTP on a free port, with a
real ``redis-server``: both workers answer on the one port (SO_REUSEPORT), a worker killed
outright is restarted, SIGTERM drains every worker and ends the tree with status 0, and
``--workers 2`` without ``SALON_REDIS_URL`` is refused with one line (docs/SCALING.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from salon.server.process import STEADY_SECONDS, Workers, restart_pause
from tests.integration.redis import RedisServer, redis_server

SALON = Path(sys.executable).parent / "salon"
START_SECONDS = 60.0  # generous: N Python processes starting at once on a loaded CI machine
DRAIN_SECONDS = 10.0  # SALON_DRAIN_SECONDS of the servers here
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def children(pid: int) -> set[int]:
    """The live (not zombie) processes whose parent is ``pid``, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]  # "pid (comm) state ppid ..."
        if int(ppid) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError):
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


async def eventually(probe: Callable[[], Awaitable[T | None]], timeout: float, what: str) -> T:
    """Poll ``probe`` (a process tree starting or restarting has no event to await) until
    it returns something other than None, for up to ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        found = await probe()
        if found is not None:
            return found
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


@dataclass(eq=False)
class Tree:
    """``salon serve --workers N`` running: the supervisor process and where it listens."""

    process: asyncio.subprocess.Process
    port: int
    log: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def workers(self) -> set[int]:
        return children(self.process.pid)

    async def get(self, path: str) -> httpx.Response | None:
        """``path`` over a fresh connection (the kernel picks a worker per connection);
        None while nothing listens."""
        try:
            async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as http:
                return await http.get(path)
        except httpx.TransportError:
            return None

    async def answering(self, count: int, timeout: float = START_SECONDS) -> dict[str, Any]:
        """Health bodies by process id, once ``count`` different processes answered."""
        seen: dict[str, Any] = {}

        async def probe() -> dict[str, Any] | None:
            assert self.process.returncode is None, f"salon serve exited:\n{self.output()}"
            answer = await self.get("/api/v1/health")
            if answer is not None and answer.status_code == 200:
                body = answer.json()
                seen[body["process"]] = body
            return seen if len(seen) >= count else None

        return await eventually(probe, timeout, f"{count} processes answer /api/v1/health")


@contextlib.asynccontextmanager
async def serve_workers(tmp_path: Path, count: int, **env: str) -> AsyncIterator[Tree]:
    """Start ``salon serve --workers count --http`` on a free port; kill the whole tree at
    the end if it is still there."""
    port = free_port()
    log = tmp_path / f"workers-{port}-{secrets.token_hex(4)}.log"
    environment = {
        **os.environ,
        "SALON_LOG_LEVEL": "warning",
        "SALON_DRAIN_SECONDS": str(DRAIN_SECONDS),
        "SALON_DRAIN_SPREAD_SECONDS": "0.5",
        **env,
    }
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            str(SALON),
            *("serve", "--workers", str(count), "--http", "--host", "127.0.0.1"),
            *("--port", str(port), "--data-dir", str(tmp_path / "data")),
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            env=environment,
        )
    tree = Tree(process, port, log)
    try:
        yield tree
    finally:
        if process.returncode is None:
            for pid in tree.workers():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.kill()
            await process.wait()


async def hello(ws: ClientConnection, name: str) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "hello", "versions": [1], "name": name}))
    while True:
        message: dict[str, Any] = json.loads(await ws.recv())
        if message["type"] != "ping":
            return message


async def heard_until_closed(ws: ClientConnection) -> tuple[list[str], int | None]:
    kinds = []
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            kinds.append(json.loads(raw)["type"])
    return kinds, ws.close_code


def test_a_worker_that_keeps_dying_is_restarted_ever_more_slowly() -> None:
    pauses: list[float] = []
    pause = None
    for _ in range(7):
        pause = restart_pause(pause, lived=0.5)
        pauses.append(pause)
    assert pauses == [1, 2, 4, 8, 16, 30, 30]  # never a tight loop
    assert restart_pause(30, lived=STEADY_SECONDS) == 1  # a worker that lived a minute


async def test_a_worker_that_cannot_serve_stops_them_all(tmp_path: Path) -> None:
    """Status 2 (settings it cannot serve) is not restarted: the others get SIGTERM and the
    supervisor returns 2. Here the first worker to start exits 2, the other waits."""
    lock = tmp_path / "first"
    script = f"if mkdir {lock}; then exit 2; else exec sleep 60; fi"
    workers = Workers(2, ["/bin/sh", "-c", script], os.environ)
    status = await asyncio.wait_for(workers.run(), 10)
    assert status == 2 and not workers.running


async def test_workers_without_redis_are_refused_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "SALON_REDIS_URL"}
    process = await asyncio.create_subprocess_exec(
        str(SALON),
        *("serve", "--workers", "2", "--http", "--port", str(free_port())),
        *("--data-dir", str(tmp_path / "data")),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    lines = err.decode().splitlines()
    assert len(lines) == 1 and "SALON_REDIS_URL" in lines[0], lines
    assert out == b""
    assert not (tmp_path / "data").exists()  # it started nothing


async def test_two_workers_answer_on_one_port_and_sigterm_drains_them_all(
    tmp_path: Path,
) -> None:
    with redis_server() as redis:
        async with serve_workers(tmp_path, 2, SALON_REDIS_URL=redis.url) as tree:
            bodies = await tree.answering(2)
            workers = tree.workers()
            assert len(workers) == 2, workers
            assert all(body["status"] == "ok" for body in bodies.values())
            # Members on both workers (the kernel spreads connections): each is drained.
            url, origin = f"ws://127.0.0.1:{tree.port}/ws", tree.base_url
            sockets = [await connect(url, origin=origin) for _ in range(6)]  # type: ignore[arg-type]  # websockets types Origin as a NewType
            for index, ws in enumerate(sockets):
                assert (await hello(ws, f"member-{index}"))["type"] == "welcome"
            listening = [asyncio.create_task(heard_until_closed(ws)) for ws in sockets]
            loop = asyncio.get_running_loop()
            began = loop.time()
            tree.process.send_signal(signal.SIGTERM)
            heard = await asyncio.wait_for(asyncio.gather(*listening), DRAIN_SECONDS + 5)
            code = await asyncio.wait_for(tree.process.wait(), DRAIN_SECONDS + 5)
            took = loop.time() - began
    print(f"SIGTERM: every worker drained, the tree exited {code} after {took:.2f} s")
    for kinds, close in heard:
        assert kinds[:1] == ["server_draining"] and close == 1012, (kinds, close)
    assert code == 0, tree.output()
    assert took < DRAIN_SECONDS, tree.output()
    assert not any(alive(pid) for pid in workers), "a worker outlived salon serve"
    assert "Traceback" not in tree.output(), tree.output()


async def test_a_worker_killed_outright_is_restarted(tmp_path: Path) -> None:
    with redis_server() as redis:
        async with serve_workers(tmp_path, 2, SALON_REDIS_URL=redis.url) as tree:
            before = await tree.answering(2)
            workers = tree.workers()
            victim = min(workers)
            loop = asyncio.get_running_loop()
            killed = loop.time()
            os.kill(victim, signal.SIGKILL)

            async def replaced() -> set[int] | None:
                now = tree.workers()
                return now if len(now) == 2 and victim not in now else None

            after = await eventually(replaced, START_SECONDS, "the killed worker is replaced")
            assert len(after & workers) == 1  # the other one was left alone
            # The new worker answers too, a process id not seen before, beside the other.
            seen = await tree.answering(2)
            answering = loop.time() - killed
            assert len(set(seen) - set(before)) == 1 and len(set(seen) & set(before)) == 1
            assert "restarting it in 1 s" in tree.output(), tree.output()
            tree.process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(tree.process.wait(), DRAIN_SECONDS + 5)
    print(f"SIGKILL of a worker: replaced, answering again {answering:.2f} s later")
    assert code == 0, tree.output()


async def test_the_workers_are_on_the_bus_and_say_when_it_is_degraded(tmp_path: Path) -> None:
    """Each worker is a process on the bus (its ``proc:`` key in Redis); with Redis gone,
    health stays 200 saying "degraded" and ready answers 503; back, "ok" again."""
    with redis_server() as redis:
        async with serve_workers(
            tmp_path, 2, SALON_REDIS_URL=redis.url, SALON_BUS_HEARTBEAT_SECONDS="0.2"
        ) as tree:
            bodies = await tree.answering(2)
            assert {body["bus"] for body in bodies.values()} == {"ok"}, bodies
            for proc in bodies:
                assert redis.command("EXISTS", f"salon:proc:{proc}") == b":1\r\n", proc
            redis.stop()
            await until_every_worker(tree, redis, ready=503, bus="degraded")
            redis.start()
            await until_every_worker(tree, redis, ready=200, bus="ok")


async def until_every_worker(tree: Tree, _redis: RedisServer, *, ready: int, bus: str) -> None:
    """Until both workers answer ``/api/v1/ready`` with ``ready`` and ``bus``, and health
    stays 200."""
    seen: set[str] = set()

    async def probe() -> bool | None:
        answer = await tree.get("/api/v1/ready")
        health = await tree.get("/api/v1/health")
        assert health is not None and health.status_code == 200
        if answer is not None and answer.status_code == ready and answer.json()["bus"] == bus:
            seen.add(answer.json()["process"])
        return True if len(seen) == 2 else None

    await eventually(probe, 20, f"both workers: ready {ready}, bus {bus}")
