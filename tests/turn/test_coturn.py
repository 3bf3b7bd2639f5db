"""Salon's TURN credentials and hardened config against a real coturn.

Each refusal is paired with an acceptance under the same conditions (a fresh credential, a
config without the deny rule), so a broken client or a dead server cannot pass for a refusal.
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from salon.core.turn import turn_credential
from salon.core.turnconfig import PeerPolicy, denied_peer_ranges
from salon.server.coturn import Coturn, interface_addresses
from tests.turn.conftest import SECRET
from tests.turn.stun import OK, TurnClient

MakeCoturn = Callable[..., Coturn]
INTERNAL_PEERS = ("127.0.0.1", "0.0.0.0", "10.0.0.1", "192.168.1.1")
MORE_INTERNAL_PEERS = ("100.64.0.1", "172.16.0.1", "224.0.0.1", "239.255.255.250")
MAPPED_PEERS = ("::ffff:127.0.0.1", "::ffff:10.0.0.1")  # IPv4-mapped IPv6 (RFC 4291 2.5.5.2)
PUBLIC_V6_PEER = "2001:4860:4860::8888"
DUAL = ("127.0.0.1", "::1")  # relay IPs: IPv4 and IPv6 allocations, both on loopback


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
    """CreatePermission's answer for each peer, over an IPv4 allocation for IPv4 peers and an
    IPv6 one for IPv6 peers (coturn answers 443 to a peer of the other family)."""
    answers: dict[str, int] = {}
    for family in (4, 6):
        of_family = [peer for peer in peers if ipaddress.ip_address(peer).version == family]
        if not of_family:
            continue
        client = _client(turn)
        try:
            assert client.allocate(family) == OK
            answers |= {peer: client.create_permission(peer) for peer in of_family}
        finally:
            client.close()
    return {peer: answers[peer] for peer in peers}


@pytest.fixture
def ipv6_loopback() -> None:
    """Skip, saying why, where ::1 cannot be bound (IPv6 off): the IPv6 relay needs it."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError as exc:
        reason = f"no IPv6 loopback for an IPv6 relay: {exc}"
        print(f"SKIP: {reason}", file=sys.__stderr__)
        pytest.skip(reason)


def _denied_by_a_range(peer: str, policy: PeerPolicy) -> bool:
    ip = ipaddress.ip_address(peer)
    for span, _why in denied_peer_ranges(policy):
        first, _, last = span.partition("-")
        low, high = ipaddress.ip_address(first), ipaddress.ip_address(last or first)
        if low.version == ip.version and low <= ip <= high:  # type: ignore[operator]
            return True
    return False


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


def test_the_hardened_relay_refuses_cgnat_172_16_and_multicast_peers(
    make_coturn: MakeCoturn,
) -> None:
    """CGNAT and 172.16/12 by Salon's ranges (coturn names them); multicast by
    ``no-multicast-peers`` first, the 224/4 range being a second lock. The control below
    allows the first two without the rules."""
    turn = make_coturn()
    answers = _permissions(turn, (*MORE_INTERNAL_PEERS, "8.8.8.8"))
    assert answers == {**dict.fromkeys(MORE_INTERNAL_PEERS, 403), "8.8.8.8": OK}
    log = turn.log()
    assert "A peer IP 100.64.0.1 denied in the range: 100.64.0.0-100.127.255.255" in log
    assert "A peer IP 172.16.0.1 denied in the range: 172.16.0.0-172.31.255.255" in log


@pytest.mark.usefixtures("ipv6_loopback")
def test_ipv4_mapped_ipv6_peers_are_refused(make_coturn: MakeCoturn) -> None:
    """Over an IPv6 allocation, ::ffff:127.0.0.1 would reach loopback (coturn's own loopback
    check only knows ::1) and ::ffff:10.0.0.1 the LAN; the ::ffff:0:0/96 rule refuses both.
    A public IPv6 peer passes, and without the rules both mapped peers pass too."""
    hardened = make_coturn(relay_ips=DUAL)
    answers = _permissions(hardened, (*MAPPED_PEERS, PUBLIC_V6_PEER))
    assert answers == {**dict.fromkeys(MAPPED_PEERS, 403), PUBLIC_V6_PEER: OK}
    for peer in MAPPED_PEERS:
        assert f"A peer IP {peer} denied in the range: ::ffff:0:0-::ffff:ffff:ffff" in (
            hardened.log()
        )
    control = make_coturn(relay_ips=DUAL, peers=PeerPolicy.ANY)
    assert _permissions(control, MAPPED_PEERS) == dict.fromkeys(MAPPED_PEERS, OK)


@pytest.mark.usefixtures("ipv6_loopback")
@pytest.mark.parametrize("policy", [PeerPolicy.PUBLIC, PeerPolicy.LAN])
def test_the_hosts_own_addresses_are_refused(make_coturn: MakeCoturn, policy: PeerPolicy) -> None:
    """Every address of this machine's interfaces (as `salon turn-config` and
    `--with-turn` find them) is refused, and coturn's log names the host-address rule itself,
    not a range. Under the LAN policy the next address up, where it is not in a denied range
    (a LAN neighbour), is allowed: only the host is refused, not its network."""
    host = interface_addresses()
    if not host:
        reason = "this machine has no address besides loopback and link-local"
        print(f"SKIP: {reason}", file=sys.__stderr__)
        pytest.skip(reason)
    turn = make_coturn(peers=policy, relay_ips=DUAL, host_addresses=host)
    assert _permissions(turn, host) == dict.fromkeys(host, 403)
    log = turn.log()
    for address in host:
        assert f"A peer IP {address} denied in the range: {address}\n" in log
    if policy is PeerPolicy.LAN:
        neighbours = [str(ipaddress.ip_address(a) + 1) for a in host]
        neighbours = [n for n in neighbours if n not in host and not _denied_by_a_range(n, policy)]
        print(f"host addresses {host}; LAN neighbours allowed: {neighbours}")
        assert _permissions(turn, tuple(neighbours)) == dict.fromkeys(neighbours, OK)


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
