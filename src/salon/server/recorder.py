"""The server's recorders: one child process (``salon bot record``) per recorded room, their
storage budget, the retention sweep, and the download route (docs/PROTOCOL.md §3.9).

A recorder is started as ``python -m salon bot record - --out DIR --max-bytes N``, and reads
its LINK from its standard input: the meeting link on the server's own address (the local
address of the host's connection) carrying a one-use ``recorder`` invitation — never in its
arguments, which every user of the machine can read (``ps``). The server keeps that pipe open
for the child's life: when the server dies, however (SIGKILL included), the child reads the
end of its input and stops as on SIGTERM, so no recorder outlives its server. Over TLS it
gets ``--insecure``: it connects to an address of this very machine, so its traffic never
crosses a network, and no certificate can be expected to name a bare local address (a CA's
certificate names the public host; the self-signed one names the addresses the machine had
when it was made, which a container's change). It runs in a session of its own, so a Ctrl-C
meant for the server does not reach it before the server stops it in order: SIGTERM, then
SIGKILL after ``stop_seconds``.

It is confined as far as it costs nothing: an environment of its own (``PATH``, ``HOME``,
``LANG``/``LC_*``, ``TMPDIR``, ``TZ``, ``PYTHONPATH``: never the server's ``SALON_*`` secrets
nor its database URL), a lower priority (the server's nice plus ``RECORDER_NICE``), no core
dumps, a data segment of at most ``RECORDER_DATA_BYTES`` (``RLIMIT_DATA``; ``RLIMIT_AS`` is
not used: the address space aiortc's and FFmpeg's threads reserve is far larger than what
they use), and no file larger than its share plus ``FILE_SLACK_BYTES`` (``RLIMIT_FSIZE``).
The priority and limits are set just after the process starts, before it has imported
anything (a Python ``preexec_fn`` is not safe in a server with threads).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import ipaddress
import logging
import os
import re
import resource
import shutil
import signal
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import quote

from salon.core.clock import Clock
from salon.core.recordings import (
    DOWNLOAD_KEY_SECONDS,
    MAX_LISTED,
    DownloadKeys,
    RecordingRooms,
    Run,
)
from salon.core.settings import Settings
from salon.protocol.messages import Recording, RecordingFile
from salon.server.recording_store import Meta, RecordingStore, delete_folder

log = logging.getLogger(__name__)

RECORDINGS_DIR: Final = "recordings"
MIN_SHARE_BYTES: Final = 1024 * 1024
"""A recording that could not grow past this is refused: the storage is full."""

FREE_SPACE_MARGIN_BYTES: Final = 256 * 1024 * 1024
"""What the recorders leave free on the data folder's disk, whatever their budget says."""

SWEEP_SECONDS: Final = 3600.0
"""How often recordings past their retention are deleted (and once at start)."""

RECORDER_NICE: Final = 10
"""How much lower than the server's the recorder's CPU priority is (nice, at most 19)."""

RECORDER_DATA_BYTES: Final = 2 * 1024**3
"""The recorder's data segment (RLIMIT_DATA: heap and private writable mappings, thread
stacks included). Measured with 640x480 publishers: about 90 MB plus 90 MB per publisher
(180, 285, 454 MB for 1, 2, 4), so this leaves room for some twenty; 200 MB broke a recorder
of two. RLIMIT_AS is not used: the address space grows by some 270 MB a publisher (486, 757,
1296 MB), and 600 MB already kept one of two publishers from being recorded."""

FILE_SLACK_BYTES: Final = 64 * 1024 * 1024
"""How far past its share one file of a recorder may grow (RLIMIT_FSIZE) before the kernel
stops it: the recorder stops itself at its share, checking now and then, and then closes its
files; this only bounds one that does not."""

_ENV_KEPT: Final = ("PATH", "HOME", "LANG", "TMPDIR", "TZ", "PYTHONPATH")
"""What the recorder gets of the server's environment (and every ``LC_*``): what Python
needs to run and to find this package, nothing more."""

