"""Signaling relay benchmark: Salon against a minimal Node ``ws`` relay, same workload.

Starts the server under test as a subprocess on a free 127.0.0.1 port, drives it from
``--workers`` load-generator processes (Python, ``websockets`` client), stops it and prints a
table. Phases per target (the first three by default):

1. throughput: ``--clients`` clients in rooms of ``--room-size``, each sending ICE-candidate
   signals (~250 B) round-robin to its room peers, at most ``--window`` unacknowledged
   (not yet delivered) per sender, for ``--duration`` seconds after ``--warmup``. Reports
   delivered messages/s and messages per server CPU-second (user+system, from psutil).
2. latency: the same layout at a fixed offered rate (``--rate`` msg/s in total, open loop).
   Each payload carries the sender's ``perf_counter_ns``; sender and receiver share a
   process, so the latency is one relay hop, client library overhead included.
3. idle memory: on a fresh server, RSS before and after ``--idle`` greeted (hello/welcome),
   silent connections, divided by their number; then everything is closed and opened again
   to see whether RSS keeps growing (a leak check).
4. soak: ``--soak-cycles`` cycles of opening ``--idle`` greeted connections and closing
   them all, RSS printed per cycle: does memory come back?

Salon's idle and soak phases run over WSS (TLS, as ``salon serve`` does by default), plain
WS, or both (``--idle-transport``); the Node relay speaks plain WS only.

Several processes (issue #12): ``--target salon2`` runs the load phases against two
``salon serve`` processes (plain WS) sharing one data folder (SQLite database) and one
``SALON_RESUME_SECRET``, with ``SALON_REDIS_URL`` naming a redis-server started for the run
(a free port, nothing saved, stopped at the end). ``--target scaling`` runs one process
("salon") and then two ("salon2") in the same invocation and reports the ratios and the issue's
targets: two processes deliver >= 1.7x one process's msg/s, and the cross-process relay adds
<= 1 ms at p99 at ``--rate`` (2,000 msg/s). Server CPU is the Salon processes' sum;
redis-server's CPU is reported apart, and messages per CPU-second with it included. Where the
clients go (``--layout``):

- ``spread`` (default): client i of every room connects to process i % 2, so every room spans
  both processes. The room's home is the process of its first joiner (client 0, process 0);
  the others' frames reach it over Redis, and its pushes go back over Redis: a relay from
  process 0 to 1 or 1 to 0 crosses Redis once, from 1 to 1 twice (1 -> home 0 -> 1).
- ``split``: the rooms are split between the processes, room j whole on process j % 2: no
  relay crosses Redis (what the bus costs when rooms stay on one process).

The load generator competes with the server for the machine's cores, so the fair
comparison between targets is messages per server CPU-second, not messages per second. (With
fewer cores than Salon processes, redis-server and load generators, two processes' msg/s
cannot scale; messages per Salon CPU-second times the processes says what enough cores give.)

Salon's per-connection rate limit (50 msg/s, burst 200) is raised for the run through
``SALON_LIMITS__RATE_PER_SECOND`` and ``SALON_LIMITS__RATE_BURST``, and so are the limits
per client address and per room (every load connection comes from 127.0.0.1), and the
deadlines before ``welcome`` (an overloaded machine must not drop greeters it is late for);
everything else is the default configuration, except ``SALON_LOG_LEVEL=warning`` (no
per-connection INFO lines).

Examples::

    .venv/bin/python bench/signaling.py                 # both targets, ~3 minutes
    .venv/bin/python bench/signaling.py --quick         # ~25 s smoke run
    .venv/bin/python bench/signaling.py --target salon --phases soak --idle-transport tls
    .venv/bin/python bench/signaling.py --target salon --phases idle --idle 10000 \
        --idle-transport tls                            # 10,000 WSS connections
    .venv/bin/python bench/signaling.py --target salon --phases throughput \\
        --profile /tmp/salon.pyspy.txt                  # py-spy during the measured window
    .venv/bin/python bench/signaling.py --target scaling        # 1 vs 2 processes, ~1.5 min
    .venv/bin/python bench/signaling.py --target scaling --layout split
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import resource
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import psutil
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from machine import describe
from redis_helper import RedisServer

ROOT = Path(__file__).resolve().parent.parent
NODE_RELAY = ROOT / "bench" / "node-relay"
RAISED_LIMITS = {
    "SALON_LIMITS__RATE_PER_SECOND": "1000000",
    "SALON_LIMITS__RATE_BURST": "1000000",
    # Every load connection comes from 127.0.0.1, which the per-address caps are made for.
    "SALON_LIMITS__MAX_CONNECTIONS_PER_ADDRESS": "1000000",
    "SALON_LIMITS__HANDSHAKE_BURST": "1000000",
    "SALON_LIMITS__ROOM_JOIN_BURST": "1000000",
    # Opening 10,000 TLS connections keeps a shared 2-core machine busy for minutes; the
    # deadlines before `welcome` must not drop greeters the overloaded server is late for.
    "SALON_LIMITS__HANDSHAKE_SECONDS": "120",
    "SALON_LIMITS__TLS_HANDSHAKE_SECONDS": "120",
    "SALON_LIMITS__REQUEST_SECONDS": "120",
    # The idle and soak phases hold greeted sockets in no room, which the server closes after
    # idle_greeted_seconds; and 10,000 of them are more than a small server's max_connections
    # is for.
    "SALON_LIMITS__IDLE_GREETED_SECONDS": "86400",
    "SALON_LIMITS__MAX_CONNECTIONS": "1000000",
}
CANDIDATE_CHARS = 153  # a ~250-byte signal in all
PHASES = ("throughput", "latency", "idle", "soak")
DEFAULT_PHASES = ("throughput", "latency", "idle")
LOAD_PHASES = ("throughput", "latency")
PROCESSES = 2  # Salon processes of the "salon2" target

# ----------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """One server under test: a subprocess on a free port, with its CPU time and RSS."""

    def __init__(
        self,
        target: str,
        workdir: Path,
        tag: str,
        salon_src: Path | None = None,
        *,
        tls: bool = False,
        data_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        """``target``: "salon" or "node". ``data_dir``: Salon's data folder (default: a new one
        for this server in ``workdir``; several processes may share one). ``extra_env``: more
        environment for the process."""
        self.target = target
        self.port = free_port()
        self.tls = tls and target == "salon"  # the Node relay speaks plain ws only
        self.url = f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}/ws"
        self.log_path = workdir / f"{target}-{tag}.log"
        data_dir = data_dir or workdir / f"data-{target}-{tag}"
        data_dir.mkdir(parents=True, exist_ok=True)
        # With TLS the clients trust exactly the self-signed certificate Salon makes here.
        self.cafile = str(data_dir / "tls" / "cert.pem") if self.tls else None
        env = dict(os.environ) | (extra_env or {})
        if target == "salon":
            env.update(RAISED_LIMITS)
            env["SALON_LOG_LEVEL"] = "warning"
            if salon_src is not None:  # a pinned copy of src/, ahead of the editable install
                env["PYTHONPATH"] = os.pathsep.join(
                    [str(salon_src), *filter(None, [env.get("PYTHONPATH")])]
                )
            cmd = [
                sys.executable,
                "-m",
                "salon.cli",
                "serve",
                *([] if self.tls else ["--http"]),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--data-dir",
                str(data_dir),
            ]
        else:
            node = shutil.which("node")
            if node is None:
                raise SystemExit("node is not on PATH")
            if not (NODE_RELAY / "node_modules" / "ws").is_dir():
                raise SystemExit(f"run `npm ci` in {NODE_RELAY} first")
            cmd = [node, str(NODE_RELAY / "relay.js"), "--host", "127.0.0.1"]
            cmd += ["--port", str(self.port)]
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        self.ps = psutil.Process(self.proc.pid)
        try:
            self._wait_listening()
        except BaseException:
            self.proc.kill()  # never leave a server behind
            self.proc.wait()
            self._log.close()
            raise

    def _wait_listening(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.target} exited early; see {self.log_path}:\n{self.log()}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                time.sleep(0.3)  # listening; let the lifespan finish
                return
            time.sleep(0.1)
        raise SystemExit(f"{self.target} did not listen within {timeout} s")

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return t.user + t.system

    def rss(self) -> int:
        return self.ps.memory_info().rss

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def problems(self) -> list[str]:
        """Errors in the server's log, counted: the log line and the exception it ended with."""
        found: Counter[str] = Counter()
        current = ""
        in_traceback = False
        for ln in self.log().splitlines():
            low = ln.lower()
            if ln.startswith("Traceback"):
                in_traceback = True
            elif in_traceback and ln and not ln[0].isspace():
                if not ln.startswith(("During handling", "The above exception")):
                    found[f"{current or 'traceback'} -> {ln.strip()}"] += 1
                    current, in_traceback = "", False
            elif not in_traceback and ("error" in low or "warning" in low):
                if current:
                    found[current] += 1
                current = ln.strip()
        if current:
            found[current] += 1
        return [f"{n} x {what}" for what, n in found.most_common()]


