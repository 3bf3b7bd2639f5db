"""``salon turn-config``: the hardened coturn config as text (coturn itself checks it in
tests/turn/test_config_accepted.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from salon.cli import main
from salon.core.turnconfig import PeerPolicy, TurnServerConfig, turnserver_conf

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_ARGS = [
    "turn-config",
    "--realm", "turn.example.org",
    "--external-ip", "203.0.113.10",
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
