"""Resume benchmark: how long members take to get their places back after ``kill -9``.

Starts ``salon serve --http`` as a subprocess on a free 127.0.0.1 port with a fresh data
folder, seats ``--members`` raw WebSocket clients (the ``websockets`` library, from
``--workers`` load-generator processes) in rooms of ``--room-size``, then:

1. ``kill -9`` of the server: no drain, no close frames; every client sees its socket end.
2. At once, the same command again: same port, same data folder (where the resume secret
   is), so the tokens the clients hold are good on the new process.
3. The parent polls ``GET /api/v1/health`` every 10 ms; its first 200 is *health*.
4. Each client reconnects the way the browser client does (web/src/signaling/retry.ts): at
   once, then after 0.3, 1.2, 2.7, 4.8 s (±20 %), then every 7 ± 2 s, and says
   ``hello {resume: <its latest token>}``. It is *resumed* when it has the ``welcome`` with
   ``resumed`` (same id, same room) and the ``joined`` that follows.

Reported per N: kill → health (the restart itself), health → resumed p50/p99/max (what a
person waits once the server is back), the handshake of the successful attempt alone
(connect → joined: the server's share), health → every room whole again (each member knows
all the others), attempts, and every failure. The clocks of all processes are one
(``time.monotonic`` is CLOCK_MONOTONIC, shared by the machine).

There are no per-address connection caps yet, so every client may come from 127.0.0.1.

Examples::

    .venv/bin/python bench/resume.py                       # N = 10, 100, 1000
    .venv/bin/python bench/resume.py --members 100 --repeat 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import random
import signal
import socket
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
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from machine import describe

ROOT = Path(__file__).resolve().parent.parent
RETRY_STEPS = (0.0, 0.3, 1.2, 2.7, 4.8)  # seconds before attempt n (0: at once)
STEP_JITTER = 0.2  # ± this fraction of a step
RETRY_EVERY, EVERY_JITTER = 7.0, 2.0  # after the steps
ATTEMPT_TIMEOUT = 10.0  # one attempt: connect + hello + welcome (+ joined)

# ----------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """``salon serve --http`` on a fixed port and data folder; can be killed and restarted."""

    def __init__(self, workdir: Path, salon_src: Path | None) -> None:
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}/ws"
        self.data_dir = workdir / "data"
        self.workdir = workdir
        self.env = dict(os.environ, SALON_LOG_LEVEL="warning")
        # Every member comes from 127.0.0.1: lift the caps per client address and per room.
        self.env.update(
            SALON_LIMITS__MAX_CONNECTIONS_PER_ADDRESS="1000000",
            SALON_LIMITS__HANDSHAKE_BURST="1000000",
            SALON_LIMITS__ROOM_JOIN_BURST="1000000",
        )
        if salon_src is not None:
            self.env["PYTHONPATH"] = os.pathsep.join(
                [str(salon_src), *filter(None, [self.env.get("PYTHONPATH")])]
            )
        self.starts = 0
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.starts += 1
        log = (self.workdir / f"server-{self.starts}.log").open("wb")
        cmd = [sys.executable, "-m", "salon.cli", "serve", "--http", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        self.proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT
        )
        log.close()

    def healthy(self) -> bool:
        url = f"http://127.0.0.1:{self.port}/api/v1/health"
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def wait_healthy(self, timeout: float = 60.0, every: float = 0.01) -> float:
        """Poll /api/v1/health; the monotonic time of the first 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise SystemExit(f"salon serve exited early:\n{self.log()}")
            if self.healthy():
                return time.monotonic()
            time.sleep(every)
        raise SystemExit(f"salon serve did not answer within {timeout} s:\n{self.log()}")

    def cpu(self) -> float:
        """User + system CPU seconds of the running server process."""
        assert self.proc is not None
        t = psutil.Process(self.proc.pid).cpu_times()
        return float(t.user + t.system)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return (self.workdir / f"server-{self.starts}.log").read_text(errors="replace")

    def problems(self) -> list[str]:
        """ERROR lines and tracebacks' last lines in the restarted server's log."""
        found: Counter[str] = Counter(
            ln.strip()[:160]
            for ln in self.log().splitlines()
            if ln.startswith(("ERROR", "CRITICAL", "Traceback"))
        )
        return [f"{n} x {what}" for what, n in found.most_common(8)]