class Fleet:
    """What one target runs: its server processes (a load client connects to one of ``urls``)
    and, for several Salon processes, the redis-server between them. CPU and RSS are the
    servers' sums; redis-server's CPU is read apart (:meth:`redis_cpu`)."""

    def __init__(self, target: str, servers: list[Server], redis: RedisServer | None = None):
        self.target = target
        self.servers = servers
        self.redis = redis
        self.urls = [s.url for s in servers]
        self.cafile = servers[0].cafile

    def cpu_times(self) -> tuple[float, float]:
        """User and system CPU-seconds of the servers, summed."""
        times = [s.ps.cpu_times() for s in self.servers]
        return sum(t.user for t in times), sum(t.system for t in times)

    def redis_cpu(self) -> float:
        return self.redis.cpu() if self.redis is not None else 0.0

    def rss(self) -> int:
        return sum(s.rss() for s in self.servers)

    def stop(self) -> None:
        for s in self.servers:
            s.stop()
        if self.redis is not None:
            self.redis.stop()

    def problems(self) -> list[str]:
        if len(self.servers) == 1:
            return self.servers[0].problems()
        return [f"process {i}: {ln}" for i, s in enumerate(self.servers) for ln in s.problems()]


def start_fleet(target: str, args: argparse.Namespace, workdir: Path, tag: str) -> Fleet:
    """One server for "salon" and "node"; for "salon2" a redis-server and ``PROCESSES``
    ``salon serve`` processes over it, sharing one data folder (SQLite database) and one
    resume secret, as a deployment of several processes does."""
    if target != "salon2":
        return Fleet(target, [Server(target, workdir, tag, args.salon_src)])
    redis = RedisServer(workdir / f"redis-{tag}")
    env = {"SALON_REDIS_URL": redis.url, "SALON_RESUME_SECRET": secrets.token_hex(32)}
    data_dir = workdir / f"data-salon2-{tag}"
    servers: list[Server] = []
    try:
        for i in range(PROCESSES):  # one after the other: the first one migrates the database
            servers.append(
                Server(
                    "salon",
                    workdir,
                    f"{tag}-p{i}",
                    args.salon_src,
                    data_dir=data_dir,
                    extra_env=env,
                )
            )
        for s in servers:
            check_bus(s, needed=args.layout == "spread")
    except BaseException:  # never leave a process behind
        for s in servers:
            s.stop()
        redis.stop()
        raise
    return Fleet(target, servers, redis)


def check_bus(server: Server, *, needed: bool, timeout: float = 10.0) -> None:
    """Wait until ``/api/v1/health`` says the bus is "ok" (not "degraded"); a Salon without a
    bus ("none", or no such field) ignores SALON_REDIS_URL (each process alone): an error when
    rooms must span processes, else a warning."""
    url = f"http://127.0.0.1:{server.port}/api/v1/health"
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(url, timeout=5) as answer:
            bus = json.load(answer).get("bus")
        if bus in (None, "none"):  # a Salon before issue #12, or one whose bus is off
            what = f"this Salon has no bus (health: bus {bus!r}): rooms cannot span processes"
            if needed:
                raise SystemExit(f"{what}; try --layout split")
            print(f"  WARNING: {what}; the processes run alone", file=sys.stderr)
            return
        if bus != "degraded":
            return
        if time.monotonic() > deadline:
            raise SystemExit(
                f"the bus is still {bus!r} {timeout:g} s after start; see {server.log_path}"
            )
        time.sleep(0.1)


# ----------------------------------------------------------------------------- the clients


def payload(to: str, ts: int, ufrag: str) -> str:
    """An ICE-candidate signal of about 250 bytes; the candidate foundation is a timestamp."""
    head = f"candidate:{ts:020d} 1 udp 2122260223 192.168.100.123 54321 typ srflx raddr "
    tail = f"10.0.0.23 rport 54321 generation 0 ufrag {ufrag}"
    cand = (head + tail).ljust(CANDIDATE_CHARS, "x")
    return json.dumps(
        {
            "type": "signal",
            "to": to,
            "candidate": {"candidate": cand, "sdpMid": "0", "sdpMLineIndex": 0},
        },
        separators=(",", ":"),
    )


