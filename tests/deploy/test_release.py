"""deploy/release.sh in venv mode, against a real sshd on loopback, with rollback.

The "host" is this machine seen through Debian's sshd on a free loopback port (throwaway host
and user keys, tests/deploy/sshd.py) and a temporary folder as its ``/srv/salon``. systemd is
not here: tests/deploy/service_standin.py stands in for it and for deploy/salon.service
(``current/venv/bin/salon serve`` as its child; ``restart`` = SIGTERM, wait for the drain to
end, start what ``current`` points at now), and release.sh is told to use it with
``--restart``. Everything else is release.sh's own: the upload over SSH, the install with uv
into a new release folder, the switch of ``current``, the wait for ``/api/v1/ready`` to answer
with the new version, the rollback.

"Newer" builds are the same source at a different version: the module copies
pyproject.toml, README.md and src/salon into a temporary folder, gives each copy a local
version label (``<version>+release.1``, ``+release.2``, ``+broken.3``) and builds a wheel of
it with ``uv build``, once per module. The broken copy's ``salon serve`` exits at once (its
``salon/__init__.py`` raises when the command is ``serve``), so it installs, passes
release.sh's ``salon --help`` check, is switched to, and never becomes ready.

The tests run in file order and build on each other: first release, second release while
two members are in a call, a broken release, a rollback by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.deploy.proxy import REPO, free_port
from tests.deploy.sshd import Sshd, loopback_sshd, unavailable

RELEASE = REPO / "deploy" / "release.sh"
STANDIN = Path(__file__).with_name("service_standin.py")
UV = Path(shutil.which("uv") or Path.home() / ".local" / "bin" / "uv")
# The host's Python for the releases' venvs: the one this venv was made from (uv's cache has
# wheels for it), else whatever python3 is.
BASE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"
if not BASE_PYTHON.exists():
    BASE_PYTHON = Path(shutil.which("python3") or "/usr/bin/python3")
BROKEN = """
import sys as _sys

if _sys.argv[1:2] == ["serve"]:
    raise SystemExit("salon serve: broken on purpose by tests/deploy/test_release.py")
