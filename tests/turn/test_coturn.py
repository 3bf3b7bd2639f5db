"""Salon's TURN credentials and hardened config against a real coturn.

Each refusal is paired with an acceptance under the same conditions (a fresh credential, a
config without the deny rule), so a broken client or a dead server cannot pass for a refusal.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable

import pytest

from salon.core.turn import turn_credential
from salon.core.turnconfig import PeerPolicy
from salon.server.coturn import Coturn
from tests.turn.conftest import SECRET
from tests.turn.stun import OK, TurnClient

MakeCoturn = Callable[..., Coturn]
INTERNAL_PEERS = ("127.0.0.1", "0.0.0.0", "10.0.0.1", "192.168.1.1")


def _client(turn: Coturn, secret: str = SECRET, ttl: int = 600, user: str = "alice") -> TurnClient:
    cred = turn_credential(secret, user, int(time.time()), ttl)
    return TurnClient("127.0.0.1", turn.port, cred.username, cred.password)


def _allocate(turn: Coturn, **kwargs: object) -> int:
    client = _client(turn, **kwargs)  # type: ignore[arg-type]
    try:
        return client.allocate()
    finally:
        client.close()


def _permissions(turn: Coturn, peers: tuple[str, ...]) -> dict[str, int]:
    client = _client(turn)
    try:
        assert client.allocate() == OK
        return {peer: client.create_permission(peer) for peer in peers}
    finally:
        client.close()


def test_a_fresh_credential_gets_an_allocation(make_coturn: MakeCoturn) -> None:
    assert _allocate(make_coturn()) == OK


def test_an_expired_credential_is_refused_with_401(make_coturn: MakeCoturn) -> None:
    turn = make_coturn()
    assert _allocate(turn, ttl=-60) == 401
    assert _allocate(turn, ttl=60) == OK  # same server, same user: only the expiry differs


def test_a_credential_signed_with_another_secret_is_refused_with_401(
    make_coturn: MakeCoturn,
) -> None:
    turn = make_coturn()
    assert _allocate(turn, secret="not-" + SECRET) == 401
    assert _allocate(turn, secret=SECRET) == OK


def test_the_hardened_relay_refuses_internal_peers_with_403(make_coturn: MakeCoturn) -> None:
    """10.0.0.1, 192.168.1.1 and 169.254.169.254 are refused by Salon's rules (coturn's log
    names the range). coturn refuses 127.0.0.1 (without allow-loopback-peers) and 0.0.0.0
    (always) by itself too; the 127/8 and 0/8 rules are a second lock. The public peer
    passes: the rules do not simply refuse everything."""
    turn = make_coturn()  # PeerPolicy.PUBLIC: what `salon turn-config` prints by default
    answers = _permissions(turn, (*INTERNAL_PEERS, "169.254.169.254", "8.8.8.8"))
    assert answers == {**dict.fromkeys(INTERNAL_PEERS, 403), "169.254.169.254": 403, "8.8.8.8": OK}
    log = turn.log()
    for peer, span in [("10.0.0.1", "10.0.0.0-10.255.255.255"), ("192.168.1.1", "192.168.0.0-")]:
        assert f"A peer IP {peer} denied in the range: {span}" in log


def test_without_the_deny_rules_the_same_peers_are_allowed(make_coturn: MakeCoturn) -> None:
    """The control for the test above: the 403s come from Salon's rules, not coturn's defaults.
    PeerPolicy.ANY is also the config a browser relay test over loopback needs."""
    turn = make_coturn(peers=PeerPolicy.ANY)
    # coturn 4.6 refuses 0.0.0.0 whatever the config says; the others pass without the rules.
    expected = {**dict.fromkeys(INTERNAL_PEERS, OK), "0.0.0.0": 403}
    assert _permissions(turn, INTERNAL_PEERS) == expected


def test_the_lan_policy_allows_private_peers_but_not_loopback(make_coturn: MakeCoturn) -> None:
    turn = make_coturn(peers=PeerPolicy.LAN)  # what `salon serve --with-turn` runs
    answers = _permissions(
        turn, ("10.0.0.1", "192.168.1.1", "172.16.5.4", "127.0.0.1", "0.0.0.0", "169.254.169.254")
    )
    assert answers == {
        "10.0.0.1": OK,
        "192.168.1.1": OK,
        "172.16.5.4": OK,
        "127.0.0.1": 403,
        "0.0.0.0": 403,
        "169.254.169.254": 403,
    }


def test_coturns_own_client_agrees(make_coturn: MakeCoturn) -> None:
    """turnutils_uclient, an independent TURN client: a fresh credential completes an
    allocation and relays to a peer; an expired one cannot allocate."""
    uclient, peer = shutil.which("turnutils_uclient"), shutil.which("turnutils_peer")
    if uclient is None or peer is None:
        pytest.skip("coturn's turnutils are not installed")
    turn = make_coturn(peers=PeerPolicy.ANY)
    peer_port = turn.port + 1  # inside the free range the fixture found; coturn relays above
    echo = subprocess.Popen(
        [peer, "-L", "127.0.0.1", "-p", str(peer_port)], stdout=subprocess.DEVNULL
    )
    try:

        def run(ttl: int) -> subprocess.CompletedProcess[str]:
            cred = turn_credential(SECRET, "alice", int(time.time()), ttl)
            args = [uclient, "-p", str(turn.port), "-u", cred.username, "-w", cred.password]
            args += ["-e", "127.0.0.1", "-r", str(peer_port), "-n", "2", "-c", "127.0.0.1"]
            return subprocess.run(args, capture_output=True, text=True, timeout=20, check=False)

        fresh, expired = run(600), run(-60)
    finally:
        echo.terminate()
        echo.wait()
    assert fresh.returncode == 0 and "tot_recv_msgs=2" in fresh.stdout, fresh.stdout[-2000:]
    assert expired.returncode != 0 and "Cannot complete Allocation" in expired.stdout
