"""Relay to relay through one hardened coturn, in a network namespace of the test's own.

When two browsers can only use the relay, each allocation's peer is the other allocation's
relayed address: an address of the TURN host itself. The hardened config denies the host's own
addresses but keeps the one the relay is reached at (``relay_addresses``); this proves both
against a real coturn whose relay address is not loopback (coturn refuses loopback peers
before any rule, so a loopback relay cannot show it). The namespace gets its own veth pair
on 198.18.0.0/15 addresses and a second "host" address; traffic never leaves the machine.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from salon.core.turn import turn_credential
from salon.core.turnconfig import PeerPolicy, TurnServerConfig
from salon.server.coturn import Coturn, start_coturn
from tests.turn.conftest import REALM, SECRET, free_ports
from tests.turn.stun import OK, TurnClient
from tests.turn.test_config_accepted import complaints


@dataclass
class Namespace:
    name: str
    relay: str  # the namespace's veth address: coturn listens and relays here
    other: str  # a second address of the same "host", on its loopback


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True, timeout=10)


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    """A network namespace reached over a veth pair (198.18.N.1 inside, .2 outside), deleted
    after the test whatever happens; skips, saying why, where namespaces cannot be made."""
    if shutil.which("ip") is None:
        print("SKIP: iproute2's ip is not installed", file=sys.__stderr__)
        pytest.skip("iproute2's ip is not installed")
    tag = secrets.token_hex(3)
    name, outside, inside = f"h4-turn-{tag}", f"h4o{tag}", f"h4i{tag}"
    octet = int(tag[:2], 16)
    ns = Namespace(name, f"198.18.{octet}.1", f"198.19.{octet}.1")
    try:
        _ip("netns", "add", name)
    except (subprocess.CalledProcessError, OSError) as exc:
        reason = f"cannot make a network namespace here: {getattr(exc, 'stderr', exc)}"
        print(f"SKIP: {reason}", file=sys.__stderr__)
        pytest.skip(reason)
    try:
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", name)
        _ip("addr", "add", f"198.18.{octet}.2/24", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("-n", name, "addr", "add", f"{ns.relay}/24", "dev", inside)
        _ip("-n", name, "link", "set", inside, "up")
        _ip("-n", name, "addr", "add", f"{ns.other}/32", "dev", "lo")
        _ip("-n", name, "link", "set", "lo", "up")
        yield ns
    finally:
        subprocess.run(["ip", "link", "del", outside], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture(params=[False, True], ids=["own-address", "behind-nat"])
def hardened_in_namespace(
    request: pytest.FixtureRequest, requires_coturn: None, namespace: Namespace, tmp_path: Path
) -> Iterator[tuple[Coturn, Namespace, str]]:
    """The hardened coturn in the namespace, relaying from its veth address; "behind-nat"
    also gives it a public address that is on no interface (``external-ip``, as behind a
    cloud's 1:1 NAT), which it announces as the relayed address. Yields the coturn, the
    namespace and the relayed address peers see."""
    external = namespace.relay.replace("198.18.", "198.19.").rsplit(".", 1)[0] + ".9"
    behind_nat = request.param
    first = free_ports(9)
    config = TurnServerConfig(
        secret=SECRET,
        realm=REALM,
        listening_port=first,
        min_port=first + 1,
        max_port=first + 8,
        listening_ips=(namespace.relay,),
        relay_ips=(namespace.relay,),
        host_addresses=(namespace.relay, namespace.other),  # the namespace's interfaces
        external_ip=external if behind_nat else None,
        peers=PeerPolicy.PUBLIC,
        log_file="stdout",
        state_dir=str(tmp_path),
    )
    wrapper = ("ip", "netns", "exec", namespace.name)
    turn = start_coturn(config, tmp_path, probe_host=namespace.relay, wrapper=wrapper)
    try:
        yield turn, namespace, external if behind_nat else namespace.relay
    finally:
        turn.stop()


def test_two_relayed_peers_reach_each_other_but_not_the_hosts_other_address(
    hardened_in_namespace: tuple[Coturn, Namespace, str],
) -> None:
    """Behind NAT the peers' permissions name the external address, which is in a denied
    range here (198.18.0.0/15) and on no interface: coturn maps it to the relay address
    before checking, so the relay address's allowance is what lets the call through."""
    turn, ns, announced = hardened_in_namespace
    assert f"allowed-peer-ip={ns.relay}" in turn.config_path.read_text()
    assert complaints(turn.log()) == []  # coturn takes the allowed-peer-ip line as it is
    cred = turn_credential(SECRET, "alice", int(time.time()), 600)
    a = TurnClient(ns.relay, turn.port, cred.username, cred.password)
    b = TurnClient(ns.relay, turn.port, cred.username, cred.password)
    try:
        assert (a.allocate(), b.allocate()) == (OK, OK)
        assert a.relayed is not None and b.relayed is not None
        assert a.relayed[0] == b.relayed[0] == announced
        # Each allocation may have the other's relayed address as its peer ...
        assert a.create_permission(b.relayed[0]) == OK
        assert b.create_permission(a.relayed[0]) == OK
        # ... and data crosses the relay both ways.
        a.send(*b.relayed, b"from a")
        assert b.receive() == (a.relayed, b"from a")
        b.send(*a.relayed, b"from b")
        assert a.receive() == (b.relayed, b"from b")
        # The host's other address, and a neighbour of the relay address, stay refused.
        neighbour = ns.relay.rsplit(".", 1)[0] + ".7"
        assert [a.create_permission(p) for p in (ns.other, neighbour, "127.0.0.1")] == [403] * 3
    finally:
        a.close()
        b.close()
    assert f"A peer IP {ns.other} denied in the range: {ns.other}\n" in turn.log()
