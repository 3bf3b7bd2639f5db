"""The recordings folder: ``data_dir/recordings/<recording id>/``, one per recording.

Each folder holds what the recorder writes (one WebM file per participant and ``chat.jsonl``)
and the server's ``recording.json``: ``{id, room, meeting, started, ended, by, by_name,
account, owner}``, times in ms since the Unix epoch, ``ended`` null while it runs, ``owner``
the process running it (:func:`process_token`). The store keeps
those in memory (read once at start), with the files of each finished recording and their
sizes (counted when it finished, and again by :meth:`RecordingStore.recount`); only a
running recording's folder is read when asked. Small, synchronous file operations; deleting
a folder, and counting them all, is left to a worker thread by the caller.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Final

log = logging.getLogger(__name__)

META_FILE: Final = "recording.json"

RECORDING_ID: Final = re.compile(r"^[0-9a-f]{16}$")
"""A recording's id: 64 random bits in hex (``secrets.token_hex(8)``)."""

FILE_NAME: Final = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$")
"""A file the recorder writes: no path, no leading dot."""

ACTIVE_SECONDS: Final = 120.0
"""A running recording of a process on another host counts as still running while one of its
files was written this recently (a recorder writes media every second)."""


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (proc(5), ``stat`` field 22);
    None when there is no such process; 0 when it exists but that is not known (no ``/proc``:
    not Linux)."""
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except OSError:
            pass  # it exists, someone else's
        return 0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])  # after the name, which may hold ")"
    except (ValueError, IndexError):
        return 0


def process_token() -> str:
    """This process as ``host/pid/start`` (its host name, pid and :func:`_start_ticks`): the
    ``owner`` of the recordings it runs. The start time tells a pid used again later apart."""
    pid = os.getpid()
    return f"{socket.gethostname()}/{pid}/{_start_ticks(pid) or 0}"


def _owner_running(owner: str, newest_mtime: float | None) -> bool:
    """Whether the process ``owner`` (a :func:`process_token`) may still be running a
    recording: on this host, when that process exists; on another, when the recording's
    newest file is at most :data:`ACTIVE_SECONDS` old."""
    host, _, rest = owner.partition("/")
    pid, _, start = rest.partition("/")
    if host != socket.gethostname():
        return newest_mtime is not None and time.time() - newest_mtime <= ACTIVE_SECONDS
    if not (pid.isascii() and pid.isdigit() and start.isascii() and start.isdigit()):
        return False
    ticks = _start_ticks(int(pid))
    return ticks is not None and (ticks == int(start) or 0 in (ticks, int(start)))


@dataclass(slots=True)
class Meta:
    """What ``recording.json`` says, and (``files`` and ``bytes``, not stored) a finished
    recording's files with their sizes and their total, counted when it finished, when the
    server started, and at each :meth:`RecordingStore.recount`."""

    id: str
    room: str
    meeting: str
    started: int
    ended: int | None
    by: str
    by_name: str
    account: str | None
    owner: str | None = None  # the process running it (process_token); None before 2026-12
    bytes: int = 0
    files: list[tuple[str, int]] = field(default_factory=list)

    def stored(self) -> dict[str, Any]:
        body = asdict(self)
        del body["bytes"], body["files"]
        return body

    def counted(self, files: list[tuple[str, int]]) -> None:
        self.files = files
        self.bytes = sum(size for _, size in files)


_STORED: Final = frozenset(f.name for f in fields(Meta)) - {"bytes", "files"}


class RecordingStore:
    """The recordings under ``root``, which processes may share (docs/SCALING.md); this one
    is ``owner`` (:func:`process_token`)."""

    def __init__(self, root: Path, owner: str | None = None) -> None:
        self.root = root
        self.owner = owner or process_token()
        self._metas: dict[str, Meta] = {}

    def load(self, now_ms: int) -> None:
        """Read every recording's ``recording.json``. One that never ended ends now, at its
        newest file's time, unless another process that may still be running it owns it
        (:func:`_owner_running`): the server that ran it stopped without finishing it."""
        self._metas.clear()
        if not self.root.is_dir():
            return
        for folder in sorted(self.root.iterdir()):
            if not RECORDING_ID.fullmatch(folder.name):
                continue
            meta = self._read(folder)
            if meta is None:
                continue
            self._metas[meta.id] = meta
            if meta.ended is None:
                newest = max((mtime for _, _, mtime in self._scan(meta.id)), default=None)
                owner = meta.owner
                if isinstance(owner, str) and owner != self.owner and _owner_running(owner, newest):
                    continue  # another process records it: it notes the end
                ended = now_ms if newest is None else min(now_ms, int(newest * 1000))
                self.finish(meta.id, max(ended, meta.started))
            else:
                meta.counted(self.scan(meta.id))

    def _read(self, folder: Path) -> Meta | None:
        try:
            body = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
            if not isinstance(body, dict):
                raise TypeError(f"a JSON {type(body).__name__}, not an object")
            # Fields a later version added are not this one's business.
            meta = Meta(**{k: v for k, v in body.items() if k in _STORED})
        except (OSError, ValueError, TypeError) as exc:
            log.warning("recording folder %s has no readable %s: %s", folder, META_FILE, exc)
            return None
        return meta if meta.id == folder.name else None

    def create(self, meta: Meta) -> Path:
        """Make the folder of a new recording and its ``recording.json`` (this process its
        owner); its path."""
        meta.owner = self.owner
        folder = self.root / meta.id
        folder.mkdir(parents=True, exist_ok=False)
        self._write(meta)
        self._metas[meta.id] = meta
        return folder

    def _write(self, meta: Meta) -> None:
        path = self.root / meta.id / META_FILE
        partial = path.with_suffix(".json.partial")
        partial.write_text(json.dumps(meta.stored(), ensure_ascii=False), encoding="utf-8")
        os.replace(partial, path)  # whole or not at all, should the server stop meanwhile

    def finish(self, recording: str, ended_ms: int) -> None:
        """The recording ended at ``ended_ms``: note it, and count its size."""
        meta = self._metas.get(recording)
        if meta is None:
            return
        meta.ended = ended_ms
        meta.counted(self.scan(recording))
        try:
            self._write(meta)
        except OSError as exc:
            log.warning("could not note the end of recording %s: %s", recording, exc)

    def get(self, recording: str) -> Meta | None:
        return self._metas.get(recording)

    def of_room(self, room: str) -> list[Meta]:
        """The recordings of ``room``, the earliest first. One that another process runs is
        read again: that process notes its end."""
        found = []
        for meta in list(self._metas.values()):
            if meta.room != room:
                continue
            now = self._reread(meta) if meta.ended is None and meta.owner != self.owner else meta
            if now is not None:
                found.append(now)
        return sorted(found, key=lambda meta: (meta.started, meta.id))

    def _reread(self, meta: Meta) -> Meta | None:
        """``meta`` as its ``recording.json`` says now (counted, if it ended); None, and
        forgotten, when its folder is gone."""
        folder = self.root / meta.id
        if not folder.is_dir():
            del self._metas[meta.id]
            return None
        fresh = self._read(folder)
        if fresh is None:
            return meta
        if fresh.ended is not None:
            fresh.counted(self.scan(fresh.id))
        self._metas[fresh.id] = fresh
        return fresh

    def finished(self) -> list[str]:
        """The ids of the finished recordings."""
        return [meta.id for meta in self._metas.values() if meta.ended is not None]

    def finished_bytes(self) -> int:
        """The size of every finished recording together."""
        return sum(meta.bytes for meta in self._metas.values() if meta.ended is not None)

    def files(self, recording: str) -> list[tuple[str, int]]:
        """(name, bytes) of each file the recorder wrote, by name: as last counted for a
        finished recording, read now for a running one."""
        meta = self._metas.get(recording)
        if meta is not None and meta.ended is not None:
            return list(meta.files)
        return self.scan(recording)

    def scan(self, recording: str) -> list[tuple[str, int]]:
        """(name, bytes) of each file the recorder wrote, by name, read from the folder."""
        return sorted((name, size) for name, size, _ in self._scan(recording))

    def count(self, recordings: list[str]) -> dict[str, list[tuple[str, int]] | None]:
        """The files of each of ``recordings`` read from its folder (None: the folder is
        gone). Touches no state: safe in a worker thread."""
        return {rid: self.scan(rid) if (self.root / rid).is_dir() else None for rid in recordings}

    def recount(self, counted: dict[str, list[tuple[str, int]] | None]) -> list[str]:
        """Take what :meth:`count` found: new sizes, and a folder deleted by hand is
        forgotten (its bytes no longer count). Returns the ids forgotten."""
        gone = []
        for rid, files in counted.items():
            meta = self._metas.get(rid)
            if meta is None or meta.ended is None:
                continue
            if files is None:
                del self._metas[rid]
                gone.append(rid)
            else:
                meta.counted(files)
        return gone

    def _scan(self, recording: str) -> list[tuple[str, int, float]]:
        found = []
        with contextlib.suppress(OSError), os.scandir(self.root / recording) as entries:
            for entry in entries:
                if entry.name == META_FILE or not FILE_NAME.fullmatch(entry.name):
                    continue
                with contextlib.suppress(OSError):
                    if entry.is_file(follow_symlinks=False):
                        stat = entry.stat(follow_symlinks=False)
                        found.append((entry.name, stat.st_size, stat.st_mtime))
        return found

    def file_path(self, recording: str, name: str) -> Path | None:
        """The path of file ``name`` of ``recording``, when both exist (and the name is one
        the recorder may write: never ``recording.json``, never a path). A recording this
        process does not list counts when its folder has a ``recording.json``: another
        process sharing the folder made it (docs/SCALING.md), and a download key for it
        reaches whichever process the balancer picks."""
        if name == META_FILE or not FILE_NAME.fullmatch(name):
            return None
        if recording not in self._metas and not (
            RECORDING_ID.fullmatch(recording) and (self.root / recording / META_FILE).is_file()
        ):
            return None
        path = self.root / recording / name
        return path if path.is_file() and not path.is_symlink() else None

    def expired(self, before_ms: int) -> list[str]:
        """The finished recordings that started before ``before_ms``."""
        return [
            meta.id
            for meta in self._metas.values()
            if meta.ended is not None and meta.started < before_ms
        ]

    def forget(self, recording: str) -> Path:
        """Stop listing ``recording``; returns its folder, for the caller to delete."""
        self._metas.pop(recording, None)
        return self.root / recording


def delete_folder(folder: Path) -> None:
    """Delete a recording's folder (in a worker thread: it may hold gigabytes)."""
    shutil.rmtree(folder, ignore_errors=True)