# ----------------------------------------------------------------------------- the clients


def retry_delay(attempt: int, rng: random.Random) -> float:
    """Seconds to wait before ``attempt`` (0-based): the browser client's schedule."""
    if attempt <= 0:
        return 0.0
    if attempt < len(RETRY_STEPS):
        step = RETRY_STEPS[attempt]
        return max(0.0, step + (rng.random() * 2 - 1) * step * STEP_JITTER)
    return max(0.0, RETRY_EVERY + (rng.random() * 2 - 1) * EVERY_JITTER)


@dataclass(eq=False)
class Member:
    name: str
    room: str
    room_size: int
    id: str = ""
    token: str = ""
    ws: ClientConnection | None = None
    known: set[str] = field(default_factory=set)  # the others of the room it knows
    lost_at: float = 0.0
    attempt_at: float = 0.0  # start of the attempt that succeeded
    resumed_at: float = 0.0  # welcome (resumed) and joined received
    whole_at: float = 0.0  # knows every other member of its room again
    attempts: int = 0
    outcome: str = "waiting"
    detail: str = ""
    whole: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    def see(self, msg: dict[str, Any]) -> None:
        """Track the room's members from joined / member_joined / member_resumed."""
        kind = msg["type"]
        if kind == "joined":
            self.known = {m["id"] for m in msg["members"]}
        elif kind in ("member_joined", "member_resumed"):
            self.known.add(msg["member"]["id"])
        elif kind == "member_left":
            self.known.discard(msg["id"])
        elif kind == "resume_token":
            self.token = msg["token"]
        if len(self.known) >= self.room_size - 1 and not self.whole.is_set():
            self.whole_at = time.monotonic()
            self.whole.set()


async def open_ws(url: str) -> ClientConnection:
    return await connect(
        url, compression=None, ping_interval=None, proxy=None, open_timeout=ATTEMPT_TIMEOUT
    )


async def next_message(ws: ClientConnection, within: float) -> dict[str, Any]:
    while True:
        msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
        if msg["type"] == "ping":
            await ws.send('{"type":"pong"}')
            continue
        return msg


async def read_on(m: Member, ws: ClientConnection) -> None:
    """Read until the socket ends (answering pings, tracking the room)."""
    try:
        async for raw in ws:
            msg = json.loads(raw)
            if msg["type"] == "ping":
                await ws.send('{"type":"pong"}')
            m.see(msg)
    except ConnectionClosed:
        pass
    m.gone.set()


async def seat(m: Member, url: str, sem: asyncio.Semaphore) -> asyncio.Task[None]:
    async with sem:
        ws = await open_ws(url)
        await ws.send(json.dumps({"type": "hello", "versions": [1], "name": m.name}))
        welcome = await next_message(ws, 30)
        assert welcome["type"] == "welcome", welcome
        m.id, m.token, m.ws = welcome["id"], welcome["resume_token"], ws
        await ws.send(json.dumps({"type": "join", "room": m.room}))
        joined = await next_message(ws, 30)
        assert joined["type"] == "joined", joined
        m.see(joined)
    return asyncio.create_task(read_on(m, ws))