_STDERR_TAIL: Final = 20  # lines of a failed recorder's stderr put in the log
_INVITE: Final = re.compile(r"#invite=\S+")  # never logged, should the recorder print its link


def recorder_environment(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """The recorder's environment, from the server's ``environ``: ``_ENV_KEPT`` and
    ``LC_*``, nothing else (no ``SALON_*`` setting, secret or database URL)."""
    return {
        name: value
        for name, value in environ.items()
        if name in _ENV_KEPT or name.startswith("LC_")
    }


def confine(pid: int, share: int) -> None:
    """Lower the priority of the just-spawned process ``pid`` and limit it (see the module's
    docstring); what the platform refuses is skipped, with a warning."""
    try:
        nice = os.getpriority(os.PRIO_PROCESS, pid)  # the server's, inherited
        os.setpriority(os.PRIO_PROCESS, pid, min(19, nice + RECORDER_NICE))
    except OSError as exc:
        log.warning("recorder %d: could not lower its priority: %s", pid, exc)
    limits = (
        (resource.RLIMIT_CORE, 0, "core size"),
        (resource.RLIMIT_DATA, RECORDER_DATA_BYTES, "data size"),
        (resource.RLIMIT_FSIZE, share + FILE_SLACK_BYTES, "file size"),
    )
    for which, value, what in limits:
        try:
            _limit(pid, which, value)
        except (OSError, ValueError) as exc:
            log.warning("recorder %d: could not limit its %s: %s", pid, what, exc)


def _limit(pid: int, which: int, value: int) -> None:
    """Lower the soft and hard limit ``which`` of ``pid`` to ``value`` (never raise it)."""
    _, hard = resource.prlimit(pid, which)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.prlimit(pid, which, (value, value))


def local_base_url(server: tuple[str, int | None] | None, http: bool) -> str | None:
    """``scheme://host:port`` for the local end of a connection (the ASGI scope's
    ``server``), as a URL's authority (RFC 3986 section 3.2.2: an IPv6 address in brackets,
    a zone id's ``%`` escaped); None when there is no address and port (a Unix socket)."""
    if server is None or server[1] is None:
        return None
    host, port = server
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # not an address: a socket path
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped
        host = str(mapped) if mapped is not None else f"[{host.replace('%', '%25')}]"
    return f"{'http' if http else 'https'}://{host}:{port}"


@dataclass(eq=False)
class _Child:
    """One recorder: its recording, its share of the budget, and its process once spawned."""

    run: Run
    share: int  # bytes: its --max-bytes
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] | None = None
    stop_asked: bool = False
    killer: asyncio.TimerHandle | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=_STDERR_TAIL))


