"""``salon serve --with-turn`` as a user runs it: a child coturn with a generated secret whose
credentials, from ``welcome`` and from ``ice_refresh``, coturn accepts; LAN peers allowed,
loopback refused; the secret never printed; coturn gone when Salon is stopped."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from salon.core.settings import Settings
from salon.server.coturn import interface_addresses, lan_address, turn_host
from tests.turn.conftest import alive, free_ports
from tests.turn.stun import OK, TurnClient


def _wait_healthy(url: str, process: subprocess.Popen[str], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        try:
            with urllib.request.urlopen(url, timeout=1) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("salon serve --with-turn did not come up")


def _allocate_with(server: dict[str, Any], port: int, peers: tuple[str, ...] = ()) -> list[int]:
    client = TurnClient("127.0.0.1", port, server["username"], server["credential"])
    try:
        return [client.allocate(), *(client.create_permission(peer) for peer in peers)]
    finally:
        client.close()


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
@pytest.mark.usefixtures("requires_coturn")
def test_serve_with_turn(tmp_path: Path, stop: signal.Signals) -> None:
    first = free_ports(2)
    web_port, turn_port = first, first + 1
    env = os.environ | {"SALON_TURN_PORT": str(turn_port), "SALON_LOG_LEVEL": "warning"}
    args = [sys.executable, "-m", "salon.cli", "serve", "--with-turn", "--http"]
    args += ["--host", "127.0.0.1", "--port", str(web_port), "--data-dir", str(tmp_path)]
    process = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        _wait_healthy(f"http://127.0.0.1:{web_port}/api/v1/health", process)
        with connect(f"ws://127.0.0.1:{web_port}/ws") as ws:
            ws.send(json.dumps({"type": "hello", "versions": [1], "name": "alice"}))
            welcome = json.loads(ws.recv(timeout=5))
            ws.send(json.dumps({"type": "ice_refresh", "ref": "r"}))
            refreshed = json.loads(ws.recv(timeout=5))
        stun, turn = welcome["ice_servers"]
        where = f"127.0.0.1:{turn_port}"
        assert stun["urls"] == [f"stun:{where}"]
        assert turn["urls"] == [f"turn:{where}?transport=udp", f"turn:{where}?transport=tcp"]
        assert turn["username"].endswith(f":{welcome['id']}")
        assert refreshed["type"] == "ice_servers" and refreshed["ref"] == "r"
        # Both credentials are good at coturn; the LAN demo relays to LAN peers, not loopback
        # and not this machine's own addresses (its IPv4 ones: the client allocates IPv4).
        own = tuple(a for a in interface_addresses() if ipaddress.ip_address(a).version == 4)
        answers = _allocate_with(turn, turn_port, ("192.168.1.1", "127.0.0.1", *own))
        assert answers == [OK, OK, 403, *[403] * len(own)]
        assert _allocate_with(refreshed["ice_servers"][1], turn_port) == [OK]
        forged = turn | {"credential": "AAAAAAAAAAAAAAAAAAAAAAAAAAA="}
        assert _allocate_with(forged, turn_port) == [401]

        config = tmp_path / "turn" / "turnserver.conf"
        assert f"{config.stat().st_mode & 0o777:o}" == "600"
        secret = next(
            line.split("=", 1)[1]
            for line in config.read_text().splitlines()
            if line.startswith("static-auth-secret=")
        )
        coturn_pid = int((tmp_path / "turn" / "turnserver.pid").read_text())
        assert alive(coturn_pid)
    finally:
        process.send_signal(stop)
        output, _ = process.communicate(timeout=20)
    assert f"turn:{where}" in output and secret not in output
    assert secret not in (tmp_path / "turn" / "turnserver.log").read_text()
    deadline = time.monotonic() + 5
    while alive(coturn_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(coturn_pid), "coturn outlived salon serve"


def test_the_turn_host_browsers_are_given() -> None:
    """The public URL's host, else a specific --host, else this machine's LAN address."""
    assert turn_host(Settings(public_url="https://meet.example.org:8443")) == "meet.example.org"
    assert turn_host(Settings(host="192.168.1.20")) == "192.168.1.20"
    assert turn_host(Settings(host="0.0.0.0")) == lan_address()
    assert ipaddress.ip_address(lan_address())  # an address, never a name or ""
