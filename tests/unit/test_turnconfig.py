"""``salon turn-config``: the hardened coturn config as text (coturn itself checks it in
tests/turn/test_config_accepted.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from salon.cli import main
from salon.core.turnconfig import PeerPolicy, TurnServerConfig, turnserver_conf
from salon.server.coturn import interface_addresses

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_ARGS = [
    "turn-config",
    "--realm", "turn.example.org",
    "--external-ip", "203.0.113.10",
    "--any-host",  # a template: deploy/compose.yaml runs it on hosts not known here
    "--cert", "/etc/coturn/tls/fullchain.pem",
    "--pkey", "/etc/coturn/tls/privkey.pem",
]  # fmt: skip
EXAMPLE_SECRET = "CHANGE-ME-to-the-value-of-SALON_TURN_SECRET"

# The list, as coturn ranges: each must be denied in production.
REQUIRED_DENIALS = [
    "0.0.0.0-0.255.255.255",
    "10.0.0.0-10.255.255.255",
    "100.64.0.0-100.127.255.255",
    "127.0.0.0-127.255.255.255",
    "169.254.0.0-169.254.255.255",
    "172.16.0.0-172.31.255.255",
    "192.168.0.0-192.168.255.255",
    "::1",
    "fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    "::ffff:0:0-::ffff:ffff:ffff",  # IPv4-mapped forms of all the above
    "224.0.0.0-239.255.255.255",  # multicast, besides no-multicast-peers
]
PRIVATE = REQUIRED_DENIALS[1], REQUIRED_DENIALS[5], REQUIRED_DENIALS[6], REQUIRED_DENIALS[8]


def _options(text: str, name: str) -> list[str]:
    return [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{name}=")]


def test_the_committed_example_is_what_turn_config_prints(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """deploy/turnserver.conf cannot drift from the generator: regenerate it with
    SALON_TURN_SECRET=<EXAMPLE_SECRET> salon turn-config <EXAMPLE_ARGS> > deploy/turnserver.conf"""
    monkeypatch.setenv("SALON_TURN_SECRET", EXAMPLE_SECRET)
    assert main(EXAMPLE_ARGS) == 0
    assert capsys.readouterr().out == (REPO / "deploy" / "turnserver.conf").read_text()


def test_turn_config_needs_a_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SALON_TURN_SECRET", raising=False)
    assert main(["turn-config"]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "SALON_TURN_SECRET" in out.err


def test_the_production_config_is_hardened() -> None:
    text = turnserver_conf(TurnServerConfig(secret="s3", realm="turn.example.org"))
    lines = text.splitlines()
    for flag in ("use-auth-secret", "fingerprint", "no-cli", "no-multicast-peers"):
        assert flag in lines, flag
    assert _options(text, "static-auth-secret") == ["s3"]
    assert _options(text, "realm") == ["turn.example.org"]
    assert _options(text, "listening-port") == ["3478"]  # UDP and TCP
    assert (_options(text, "min-port"), _options(text, "max-port")) == (["49152"], ["65535"])
    assert set(REQUIRED_DENIALS) <= set(_options(text, "denied-peer-ip"))
    assert "allow-loopback-peers" not in lines
    assert "no-tls" in lines  # no certificate given: TLS off rather than half-configured


def test_tls_is_on_with_a_certificate() -> None:
    text = turnserver_conf(TurnServerConfig("s", "r", cert="/c.pem", pkey="/k.pem"))
    assert _options(text, "tls-listening-port") == ["5349"]
    assert (_options(text, "cert"), _options(text, "pkey")) == (["/c.pem"], ["/k.pem"])
    assert "no-tls" not in text.splitlines() and "no-tlsv1" in text.splitlines()


def test_the_lan_policy_allows_exactly_the_private_ranges() -> None:
    public = set(_options(turnserver_conf(TurnServerConfig("s", "r")), "denied-peer-ip"))
    lan = set(
        _options(
            turnserver_conf(TurnServerConfig("s", "r", peers=PeerPolicy.LAN)), "denied-peer-ip"
        )
    )
    assert public - lan == set(PRIVATE)
    assert "127.0.0.0-127.255.255.255" in lan and "169.254.0.0-169.254.255.255" in lan


def test_the_test_policy_denies_nothing_and_says_so() -> None:
    text = turnserver_conf(TurnServerConfig("s", "r", peers=PeerPolicy.ANY))
    assert _options(text, "denied-peer-ip") == []
    assert "allow-loopback-peers" in text.splitlines() and "never deploy" in text


@pytest.mark.parametrize(
    "bad",
    [
        {"secret": "s\nallow-loopback-peers"},
        {"realm": "r\r\nno-auth"},
        {"secret": ""},
        {"cert": "/c.pem"},
        {"min_port": 60000, "max_port": 50000},
        {"listening_port": 0},
        {"listening_ips": ("127.0.0.1\nrelay-ip=10.0.0.1",)},
    ],
)
def test_values_that_would_break_the_file_are_refused(bad: dict[str, object]) -> None:
    options: dict[str, object] = {"secret": "s", "realm": "r"} | bad
    with pytest.raises(ValueError):
        turnserver_conf(TurnServerConfig(**options))  # type: ignore[arg-type]


def test_the_hosts_own_addresses_are_denied_except_where_the_relay_is_reached() -> None:
    """Each host address is denied on a line of its own, after the ranges (coturn reads the
    list from the end, so its log names them). The relay address stays a peer, allowed
    outright when a range covers it, so relay-to-relay calls work; the external address is
    not denied either (coturn maps it to the relay address before checking)."""
    config = TurnServerConfig(
        "s",
        "r",
        relay_ips=("10.0.0.5",),
        external_ip="198.51.100.20",
        host_addresses=("10.0.0.5", "192.0.2.7", "2001:db8::5", "127.0.0.1", "fe80::1"),
    )
    text = turnserver_conf(config)
    denied = _options(text, "denied-peer-ip")
    assert denied[-2:] == ["192.0.2.7", "2001:db8::5"]  # no loopback, link-local, relay
    assert "10.0.0.5" not in denied and "198.51.100.20" not in denied
    assert _options(text, "allowed-peer-ip") == ["10.0.0.5"]
    lan = turnserver_conf(dataclasses.replace(config, peers=PeerPolicy.LAN))
    assert _options(lan, "denied-peer-ip")[-2:] == ["192.0.2.7", "2001:db8::5"]
    assert _options(lan, "allowed-peer-ip") == []  # 10/8 is a LAN peer there anyway


def test_the_listening_addresses_and_the_private_external_part_are_host_addresses() -> None:
    text = turnserver_conf(
        TurnServerConfig(
            "s",
            "r",
            listening_ips=("192.0.2.1", "192.0.2.2"),
            relay_ips=("192.0.2.2",),
            external_ip="198.51.100.20/192.0.2.2",
        )
    )
    assert _options(text, "denied-peer-ip")[-1] == "192.0.2.1"  # listens, does not relay
    assert _options(text, "allowed-peer-ip") == ["192.0.2.2"]


def test_the_test_policy_has_no_host_rules() -> None:
    config = TurnServerConfig("s", "r", peers=PeerPolicy.ANY, host_addresses=("192.0.2.7",))
    text = turnserver_conf(config)
    assert _options(text, "denied-peer-ip") == _options(text, "allowed-peer-ip") == []


@pytest.mark.parametrize(
    "bad",
    [
        {"host_addresses": ("turn.example.org",)},
        {"host_addresses": ("10.0.0.300",)},
        {"external_ip": "turn.example.org"},
        {"external_ip": "203.0.113.10/10.0.0.5/10.0.0.6"},
    ],
)
def test_addresses_that_are_not_addresses_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"address|external IP"):
        turnserver_conf(TurnServerConfig(**({"secret": "s", "realm": "r"} | bad)))  # type: ignore[arg-type]


def test_turn_config_denies_this_machines_addresses_unless_told_others(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SALON_TURN_SECRET", "s")
    assert main(["turn-config", "--relay-ip", "192.0.2.250"]) == 0
    found = interface_addresses()
    denied = _options(capsys.readouterr().out, "denied-peer-ip")
    assert all(address in denied for address in found), (found, denied)
    assert main(["turn-config", "--relay-ip", "192.0.2.250", "--host-address", "2001:db8::9"]) == 0
    denied = _options(capsys.readouterr().out, "denied-peer-ip")
    assert "2001:db8::9" in denied and not any(address in denied for address in found)
    assert main(["turn-config", "--host-address", "not-an-address"]) == 2
    assert "not an IP address" in capsys.readouterr().err
    # A template pins no relay address and denies none of this machine's.
    assert main(["turn-config", "--any-host"]) == 0
    text = capsys.readouterr().out
    assert _options(text, "relay-ip") == [] and not set(found) & set(
        _options(text, "denied-peer-ip")
    )
