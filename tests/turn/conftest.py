"""Real coturn and Janus for the TURN and SFU tests: ``turnserver`` on free loopback ports,
with a config from ``salon.core.turnconfig`` started by the same code as ``salon serve
--with-turn``; ``janus`` likewise, as ``salon serve --with-sfu`` starts it."""

from __future__ import annotations

import contextlib
import random
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from salon.core.janusconfig import JanusConfig
from salon.core.turnconfig import TurnServerConfig
from salon.server.coturn import Coturn, find_turnserver, start_coturn
from salon.server.janus import JanusProcess, find_janus, start_janus

SECRET = "test-secret-shared-with-coturn"
REALM = "salon.test"
RELAY_PORTS = 8


def _free(port: int) -> bool:
    """Whether ``port`` is free on 127.0.0.1 for both UDP and TCP."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free ports, from 20000-32000: below Linux's
    ephemeral range, so a client socket cannot take one between the check and coturn's bind."""
    for _ in range(200):
        first = random.randrange(20_000, 32_000 - count)
        if all(_free(first + i) for i in range(count)):
            return first
    raise RuntimeError("no free port range")


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def skip_without_janus() -> None:
    """Skip, saying why where ``pytest -q`` shows it, when ``janus`` is missing."""
    if find_janus() is None:
        reason = "janus is not installed (make test installs Debian's janus)"
        print(f"SKIP: {reason}", file=sys.__stderr__)
        pytest.skip(reason)


@pytest.fixture
def requires_janus() -> None:
    skip_without_janus()


@pytest.fixture
def requires_coturn() -> None:
    """Skip, saying why where ``pytest -q`` shows it, when ``turnserver`` is missing."""
    if find_turnserver() is None:
        reason = "coturn's turnserver is not installed (make test installs Debian's coturn)"
        print(f"SKIP: {reason}", file=sys.__stderr__)
        pytest.skip(reason)


@pytest.fixture
def make_coturn(requires_coturn: None, tmp_path: Path) -> Iterator[Callable[..., Coturn]]:
    """``make_coturn(peers=PeerPolicy.ANY)``: a running coturn on 127.0.0.1, stopped after."""
    started: list[Coturn] = []

    def make(**changes: Any) -> Coturn:
        first = free_ports(RELAY_PORTS + 1)
        options: dict[str, Any] = {
            "secret": SECRET,
            "realm": REALM,
            "listening_port": first,
            "min_port": first + 1,
            "max_port": first + RELAY_PORTS,
            "listening_ips": ("127.0.0.1",),
            "relay_ips": ("127.0.0.1",),
            "log_file": "stdout",
            "state_dir": str(tmp_path / f"turn{len(started)}"),
        }
        config = TurnServerConfig(**(options | changes))
        running = start_coturn(config, tmp_path / f"turn{len(started)}")
        started.append(running)
        return running

    yield make
    for running in started:
        running.stop()


@contextlib.contextmanager
def running_janus(folder: Path, media_ports: int = 101) -> Iterator[JanusProcess]:
    """A real ``janus`` with a fresh hardened configuration in ``folder``, its API and
    ``media_ports`` UDP ports on free ports (skipped, saying why, when ``janus`` is
    missing); stopped after."""
    skip_without_janus()
    folder = folder.resolve()
    port, rtp = free_ports(1), free_ports(media_ports)
    rtp_ports = (rtp, rtp + media_ports - 1)
    config = JanusConfig.fresh(ws_port=port, rtp_ports=rtp_ports, configs_folder=folder)
    running = start_janus(config, folder)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JanusProcess]:
    """A real ``janus`` for a module's tests (see :func:`running_janus`)."""
    with running_janus(tmp_path_factory.mktemp("janus")) as running:
        yield running
