"""Several ``salon serve`` processes over one Redis (docs/SCALING.md), as the tests run them.

One throwaway ``redis-server`` (:mod:`tests.integration.redis`) and N real ``salon serve``
subprocesses (:class:`tests.e2e.faults.SalonProcess`: kill -9, start again on the same
port). The processes share one data folder, so one SQLite database and one TLS certificate,
and the resume secret is given to all of them (``SALON_RESUME_SECRET``) as a deployment
does; each listens on its own port and writes its own log (``p1.log``, ``p2.log``, ...).

The heartbeat is 0.2 s (``SALON_BUS_HEARTBEAT_SECONDS``), so Redis keys live 0.6 s and a
dead process is noticed within about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx

from salon.store.apikeys import SqlApiKeyRepository
from salon.store.database import open_database
from tests.e2e.faults import SalonProcess, http_status
from tests.integration.redis import RedisServer, redis_server
from tests.integration.server import RunningServer, client_ssl_context

RESUME_SECRET = "scaling-tests-share-this-resume-secret-0123456789"  # >= 32 characters
HEARTBEAT = 0.2  # seconds: keys live 3 x this
READY_SECONDS = 15.0  # how long a cluster may take to say ready again after a fault

T = TypeVar("T")

# Every process accepts many handshakes from 127.0.0.1 (all the tests' clients come from it).
QUIET_LIMITS = {
    "SALON_LIMITS__HANDSHAKE_BURST": "1000",
    "SALON_LIMITS__HANDSHAKES_PER_MINUTE": "6000",
}


class Node:
    """One Salon process of the cluster, quacking like a :class:`RunningServer` for the
    protocol clients of the tests (``ws_url``, ``ssl_context``, ``base_url``)."""

    def __init__(self, label: str, process: SalonProcess) -> None:
        self.label = label  # "P1", "P2", ...: for messages
        self.process = process

    def __repr__(self) -> str:
        return f"{self.label}({self.process.url})"

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def base_url(self) -> str:
        return self.process.url

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws"

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        if self.process.http:
            return None
        return client_ssl_context(self.process.data)

    def as_server(self) -> RunningServer:
        return cast(RunningServer, self)

    def http(self, timeout: float = 5.0) -> httpx.AsyncClient:
        verify: ssl.SSLContext | bool = self.ssl_context or False
        return httpx.AsyncClient(base_url=self.base_url, verify=verify, timeout=timeout)

    async def get(self, path: str, timeout: float = 5.0) -> tuple[int, dict[str, Any]]:
        """``GET path``: the status and the JSON body (``{}`` when it is not JSON)."""
        async with self.http(timeout) as http:
            response = await http.get(path)
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code, body if isinstance(body, dict) else {}

    def log(self) -> str:
        return self.process.log()

    def websockets_accepted(self) -> int:
        """How many WebSocket handshakes this process accepted (its access log, all runs)."""
        lines = self.log().splitlines()
        return sum(1 for line in lines if "WebSocket /ws" in line and "[accepted]" in line)

    def websockets_open(self) -> int:
        """How many WebSockets this process holds now, by its log: accepted minus closed
        (each connection's end is logged, at info level, as "closed <code> by ...")."""
        lines = self.log().splitlines()
        closed = sum(1 for line in lines if "salon.server.connection" in line and "closed " in line)
        return self.websockets_accepted() - closed


class Cluster:
    """The Redis and the Salon processes of one test module (or test)."""

    async def api_key(self) -> str:
        """A new server API key with every scope, in the database the processes share."""
        engine = await open_database(f"sqlite+aiosqlite:///{(self.data / 'salon.db').resolve()}")
        try:
            made = await SqlApiKeyRepository(engine).create("tests", (), int(time.time() * 1000))
        finally:
            await engine.dispose()
        return made.token

    def __init__(self, redis: RedisServer, nodes: list[Node], data: Path) -> None:
        self.redis = redis
        self.nodes = nodes
        self.data = data

    def up(self) -> None:
        """Whatever an earlier test did: Redis running and answering, every process running
        and ready (``/api/v1/ready`` 200) again."""
        if self.redis.process is None or self.redis.process.poll() is not None:
            self.redis.start()
        else:
            self.redis.thaw()  # harmless when it is not stopped
        for node in self.nodes:
            if not node.process.running():
                node.process.start()
        deadline = time.monotonic() + READY_SECONDS
        for node in self.nodes:
            while (status := _ready(node)) != 200:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{node} is not ready (last status {status})")
                time.sleep(0.05)  # polling other processes: no event to await

    def stop(self) -> None:
        for node in self.nodes:
            node.process.stop()

    def log_marks(self) -> list[int]:
        """Where each process's log ends now (for :meth:`print_logs`)."""
        return [len(node.log()) for node in self.nodes]

    def print_logs(self, marks: list[int]) -> None:
        """Print what each process logged since ``marks``, but the access lines: pytest shows
        it for a test that failed."""
        for node, mark in zip(self.nodes, marks, strict=True):
            lines = [
                line[:300]
                for line in node.log()[mark:].splitlines()
                if '"uvicorn.access"' not in line and "connection open" not in line
            ]
            print(f"----- {node.label} ({node.process.log_path}) since the test began -----")
            print("\n".join(lines[-60:]))

    # ------------------------------------------------------------------ Redis, as the tests see it

    def keys(self, pattern: str = "salon:*") -> list[str]:
        return [str(k) for k in resp(self.redis.command("KEYS", pattern)) or []]

    def exists(self, key: str) -> bool:
        return bool(resp(self.redis.command("EXISTS", key)) == 1)


@contextlib.contextmanager
def salon_cluster(
    folder: Path, count: int = 2, env: dict[str, str] | None = None, *, http: bool = False
) -> Iterator[Cluster]:
    """A Redis and ``count`` ``salon serve`` processes over it, started one after the other
    (the first creates the database and the certificate); all stopped afterwards. ``env`` is
    added to every process's environment."""
    with redis_server() as redis:
        data = folder / "data"
        data.mkdir(parents=True, exist_ok=True)
        environment = {
            "SALON_REDIS_URL": redis.url,
            "SALON_RESUME_SECRET": RESUME_SECRET,
            "SALON_BUS_HEARTBEAT_SECONDS": str(HEARTBEAT),
            **QUIET_LIMITS,
            **(env or {}),
        }
        nodes = [
            Node(f"P{i}", SalonProcess(data, environment, log_path=data / f"p{i}.log", http=http))
            for i in range(1, count + 1)
        ]
        cluster = Cluster(redis, nodes, data)
        try:
            for node in nodes:
                node.process.start()
            yield cluster
        finally:
            cluster.stop()


def _ready(node: Node) -> int | None:
    return http_status(f"{node.base_url}/api/v1/ready")


# ------------------------------------------------------------------------------- polling


async def eventually(
    check: Callable[[], Awaitable[T]], what: str, timeout: float = 5.0, every: float = 0.05
) -> T:
    """Poll ``check`` (another process's state: there is no event to await) until it returns
    something truthy; fail saying ``what`` and the last value at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}: last {value!r}")
        await asyncio.sleep(every)


async def bus_state(node: Node) -> tuple[int, str | None, int, str | None]:
    """``(ready status, ready's "bus", health status, health's "bus")`` of one process; a
    request that got no answer within 3 s counts as status 0."""
    try:
        ready, ready_body = await node.get("/api/v1/ready", timeout=3)
        health, health_body = await node.get("/api/v1/health", timeout=3)
    except httpx.HTTPError:
        return 0, None, 0, None
    return ready, ready_body.get("bus"), health, health_body.get("bus")


# ------------------------------------------------------------------------------- RESP


def resp(raw: bytes) -> Any:
    """The value of one RESP2 reply (``RedisServer.command``'s raw bytes): an int, a str,
    None, or a list of those; an error reply raises."""
    value, _rest = _parse(raw)
    return value


def _parse(raw: bytes) -> tuple[Any, bytes]:
    head, _, rest = raw.partition(b"\r\n")
    kind, body = head[:1], head[1:]
    if kind == b"+":
        return body.decode(), rest
    if kind == b"-":
        raise RuntimeError(f"redis: {body.decode()}")
    if kind == b":":
        return int(body), rest
    if kind == b"$":
        n = int(body)
        if n < 0:
            return None, rest
        return rest[:n].decode(), rest[n + 2 :]
    if kind == b"*":
        n = int(body)
        if n < 0:
            return None, rest
        items = []
        for _ in range(n):
            item, rest = _parse(rest)
            items.append(item)
        return items, rest
    raise RuntimeError(f"not a RESP reply: {raw[:80]!r}")


# ------------------------------------------------------------------------------- logs


def note(what: str) -> None:
    """Print ``what`` with the UTC time the processes' JSON log lines use, to read beside them."""
    print(f"{datetime.now(UTC):%H:%M:%S.%f}"[:-3], what)


def error_lines(log: str) -> list[str]:
    """The ERROR lines of a process log, text (``ERROR ...``) or JSON (``"level": "error"``)."""
    found = []
    for line in log.splitlines():
        if line.startswith("ERROR"):
            found.append(line)
        elif line.startswith("{"):
            with contextlib.suppress(ValueError):
                record = json.loads(line)
                if isinstance(record, dict) and str(record.get("level")).lower() in (
                    "error",
                    "critical",
                ):
                    found.append(line)
    return found