def stamp_of(msg: dict[str, Any]) -> int:
    return int(msg["candidate"]["candidate"][10:30])


@dataclass(eq=False)
class Client:
    name: str
    server: int = 0  # which of the worker's urls it connects to
    ws: ClientConnection | None = None
    id: str = ""
    peers: list[str] = field(default_factory=list)
    inflight: int = 0
    can_send: asyncio.Event = field(default_factory=asyncio.Event)
    welcomed: asyncio.Event = field(default_factory=asyncio.Event)
    joined: asyncio.Event = field(default_factory=asyncio.Event)
    full: asyncio.Event = field(default_factory=asyncio.Event)
    want_peers: int = 0
    sent: int = 0


@dataclass(eq=False)
class Worker:
    """One load-generator process's clients and counters."""

    urls: list[str]  # one per server process
    window: int = 16
    tls: ssl.SSLContext | None = None
    by_id: dict[str, Client] = field(default_factory=dict)
    clients: list[Client] = field(default_factory=list)
    measure_from: float = 0.0  # time.monotonic() bounds of the measured window
    measure_to: float = float("inf")
    stopping: bool = False
    closing: bool = False
    delivered: int = 0
    delivered_total: int = 0
    sent_in_window: int = 0
    latencies: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    closes: Counter[str] = field(default_factory=Counter)
    rx_bytes: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def open(self, c: Client, sem: asyncio.Semaphore) -> None:
        async with sem:
            c.ws = await connect(
                self.urls[c.server],
                compression=None,
                ping_interval=None,
                proxy=None,
                open_timeout=180,  # a loaded machine opening 10,000 TLS connections
                max_queue=None,
                ssl=self.tls,  # None: plain ws://
            )
            reading = asyncio.create_task(self.read(c))
            self.tasks.append(reading)
            await c.ws.send(json.dumps({"type": "hello", "versions": [1], "name": c.name}))
            welcomed = asyncio.create_task(c.welcomed.wait())
            await asyncio.wait({welcomed, reading}, timeout=180, return_when="FIRST_COMPLETED")
            if not welcomed.done():
                welcomed.cancel()
                raise RuntimeError(
                    f"{c.name}: no welcome (connection closed: {reading.done()},"
                    f" close code {c.ws.close_code}, reason {c.ws.close_reason!r})"
                )
        self.clients.append(c)
        self.by_id[c.id] = c

    async def read(self, c: Client) -> None:
        assert c.ws is not None
        try:
            async for raw in c.ws:
                msg = json.loads(raw)
                kind = msg["type"]
                if kind == "signal":
                    self.on_signal(msg, len(raw))
                elif kind == "welcome":
                    c.id = msg["id"]
                    c.welcomed.set()
                elif kind == "joined":
                    c.peers.extend(m["id"] for m in msg["members"])
                    c.joined.set()
                    if len(c.peers) >= c.want_peers:
                        c.full.set()
                elif kind == "member_joined":
                    c.peers.append(msg["member"]["id"])
                    if len(c.peers) >= c.want_peers:
                        c.full.set()
                elif kind == "error":
                    self.errors[msg.get("code", "?")] += 1
                elif kind == "ping":
                    await c.ws.send('{"type":"pong"}')
        except ConnectionClosed as exc:
            if not self.closing:
                rcvd = exc.rcvd
                self.closes[f"{rcvd.code} {rcvd.reason}" if rcvd else "no close frame"] += 1
        except Exception as exc:
            self.errors[f"client: {type(exc).__name__}: {exc}"] += 1

    def on_signal(self, msg: dict[str, Any], size: int) -> None:
        now = time.perf_counter_ns()
        sender = self.by_id.get(msg["from"])
        if sender is not None:
            sender.inflight -= 1
            if sender.inflight <= self.window // 2:
                sender.can_send.set()
        self.delivered_total += 1
        self.rx_bytes += size
        t = time.monotonic()
        if self.measure_from <= t < self.measure_to:
            self.delivered += 1
            self.latencies.append(now - stamp_of(msg))

    async def join_room(self, room: str, members: list[Client]) -> None:
        for c in members:
            assert c.ws is not None
            c.want_peers = len(members) - 1
            await c.ws.send(json.dumps({"type": "join", "room": room}))
            await asyncio.wait_for(c.joined.wait(), 60)
        for c in members:
            await asyncio.wait_for(c.full.wait(), 60)

    async def pump(self, c: Client, start_at: float) -> None:
        """Closed loop: send round-robin to the peers while fewer than ``window`` are unread."""
        assert c.ws is not None
        ws, ufrag, peers = c.ws, c.name[-4:], c.peers
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        i = 0
        while not self.stopping:
            if c.inflight >= self.window:
                c.can_send.clear()
                await c.can_send.wait()
                continue
            c.inflight += 1
            c.sent += 1
            await ws.send(payload(peers[i % len(peers)], time.perf_counter_ns(), ufrag))
            i += 1

    async def paced(self, c: Client, start_at: float, interval: float) -> None:
        """Open loop: one signal every ``interval`` seconds, whatever the answers do."""
        assert c.ws is not None
        ws, ufrag, peers = c.ws, c.name[-4:], c.peers
        due = start_at + secrets.randbelow(1_000_000) / 1_000_000 * interval
        i = 0
        while True:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self.stopping:
                return
            t = time.monotonic()
            if self.measure_from <= t < self.measure_to:
                self.sent_in_window += 1
            c.sent += 1
            await ws.send(payload(peers[i % len(peers)], time.perf_counter_ns(), ufrag))
            i += 1
            due += interval

    async def close_all(self) -> None:
        self.closing = True
        for c in self.clients:
            c.can_send.set()
        ws_list = [c.ws for c in self.clients if c.ws is not None]
        for i in range(0, len(ws_list), 100):
            await asyncio.gather(*(ws.close() for ws in ws_list[i : i + 100]))
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _worker(pipe: Pipe, cfg: dict[str, Any]) -> dict[str, Any]:
    cafile = cfg.get("cafile")
    tls = ssl.create_default_context(cafile=cafile) if cafile else None
    w = Worker(cfg["urls"], window=cfg.get("window", 16), tls=tls)
    sem = asyncio.Semaphore(50)
    phase, idx, tag = cfg["phase"], cfg["index"], cfg["tag"]
    rooms: list[list[Client]] = []
    if phase == "idle":
        clients = [Client(f"{tag}-w{idx}-i{i:05d}") for i in range(cfg["connections"])]
    else:
        k = cfg["room_size"]
        rooms = [[Client(f"{tag}-w{idx}-r{r}-m{m}") for m in range(k)] for r in range(cfg["rooms"])]
        clients = [c for room in rooms for c in room]
        n = len(w.urls)
        for r, room in enumerate(rooms):
            for m, c in enumerate(room):  # see --layout
                c.server = m % n if cfg["layout"] == "spread" else (cfg["first_room"] + r) % n
    await asyncio.gather(*(w.open(c, sem) for c in clients))
    room_tag = secrets.token_hex(3)
    await asyncio.gather(
        *(w.join_room(f"{tag}-{room_tag}-{idx}-{r}", m) for r, m in enumerate(rooms))
    )
    pipe.send(("ready", {"clients": len(clients), "pid": os.getpid()}))
    go: dict[str, Any] = await asyncio.get_running_loop().run_in_executor(None, pipe.recv)
    w.measure_from, w.measure_to = go["measure_from"], go["measure_to"]
    cpu0 = time.process_time()
    senders: list[asyncio.Task[None]] = []
    if phase == "throughput":
        senders = [asyncio.create_task(w.pump(c, go["start_at"])) for c in clients]
    elif phase == "latency":
        interval = len(clients) / cfg["rate"]
        senders = [asyncio.create_task(w.paced(c, go["start_at"], interval)) for c in clients]
    if senders:
        await asyncio.sleep(max(0.0, go["stop_at"] - time.monotonic()))
        w.stopping = True
        for c in clients:
            c.can_send.set()
        await asyncio.gather(*senders)
        # Let the last answers arrive (outside the window): until none is in flight, or 5 s.
        await asyncio.sleep(0.5)
        give_up = time.monotonic() + 4.5
        while phase == "throughput" and time.monotonic() < give_up:
            if not any(c.inflight > 0 for c in clients):
                break
            await asyncio.sleep(0.05)
    result = {
        "delivered": w.delivered,
        "delivered_total": w.delivered_total,
        "sent_total": sum(c.sent for c in clients),
        "sent_in_window": w.sent_in_window,
        "latencies": w.latencies,
        "errors": dict(w.errors),
        "closes": dict(w.closes),
        "rx_bytes": w.rx_bytes,
        "cpu": time.process_time() - cpu0,
    }
    if phase == "idle":
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)  # "close"
    await w.close_all()
    result["closes"] = dict(w.closes)
    return result


