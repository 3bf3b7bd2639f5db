"""Drain on SIGTERM, at the protocol level, against ``salon serve`` as a real process.

Not ready (503) while draining, health still 200, new WebSocket handshakes refused with 503,
every member told ``server_draining`` and closed with 1012, the closes spread over time, the
process gone when nobody is left (or at the deadline), and at once on a second SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import socket
import ssl
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.integration.server import RunningServer, client_ssl_context
from tests.integration.test_resume import Client

SALON = Path(sys.executable).parent / "salon"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(eq=False)
class Served:
    """``salon serve`` in a subprocess; quacks like a RunningServer for the test clients."""

    data_dir: Path
    port: int
    process: asyncio.subprocess.Process
    log: Path

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.port}/ws"

    @property
    def ssl_context(self) -> ssl.SSLContext:
        return client_ssl_context(self.data_dir)

    def as_server(self) -> RunningServer:
        return cast(RunningServer, self)

    def http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, verify=self.ssl_context, timeout=5)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.asynccontextmanager
async def serve(data_dir: Path, port: int | None = None, **env: str) -> AsyncIterator[Served]:
    """Start ``salon serve`` (TLS, its own self-signed certificate) and wait until
    ``/api/v1/health`` answers; kill it at the end if it is still running."""
    port = port or free_port()
    log = data_dir / f"serve-{port}-{secrets.token_hex(4)}.log"  # data_dir: the test's tmp_path
    environment = {**os.environ, "SALON_LOG_LEVEL": "warning", **env}
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            str(SALON),
            *("serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)),
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            env=environment,
        )
    served = Served(data_dir, port, process, log)
    try:
        await until_healthy(served)
        yield served
    finally:
        await Client.close_all()
        if process.returncode is None:
            process.kill()
            await process.wait()


async def until_healthy(served: Served, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        assert served.process.returncode is None, f"salon serve exited:\n{served.output()}"
        if (served.data_dir / "tls" / "cert.pem").exists():
            with contextlib.suppress(httpx.TransportError, ssl.SSLError):
                async with served.http() as http:
                    if (await http.get("/api/v1/health")).status_code == 200:
                        return
        await asyncio.sleep(0.1)  # polling a process that is starting: no event to await
    raise AssertionError(f"salon serve did not answer in {timeout} s:\n{served.output()}")


@dataclass(eq=False)
class Heard:
    """Everything one member heard until its socket closed, with arrival times."""

    messages: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    code: int | None = None
    closed_at: float = 0.0


async def listen(client: Client) -> Heard:
    heard = Heard()
    loop = asyncio.get_running_loop()
    try:
        while True:
            message = await client.recv(timeout=60)
            heard.messages.append((loop.time(), message))
    except ConnectionClosed as exc:
        heard.code = exc.rcvd.code if exc.rcvd else None
    heard.closed_at = loop.time()
    return heard


async def members(served: Served, rooms: int, per_room: int) -> list[Client]:
    clients = []
    for r in range(rooms):
        for m in range(per_room):
            client = await Client.named(served.as_server(), f"r{r}m{m}")
            await client.join(f"room-{r}")
            clients.append(client)
    return clients


async def settle(client: Client) -> None:
    """Read everything the server sent before now (a ping's pong comes after it all)."""
    ref = f"settle-{client.id}"
    await client.send(type="ping", ref=ref)
    await client.until(lambda m: m["type"] == "pong" and m["ref"] == ref, skip=lambda m: True)


async def ready_status(served: Served) -> tuple[int, int, str | None]:
    """(status of /ready, status of /health, Retry-After of /ready)."""
    async with served.http() as http:
        ready = await http.get("/api/v1/ready")
        health = await http.get("/api/v1/health")
    return ready.status_code, health.status_code, ready.headers.get("retry-after")


async def eventually(check: Callable[[], Any], timeout: float = 5) -> Any:
    """Poll an HTTP-visible state until ``check`` returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await check()
        if result or loop.time() > deadline:
            return result
        await asyncio.sleep(0.02)


async def refused_handshake(served: Served) -> InvalidStatus:
    try:
        ws = await connect(served.ws_url, ssl=served.ssl_context, open_timeout=5)
    except InvalidStatus as refused:
        return refused
    await ws.close()
    raise AssertionError("a WebSocket handshake was accepted while draining")


# ----------------------------------------------------------------------------- the tests

SPREAD = 2.0


async def test_sigterm_drains_then_exits_and_members_resume_after(tmp_path: Path) -> None:
    env = {"SALON_DRAIN_SPREAD_SECONDS": str(SPREAD), "SALON_DRAIN_SECONDS": "30"}
    async with serve(tmp_path, **env) as served:
        assert await ready_status(served) == (200, 200, None)
        clients = await members(served, rooms=2, per_room=4)
        for c in clients:  # every member_joined read before listening
            await settle(c)
        listeners = [asyncio.create_task(listen(c)) for c in clients]
        loop = asyncio.get_running_loop()
        began = loop.time()
        served.process.send_signal(signal.SIGTERM)

        async def draining() -> tuple[int, int, str | None] | None:
            status = await ready_status(served)
            return status if status[0] == 503 else None

        ready, health, retry_after = await eventually(draining)
        assert (ready, health) == (503, 200) and retry_after is not None
        refused = await refused_handshake(served)
        assert refused.response.status_code == 503
        assert refused.response.headers.get("retry-after") is not None

        heard = await asyncio.wait_for(asyncio.gather(*listeners), SPREAD + 10)
        await asyncio.wait_for(served.process.wait(), 10)
        exited = loop.time()

    for h in heard:
        # server_draining first; then, as the others of the room are closed (a drain keeps
        # the places), member_reconnecting for them.
        kinds = [m["type"] for _, m in h.messages]
        assert kinds[0] == "server_draining", kinds
        assert set(kinds[1:]) <= {"member_reconnecting"} and len(kinds) <= 4, kinds
        told = h.messages[0][1]
        assert isinstance(told["retry_after_ms"], int) and told["retry_after_ms"] >= 0
        assert h.code == 1012
        told_at = next(t for t, m in h.messages if m["type"] == "server_draining")
        assert told_at <= h.closed_at
    closes = sorted(h.closed_at - began for h in heard)
    retry_after = sorted({h.messages[0][1]["retry_after_ms"] for h in heard})
    print(f"drain: closes at {[round(c, 2) for c in closes]} s, retry_after_ms {retry_after},")
    print(f"  exit {exited - began:.2f} s after SIGTERM, code {served.process.returncode}")
    assert closes[-1] - closes[0] >= SPREAD / 3, f"closes not spread: {closes}"
    assert len({round(c, 2) for c in closes}) > 1, f"all at once: {closes}"
    assert closes[-1] <= SPREAD + 2, f"closes later than the spread: {closes}"
    assert exited - began - closes[-1] < 3, "the process lingered after the last member"
    assert served.process.returncode in (0, -signal.SIGTERM), served.output()
    assert "Traceback" not in served.output(), served.output()

    # The same place again on the restarted server: resume after 1012.
    async with serve(tmp_path, port=served.port) as again:
        for c in clients:
            back, welcome = await c.resume(server=again.as_server())
            assert welcome["id"] == c.id and welcome["resumed"]["room"] is not None
            assert welcome["resumed"]["missed"] is True
            assert (await back.expect("joined"))["room"] == welcome["resumed"]["room"]


async def test_a_second_sigterm_exits_at_once(tmp_path: Path) -> None:
    env = {"SALON_DRAIN_SPREAD_SECONDS": "20", "SALON_DRAIN_SECONDS": "30"}
    async with serve(tmp_path, **env) as served:
        clients = await members(served, rooms=1, per_room=4)
        for c in clients:
            await settle(c)
        served.process.send_signal(signal.SIGTERM)
        for c in clients:
            await c.until(lambda m: m["type"] == "server_draining", skip=lambda m: True)
        loop = asyncio.get_running_loop()
        began = loop.time()
        served.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(served.process.wait(), 5)
        took = loop.time() - began
        code = served.process.returncode
    print(f"second SIGTERM: exit code {code} after {took:.3f} s")
    # At once: not the drain's 20 s spread; the bound leaves room for the interpreter's own
    # shutdown on a loaded machine.
    assert took < 4, f"a second SIGTERM took {took:.2f} s"


async def test_the_drain_ends_at_its_deadline(tmp_path: Path) -> None:
    env = {"SALON_DRAIN_SPREAD_SECONDS": "20", "SALON_DRAIN_SECONDS": "2"}
    async with serve(tmp_path, **env) as served:
        clients = await members(served, rooms=1, per_room=4)
        for c in clients:
            await settle(c)
        listeners = [asyncio.create_task(listen(c)) for c in clients]
        loop = asyncio.get_running_loop()
        began = loop.time()
        served.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(served.process.wait(), 10)
        took = loop.time() - began
        heard = await asyncio.wait_for(asyncio.gather(*listeners), 5)
    assert 1.5 <= took <= 4, f"exited {took:.2f} s after SIGTERM, the deadline is 2 s"
    assert all(any(m["type"] == "server_draining" for _, m in h.messages) for h in heard)
    assert all(h.code in (1012, None) for h in heard), [h.code for h in heard]


async def test_with_nobody_connected_sigterm_exits_at_once(tmp_path: Path) -> None:
    async with serve(tmp_path, SALON_DRAIN_SPREAD_SECONDS="5") as served:
        loop = asyncio.get_running_loop()
        began = loop.time()
        served.process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(served.process.wait(), 10)
        took = loop.time() - began
    assert took < 2, f"an empty server took {took:.2f} s to drain"
