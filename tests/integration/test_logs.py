"""Structured logs of ``salon serve`` as a real process (JSON lines, log level debug): after
a scripted session every stderr line parses, carries the ids it should, and no line holds a
password, a token, chat text or SDP."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, cast

import httpx

from tests.integration.peer import TIMEOUT, Peer
from tests.integration.rest import same_origin_headers
from tests.integration.server import RunningServer

SALON = Path(sys.executable).parent / "salon"

ACCOUNT_PASSWORD = "account-password-Zq81"
ROOM_PASSWORD = "room-password-Wm42"
CHAT_MARKER = "chat-marker-Kx77"
SDP_MARKER = "sdp-marker-Pv19"
BAD_FRAME_MARKER = "bad-frame-marker-Jd05"
QUERY_SECRET = "query-secret-Hn63"
REQUEST_ID = "test-request.id_42"


@dataclass(eq=False)
class Served:
    """``salon serve --http`` in a subprocess; quacks like a RunningServer for the clients."""

    port: int
    process: asyncio.subprocess.Process
    stderr: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    ssl_context = None

    def lines(self) -> list[str]:
        return self.stderr.read_text().splitlines()


class Keeping(Peer):
    """A peer that keeps every secret the server handed it: resume tokens and TURN
    credentials (shared by all peers of the test)."""

    secrets: ClassVar[set[str]] = set()

    async def recv(self, timeout: float = TIMEOUT, *, tokens: bool = False) -> dict[str, Any]:
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            for key in ("resume_token", "token"):
                if isinstance(message.get(key), str):
                    Keeping.secrets.add(message[key])
            for server in message.get("ice_servers") or []:
                if server.get("credential"):
                    Keeping.secrets.add(server["credential"])
            if message["type"] == "ping":
                await self.send(type="pong")
                continue
            if message["type"] == "resume_token":
                self.token = message["token"]
                if not tokens:
                    continue
            return message


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serve(data_dir: Path) -> AsyncIterator[Served]:
    """Start ``salon serve --http`` with JSON logs at debug; on exit, stop it with SIGTERM
    (nobody is connected by then: the drain ends at once) and wait for it."""
    port = free_port()
    env = {
        **os.environ,
        "SALON_LOG_FORMAT": "json",
        "SALON_LOG_LEVEL": "debug",
        "SALON_TURN_URLS": '["turn:turn.example.org:3478"]',
        "SALON_TURN_SECRET": "t" * 32,
        "SALON_DRAIN_SECONDS": "2",
    }
    stderr = data_dir / "stderr.log"
    with stderr.open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            str(SALON),
            *("serve", "--http", "--host", "127.0.0.1", "--port", str(port)),
            *("--data-dir", str(data_dir)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
    served = Served(port, process, stderr)
    try:
        await until_healthy(served)
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()


async def until_healthy(served: Served, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(base_url=served.base_url) as http:
        while loop.time() < deadline:
            assert served.process.returncode is None, "\n".join(served.lines())
            with contextlib.suppress(httpx.TransportError):
                if (await http.get("/api/v1/health")).status_code == 200:
                    return
            await asyncio.sleep(0.1)  # polling a process that is starting: no event to await
    raise AssertionError("salon serve did not answer:\n" + "\n".join(served.lines()))


async def settled(peer: Peer) -> None:
    """Wait until the server has handled what ``peer`` sent so far (a ping's pong)."""
    await peer.send(type="ping", ref="settled")
    while (message := await peer.recv())["type"] != "pong":
        assert message["type"] != "error", message


async def session(served: Served) -> tuple[set[str], str, str]:
    """The scripted session; returns the secrets the clients saw, alice's id and bob's."""
    server = cast(RunningServer, served)
    seen: set[str] = set()
    async with httpx.AsyncClient(base_url=served.base_url) as page:
        headers = await same_origin_headers(page, served.base_url)
        seen.add(headers["X-CSRF-Token"])
        body = {"username": "alice", "password": ACCOUNT_PASSWORD}
        created = await page.post(
            "/api/v1/accounts", json=body, headers={**headers, "X-Request-ID": REQUEST_ID}
        )
        assert created.status_code == 201
        assert created.headers["X-Request-ID"] == REQUEST_ID
        cookie = page.cookies["salon_session"]
        seen.add(cookie)
        refused = await page.post(
            "/api/v1/session",
            json={"username": "alice", "password": ACCOUNT_PASSWORD + "x"},
            headers={**headers, "X-Request-ID": "bad id with spaces"},
        )
        assert refused.status_code == 401
        assert refused.headers["X-Request-ID"] != "bad id with spaces"
        health = await page.get(f"/api/v1/health?token={QUERY_SECRET}")
        assert health.status_code == 200

    signed_in = {"Cookie": f"salon_session={cookie}", "Origin": served.base_url}
    alice = await Keeping.connect(server, additional_headers=signed_in)
    await alice.hello("ignored")
    bob = await Keeping.greeted(server, "bob")
    await alice.join("guarded")
    await alice.send(type="room_password", password=ROOM_PASSWORD)
    await settled(alice)
    await bob.send(type="join", room="guarded")
    await bob.error("wrong_password")
    await bob.join("guarded", password=ROOM_PASSWORD)
    await alice.send(type="chat", text=f"hello {CHAT_MARKER}")
    sdp = f"v=0\r\no=- {SDP_MARKER} 2 IN IP4 127.0.0.1\r\n"
    await alice.send(type="signal", to=bob.id, description={"type": "offer", "sdp": sdp})
    await alice.send_raw("{" + BAD_FRAME_MARKER)
    while (message := await alice.recv())["type"] != "error":
        pass  # member_joined, chat: what the session did so far
    assert message["code"] == "bad_json"

    # bob's network drops; he resumes with his token.
    bob.ws.transport.abort()
    resumed = await Keeping.connect(server)
    welcome = await resumed.hello("bob", resume=bob.token)
    assert welcome["resumed"] is not None
    for peer in (alice, resumed):
        await settled(peer)
        await peer.close()
    return seen, alice.id, bob.id


async def test_json_lines_with_ids_and_no_secrets(tmp_path: Path) -> None:
    Keeping.secrets.clear()
    async with serve(tmp_path) as served:
        seen, alice, bob = await session(served)
    assert served.process.returncode is not None
    raw = served.lines()
    lines = [json.loads(line) for line in raw]  # every line is one JSON object
    assert len(lines) > 10
    for line in lines:
        assert {"ts", "level", "logger", "message"} <= set(line), line
        assert line["ts"].endswith("Z")

    secrets = {
        ACCOUNT_PASSWORD,
        ROOM_PASSWORD,
        CHAT_MARKER,
        SDP_MARKER,
        BAD_FRAME_MARKER,
        QUERY_SECRET,
        *seen,
        *Keeping.secrets,
    }
    assert len(Keeping.secrets) >= 4  # resume tokens and TURN credentials were handed out
    leaks = [(secret, line) for line in raw for secret in secrets if secret in line]
    assert leaks == []

    # The REST call carries its request id (uvicorn's access line, query strings cut off).
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(line.get("request") == REQUEST_ID for line in access)
    assert all(len(line["request"]) <= 64 for line in access)
    assert any("/api/v1/health " in line["message"] for line in access)
    # Lines of a connection name it, its member and its room.
    alice_lines = [line for line in lines if line.get("member") == alice]
    assert alice_lines and all("conn" in line for line in alice_lines)
    assert any(line.get("room") == "guarded" for line in alice_lines)
    closes = [line for line in lines if line["message"].startswith("closed ")]
    assert {line.get("member") for line in closes} >= {alice, bob}
    assert all({"conn", "member", "room"} <= set(line) for line in closes), closes
    assert len({line["conn"] for line in closes}) == len(closes)  # one id per connection
    # The drain (SIGTERM) is no connection's, whichever context the signal came in.
    (drain,) = [line for line in lines if line["message"].startswith("draining")]
    assert not {"conn", "member", "room", "request"} & set(drain), drain