def _worker_main(pipe: Pipe, cfg: dict[str, Any]) -> None:
    try:
        result = asyncio.run(_worker(pipe, cfg))
        pipe.send(("done", result))
    except BaseException:
        pipe.send(("failed", traceback.format_exc()))


class Workers:
    """``n`` load-generator processes running one phase in step with the parent."""

    def __init__(self, n: int, cfgs: list[dict[str, Any]]) -> None:
        ctx = mp.get_context("fork")
        self.pipes: list[Pipe] = []
        self.procs: list[Any] = []
        for cfg in cfgs[:n]:
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(theirs, cfg), daemon=True)
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)

    def expect(self, kind: str, timeout: float = 900.0) -> list[Any]:
        out = []
        for pipe in self.pipes:
            if not pipe.poll(timeout):
                raise SystemExit(f"a load generator sent no {kind!r} within {timeout} s")
            got, body = pipe.recv()
            if got == "failed":
                raise SystemExit(f"a load generator failed:\n{body}")
            assert got == kind, (got, kind)
            out.append(body)
        return out

    def send(self, message: Any) -> None:
        for pipe in self.pipes:
            pipe.send(message)

    def cpu(self) -> float:
        total = 0.0
        for p in self.procs:
            with contextlib.suppress(psutil.Error):
                t = psutil.Process(p.pid).cpu_times()
                total += t.user + t.system
        return total

    def join(self) -> None:
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()


# ----------------------------------------------------------------------------- the phases


def percentile(sorted_ns: list[int], q: float) -> float:
    """Nearest-rank percentile in milliseconds."""
    if not sorted_ns:
        return float("nan")
    i = min(len(sorted_ns) - 1, max(0, round(q / 100 * len(sorted_ns) + 0.5) - 1))
    return sorted_ns[i] / 1e6


