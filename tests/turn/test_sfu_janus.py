"""Janus as a real part (issue #13, first part): ``salon sfu-config`` writes a hardened
configuration that the real ``janus`` starts with, and ``salon serve --with-sfu`` runs Janus as
a child, keeps a session on it, reports it in health, notices it die and come back, never
hands its secret to a client, and stops it on exit. Rooms through Janus: test_sfu_rooms.py."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from salon.core.janusconfig import JanusConfig
from salon.server.coturn import lan_address
from salon.server.janus import JanusApi, JanusError, SfuLink, answers, find_janus, start_janus
from tests.turn.conftest import alive, free_ports


def _eventually(check: object, what: str, timeout: float = 20.0) -> None:
    assert callable(check)
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _health(port: int) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2) as answer:
        body: dict[str, object] = json.load(answer)
        return body


def _sfu_is(port: int, state: str) -> bool:
    try:
        return _health(port)["sfu"] == state
    except OSError:
        return False


async def _info_and_sessions(url: str, secret: str) -> tuple[dict[str, object], int, int]:
    """Janus's ``info``, the error code of a ``create`` without the secret, and a session
    made with it."""
    async with JanusApi(url, None) as anonymous:
        info = await anonymous.request({"janus": "info"}, expect="server_info")
        try:
            await anonymous.request({"janus": "create"})
            refused = 0
        except JanusError as exc:
            refused = exc.code
    async with JanusApi(url, secret) as api:
        session = await api.create_session()
        await api.destroy_session(session)
    return info, refused, session


def _janus_image_command(folder: Path) -> list[str]:
    """The command of deploy/janus.Dockerfile (compose's ``janus`` service), with ``folder``
    where compose mounts the configuration."""
    dockerfile = Path(__file__).parents[2] / "deploy" / "janus.Dockerfile"
    command: list[str] = json.loads(re.findall(r"^CMD (\[.*\])$", dockerfile.read_text(), re.M)[-1])
    assert command[0] == "janus" and "/etc/janus-salon" in command
    return [
        str(find_janus()),
        *(str(folder) if a == "/etc/janus-salon" else a for a in command[1:]),
    ]


@pytest.mark.usefixtures("requires_janus")
def test_sfu_config_is_hardened_and_janus_starts_with_it(tmp_path: Path) -> None:
    # Janus is started as the compose service's image starts it.
    port, rtp = free_ports(1), free_ports(11)
    folder = tmp_path / "janus"
    command = [sys.executable, "-m", "salon.cli", "sfu-config", str(folder)]
    command += ["--port", str(port), "--rtp-ports", f"{rtp}-{rtp + 10}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    url, secret = re.findall(r"^SALON_SFU_URL=(\S+)\nSALON_SFU_API_SECRET=(\S+)$", out, re.M)[0]
    assert url == f"ws://127.0.0.1:{port}"
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "janus.jcfg",
        "janus.plugin.videoroom.jcfg",
        "janus.transport.websockets.jcfg",
    ]
    for path in folder.iterdir():
        assert f"{path.stat().st_mode & 0o777:o}" == "600", path
    assert f'api_secret = "{secret}"' in (folder / "janus.jcfg").read_text()
    again = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    assert secret not in again  # fresh secrets every time

    janus = subprocess.Popen(
        _janus_image_command(folder),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        secret = re.findall(r"^SALON_SFU_API_SECRET=(\S+)$", again, re.M)[0]
        _eventually(lambda: answers(url), "janus did not start")
        info, refused, session = asyncio.run(_info_and_sessions(url, secret))
        assert list(info["plugins"]) == ["janus.plugin.videoroom"]  # type: ignore[call-overload]
        assert list(info["transports"]) == ["janus.transport.websockets"]  # type: ignore[call-overload]
        assert info["api_secret"] is True
        assert refused == 403  # no secret, no session
        assert session > 0
        # The API listens on loopback only: not on this machine's LAN address.
        lan = lan_address()
        if lan != "127.0.0.1":
            assert not answers(f"ws://{lan}:{port}")
        # No Admin API, on its default port or anywhere else Janus listens.
        listening = subprocess.run(
            ["ss", "-Hltnp"], capture_output=True, text=True, check=True
        ).stdout
        ours = [line.split()[3] for line in listening.splitlines() if f"pid={janus.pid}," in line]
        assert ours == [f"127.0.0.1:{port}"]
    finally:
        janus.terminate()
        janus.wait(10)


def _serve(
    tmp_path: Path, web_port: int, env: dict[str, str], *flags: str
) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "salon.cli", "serve", *flags, "--http", "--host", "127.0.0.1"]
    args += ["--port", str(web_port), "--data-dir", str(tmp_path / "data")]
    env = os.environ | {"SALON_LOG_LEVEL": "warning", "SALON_SFU_CHECK_SECONDS": "0.3"} | env
    return subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


@pytest.mark.usefixtures("requires_janus")
def test_serve_with_sfu_runs_janus_never_tells_its_secret_and_stops_it(tmp_path: Path) -> None:
    web_port, sfu_port, rtp = free_ports(1), free_ports(1), free_ports(11)
    env = {"SALON_SFU_PORT": str(sfu_port), "SALON_SFU_RTP_PORTS": json.dumps([rtp, rtp + 10])}
    process = _serve(tmp_path, web_port, env, "--with-sfu")
    folder = tmp_path / "data" / "sfu"
    try:
        _eventually(lambda: _sfu_is(web_port, "ok"), "health never said sfu ok")
        config = (folder / "janus.jcfg").read_text()
        secret = re.findall(r'api_secret = "([^"]+)"', config)[0]
        pid = int((folder / "janus.pid").read_text().strip())
        assert alive(pid)
        assert f"{(folder / 'janus.jcfg').stat().st_mode & 0o777:o}" == "600"
        # A client, greeted and in a room, is never handed the secret.
        with connect(f"ws://127.0.0.1:{web_port}/ws") as ws:
            ws.send(json.dumps({"type": "hello", "versions": [1], "name": "alice"}))
            heard = [ws.recv(timeout=5)]
            ws.send(json.dumps({"type": "join", "room": "big"}))
            heard += [ws.recv(timeout=5), ws.recv(timeout=5)]
        assert [json.loads(m)["type"] for m in heard] == ["welcome", "joined", "resume_token"]
        assert not any(secret in m for m in heard)
        # Janus crashes: Salon starts it again, with the same secret, and reaches it again.
        os.kill(pid, signal.SIGKILL)
        _eventually(lambda: _sfu_is(web_port, "unreachable"), "health did not notice")
        _eventually(lambda: _sfu_is(web_port, "ok"), "Janus was not started again", 30)
        restarted = int((folder / "janus.pid").read_text().strip())
        assert restarted != pid
        assert alive(restarted)
        assert f'api_secret = "{secret}"' in (folder / "janus.jcfg").read_text()
        pid = restarted
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert f"API ws://127.0.0.1:{sfu_port}" in output
    assert secret not in output
    _eventually(lambda: not alive(pid), "janus outlived salon serve", timeout=10)


@pytest.mark.usefixtures("requires_janus")
def test_a_janus_run_apart_is_followed_down_and_back_up(tmp_path: Path) -> None:
    """A deployment's Janus (SALON_SFU_URL, SALON_SFU_API_SECRET): Salon keeps a session on
    it, says in health when it is gone, and has a session again once it is back."""
    web_port, sfu_port, rtp = free_ports(1), free_ports(1), free_ports(11)
    folder = tmp_path / "janus"
    command = [sys.executable, "-m", "salon.cli", "sfu-config", str(folder)]
    command += ["--port", str(sfu_port), "--rtp-ports", f"{rtp}-{rtp + 10}"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    env = dict(re.findall(r"^(SALON_SFU_\w+)=(\S+)$", out, re.M))
    assert sorted(env) == ["SALON_SFU_ADMIN_KEY", "SALON_SFU_API_SECRET", "SALON_SFU_URL"]

    def janus() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [str(find_janus()), "-F", str(folder), "-C", str(folder / "janus.jcfg")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    first = janus()
    # Without its admin_key, Salon cannot create rooms on it: health says so, no room moves.
    wrong = {**env, "SALON_SFU_ADMIN_KEY": "not-the-key"}
    wrong_port = free_ports(1)
    process = _serve(tmp_path / "wrong", wrong_port, wrong)
    try:
        _eventually(lambda: _sfu_is(wrong_port, "refused"), "health never said sfu refused")
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert "not-the-key" not in output
    process = _serve(tmp_path, web_port, env)
    second = None
    try:
        _eventually(lambda: _sfu_is(web_port, "ok"), "health never said sfu ok")
        first.kill()
        first.wait(10)
        _eventually(lambda: _sfu_is(web_port, "unreachable"), "health did not notice")
        second = janus()
        _eventually(lambda: _sfu_is(web_port, "ok"), "Salon did not reconnect to Janus")
    finally:
        for child in (first, second):
            if child is not None and child.poll() is None:
                child.terminate()
                child.wait(10)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    assert env["SALON_SFU_API_SECRET"] not in output


@pytest.mark.usefixtures("requires_janus")
def test_another_janus_on_the_port_is_not_taken_for_ours(tmp_path: Path) -> None:
    """A Janus already on the port (Debian's janus.service listens on 8188, without a secret)
    answers ``info`` too: start_janus tells it from its own by the server name it made up."""
    port = free_ports(1)
    other = JanusConfig.fresh(ws_port=port, configs_folder=tmp_path / "other")
    running = start_janus(other, tmp_path / "other")
    try:
        ours = JanusConfig.fresh(ws_port=port, configs_folder=tmp_path / "ours")
        with pytest.raises(JanusError, match="did not start"):
            start_janus(ours, tmp_path / "ours", timeout=5)
        assert running.process.poll() is None  # the other one is untouched
    finally:
        running.stop()


async def test_the_link_outlives_a_janus_that_answers_nonsense(tmp_path: Path) -> None:
    """A server on the Janus port that answers without the fields Janus's answers have (or
    with an error of the wrong shape): the link says unreachable and keeps trying, and once
    real answers come, it has a session. (A real Janus cannot be made to answer wrongly.)"""
    sane = asyncio.Event()

    async def answer(ws: ServerConnection) -> None:
        async for text in ws:
            request = json.loads(text)
            reply: dict[str, object] = {"transaction": request["transaction"]}
            if not sane.is_set():
                reply |= (
                    {"janus": "error", "error": "no"}
                    if request["janus"] == "keepalive"
                    else {
                        "janus": "success"  # no data.id
                    }
                )
            elif request["janus"] == "create":
                reply |= {"janus": "success", "data": {"id": 7}}
            else:
                reply |= {"janus": "ack"}
            await ws.send(json.dumps(reply))

    async with serve(
        answer, "127.0.0.1", 0, subprotocols=[Subprotocol("janus-protocol")]
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        link = SfuLink(f"ws://127.0.0.1:{port}", "secret", check_seconds=0.05)
        link.start()
        try:
            await asyncio.wait_for(link.checked(), 5)
            assert link.healthy is False and link.session is None
            await asyncio.wait_for(link.checked(), 5)  # still checking, not dead
            sane.set()
            async with asyncio.timeout(5):
                while not link.healthy:
                    await link.checked()
            assert link.session == 7
        finally:
            await link.stop()
