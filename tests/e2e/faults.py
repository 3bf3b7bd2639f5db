"""Faults for the end-to-end tests, and the instruments that watch a call live through them.

- :class:`SalonProcess`: ``salon serve`` on a fixed port and data folder that a test can
  ``kill -9``, ``SIGTERM`` and start again on the same port (the resume token's secret lives
  in the data folder, so tokens stay valid across the restart).
- :class:`TcpProxy`: forwards raw TCP (TLS included, it never looks inside) from a port of its
  own to the server; :meth:`TcpProxy.cut` resets every proxied connection and resets new ones
  until :meth:`TcpProxy.restore`. The pages load through it, so their origin is the proxy's.
- The frame sampler: a ``setInterval`` inside the page that reads ``window.__salon.stats()``
  every 250 ms and records ``Date.now()`` with the inbound numbers per remote member in
  ``window.__frames``. Measured in the page, a gap cannot be an artefact of the test driver.
- :class:`FrameLog`: every WebSocket frame a page received (and sent), parsed, with times.
- :class:`ImpairedLink`: a network namespace behind a link that loses, delays and blacks out
  packets, for a browser started in it (:func:`namespaced_chromium`).
- ``PC_TRACKER``: every RTCPeerConnection a page makes, in ``window.__pcs``.

Times are wall-clock milliseconds (``Date.now()`` in the page, ``time.time() * 1000`` here):
the pages and the test run on one machine, so the two can be compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import random
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SALON = REPO / ".venv" / "bin" / "salon"

SAMPLE_MS = 250
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def now_ms() -> float:
    """Wall-clock milliseconds, comparable with ``Date.now()`` in the pages."""
    return time.time() * 1000


def _die_with_parent() -> None:
    """In a child, before exec: SIGKILL when the test process goes, so no server is orphaned."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def fixed_port() -> int:
    """A free TCP port below Linux's ephemeral range: while the server is down for a restart,
    no outgoing connection of another program can take it."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(20_000, min(low, 32_000))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """The HTTP status of a GET (self-signed TLS accepted), or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, context=_unverified(), timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


SERVER_LOGS: set[Path] = set()
"""The log file of every ``salon serve`` the e2e tests started (:func:`server_log_tails`)."""

TAIL_CHARS = 12_000


def server_log_tails(since: float) -> list[tuple[str, str]]:
    """The end of each log in :data:`SERVER_LOGS` written at or after ``since`` (Unix
    seconds), without uvicorn's access lines: (a title, up to :data:`TAIL_CHARS`) each."""
    tails = []
    for path in sorted(SERVER_LOGS):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < since:
                continue
            with path.open("rb") as log:
                log.seek(max(0, path.stat().st_size - 40 * TAIL_CHARS))
                lines = log.read().decode("utf-8", "replace").splitlines()
            kept = "\n".join(x for x in lines if '"logger": "uvicorn.access"' not in x)
            tails.append((f"the end of {path.parent.name}/{path.name}", kept[-TAIL_CHARS:]))
    return tails


class SalonProcess:
    """``salon serve`` over HTTPS on one port and one data folder, startable again after it
    was killed or drained. Its output (every run) goes to ``data/server.log``, or to
    ``log_path`` (several processes sharing one data folder each keep a log of their own).
    ``http``: plain HTTP (``--http``), as behind a TLS-terminating proxy."""

    def __init__(
        self,
        data: Path,
        env: dict[str, str] | None = None,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        log_path: Path | None = None,
        http: bool = False,
    ):
        self.data = data
        self.env = env or {}
        self.host = host  # the address it listens on (one of this machine's)
        self.port = port or fixed_port()
        self.http = http
        self.url = f"{'http' if http else 'https'}://{host}:{self.port}"
        self.log_path = log_path or data / "server.log"
        SERVER_LOGS.add(self.log_path)
        self.process: subprocess.Popen[bytes] | None = None
        self.runs = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 30.0, page: Any = None) -> float:
        """Start and wait until ``/api/v1/health`` answers 200; returns the seconds it took.
        With ``page``, wait through it, so Playwright keeps recording that page's events."""
        assert not self.running(), "the server is already running"
        self.runs += 1
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            log.write(f"\n===== run {self.runs} at {time.strftime('%X')} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    str(SALON),
                    "serve",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data),
                    *(["--http"] if self.http else []),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "SALON_LOG_LEVEL": "info", **self.env},
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        deadline = started + timeout
        while http_status(f"{self.url}/api/v1/health") != 200:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"salon serve did not start; see {self.log_path}")
            if page is None:
                time.sleep(0.1)
            else:
                page.wait_for_timeout(100)
        return time.monotonic() - started

    def kill(self) -> None:
        """``kill -9``: no drain, no close frames; the kernel resets the connections."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> None:
        """SIGTERM: the server drains (and exits by itself)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int | None:
        """The exit status once the process has ended, or None if it is still running."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """End it whatever its state (TERM, then KILL after 5 s); safe to call twice."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def salon_process(data: Path, env: dict[str, str] | None = None) -> Iterator[SalonProcess]:
    """A started :class:`SalonProcess`, stopped afterwards even when the test fails."""
    server = SalonProcess(data, env)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------------------------