"""
DEPLOY_SECONDS = 180  # one release.sh run: upload, install, drain, start, ready

pytestmark = pytest.mark.timeout(300)


@dataclass
class Build:
    version: str
    wheel: Path


@dataclass
class Host:
    """The deploy target: sshd, the Salon folder, the service stand-in, and the builds."""

    sshd: Sshd
    root: Path  # the host's /srv/salon
    state: Path  # the service stand-in's files, and the server's log
    port: int  # where the service listens (SALON_PORT in the unit's environment file)
    builds: dict[str, Build]
    history: list[str] = field(default_factory=list)  # what each deploy left in `current`

    @property
    def ready_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/ready"

    def command(self, *args: str) -> list[str]:
        restart = shlex.join([sys.executable, str(STANDIN), "restart", str(self.state)])
        return [
            str(RELEASE),
            "venv",
            *("--host", self.sshd.alias, "--ssh-config", str(self.sshd.client_config)),
            *("--root", str(self.root), "--url", self.ready_url, "--restart", restart),
            *("--uv", str(UV), "--python", str(BASE_PYTHON)),
            *args,
        ]

    def release(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            timeout=DEPLOY_SECONDS,
            env=release_env(),
        )

    def health(self) -> dict[str, Any]:
        url = f"http://127.0.0.1:{self.port}/api/v1/health"
        with urllib.request.urlopen(url, timeout=5) as answer:
            health: dict[str, Any] = json.load(answer)
            return health

    def link(self, name: str) -> str:
        return os.readlink(self.root / name)

    def server_log(self) -> str:
        path = self.state / "salon.log"
        return path.read_text(errors="replace") if path.exists() else ""


def release_env() -> dict[str, str]:
    return {**os.environ, "UV": str(UV)}


def explain(result: subprocess.CompletedProcess[str], host: Host) -> str:
    return (
        f"release.sh exited {result.returncode}\n--- its output\n{result.stdout}{result.stderr}"
        f"--- the server's log\n{host.server_log()[-4000:]}\n--- sshd\n{host.sshd.output()[-2000:]}"
    )


# --- The builds -------------------------------------------------------------------------------


def build_wheel(work: Path, label: str, *, broken: bool = False) -> Build:
    """A wheel of a copy of the source whose version carries ``label``."""
    source = work / f"source-{label}"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "src" / "salon",
        source / "src" / "salon",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    project = source / "pyproject.toml"
    base = tomllib.loads(project.read_text())["project"]["version"]
    version = f"{base}+{label}"
    text, count = re.subn(r'(?m)^version = "[^"]+"$', f'version = "{version}"', project.read_text())
    assert count == 1, "pyproject.toml has no version line to patch"
    project.write_text(text)
    if broken:
        init = source / "src" / "salon" / "__init__.py"
        init.write_text(init.read_text() + BROKEN)
    subprocess.run(
        [UV, "build", "--wheel", "--quiet", "--out-dir", work / "wheels"],
        cwd=source,
        check=True,
        timeout=180,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never"},
    )
    wheels = list((work / "wheels").glob(f"salon-{version}-*.whl"))
    assert len(wheels) == 1, wheels
    shutil.rmtree(source)
    return Build(version, wheels[0])


# --- The host: sshd, the folder, the service ---------------------------------------------------


def start_service(state: Path, root: Path, port: int) -> subprocess.Popen[bytes]:
    """The stand-in for systemd, with the environment deploy/salon.service would give."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(state),
        "LANG": "C.UTF-8",
        "SALON_HTTP": "true",
        "SALON_HOST": "127.0.0.1",
        "SALON_PORT": str(port),
        "SALON_DATA_DIR": str(root / "data"),  # shared by every release
        "SALON_LOG_LEVEL": "warning",
        "SALON_DRAIN_SPREAD_SECONDS": "1",
        "SALON_DRAIN_SECONDS": "15",
    }
    with (state / "standin.err").open("wb") as errors:
        process = subprocess.Popen(
            [sys.executable, str(STANDIN), "run", str(state), str(root)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=environment,
        )
    pid_file = state / "manager.pid"
    until(lambda: pid_file.exists() or process.poll() is not None, 20, "the stand-in")
    assert process.poll() is None, (state / "standin.err").read_text()
    return process


def stop_service(process: subprocess.Popen[bytes], state: Path) -> None:
    """SIGTERM stops the server (it drains; nobody is left) and then the stand-in; if that
    hangs, kill both."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        pid = state / "salon.pid"
        if pid.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid.read_text()), signal.SIGKILL)
        process.kill()
        process.wait()


def until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.05)  # a process that is starting: nothing to await but its file


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    reason = unavailable()
    if reason:
        print(reason)
        pytest.skip(reason)
    if not UV.exists():
        reason = f"uv is missing ({UV}): make deps installs it"
        print(reason)
        pytest.skip(reason)
    work = Path(tempfile.mkdtemp(prefix="salon-release-"))
    try:
        builds = {
            "first": build_wheel(work, "release.1"),
            "second": build_wheel(work, "release.2"),
            "broken": build_wheel(work, "broken.3", broken=True),
        }
        root, state = work / "srv-salon", work / "service"
        (root / "data").mkdir(parents=True)
        state.mkdir()
        port = free_port()
        with loopback_sshd(work / "ssh") as sshd:
            service = start_service(state, root, port)
            try:
                yield Host(sshd, root, state, port, builds)
            finally:
                stop_service(service, state)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- A member that rides through a restart -------------------------------------------------


class Member:
    """A raw protocol client that keeps everything it hears, across its connections."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.ws: ClientConnection | None = None
        self.id = ""
        self.token = ""  # the newest resume token
        self.heard: list[dict[str, Any]] = []

    async def hello(self, resume: str | None = None) -> dict[str, Any]:
        self.ws = await connect(self.url, open_timeout=5)
        extra = {} if resume is None else {"resume": resume}
        try:
            await self.send(type="hello", versions=[1], name=self.name, **extra)
            welcome = await self.until(lambda m: m["type"] == "welcome", since=len(self.heard))
        except (ConnectionClosed, TimeoutError):
            await self.ws.close()  # a server going away under the handshake: try the next
            raise
        self.id, self.token = welcome["id"], welcome["resume_token"]
        return welcome

    async def send(self, **message: Any) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps(message))

    async def recv(self, timeout: float) -> dict[str, Any]:
        assert self.ws is not None
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] == "ping":
                await self.send(type="pong")
                continue
            if message["type"] == "resume_token":
                self.token = message["token"]
            assert message["type"] != "error", message
            self.heard.append(message)
            return message

    async def until(
        self, check: Callable[[dict[str, Any]], bool], *, since: int = 0, timeout: float = 10
    ) -> dict[str, Any]:
        """The first message from index ``since`` on that passes ``check``, read as needed."""
        for message in self.heard[since:]:
            if check(message):
                return message
        while True:
            message = await self.recv(timeout)
            if check(message):
                return message

    async def closed(self, timeout: float) -> int | None:
        """Read until the server closes the connection; its close code."""
        try:
            while True:
                await self.recv(timeout)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None

    async def come_back(self, timeout: float) -> dict[str, Any]:
        """Resume with the newest token as soon as a server takes the handshake (the old one
        refuses it with 503 while draining; then nothing listens until the new one is up)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                return await self.hello(resume=self.token)
            except (OSError, InvalidHandshake, TimeoutError, ConnectionClosed):
                assert loop.time() < deadline, f"{self.name} found no server in {timeout} s"
                await asyncio.sleep(0.2)  # the client's reconnect back-off; no event to await

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


# --- The tests ----------------------------------------------------------------------------------


def test_first_release_installs_and_serves(host: Host) -> None:
    first = host.builds["first"]
    result = host.release("--wheel", str(first.wheel), "--timeout", "60")
    assert result.returncode == 0, explain(result, host)
    assert host.health()["version"] == first.version
    current = host.link("current")
    assert re.fullmatch(r"releases/\d{8}T\d{6}Z-" + re.escape(first.version), current), current
    assert (host.root / current / "venv" / "bin" / "salon").exists()
    assert (host.root / current / "VERSION").read_text().strip() == first.version
    assert not (host.root / "previous").exists()
    # The data folder is shared, outside every release: the resume key outlives releases.
    assert (host.root / "data" / "resume.key").exists()
    host.history.append(current)


async def test_a_newer_release_takes_over_while_members_keep_their_places(host: Host) -> None:
    assert len(host.history) == 1, "needs the first release (the test before)"
    second = host.builds["second"]
    url = f"ws://127.0.0.1:{host.port}/ws"
    alice, bob = Member(url, "alice"), Member(url, "bob")
    try:
        await alice.hello()
        await alice.send(type="join", room="standup")
        await alice.until(lambda m: m["type"] == "joined")
        await bob.hello()
        await bob.send(type="join", room="standup")
        await bob.until(lambda m: m["type"] == "joined")
        await alice.until(lambda m: m["type"] == "member_joined" and m["member"]["id"] == bob.id)
        alice_id, bob_id = alice.id, bob.id

        # --keep 0: even so, the release before (previous) and the new one (current) stay.
        deploy = await asyncio.create_subprocess_exec(
            *host.command("--wheel", str(second.wheel), "--timeout", "60", "--keep", "0"),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=release_env(),
        )
        output = asyncio.create_task(deploy.communicate())
        try:
            # The old server drains: both are told, then closed with 1012 (a loss, not a goodbye).
            codes = await asyncio.gather(alice.closed(60), bob.closed(60))
            assert codes == [1012, 1012], codes
            for member in (alice, bob):
                assert any(m["type"] == "server_draining" for m in member.heard), member.heard
            mark = {alice.name: len(alice.heard), bob.name: len(bob.heard)}
            back = await asyncio.gather(alice.come_back(90), bob.come_back(90))
        finally:
            stdout, _ = await asyncio.wait_for(output, DEPLOY_SECONDS)
        result = subprocess.CompletedProcess(
            host.command(), deploy.returncode, stdout.decode(errors="replace"), ""
        )
        assert result.returncode == 0, explain(result, host)

        # Same places on the new server: same ids, back in the room.
        for welcome, member_id in ((back[0], alice_id), (back[1], bob_id)):
            assert welcome["id"] == member_id, welcome
            assert welcome["resumed"] is not None and welcome["resumed"]["room"] == "standup"
        # Alice sees Bob in the room again: in her snapshot, or as member_resumed.
        await alice.until(
            lambda m: (
                (m["type"] == "joined" and bob_id in [x["id"] for x in m["members"]])
                or (m["type"] == "member_resumed" and m["member"]["id"] == bob_id)
            ),
            since=mark["alice"],
        )
        await bob.send(type="chat", text="still here after the deploy", id="after-deploy-1")
        said = await alice.until(
            lambda m: m["type"] == "chat" and m["client_id"] == "after-deploy-1"
        )
        assert said["from"] == bob_id
        for member in (alice, bob):
            assert not [m for m in member.heard if m["type"] == "member_left"], member.heard
    finally:
        await alice.close()
        await bob.close()

    assert host.health()["version"] == second.version
    current, previous = host.link("current"), host.link("previous")
    assert current.endswith(second.version) and current != host.history[0]
    assert previous == host.history[0], "the release before is kept as previous"
    assert (host.root / previous / "venv" / "bin" / "salon").exists()
    host.history.append(current)


def test_a_release_that_never_gets_ready_is_rolled_back(host: Host) -> None:
    assert len(host.history) == 2, "needs the first two releases (the tests before)"
    broken = host.builds["broken"]
    # A short --timeout for the broken one; the rollback still gives the old one 60 s.
    result = host.release("--wheel", str(broken.wheel), "--timeout", "5")
    assert result.returncode == 3, explain(result, host)
    assert "rolled back" in result.stderr, explain(result, host)
    # The release before serves again, from its folder, and the failed one is kept to look at.
    assert host.health()["version"] == host.builds["second"].version
    assert host.link("current") == host.history[1]
    assert host.link("previous") == host.history[0]
    failed = [p for p in (host.root / "releases").iterdir() if p.name.endswith(broken.version)]
    assert len(failed) == 1 and (failed[0] / "FAILED").exists(), failed
    assert "broken on purpose" in host.server_log()


def test_rollback_by_hand_goes_back_one_release(host: Host) -> None:
    assert len(host.history) == 2, "needs the first two releases (the tests before)"
    result = host.release("--rollback", "--timeout", "60")
    assert result.returncode == 0, explain(result, host)
    assert host.health()["version"] == host.builds["first"].version
    assert host.link("current") == host.history[0]
    assert host.link("previous") == host.history[1]
