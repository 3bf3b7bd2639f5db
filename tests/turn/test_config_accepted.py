"""coturn starts on every config `salon turn-config` and `--with-turn` can produce, and says
nothing against it. coturn does not exit on an unknown option, it logs and carries on, so the
log is read; the last test proves that reading catches a bad option."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from salon.core.turnconfig import PeerPolicy
from salon.server.coturn import (
    Coturn,
    find_turnserver,
    interface_addresses,
    stun_binding_answered,
)
from salon.server.tls import ensure_self_signed
from tests.turn.conftest import free_ports

COMPLAINTS = ("Bad configuration format", "CONFIG ERROR", "ERROR:", "Unknown argument")


def complaints(log: str) -> list[str]:
    return [line for line in log.splitlines() if any(c in line for c in COMPLAINTS)]


@pytest.mark.parametrize("peers", list(PeerPolicy))
def test_coturn_accepts_the_config_for_each_peer_policy(
    make_coturn: Callable[..., Coturn], peers: PeerPolicy
) -> None:
    # With this machine's addresses and one more to deny (IPv6 among them, where it has one).
    turn = make_coturn(peers=peers, host_addresses=(*interface_addresses(), "2001:db8::7"))
    assert complaints(turn.log()) == []
    assert f"{turn.config_path.stat().st_mode & 0o777:o}" == "600"


def test_coturn_accepts_the_config_with_tls(
    make_coturn: Callable[..., Coturn], tmp_path: Path
) -> None:
    cert, key = ensure_self_signed(tmp_path / "pem")
    tls_port = free_ports(1)
    turn = make_coturn(cert=str(cert), pkey=str(key), tls_listening_port=tls_port)
    log = turn.log()
    assert complaints(log) == [] and "Certificate file found" in log
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False
    with (
        socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")  # turns: is served, with our certificate


def test_a_bad_option_is_caught_by_reading_the_log(
    make_coturn: Callable[..., Coturn], tmp_path: Path
) -> None:
    good = make_coturn()
    good.stop()
    port = free_ports(1)
    text = good.config_path.read_text().replace(
        f"listening-port={good.port}", f"listening-port={port}"
    )
    bad = tmp_path / "bad.conf"
    bad.write_text(text + "no-such-option\n")
    binary = find_turnserver()
    assert binary is not None
    process = subprocess.Popen(
        [binary, "-c", str(bad)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        for _ in range(50):
            if stun_binding_answered("127.0.0.1", port):
                break
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=5)
    assert complaints(out) and "no-such-option" in complaints(out)[0]