def busy_cores() -> float:
    """CPU-seconds the whole machine has spent busy (all processes, all cores)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0))


def wait_quiet(limit: float, cores: float) -> None:
    """On a shared machine: wait up to ``limit`` s for other processes to use < ``cores``."""
    deadline = time.monotonic() + limit
    while limit > 0:
        b0 = busy_cores()
        time.sleep(1.0)
        other = busy_cores() - b0  # our server and load generators are idle right now
        if other < cores:
            return
        if time.monotonic() > deadline:
            print(f"  (machine still busy: {other:.2f} cores used by others; measuring anyway)")
            return


def split_rooms(rooms: int, workers: int) -> list[int]:
    return [rooms // workers + (1 if i < rooms % workers else 0) for i in range(workers)]


def run_load(
    fleet: Fleet, args: argparse.Namespace, phase: str, duration: float, profile: str | None
) -> dict[str, Any]:
    rooms = args.clients // args.room_size
    n = min(args.workers, rooms)
    shares = split_rooms(rooms, n)
    cfgs = [
        {
            "urls": fleet.urls,
            "cafile": fleet.cafile,
            "phase": phase,
            "index": i,
            "tag": phase[:3],
            "rooms": r,
            "first_room": sum(shares[:i]),  # for --layout split: room j on process j % n
            "layout": args.layout,
            "room_size": args.room_size,
            "window": args.window,
            "rate": args.rate * r / rooms,
        }
        for i, r in enumerate(shares)
    ]
    workers = Workers(n, cfgs)
    workers.expect("ready")
    wait_quiet(args.quiet_wait, args.quiet_cores)
    now = time.monotonic()
    start_at = now + 0.3
    measure_from = start_at + args.warmup
    measure_to = measure_from + duration
    workers.send(
        {
            "start_at": start_at,
            "measure_from": measure_from,
            "measure_to": measure_to,
            "stop_at": measure_to,
        }
    )
    time.sleep(max(0.0, measure_from - time.monotonic()))
    (user0, kern0), rd0 = fleet.cpu_times(), fleet.redis_cpu()
    lg0, t0, sys0 = workers.cpu(), time.monotonic(), busy_cores()
    spy = start_profile(fleet, args, duration, profile)
    time.sleep(max(0.0, measure_to - time.monotonic()))
    (user1, kern1), rd1 = fleet.cpu_times(), fleet.redis_cpu()
    lg1, t1, sys1 = workers.cpu(), time.monotonic(), busy_cores()
    rss = fleet.rss()
    results = workers.expect("done")
    workers.join()
    if spy is not None:
        spy.wait(30)
    elapsed = t1 - t0
    lat = sorted(x for r in results for x in r["latencies"])
    delivered = sum(r["delivered"] for r in results)
    errors: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    for r in results:
        errors.update(r["errors"])
        closes.update(r["closes"])
    cpu = (user1 + kern1) - (user0 + kern0)  # every server process's
    redis_cpu = rd1 - rd0
    return {
        "clients": rooms * args.room_size,
        "rooms": rooms,
        "processes": len(fleet.servers),
        "seconds": elapsed,
        "delivered": delivered,
        "msgs_per_s": delivered / elapsed,
        "offered_per_s": sum(r["sent_in_window"] for r in results) / elapsed,
        "server_cpu_s": cpu,
        "server_cpu_util": cpu / elapsed,
        "server_sys_share": (kern1 - kern0) / cpu if cpu > 0 else float("nan"),
        "msgs_per_cpu_s": delivered / cpu if cpu > 0 else float("nan"),
        "redis_cpu_s": redis_cpu,
        "redis_cpu_util": redis_cpu / elapsed,
        "msgs_per_cpu_s_with_redis": delivered / (cpu + redis_cpu) if cpu > 0 else float("nan"),
        "loadgen_cpu_util": (lg1 - lg0) / elapsed,
        "other_cpu_util": max(0.0, (sys1 - sys0) - cpu - redis_cpu - (lg1 - lg0)) / elapsed,
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "p999_ms": percentile(lat, 99.9),
        "max_ms": lat[-1] / 1e6 if lat else float("nan"),
        "sent_total": sum(r["sent_total"] for r in results),
        "delivered_total": sum(r["delivered_total"] for r in results),
        "rx_bytes_avg": sum(r["rx_bytes"] for r in results)
        / max(1, sum(r["delivered_total"] for r in results)),
        "rss_under_load": rss,
        "errors": dict(errors),
        "closes": dict(closes),
    }


def idle_cycle(server: Server, args: argparse.Namespace, count: int, tag: str) -> int:
    """Open ``count`` greeted connections; return the RSS with them open; close them."""
    n = max(1, min(args.workers, count))
    share = [count // n + (1 if i < count % n else 0) for i in range(n)]
    cfgs = [
        {
            "urls": [server.url],
            "cafile": server.cafile,
            "phase": "idle",
            "index": i,
            "tag": tag,
            "connections": s,
        }
        for i, s in enumerate(share)
    ]
    workers = Workers(n, cfgs)
    workers.expect("ready")
    workers.send({"start_at": 0.0, "measure_from": 0.0, "measure_to": 0.0, "stop_at": 0.0})
    time.sleep(args.settle)
    rss = server.rss()
    workers.send("close")
    results = workers.expect("done")
    workers.join()
    for r in results:
        if r["closes"] or r["errors"]:
            print(f"  idle {tag}: closes {r['closes']} errors {r['errors']}", file=sys.stderr)
    return rss


def run_idle(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    idle_cycle(server, args, 50, "warm")  # lazy imports and first-use caches
    time.sleep(args.settle)
    before = server.rss()
    with_open = idle_cycle(server, args, args.idle, "idl1")
    time.sleep(args.settle)
    after_close = server.rss()
    with_open_again = idle_cycle(server, args, args.idle, "idl2")
    time.sleep(args.settle)
    after_close_again = server.rss()
    return {
        "connections": args.idle,
        "rss_before": before,
        "rss_open": with_open,
        "rss_per_conn": (with_open - before) / args.idle,
        "rss_after_close": after_close,
        "rss_open_again": with_open_again,
        "rss_after_close_again": after_close_again,
        "growth_per_cycle": after_close_again - after_close,
    }


def run_soak(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    """``--soak-cycles`` cycles of opening ``--idle`` greeted connections and closing them
    all, printing RSS with them open and ``--soak-settle`` s after the close, per cycle."""
    idle_cycle(server, args, 50, "warm")
    time.sleep(args.settle)
    before = server.rss()
    print(f"  RSS before: {before / 2**20:.1f} MB")
    cycles = []
    for i in range(args.soak_cycles):
        opened = idle_cycle(server, args, args.idle, f"sk{i}")
        time.sleep(args.soak_settle)
        closed = server.rss()
        cycles.append({"rss_open": opened, "rss_after_close": closed})
        print(
            f"  cycle {i + 1}: {opened / 2**20:.1f} MB open"
            f" ({(opened - before) / args.idle / 1024:.1f} KB per connection),"
            f" {closed / 2**20:.1f} MB after close",
            flush=True,
        )
    half = len(cycles) // 2
    return {
        "connections": args.idle,
        "rss_before": before,
        "cycles": cycles,
        # the plateau: the later half's highest open RSS against the earlier half's
        "late_minus_early_open": max(c["rss_open"] for c in cycles[half:])
        - max(c["rss_open"] for c in cycles[:half] or cycles),
    }


# ----------------------------------------------------------------------------- profiling


def start_profile(
    fleet: Fleet, args: argparse.Namespace, duration: float, out: str | None
) -> subprocess.Popen[bytes] | None:
    """py-spy on Salon's process for the measured window (one process only)."""
    if out is None or fleet.target != "salon":
        return None
    server = fleet.servers[0]
    spy = args.py_spy or shutil.which("py-spy")
    if spy is None:
        raise SystemExit("--profile needs py-spy (pip install py-spy, or pass --py-spy PATH)")
    cmd = [spy, "record", "--pid", str(server.proc.pid), "--duration", str(max(1, int(duration)))]
    cmd += ["--rate", "250", "--format", "raw", "--nonblocking", "-o", out]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def frame_kind(frame: str) -> str:
    """Which package a py-spy frame ``func (path:line)`` belongs to."""
    path = frame.rsplit("(", 1)[-1]
    for key, kind in (
        ("salon/", "salon"),
        ("pydantic", "pydantic"),
        ("uvicorn/", "uvicorn"),  # before websockets/: uvicorn/protocols/websockets/...
        ("websockets/", "websockets"),
        ("starlette/", "starlette"),
        ("fastapi/", "fastapi"),
        ("asyncio/", "asyncio"),
        ("selectors", "asyncio"),
        ("json/", "json"),
        ("logging/", "logging"),
    ):
        if key in path:
            return kind
    return "other"