# A TCP proxy whose connections can be cut


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a lost network does, not with a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter


@dataclass
class ProxyCounts:
    accepted: int = 0
    reset_while_cut: int = 0
    cut: int = 0  # connections that were open when a cut began


class TcpProxy:
    """Forwards TCP from ``127.0.0.1:<port>`` to ``target``, byte for byte, in a thread of its
    own. ``cut()`` resets every open connection and every new one until ``restore()``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.counts = ProxyCounts()
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._cut = False
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]

    def cut(self) -> int:
        """Reset every proxied connection and refuse new ones; returns how many were open."""
        return int(self._call(self._cut_now()))

    def restore(self) -> None:
        """Forward new connections again."""
        self._call(self._set_cut(False))

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)

    async def _set_cut(self, value: bool) -> None:
        self._cut = value

    async def _cut_now(self) -> int:
        self._cut = True
        links = list(self._links)
        for link in links:
            _reset(link.client)
            _reset(link.upstream)
        self.counts.cut += len(links)
        return len(links)

    async def _shutdown(self) -> None:
        self._cut = True
        if self._server is not None:
            self._server.close()
        for link in list(self._links):
            _reset(link.client)
            _reset(link.upstream)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._forward(reader, writer)
        finally:
            self._tasks.discard(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            self.counts.reset_while_cut += 1
            _reset(writer)
            return
        self.counts.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        link = _Link(writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._links.discard(link)
            for end in (writer, up_writer):
                if self._cut:
                    end.transport.abort()
                else:
                    end.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until EOF, then half-close the other side (a TLS close_notify still gets through)."""
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        writer.transport.abort()


@contextlib.contextmanager
def tcp_proxy(target_url: str) -> Iterator[TcpProxy]:
    """A started :class:`TcpProxy` in front of ``https://host:port``; closed afterwards."""
    host, port = target_url.split("//", 1)[1].rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()


# --------------------------------------------------------------------------------------------
# In-page instruments

# Installs the sampler (window.__frames) and the "Reconnecting…" watcher (window.__banner).
# Each sample: {t, s: {name: {v, sc, a, c, g, l, r}} | null, e?}: video and screen frames
# decoded, audio bytes, connection and signaling state, local/remote candidate types.


