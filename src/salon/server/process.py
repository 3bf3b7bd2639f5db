"""What ``salon serve`` tunes in its own process for many long-lived connections: the file
descriptor limit, and memory that closed connections leave behind (docs/BENCHMARKS.md,
"Idle memory with TLS", has the measurements behind each choice).

Only ``salon serve`` calls these; servers started inside another process (the tests) leave
that process as it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import logging
import resource
import time
from collections.abc import Callable

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