async def attempt_resume(m: Member, url: str) -> bool:
    """One attempt; True when resumed (or definitely failed: no point retrying)."""
    try:
        ws = await open_ws(url)
    except (OSError, TimeoutError, InvalidHandshake):
        return False
    try:
        hello = {"type": "hello", "versions": [1], "name": m.name, "resume": m.token}
        await ws.send(json.dumps(hello))
        welcome = await next_message(ws, ATTEMPT_TIMEOUT)
        if welcome["type"] == "error":
            m.outcome, m.detail = "refused", welcome.get("code", "?")
            await ws.close()
            return True
        resumed = welcome.get("resumed")
        if welcome["type"] != "welcome" or not resumed:
            m.outcome = "not resumed"
            m.detail = f"{welcome['type']} with resumed={resumed!r}"
            await ws.close()
            return True
        m.token = welcome["resume_token"]
        if welcome["id"] != m.id or resumed["room"] != m.room:
            m.outcome = "wrong place"
            m.detail = f"id {welcome['id']} room {resumed['room']} (was {m.id} {m.room})"
        if resumed["missed"] and resumed["room"] is not None:
            while True:
                msg = await next_message(ws, ATTEMPT_TIMEOUT)
                m.see(msg)
                if msg["type"] == "joined":
                    break
        m.resumed_at = time.monotonic()
        if m.outcome == "waiting":
            m.outcome = "resumed"
        m.ws = ws
        m.gone.clear()
        asyncio.get_running_loop().create_task(read_on(m, ws))
        return True
    except (ConnectionClosed, OSError, TimeoutError) as exc:
        m.detail = f"attempt {m.attempts}: {type(exc).__name__}"
        with contextlib.suppress(Exception):
            await ws.close()
        return False


async def reconnect(m: Member, url: str, rng: random.Random, give_up_at: float) -> None:
    """After the loss: at once, then on the browser client's backoff, until resumed."""
    await m.gone.wait()
    m.lost_at = time.monotonic()
    m.whole.clear()
    m.known.clear()
    attempt = 0
    while time.monotonic() < give_up_at:
        await asyncio.sleep(retry_delay(attempt, rng))
        attempt += 1
        m.attempts = attempt
        m.attempt_at = time.monotonic()
        if await attempt_resume(m, url):
            return
    m.outcome = "timed out"


async def _worker(pipe: Pipe, cfg: dict[str, Any]) -> dict[str, Any]:
    rng = random.Random(cfg["seed"])
    w = cfg["index"]
    rooms = [
        [Member(f"w{w}-r{r}-m{i}", f"w{w}-room{r}", size) for i in range(size)]
        for r, size in enumerate(cfg["rooms"])
    ]
    members = [m for room in rooms for m in room]
    sem = asyncio.Semaphore(50)
    readers = []
    for room in rooms:  # room by room, so each member hears of the others
        readers += await asyncio.gather(*(seat(m, cfg["url"], sem) for m in room))
    await asyncio.wait_for(asyncio.gather(*(m.whole.wait() for m in members)), 60)
    give_up_at = time.monotonic() + cfg["timeout"]
    loop = asyncio.get_running_loop()
    tasks = [
        asyncio.create_task(reconnect(m, cfg["url"], random.Random(rng.random()), give_up_at))
        for m in members
    ]
    pipe.send(("ready", len(members)))
    await loop.run_in_executor(None, pipe.recv)  # the parent killed and restarted the server
    await asyncio.gather(*tasks)
    pending = [m for m in members if m.outcome == "resumed"]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(
            asyncio.gather(*(m.whole.wait() for m in pending)),
            max(1.0, give_up_at - time.monotonic()),
        )
    result = [
        {
            "outcome": m.outcome,
            "detail": m.detail,
            "lost_at": m.lost_at,
            "attempt_at": m.attempt_at,
            "resumed_at": m.resumed_at,
            "whole_at": m.whole_at if m.whole.is_set() else 0.0,
            "attempts": m.attempts,
            "room": m.room,
        }
        for m in members
    ]
    for m in members:
        if m.ws is not None:
            with contextlib.suppress(Exception):
                await m.ws.close()
    for t in readers:
        t.cancel()
    return {"members": result, "cpu": time.process_time()}