STAGES = (
    ("socket read + uvicorn/websockets frame parsing", "_SelectorSocketTransport._read_ready ("),
    ("decode_client (pydantic validate_json)", "decode_client ("),
    ("Hub.signal (builds the SignalRelay model)", "Hub.signal ("),
    ("Outgoing.text (encode, pydantic dump_json)", "Outgoing.text ("),
    ("starlette/uvicorn send_text (framing + write)", "WebSocket.send_text ("),
    ("  of which the write syscall (transport.write)", "_SelectorSocketTransport.write ("),
    ("outbox/writer wake-ups (Event, task switch)", "Event.wait ("),
)


def summarize_profile(path: str, top: int = 12) -> str:
    """Self and inclusive sample shares, per function, from py-spy's collapsed ("raw") output."""
    self_s: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        # "func (path:line)" -> "func (path)": one entry per function, not per line
        frames = [f.rsplit(":", 1)[0] + ")" for f in stack.split(";") if "(" in f]
        if not frames:
            continue
        count = int(n)
        total += count
        self_s[frames[-1]] += count
        kinds[frame_kind(frames[-1])] += count
        for f in set(frames):
            incl[f] += count
    if total == 0:
        return "profile: no samples"

    def share(prefix: str) -> int:
        return sum(v for f, v in incl.items() if f.startswith(prefix))

    lines = [f"py-spy: {total} samples of the busy server thread ({path})", "self time by package:"]
    lines += [f"  {v / total:6.1%}  {k}" for k, v in kinds.most_common()]
    lines.append("inclusive time by stage of a relay:")
    lines += [f"  {share(prefix) / total:6.1%}  {label}" for label, prefix in STAGES]
    lines.append(f"top {top} functions by self time:")
    lines += [f"  {v / total:6.1%}  {f}" for f, v in self_s.most_common(top)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- the report


def bench_target(target: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"target": target}
    if "throughput" in args.phases or "latency" in args.phases:
        fleet = start_fleet(target, args, workdir, "load")
        if fleet.redis is not None:
            print(
                f"[{target}] {len(fleet.servers)} Salon processes, one data folder,"
                f" SALON_REDIS_URL={fleet.redis.url}, --layout {args.layout}"
            )
        try:
            out["rss_start"] = fleet.rss()
            if "latency" in args.phases:
                print(f"[{target}] latency at {args.rate:g} msg/s for {args.latency_duration:g} s")
                out["latency"] = run_load(fleet, args, "latency", args.latency_duration, None)
            if "throughput" in args.phases:
                print(f"[{target}] throughput for {args.duration:g} s")
                out["throughput"] = run_load(fleet, args, "throughput", args.duration, args.profile)
        finally:
            fleet.stop()
            out["log_problems"] = fleet.problems()
    for tls in idle_transports(target, args):
        key = "idle_tls" if tls else "idle"
        if "idle" in args.phases:
            print(f"[{target}] idle memory with {args.idle} connections, {transport_name(tls)}")
            server = Server(target, workdir, key, args.salon_src, tls=tls)
            try:
                out[key] = run_idle(server, args)
            finally:
                server.stop()
                out["log_problems"] = out.get("log_problems", []) + server.problems()
        if "soak" in args.phases and target == "salon":
            soak = "soak_tls" if tls else "soak"
            cycles = f"{args.soak_cycles} x open/close {args.idle}"
            print(f"[{target}] soak: {cycles}, {transport_name(tls)}")
            server = Server(target, workdir, soak, args.salon_src, tls=tls)
            try:
                out[soak] = run_soak(server, args)
            finally:
                server.stop()
                out["log_problems"] = out.get("log_problems", []) + server.problems()
    return out


def idle_transports(target: str, args: argparse.Namespace) -> list[bool]:
    """Whether each idle/soak run uses TLS: Salon as asked, the Node relay plain only, none
    for several Salon processes (memory per connection is one process's matter)."""
    if target == "salon2":
        return []
    if target != "salon":
        return [False]
    return {"tls": [True], "http": [False], "both": [False, True]}[args.idle_transport]


def transport_name(tls: bool) -> str:
    return "WSS (TLS)" if tls else "plain WS"


def fmt(v: Any, spec: str) -> str:
    if v is None:
        return "-"
    return format(v, spec)


def report(results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    targets = list(results)
    rows: list[tuple[str, list[str], str, str]] = []
    multi = "salon2" in results  # several Salon processes over Redis
    # The ratio column: Salon against Node, or several Salon processes against one.
    versus = ("salon2", "salon") if multi else ("salon", "node")

    def get(t: str, *keys: str) -> Any:
        v: Any = results[t]
        for k in keys:
            if not isinstance(v, dict) or k not in v:
                return None
            v = v[k]
        return v

    def ratio(*keys: str) -> str:
        if len(targets) < 2:
            return ""
        a, b = get(versus[0], *keys), get(versus[1], *keys)
        return f"{a / b:.2f}x" if a and b else ""

    def row(label: str, keys: tuple[str, ...], spec: str, scale: float = 1.0) -> None:
        vals = []
        for t in targets:
            v = get(t, *keys)
            vals.append(fmt(v * scale if v is not None else None, spec))
        rows.append((label, vals, ratio(*keys), ""))

    k = args.room_size
    rows.append((f"throughput: {args.clients} clients, rooms of {k}", [""] * len(targets), "", ""))
    row("  delivered msg/s", ("throughput", "msgs_per_s"), ",.0f")
    row("  server CPU (cores busy)", ("throughput", "server_cpu_util"), ".2f")
    row("  of which kernel (system) time", ("throughput", "server_sys_share"), ".0%")
    row("  msg per server CPU-second", ("throughput", "msgs_per_cpu_s"), ",.0f")
    if multi:
        row("  redis-server CPU (cores busy)", ("throughput", "redis_cpu_util"), ".2f")
        row(
            "  msg per CPU-second, redis incl.", ("throughput", "msgs_per_cpu_s_with_redis"), ",.0f"
        )
    row("  load generator CPU (cores)", ("throughput", "loadgen_cpu_util"), ".2f")
    row("  other processes' CPU (cores)", ("throughput", "other_cpu_util"), ".2f")
    row("  p50 at saturation (ms)", ("throughput", "p50_ms"), ".1f")
    row("  p99 at saturation (ms)", ("throughput", "p99_ms"), ".1f")
    rows.append((f"latency: offered {args.rate:g} msg/s", [""] * len(targets), "", ""))
    row("  achieved offered msg/s", ("latency", "offered_per_s"), ",.0f")
    row("  delivered msg/s", ("latency", "msgs_per_s"), ",.0f")
    row("  p50 (ms)", ("latency", "p50_ms"), ".3f")
    row("  p99 (ms)", ("latency", "p99_ms"), ".3f")
    row("  p99.9 (ms)", ("latency", "p999_ms"), ".3f")
    row("  max (ms)", ("latency", "max_ms"), ".3f")
    row("  server CPU (cores busy)", ("latency", "server_cpu_util"), ".2f")
    row("  msg per server CPU-second", ("latency", "msgs_per_cpu_s"), ",.0f")
    if multi:
        row("  redis-server CPU (cores busy)", ("latency", "redis_cpu_util"), ".2f")
        row("  msg per CPU-second, redis incl.", ("latency", "msgs_per_cpu_s_with_redis"), ",.0f")
    row("  other processes' CPU (cores)", ("latency", "other_cpu_util"), ".2f")
    if not multi or any("idle" in r for r in results.values()):
        rows.append((f"idle: {args.idle} greeted connections", [""] * len(targets), "", ""))
        row("  RSS before (MB)", ("idle", "rss_before"), ".1f", 1 / 2**20)
        row("  RSS with them open (MB)", ("idle", "rss_open"), ".1f", 1 / 2**20)
        row("  RSS per idle connection (KB)", ("idle", "rss_per_conn"), ".1f", 1 / 1024)
        row("  RSS after close (MB)", ("idle", "rss_after_close"), ".1f", 1 / 2**20)
        row("  growth over a 2nd cycle (KB)", ("idle", "growth_per_cycle"), ".0f", 1 / 1024)
    if "idle_tls" in results.get("salon", {}):
        rows.append((f"idle over TLS (WSS): {args.idle} greeted", [""] * len(targets), "", ""))
        row("  RSS before (MB)", ("idle_tls", "rss_before"), ".1f", 1 / 2**20)
        row("  RSS with them open (MB)", ("idle_tls", "rss_open"), ".1f", 1 / 2**20)
        row("  RSS per idle connection (KB)", ("idle_tls", "rss_per_conn"), ".1f", 1 / 1024)
        row("  RSS after close (MB)", ("idle_tls", "rss_after_close"), ".1f", 1 / 2**20)
        row("  growth over a 2nd cycle (KB)", ("idle_tls", "growth_per_cycle"), ".0f", 1 / 1024)
    for soak in ("soak", "soak_tls"):
        if soak in results.get("salon", {}):
            over = "TLS" if soak == "soak_tls" else "plain WS"
            rows.append((f"soak over {over}: open/close {args.idle}", [""] * len(targets), "", ""))
            row(
                "  open RSS, late max - early max (MB)",
                (soak, "late_minus_early_open"),
                ".1f",
                1 / 2**20,
            )

    # Targets
    salon = results.get("salon", {})
    verdicts: list[str] = []
    if "salon" in results and "node" in results:
        a, b = (
            get("salon", "throughput", "msgs_per_cpu_s"),
            get("node", "throughput", "msgs_per_cpu_s"),
        )
        if a and b:
            r = a / b
            verdicts.append(
                f"msg per server CPU-second vs Node: {r:.2f}x (target >= 0.6x, ambition 1.0x): "
                + ("MET" if r >= 0.6 else f"NOT MET (needs {0.6 / r:.1f}x more)")
            )
    for key in ("idle", "idle_tls"):
        per_conn = get("salon", key, "rss_per_conn") if salon else None
        if per_conn is None:
            continue
        kb = per_conn / 1024
        verdicts.append(
            f"RSS per idle connection{' with TLS' if key == 'idle_tls' else ''}: {kb:.1f} KB"
            " (target <= 20 KB): "
            + ("MET" if kb <= 20 else f"NOT MET ({kb / 20:.1f}x the target)")
            + (
                " - few connections fit in memory the warm-up freed; use --idle 1000"
                if args.idle < 1000
                else ""
            )
        )
    p99 = get("salon", "latency", "p99_ms") if salon else None
    if p99 is not None:
        verdicts.append(
            f"p99 relay latency at {args.rate:g} msg/s: {p99:.2f} ms (target <= 2 ms): "
            + ("MET" if p99 <= 2 else f"NOT MET ({p99 / 2:.1f}x the target)")
        )
    if multi and "salon" in results:
        verdicts += scaling_verdicts(get, args)

    width = max(len(r[0]) for r in rows) + 2
    rw = 14 if multi else 12  # the ratio column
    head = f"{'':<{width}}" + "".join(f"{t:>12}" for t in targets)
    head += f"{'/'.join(versus):>{rw}}" if len(targets) > 1 else ""
    lines = [head, "-" * len(head)]
    for label, vals, rat, _ in rows:
        lines.append(f"{label:<{width}}" + "".join(f"{v:>12}" for v in vals) + f"{rat:>{rw}}")
    if multi:
        lines += [
            f"salon2: {PROCESSES} Salon processes over one redis-server, --layout {args.layout};"
            " server CPU is the Salon processes' sum, redis-server's is apart"
        ]
    if verdicts:
        lines += ["", "targets (Salon):"] + [f"  {v}" for v in verdicts]
    trouble = []
    for t in targets:
        for phase in ("throughput", "latency"):
            d = get(t, phase) or {}
            if d.get("errors") or d.get("closes"):
                trouble.append(f"  {t} {phase}: errors {d['errors']} closes {d['closes']}")
            if d and d["sent_total"] != d["delivered_total"]:
                lost = d["sent_total"] - d["delivered_total"]
                if phase == "throughput":
                    trouble.append(f"  {t} {phase}: {lost} sent but not delivered within 5 s")
        for ln in (results[t].get("log_problems") or [])[:8]:
            trouble.append(f"  {t} log: {ln}")
    busy = [
        f"  {t} {phase}: {d['other_cpu_util']:.2f} cores"
        for t in targets
        for phase in ("throughput", "latency")
        if (d := get(t, phase)) and d["other_cpu_util"] > 0.3
    ]
    if busy:
        lines += ["", "WARNING: other processes used the CPU during these phases; their numbers"]
        lines += ["are disturbed (rerun on a quiet machine, or with --quiet-wait):", *busy]
    lines += ["", "problems seen:"] + (
        trouble or ["  none (no error messages, closes or log errors)"]
    )
    return "\n".join(lines)


def scaling_verdicts(get: Any, args: argparse.Namespace) -> list[str]:
    """The issue's targets for several processes, against one process in the same run."""
    out = []
    one, two = get("salon", "throughput", "msgs_per_s"), get("salon2", "throughput", "msgs_per_s")
    if one and two:
        r = two / one
        out.append(
            f"delivered msg/s, {PROCESSES} processes vs one: {r:.2f}x (target >= 1.7x): "
            + ("MET" if r >= 1.7 else "NOT MET")
        )
        e1 = get("salon", "throughput", "msgs_per_cpu_s")
        e2 = get("salon2", "throughput", "msgs_per_cpu_s")
        e3 = get("salon2", "throughput", "msgs_per_cpu_s_with_redis")
        out.append(
            f"  msg per server CPU-second, {PROCESSES} processes vs one: {e2 / e1:.2f}x"
            f" ({e3 / e1:.2f}x with redis-server's CPU); with a core per process, >="
            f" {1.7 / PROCESSES:.2f}x here means >= 1.7x the msg/s"
        )
        cores = os.cpu_count() or 1
        if cores < PROCESSES + 1 + args.workers:
            out.append(
                f"  (this machine has {cores} cores for {PROCESSES} Salon processes,"
                f" redis-server and {args.workers} load generators: msg/s cannot scale here;"
                " judge by the line above)"
            )
    p1, p2 = get("salon", "latency", "p99_ms"), get("salon2", "latency", "p99_ms")
    if p1 is not None and p2 is not None:
        added = p2 - p1
        what = "the cross-process hop" if args.layout == "spread" else "the bus (no hop)"
        out.append(
            f"p99 relay latency at {args.rate:g} msg/s, {PROCESSES} processes: {p2:.2f} ms vs"
            f" {p1:.2f} ms on one, {what} adds {added:.2f} ms (target <= 1 ms): "
            + ("MET" if added <= 1 else "NOT MET")
        )
    return out


def machine() -> str:
    node = subprocess.run(
        ["node", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return describe(f"Node {node or '?'}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Benchmark Salon's signaling relay against a minimal Node ws relay.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--target",
        choices=("salon", "node", "both", "salon2", "scaling"),
        default="both",
        help=f"both: salon and node; salon2: {PROCESSES} Salon processes over Redis; scaling:"
        " salon and salon2",
    )
    p.add_argument(
        "--phases",
        default=argparse.SUPPRESS,  # depends on --target
        help=f"comma-separated, of: {', '.join(PHASES)} (default: {','.join(DEFAULT_PHASES)};"
        f" {','.join(LOAD_PHASES)} for salon2 and scaling)",
    )
    p.add_argument(
        "--layout",
        choices=("spread", "split"),
        default="spread",
        help="salon2: spread = client i of every room on process i %% N (every room spans the"
        " processes); split = room j whole on process j %% N",
    )
    p.add_argument("--clients", type=int, default=64, help="clients in the load phases")
    p.add_argument("--room-size", type=int, default=4, help="clients per room (K)")
    p.add_argument("--window", type=int, default=16, help="in-flight signals per sender")
    p.add_argument("--duration", type=float, default=20.0, help="measured throughput seconds")
    p.add_argument("--latency-duration", type=float, default=10.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds per phase")
    p.add_argument("--rate", type=float, default=2000.0, help="offered msg/s, latency phase")
    p.add_argument("--idle", type=int, default=1000, help="idle connections for memory")
    p.add_argument(
        "--idle-transport",
        choices=("tls", "http", "both"),
        default="both",
        help="Salon's idle and soak phases over WSS (TLS, as deployed), plain WS, or both"
        " (the Node relay is always plain)",
    )
    p.add_argument("--soak-cycles", type=int, default=6, help="open/close cycles, soak phase")
    p.add_argument(
        "--soak-settle",
        type=float,
        default=12.0,
        help="seconds after each close before RSS is read (the server tidies its heap at"
        " most every 10 s)",
    )
    p.add_argument("--workers", type=int, default=2, help="load-generator processes")
    p.add_argument("--quick", action="store_true", help="~25 s smoke run")
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="on a shared machine, wait up to this many seconds before each load phase for"
        " other processes to go quiet",
    )
    p.add_argument("--quiet-cores", type=float, default=0.25, help="what 'quiet' means")
    p.add_argument(
        "--salon-src",
        type=Path,
        help="run Salon from this src/ folder (e.g. a `git archive` of one commit) instead of"
        " the working tree",
    )
    p.add_argument("--json", type=Path, help="also write the raw results here")
    p.add_argument(
        "--log-dir", type=Path, help="keep server logs and data here, not in a temporary folder"
    )
    p.add_argument("--profile", help="py-spy raw output for Salon's throughput window")
    p.add_argument("--py-spy", help="py-spy binary, if not on PATH")
    args = p.parse_args(argv)
    args.settle = 1.0  # seconds for RSS to settle before it is read
    if args.quick:
        args.settle = 0.3
        args.duration, args.latency_duration, args.warmup = 2.0, 1.5, 0.5
        args.idle = 200
    if "phases" not in vars(args):
        several = args.target in ("salon2", "scaling")
        args.phases = ",".join(LOAD_PHASES if several else DEFAULT_PHASES)
    args.phases = [x.strip() for x in args.phases.split(",") if x.strip()]
    unknown = set(args.phases) - set(PHASES)
    if unknown:
        p.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if args.room_size < 2 or args.clients < args.room_size:
        p.error("need --room-size >= 2 and --clients >= --room-size")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # The load generators hold one descriptor per connection (10,000 in a big idle run).
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    targets = {"both": ["salon", "node"], "scaling": ["salon", "salon2"]}.get(
        args.target, [args.target]
    )
    began = time.monotonic()
    print(f"machine: {machine()}")
    print(
        "salon runs with "
        + " ".join(f"{k}={v}" for k, v in RAISED_LIMITS.items())
        + " (rate limit raised for the benchmark) and SALON_LOG_LEVEL=warning"
    )
    sample = payload("x" * 12, time.perf_counter_ns(), "abcd")
    print(f"signal sent: {len(sample)} B; workers: {args.workers}; window: {args.window}")
    print(f"salon code: {args.salon_src or 'the working tree (editable install)'}")
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="salon-bench-") as tmp:
        workdir = args.log_dir or Path(tmp)
        for t in targets:
            results[t] = bench_target(t, args, workdir)
    print()
    print(report(results, args))
    if args.profile and "salon" in results and Path(args.profile).exists():
        print()
        print(summarize_profile(args.profile))
    print(f"\nwall time: {time.monotonic() - began:.0f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        for r in results.values():
            for phase in ("throughput", "latency"):
                if phase in r:
                    r[phase].pop("latencies", None)
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, **results}, indent=2, default=str
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
