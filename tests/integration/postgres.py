"""A throwaway PostgreSQL cluster for the tests: its own temp folder, a free port, a unix socket
in that folder. Never the machine's default cluster. As root, the server runs as the
``postgres`` OS user (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "salon"


def find_bin_dir() -> Path | None:
    """Debian's versioned folder (newest first), else whatever is on PATH."""
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists():
            return Path(candidate)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    port: int
    _made: int = field(default=0)
    # pg_ctl with the cluster's folder and options: ``_ctl("stop")``, ``_ctl("start")``.
    _ctl: Callable[[str], None] | None = None

    def stop(self) -> None:
        """Stop the server at once (``-m immediate``): clients see their connections cut.
        A checkpoint first: the cluster runs with ``synchronous_commit=off``, so without it
        an immediate stop may lose what was just committed (tables a test made included)."""
        assert self._ctl is not None
        self._sql("CHECKPOINT")
        self._ctl("stop")

    def start(self) -> None:
        """Start it again on the same port, with the same data."""
        assert self._ctl is not None
        self._ctl("start")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        self._made += 1
        name = f"t{os.getpid()}_{self._made}"
        self._sql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def _sql(self, statement: str) -> None:
        """Run one statement as the superuser, from a thread of its own (a test may be inside
        a running event loop)."""
        import asyncio
        import threading

        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(
                host="127.0.0.1", port=self.port, user=SUPERUSER, database="postgres"
            )
            try:
                await conn.execute(statement)
            finally:
                await conn.close()

        failure: list[BaseException] = []

        def target() -> None:
            try:
                asyncio.run(run())
            except BaseException as exc:
                failure.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]


class Unavailable(Exception):
    """PostgreSQL cannot be run here at all (not a failure of Salon's): tests skip."""


def _run(argv: list[str], owner: str | None, log: Path | None = None) -> None:
    command = ["runuser", "-u", owner, "--", *argv] if owner else argv
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        tail = log.read_text()[-2000:] if log is not None and log.exists() else ""
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr}{tail}")


@contextlib.contextmanager
def throwaway_cluster(bin_dir: Path) -> Iterator[Cluster]:
    """initdb in a temp folder, start it on a free port (fsync off: it is thrown away)."""
    owner = None
    if os.geteuid() == 0:  # PostgreSQL will not run as root
        owner = "postgres"
        try:
            entry = pwd.getpwnam(owner)
        except KeyError:
            raise Unavailable("running as root and there is no `postgres` user") from None
        if shutil.which("runuser") is None:
            raise Unavailable("running as root and there is no `runuser`")
    root = Path(tempfile.mkdtemp(prefix="salon-pg-"))
    data, log = root / "data", root / "log"
    try:
        if owner:
            os.chown(root, entry.pw_uid, entry.pw_gid)
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust"]
        _run([*initdb, "-E", "UTF8", "--no-sync"], owner)
        port = _free_port()
        options = f"-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root}"
        options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data)]
        running = True

        def ctl(action: str) -> None:
            nonlocal running
            if action == "start":
                _run(
                    [*pg_ctl, "-o", options, "-l", str(log), "-w", "-t", "30", "start"], owner, log
                )
            else:
                _run([*pg_ctl, "-m", "immediate", "-w", "stop"], owner)
            running = action == "start"

        ctl("start")
        try:
            yield Cluster(port, _ctl=ctl)
        finally:
            if running:
                ctl("stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