class Recorders:
    """The hub's :class:`~salon.core.recordings.Recorder`: child processes and their
    folder. ``hub`` is told when each recorder is gone."""

    def __init__(
        self, settings: Settings, clock: Clock, hub: RecordingRooms, keys: DownloadKeys
    ) -> None:
        self.settings = settings
        self.options = settings.recordings
        self.clock = clock
        self.hub = hub
        self.keys = keys
        self.store = RecordingStore(Path(settings.data_dir) / RECORDINGS_DIR)
        self._children: dict[str, _Child] = {}  # recording id -> its recorder
        self._sweeping: asyncio.Task[None] | None = None
        self.closing = False  # the server is stopping: no recording starts any more

    # ------------------------------------------------------------------ the hub's Recorder

    def unavailable(self, account: str | None) -> str | None:
        options = self.options
        if not options.enabled:
            return "recording is turned off on this server"
        if importlib.util.find_spec("aiortc") is None:
            return "this server cannot record: it lacks the client extra (salon[client])"
        if self.settings.require_sign_in:
            return "this server admits only signed-in members, and its recorder is a guest"
        if options.hosts == "signed_in" and account is None:
            return "on this server only hosts signed in to an account may record"
        if self.closing:
            return "the server is shutting down"
        if len(self._children) >= options.max_active:
            return f"{len(self._children)} recordings run already, as many as this server allows"
        if self._share() < MIN_SHARE_BYTES:
            self.sweep_soon()  # count again: a folder deleted by hand frees its bytes
            return "the storage for recordings is full: older recordings must go first"
        return None

    def start(self, run: Run, link: str) -> None:
        meta = Meta(
            run.id, run.room, run.meeting, run.started_ms, None, run.by, run.by_name, run.account
        )
        share = self._share()
        folder = self.store.create(meta)
        child = _Child(run, share)
        self._children[run.id] = child
        child.task = asyncio.get_running_loop().create_task(self._run(child, link, folder))
        log.info("recording %s of room %s started by %s", run.id, run.room, run.by)

    def stop(self, run_id: str) -> None:
        child = self._children.get(run_id)
        if child is None or child.stop_asked:
            return
        child.stop_asked = True
        if child.process is not None:
            self._terminate(child)  # else as soon as it is spawned

    def listing(self, room: str, meeting: str, account: str | None) -> list[Recording]:
        expires = self.clock.wall_ms() // 1000 + DOWNLOAD_KEY_SECONDS
        shown = [
            meta
            for meta in self.store.of_room(room)
            if meta.meeting == meeting or (account is not None and meta.account == account)
        ]
        return [self._described(meta, expires) for meta in shown[-MAX_LISTED:]]

    def _described(self, meta: Meta, expires: int) -> Recording:
        files = [
            RecordingFile(name=name, bytes=size, url=self._url(meta.id, name, expires))
            for name, size in self.store.files(meta.id)
        ]
        total = sum(file.bytes for file in files)
        return Recording(
            id=meta.id, started=meta.started, ended=meta.ended, bytes=total, files=files
        )

    def _url(self, recording: str, name: str, expires: int) -> str:
        key = self.keys.make(recording, name, expires)
        return f"/api/v1/recordings/{recording}/files/{quote(name)}?key={key}"

    # ------------------------------------------------------------------ budget

    def _share(self) -> int:
        """What a new recording may take: an equal part of the budget (``max_bytes /
        max_active``, so that one recording cannot keep the others from starting), no more
        than the budget less the finished recordings and the shares of those running, and
        no more than leaves the disk its margin."""
        options = self.options
        running = sum(child.share for child in self._children.values())
        left = options.max_bytes - self.store.finished_bytes() - running
        try:
            free = shutil.disk_usage(self.settings.data_dir).free
        except OSError:
            free = left
        part = options.max_bytes // options.max_active
        return max(0, min(left, part, free - FREE_SPACE_MARGIN_BYTES))

    # ------------------------------------------------------------------ processes

    def _command(self, folder: Path, share: int) -> list[str]:
        """The recorder's arguments: its link comes on its standard input (``-``)."""
        command = [sys.executable, "-m", "salon", "bot", "record", "-"]
        command += ["--out", str(folder), "--max-bytes", str(share)]
        if not self.settings.http:
            command.append("--insecure")  # our own address: see the module's docstring
        return command

    async def _run(self, child: _Child, link: str, folder: Path) -> None:
        run = child.run
        try:
            child.process = process = await asyncio.create_subprocess_exec(
                *self._command(folder, child.share),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                env=recorder_environment(os.environ),
            )
            confine(process.pid, child.share)
            await self._give_link(process, link)
            if child.stop_asked:
                self._terminate(child)
            await self._read_stderr(child, process.stderr)
            code = await process.wait()
            if code == 0 or (child.stop_asked and code in (-signal.SIGTERM, -signal.SIGKILL)):
                log.info("recording %s: its recorder exited (%s)", run.id, code)
            else:
                tail = " | ".join(child.tail)
                log.warning("recording %s: its recorder failed (%s): %s", run.id, code, tail)
        except OSError as exc:
            log.warning("recording %s: could not start its recorder: %s", run.id, exc)
        finally:
            if child.killer is not None:
                child.killer.cancel()
            if child.process is not None and child.process.stdin is not None:
                child.process.stdin.close()
            self._finished(run)

    async def _give_link(self, process: asyncio.subprocess.Process, link: str) -> None:
        """Write the recorder's link on its standard input, and keep that open: its end is
        the recorder's sign to stop (the server is gone)."""
        stdin = process.stdin
        if stdin is None:
            return
        stdin.write(link.encode() + b"\n")
        with contextlib.suppress(ConnectionError):  # it died at once: its exit tells why
            await stdin.drain()

    def _finished(self, run: Run) -> None:
        """The recorder of ``run`` is gone: note the end, delete a recording with nothing in
        it (stopped before anything reached it), and tell the hub."""
        self.store.finish(run.id, self.clock.wall_ms())
        meta = self.store.get(run.id)
        if meta is not None and meta.bytes == 0:
            delete_folder(self.store.forget(run.id))  # an empty folder: at once
            log.info("recording %s deleted: nothing was recorded", run.id)
        self._children.pop(run.id, None)
        try:
            self.hub.recording_ended(run.room, run.id)
        except Exception:
            log.exception("recording %s: telling the room it ended failed", run.id)

    async def _read_stderr(self, child: _Child, stream: asyncio.StreamReader | None) -> None:
        """Log what the recorder says (each line at most 1000 characters)."""
        while stream is not None:
            try:
                raw = await stream.readline()
            except ValueError:  # a line past the reader's limit: skip what there is of it
                raw = await stream.read(64 * 1024)
            if not raw:
                return
            line = _INVITE.sub("#invite=…", raw.decode(errors="replace").rstrip()[:1000])
            if line:
                child.tail.append(line)
                log.info("recorder %s: %s", child.run.id, line)

    def _terminate(self, child: _Child) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        child.killer = loop.call_later(self.options.stop_seconds, self._kill, child)

    def _kill(self, child: _Child) -> None:
        process = child.process
        if process is not None and process.returncode is None:
            log.warning("recording %s: its recorder did not stop in time: killed", child.run.id)
            with contextlib.suppress(ProcessLookupError):
                process.kill()

    async def stop_all(self) -> None:
        """Stop every recorder and wait until each is gone (the server is stopping: from
        now on no recording starts)."""
        self.closing = True
        children = list(self._children.values())
        for child in children:
            self.stop(child.run.id)
        tasks = [child.task for child in children if child.task is not None]
        if tasks:
            log.info("stopping %d recorders", len(tasks))
            await asyncio.wait(tasks, timeout=self.options.stop_seconds + 5)

    # ------------------------------------------------------------------ retention

    def open(self) -> None:
        """Read the recordings folder (at start)."""
        self.store.load(self.clock.wall_ms())

    async def sweep(self) -> int:
        """Delete the finished recordings that started more than ``retention_days`` ago,
        then count the others' files again (a folder deleted or changed by hand counts as
        it is now); returns how many were deleted."""
        horizon = self.clock.wall_ms() - int(self.options.retention_days * 86_400_000)
        expired = [rid for rid in self.store.expired(horizon) if rid not in self._children]
        for recording in expired:
            await asyncio.to_thread(delete_folder, self.store.forget(recording))
            log.info("recording %s deleted: past its retention", recording)
        finished = [rid for rid in self.store.finished() if rid not in self._children]
        counted = await asyncio.to_thread(self.store.count, finished)
        for recording in self.store.recount(counted):
            log.info("recording %s forgotten: its folder is gone", recording)
        return len(expired)

    def sweep_soon(self) -> None:
        """Start a sweep in the background, unless one is under way."""
        if self._sweeping is None or self._sweeping.done():
            self._sweeping = asyncio.get_running_loop().create_task(self._sweep_logged())

    async def _sweep_logged(self) -> None:
        try:
            await self.sweep()
        except Exception:
            log.exception("the recordings' retention sweep failed")

    async def close(self) -> None:
        """Stop every recorder, and the sweep."""
        await self.stop_all()
        if self._sweeping is not None:
            self._sweeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeping
