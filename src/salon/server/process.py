"""What ``salon serve`` tunes in its own process for many long-lived connections: the file
descriptor limit, and memory that closed connections leave behind (docs/BENCHMARKS.md,
"Idle memory with TLS", has the measurements behind each choice). And, for ``salon serve
--workers N``, the processes themselves: the shared listening port (SO_REUSEPORT) and the
supervisor that keeps N of them running (:class:`Workers`; docs/SCALING.md).

Only ``salon serve`` calls these; servers started inside another process (the tests) leave
that process as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import logging
import resource
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence

log = logging.getLogger(__name__)

# glibc mallopt(3) parameter: allocations at least this big get their own mmap, and go
# back to the system when freed (fixing it also stops glibc raising it on its own).
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 128 * 1024


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (one descriptor per
    connection, plus the database and log files); return (soft, hard) as they now are."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallopt, libc.malloc_trim  # noqa: B018  # both exist: glibc, not musl
    except (OSError, AttributeError):
        return None
    return libc


def tune_allocator() -> bool:
    """Give each big allocation its own mapping (glibc only; False elsewhere).

    uvloop allocates a 256 KiB TLS read buffer per connection. With glibc's default (a
    threshold that rises to the biggest block freed), these come from the heap, and after
    many connections have opened and closed, pages of free heap stay resident."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


def freeze_startup_objects() -> None:
    """Move every object alive now (modules, the app, its routes and schemas) out of the
    cyclic garbage collector's sight: a full collection then costs what the connections
    cost, not the whole program, and Python runs one as soon as a quarter of the objects
    it still tracks have accumulated (the connections' own)."""
    gc.collect()
    gc.freeze()


class HeapTidy:
    """Frees what closed connections left as soon as many have closed, instead of when the
    next allocations happen to trigger a full collection.

    Each WebSocket connection's objects (transport, protocol, tasks) form reference cycles,
    so only a full collection of the cyclic garbage collector frees them; a server that
    goes quiet after a wave of closes runs none. :meth:`observe` is given the number of open
    connections (once a second); once ``min_closed`` connections, and at least ``share`` of
    those still open, have closed since the last tidy, and ``min_interval`` seconds have
    passed, it collects and asks glibc to return free heap pages (``malloc_trim``).
    """

    def __init__(
        self,
        *,
        min_closed: int = 64,
        share: float = 0.25,
        min_interval: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_closed, self.share, self.min_interval = min_closed, share, min_interval
        self._clock = clock
        self._libc = _glibc()
        self._open = 0
        self._closed = 0
        self._last_tidy = clock()

    def observe(self, open_connections: int) -> bool:
        """Note the connections open now; tidy if it is time. True when it tidied."""
        self._closed += max(0, self._open - open_connections)
        self._open = open_connections
        if self._closed < max(self.min_closed, self.share * open_connections):
            return False
        if self._clock() - self._last_tidy < self.min_interval:
            return False
        self.tidy()
        return True

    def tidy(self) -> None:
        began = time.perf_counter()
        freed = gc.collect()
        if self._libc is not None:
            self._libc.malloc_trim(0)
        log.debug(
            "heap tidied after %d closes: %d objects freed in %.0f ms",
            self._closed,
            freed,
            (time.perf_counter() - began) * 1000,
        )
        self._closed = 0
        self._last_tidy = self._clock()


def shared_port(host: str, port: int, *, listen: bool) -> socket.socket:
    """A TCP socket bound to ``host:port`` with SO_REUSEPORT, so that several processes of
    one user bind the same port and the kernel spreads new connections over those that
    listen (``listen``; a socket only bound takes none, but keeps the port from any other
    program). Raises OSError (the port is taken, the address is not this machine's)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # as asyncio does
        sock.bind(address)
        if listen:
            sock.listen(2048)  # uvicorn's backlog
    except OSError:
        sock.close()
        raise
    return sock


RESTART_FIRST_SECONDS = 1.0  # a worker that died is restarted after this, doubling ...
RESTART_MAX_SECONDS = 30.0  # ... up to this while it keeps dying young,
STEADY_SECONDS = 60.0  # and back to the first after a life this long.
EXIT_CANNOT_SERVE = 2  # a worker's status for settings it cannot serve: not restarted


def restart_pause(previous: float | None, lived: float) -> float:
    """Seconds to wait before restarting a worker that exited after ``lived`` seconds:
    ``RESTART_FIRST_SECONDS`` the first time (``previous`` None) or after a life of
    ``STEADY_SECONDS``, else twice the ``previous`` pause, at most ``RESTART_MAX_SECONDS``."""
    if previous is None or lived >= STEADY_SECONDS:
        return RESTART_FIRST_SECONDS
    return min(previous * 2, RESTART_MAX_SECONDS)


class Workers:
    """``salon serve --workers N``: N copies of ``command`` (each a ``salon serve`` on the
    shared port), kept running until a signal.

    SIGTERM and SIGINT are passed on to every worker (SIGTERM: each drains as one process
    does; a second SIGTERM, or SIGINT, ends them at once); :meth:`run` returns once all are
    gone. A worker that exits on its own is restarted after a pause, 1 s doubling to 30 s
    while it keeps dying within a minute of its start (never a tight loop); one that exits
    with status 2 (settings it cannot serve, as every restart would) stops them all.
    Workers run in a process group of their own: a Ctrl-C on the terminal reaches them
    through this process only.
    """

    def __init__(self, count: int, command: Sequence[str], env: Mapping[str, str]) -> None:
        self.count = count
        self.command = list(command)
        self.env = dict(env)
        self.running: dict[int, asyncio.subprocess.Process] = {}  # worker index -> process
        self._signal: int | None = None  # the last one passed on
        self._stopping = asyncio.Event()
        self._status = 0

    async def run(self) -> int:
        """Run the workers until a signal, or one that cannot serve; 0 after a signal
        stopped them, 2 when a worker could not serve."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop, sig)
        try:
            await asyncio.gather(*(self._keep(index) for index in range(self.count)))
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return self._status

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Pass ``sig`` on to every worker, and restart none from now on."""
        self._signal = sig
        self._stopping.set()
        for process in self.running.values():
            if process.returncode is None:
                process.send_signal(sig)

    async def _keep(self, index: int) -> None:
        """Keep worker ``index`` running until :meth:`stop`."""
        loop = asyncio.get_running_loop()
        pause: float | None = None
        while not self._stopping.is_set():
            began = loop.time()
            process = await asyncio.create_subprocess_exec(
                *self.command, env=self.env, process_group=0
            )
            self.running[index] = process
            if self._signal is not None:  # a stop that came while it was starting
                process.send_signal(self._signal)
            status = await process.wait()
            del self.running[index]
            if self._stopping.is_set():
                return
            if status == EXIT_CANNOT_SERVE:
                log.error("worker %d (pid %d) cannot serve: stopping", index, process.pid)
                self._status = EXIT_CANNOT_SERVE
                self.stop()
                return
            pause = restart_pause(pause, loop.time() - began)
            log.warning(
                "worker %d (pid %d) exited (status %d); restarting it in %g s",
                index,
                process.pid,
                status,
                pause,
            )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self._stopping.wait()