# Every RTCPeerConnection a page makes, in order, in window.__pcs: the page's own class,
# subclassed before the client's code runs (``context.add_init_script``), so the client's
# `new RTCPeerConnection(config)` gets it. The client itself is unchanged; a test can then
# read states and descriptions, or call `restartIce()` on the connection itself.
PC_TRACKER = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) {
      super(...args);
      window.__pcs.push(this);
    }
  };
})();
"""


# --------------------------------------------------------------------------------------------
# A network namespace behind an impaired link

TUNSETIFF = 0x400454CA  # linux/if_tun.h
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IPPROTO_UDP = 17


def _tun(name: str) -> int:
    """A new TUN device ``name`` (IPv4 packets, no header) in this process's namespace; it
    exists as long as the returned file descriptor is open."""
    import fcntl

    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def _ip(*args: str, namespace: str | None = None, check: bool = True) -> None:
    command = ["ip", *args] if namespace is None else ["ip", "-n", namespace, *args]
    subprocess.run(command, check=check, capture_output=True, timeout=10)


@dataclass
class Impairment:
    """What the wire does to each packet: drop it with probability ``loss``, hold it
    ``delay_ms`` (both ways), and during a blackout drop every UDP packet (the media; TCP,
    the signaling, still passes) or, with ``blackout_all``, every packet."""

    loss: float = 0.0
    delay_ms: float = 0.0
    blackout: bool = False
    blackout_all: bool = False


@dataclass
class LinkCounts:
    forwarded: int = 0
    lost: int = 0
    blacked_out: int = 0


class ImpairedLink:
    """A network namespace whose only way out is a point-to-point IPv4 link to this machine,
    with addresses in 198.18.0.0/15 (RFC 2544, benchmarking), and that link can lose, delay
    and black out packets.

    The link is two TUN devices, one in the namespace and one here, and a thread of this
    process copies packets between them: the thread is the wire, so it applies
    :class:`Impairment` to each packet. (``tc netem`` on a veth pair does the same in the
    kernel; the kernel of the test machine has no ``sch_netem``, a userspace wire works on
    any Linux with ``/dev/net/tun``.) A program started with ``ip netns exec <namespace>``
    reaches this machine at :attr:`host_address` and is reached at :attr:`address`.

    Everything it makes (namespace, devices, routes) goes with :meth:`close`; the devices
    also go when this process dies.
    """

    def __init__(self, tag: str, prefix: str, seed: int = 15) -> None:
        self.namespace = f"{tag}ns"
        self.inner_device, self.outer_device = f"{tag}in", f"{tag}out"
        self.prefix = prefix  # "198.19.205": a /24 of this link's addresses
        self.host_address = f"{prefix}.1"
        self.address = f"{prefix}.2"
        self.impairment = Impairment()
        self.counts = LinkCounts()
        self._random = random.Random(seed)
        self._fds: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """Make the namespace and the link, and start the wire."""
        try:
            _ip("netns", "add", self.namespace)
            self._fds = [_tun(self.inner_device), _tun(self.outer_device)]
            _ip("link", "set", self.inner_device, "netns", self.namespace)
            ns = self.namespace
            _ip("link", "set", "lo", "up", namespace=ns)
            _ip("addr", "add", f"{self.address}/32", "dev", self.inner_device, namespace=ns)
            _ip("link", "set", self.inner_device, "up", namespace=ns)
            _ip("route", "add", "default", "dev", self.inner_device, namespace=ns)
            _ip("addr", "add", f"{self.host_address}/32", "dev", self.outer_device)
            _ip("link", "set", self.outer_device, "up")
            _ip("route", "add", f"{self.prefix}.0/24", "dev", self.outer_device)
        except BaseException:
            self.close()
            raise
        self._thread.start()

    def readdress(self, address: str) -> None:
        """The namespace's address changes, as on a new network: ``address`` is added and the
        old one removed (so connections from it are dead)."""
        ns, old = self.namespace, self.address
        _ip("addr", "add", f"{address}/32", "dev", self.inner_device, namespace=ns)
        _ip("addr", "del", f"{old}/32", "dev", self.inner_device, namespace=ns)
        _ip("route", "replace", "default", "dev", self.inner_device, "src", address, namespace=ns)
        self.address = address

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)  # the TUN devices, their addresses and routes go with them
        self._fds = []
        _ip("netns", "del", self.namespace, check=False)

    def _run(self) -> None:
        import heapq
        import select

        inner, outer = self._fds
        other = {inner: outer, outer: inner}
        due: list[tuple[float, int, int, bytes]] = []  # (when, order, to fd, packet)
        order = 0
        while not self._stop.is_set():
            now = time.monotonic()
            while due and due[0][0] <= now:
                _when, _order, fd, packet = heapq.heappop(due)
                with contextlib.suppress(OSError):
                    os.write(fd, packet)
            wait = 0.05 if not due else max(0.0, min(0.05, due[0][0] - now))
            readable, _, _ = select.select([inner, outer], [], [], wait)
            for fd in readable:
                try:
                    packet = os.read(fd, 65536)
                except OSError:
                    continue
                rule = self.impairment
                udp = len(packet) > 9 and packet[9] == IPPROTO_UDP
                if rule.blackout and (udp or rule.blackout_all):
                    self.counts.blacked_out += 1
                    continue
                if rule.loss > 0 and self._random.random() < rule.loss:
                    self.counts.lost += 1
                    continue
                self.counts.forwarded += 1
                if rule.delay_ms <= 0 and not due:
                    with contextlib.suppress(OSError):
                        os.write(other[fd], packet)
                    continue
                order += 1
                when = time.monotonic() + rule.delay_ms / 1000
                heapq.heappush(due, (when, order, other[fd], packet))


def namespaced_chromium(folder: Path, namespace: str, chromium: Path) -> Path:
    """A script that runs ``chromium`` inside ``namespace`` with the arguments it is given,
    for Playwright's ``executable_path`` (Playwright talks to the browser over a pipe, which
    ``ip netns exec`` passes on)."""
    script = folder / "chromium-in-namespace"
    script.write_text(f'#!/bin/sh\nexec ip netns exec {namespace} {chromium} "$@"\n')
    script.chmod(0o755)
    return script