def _worker_main(pipe: Pipe, cfg: dict[str, Any]) -> None:
    try:
        pipe.send(("done", asyncio.run(_worker(pipe, cfg))))
    except BaseException:
        pipe.send(("failed", traceback.format_exc()))


# ----------------------------------------------------------------------------- one run


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def busy_cores(seconds: float = 1.0) -> float:
    """Cores the whole machine kept busy over the next ``seconds``."""

    def busy() -> float:
        t = psutil.cpu_times()
        return float(
            t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
        )

    b0 = busy()
    time.sleep(seconds)
    return (busy() - b0) / seconds


def wait_quiet(limit: float, cores: float) -> float:
    """On a shared machine: wait up to ``limit`` s for other processes to use < ``cores``;
    returns the cores they used at the last look."""
    deadline = time.monotonic() + limit
    other = busy_cores()
    while other >= cores and time.monotonic() < deadline:
        other = busy_cores()
    return other


def run(n: int, args: argparse.Namespace, seed: int) -> dict[str, Any]:
    rooms = -(-n // args.room_size)  # rooms of room_size or one less: N members in all
    sizes = [n // rooms + (1 if i < n % rooms else 0) for i in range(rooms)]
    workers = max(1, min(args.workers, rooms))
    split = [sizes[i::workers] for i in range(workers)]
    with tempfile.TemporaryDirectory(prefix="salon-resume-bench-") as tmp:
        workdir = Path(tmp) if args.log_dir is None else args.log_dir / f"n{n}-{seed}"
        workdir.mkdir(parents=True, exist_ok=True)
        server = Server(workdir, args.salon_src)
        server.start()
        server.wait_healthy()
        cpu_before_seating = server.cpu()
        ctx = mp.get_context("fork")
        pipes, procs = [], []
        for i, r in enumerate(split):
            cfg = {
                "url": server.url,
                "index": i,
                "rooms": r,
                "room_size": args.room_size,
                "seed": seed * 1000 + i,
                "timeout": args.timeout,
            }
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(theirs, cfg), daemon=True)
            proc.start()
            pipes.append(mine)
            procs.append(proc)
        try:
            seated = sum(_expect(p, "ready", 180) for p in pipes)
            cpu_seating = server.cpu() - cpu_before_seating
            killed_at = time.monotonic()
            server.kill9()
            server.start()
            health_at = server.wait_healthy()
            cpu_at_health = server.cpu()
            for p in pipes:
                p.send("go")
            results = [_expect(p, "done", args.timeout + 120) for p in pipes]
            cpu_resuming = server.cpu() - cpu_at_health
        finally:
            for p in procs:
                p.join(10)
                if p.is_alive():
                    p.kill()
            server.stop()
        problems = server.problems()
    members = [m for r in results for m in r["members"]]
    ok = [m for m in members if m["outcome"] == "resumed"]
    from_health = [m["resumed_at"] - health_at for m in ok]
    return {
        "members": n,
        "seated": seated,
        "rooms": rooms,
        "workers": workers,
        "restart_s": health_at - killed_at,
        "from_health": from_health,
        "from_kill": [m["resumed_at"] - killed_at for m in ok],
        "handshake": [m["resumed_at"] - m["attempt_at"] for m in ok],
        "whole": [m["whole_at"] - health_at for m in ok if m["whole_at"]],
        "attempts": Counter(m["attempts"] for m in ok),
        "outcomes": Counter(m["outcome"] for m in members),
        "details": Counter(m["detail"] for m in members if m["outcome"] != "resumed"),
        "before_health": sum(1 for v in from_health if v < 0),
        "server_cpu_s": cpu_resuming,  # from health until every member is done
        "seating_cpu_s": cpu_seating,  # hello + join of every member, on the first server
        "log_problems": problems,
    }


def _expect(pipe: Pipe, kind: str, timeout: float) -> Any:
    if not pipe.poll(timeout):
        raise SystemExit(f"a load generator sent no {kind!r} within {timeout} s")
    got, body = pipe.recv()
    if got == "failed":
        raise SystemExit(f"a load generator failed:\n{body}")
    assert got == kind, (got, kind)
    return body


# ----------------------------------------------------------------------------- report


def ms(values: list[float]) -> str:
    if not values:
        return "–"
    return (
        " / ".join(f"{percentile(values, q) * 1000:,.0f}" for q in (50, 99))
        + f" / {max(values) * 1000:,.0f}"
    )


def report(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| N (rooms of 4) | kill → health | health → resumed p50 / p99 / max (ms) "
        "| resuming handshake p50 / p99 / max (ms) | health → room whole max (ms) "
        "| resumed | attempts (successful one) | server CPU per resume / per first join (ms) |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in runs:
        attempts = ", ".join(f"#{k}: {v}" for k, v in sorted(r["attempts"].items()))
        whole = f"{max(r['whole']) * 1000:,.0f}" if r["whole"] else "–"
        lines.append(
            f"| {r['members']:,} | {r['restart_s'] * 1000:,.0f} ms | {ms(r['from_health'])} "
            f"| {ms(r['handshake'])} | {whole} "
            f"| {r['outcomes'].get('resumed', 0)}/{r['seated']} | {attempts} "
            f"| {r['server_cpu_s'] / r['seated'] * 1000:.1f} / "
            f"{r['seating_cpu_s'] / r['seated'] * 1000:.1f} |"
        )
    trouble = []
    for r in runs:
        bad = {k: v for k, v in r["outcomes"].items() if k != "resumed"}
        if bad:
            trouble.append(f"  N={r['members']}: {bad}; {dict(r['details'].most_common(5))}")
        if r["before_health"]:
            trouble.append(f"  N={r['members']}: {r['before_health']} resumed before health")
        trouble += [f"  N={r['members']} server log: {p}" for p in r["log_problems"]]
    lines += ["", "problems seen:", *(trouble or ["  none"])]
    return "\n".join(lines)


def machine() -> str:
    return describe()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Time for members to resume their places after kill -9 and a restart.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--members", default="10,100,1000", help="comma-separated N values")
    p.add_argument("--room-size", type=int, default=4)
    p.add_argument("--workers", type=int, default=2, help="load-generator processes")
    p.add_argument("--repeat", type=int, default=1, help="runs per N")
    p.add_argument("--timeout", type=float, default=120.0, help="give up resuming after")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        help="on a shared machine, wait up to this many seconds before each run for other"
        " processes to go quiet",
    )
    p.add_argument("--quiet-cores", type=float, default=0.3, help="what 'quiet' means")
    p.add_argument("--salon-src", type=Path, help="run Salon from this src/ folder")
    p.add_argument("--log-dir", type=Path, help="keep server logs and data here")
    p.add_argument("--json", type=Path, help="also write the raw results here")
    args = p.parse_args(argv)
    args.members = [int(x) for x in args.members.split(",") if x.strip()]
    if args.room_size < 2 or min(args.members) < args.room_size:
        p.error("need --room-size >= 2 and every N >= --room-size")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 30)
    print(f"machine: {machine()}")
    print(f"salon code: {args.salon_src or 'the working tree (editable install)'}; seed {seed}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    runs = []
    for n in args.members:
        for i in range(args.repeat):
            other = wait_quiet(args.quiet_wait, args.quiet_cores)
            print(f"  (other processes busy: {other:.2f} cores)", flush=True)
            began = time.monotonic()
            r = run(n, args, seed + i)
            runs.append(r)
            load = " ".join(f"{x:.1f}" for x in os.getloadavg())
            print(
                f"N={n} run {i + 1} (load average after: {load}): "
                f"restart {r['restart_s']:.2f} s, resumed "
                f"{r['outcomes'].get('resumed', 0)}/{r['seated']}, health → resumed "
                f"p50/p99/max {ms(r['from_health'])} ms ({time.monotonic() - began:.0f} s)",
                flush=True,
            )
    print()
    print(report(runs))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(runs, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
