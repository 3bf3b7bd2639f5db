"""A hardened ``turnserver.conf`` for coturn, as a pure function of a few choices.

coturn relays to any address a client names in CreatePermission (RFC 8656 section 9), so an
open relay is a door into the network it runs in: loopback services, the cloud metadata
address, the LAN. The config therefore denies every non-public peer range by default; a LAN
demo may allow the private ranges (``PeerPolicy.LAN``), never loopback or link-local. coturn's
``denied-peer-ip`` takes ``first-last`` ranges, so the CIDR blocks below are written out.
The unspecified address ``::`` is left out on purpose: coturn 4.6 reads ``denied-peer-ip=::``
as a range that matches every IPv4 peer (a test proves the public peers still pass).

The TURN host's own addresses (``host_addresses``: those of its interfaces, plus the
configured listening, relay and external addresses) are denied one by one, since a relay to
them reaches the host's own services whatever range they are in, with one exception: the
addresses the relay itself is reached at (:func:`relay_addresses`). When two browsers can
only use the relay, each one's peer is the other's relayed address on this same coturn, and
coturn 4.6 maps a peer at the external address back to the relay address before checking it;
denying those would break every relay-to-relay call. coturn cannot limit a peer by port, so
those addresses stay open to relayed traffic (docs/TURN.md says how to close the rest).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# (block, why it is not a peer anyone should reach through a public relay)
_ALWAYS_DENIED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "'this network'; 0.0.0.0 reaches the relay host itself"),
    ("127.0.0.0/8", "loopback: services on the relay host"),
    ("169.254.0.0/16", "link-local, including the cloud metadata address 169.254.169.254"),
    ("100.64.0.0/10", "carrier-grade NAT shared space (RFC 6598)"),
    ("192.0.0.0/24", "IETF protocol assignments"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)"),
    ("224.0.0.0/4", "multicast (no-multicast-peers refuses it too)"),
    ("240.0.0.0/4", "reserved, and the broadcast address"),
    ("::1/128", "loopback"),
    ("2001:db8::/32", "documentation"),
    ("::ffff:0:0/96", "IPv4-mapped: every IPv4 address above in IPv6 form"),
    ("64:ff9b::/96", "NAT64: IPv4 addresses in IPv6 form"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2002::/16", "6to4: embeds any IPv4 address"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast (no-multicast-peers refuses it too)"),
)

_PRIVATE: tuple[tuple[str, str], ...] = (
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("fc00::/7", "unique local (RFC 4193)"),
)


class PeerPolicy(Enum):
    """Which peer addresses the relay may reach."""

    PUBLIC = "public"  # production: public addresses only
    LAN = "lan"  # a LAN demo: public and private (RFC 1918, ULA); never loopback, link-local,
    # nor the host's own addresses
    ANY = "any"  # tests that relay between loopback peers only: nothing denied. Never deploy.


@dataclass(frozen=True, slots=True)
class TurnServerConfig:
    """What varies between coturn deployments of Salon; the hardening does not vary."""

    secret: str
    realm: str
    listening_port: int = 3478
    tls_listening_port: int = 5349
    min_port: int = 49152  # relay ports, UDP: open them in the firewall
    max_port: int = 65535
    listening_ips: tuple[str, ...] = ()  # default: every interface
    relay_ips: tuple[str, ...] = ()
    external_ip: str | None = None  # "public" or "public/private" behind 1:1 NAT
    # The TURN host's own addresses (its interfaces'), denied as peers except where the
    # relay is reached (relay_addresses). `salon turn-config` and `--with-turn` fill it in.
    host_addresses: tuple[str, ...] = ()
    cert: str | None = None  # PEM files for TURN over TLS; without them TLS is off
    pkey: str | None = None
    peers: PeerPolicy = PeerPolicy.PUBLIC
    log_file: str | None = None  # default: coturn's own (syslog / /var/log)
    state_dir: str | None = None  # pid file and user database of a coturn we start ourselves


def _blocks(policy: PeerPolicy) -> tuple[tuple[str, str], ...]:
    return {
        PeerPolicy.PUBLIC: _ALWAYS_DENIED + _PRIVATE,
        PeerPolicy.LAN: _ALWAYS_DENIED,
        PeerPolicy.ANY: (),
    }[policy]


def denied_peer_ranges(policy: PeerPolicy) -> list[tuple[str, str]]:
    """``(first-last, reason)`` for every ``denied-peer-ip`` range line of the policy."""
    ranges = []
    for block, why in _blocks(policy):
        net = ipaddress.ip_network(block)
        first, last = net.network_address, net.broadcast_address
        ranges.append((str(first) if first == last else f"{first}-{last}", f"{block}: {why}"))
    return ranges


def _ip(text: str) -> IPAddress | None:
    """``text`` as an IP address, or None when it is not one (a host name, a typo)."""
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _external_parts(config: TurnServerConfig) -> list[IPAddress]:
    parts = [_ip(part) for part in (config.external_ip or "").split("/") if part]
    return [part for part in parts if part is not None]


def relay_addresses(config: TurnServerConfig) -> list[IPAddress]:
    """The addresses this coturn relays from, as peers see them: ``relay_ips`` (else the
    ``listening_ips``, which coturn then relays on), and both parts of ``external_ip``. A
    relay-to-relay call through this coturn has another allocation at one of these as its
    peer (its permission, RFC 8656 section 9, names that address), so none of them is denied
    as one of the host's own."""
    own = config.relay_ips or config.listening_ips
    found = [ip for ip in map(_ip, own) if ip is not None] + _external_parts(config)
    return sorted(set(found), key=lambda ip: (ip.version, ip))


def _is_special(ip: IPAddress) -> bool:
    """Unspecified, loopback or link-local: covered by coturn's own rules and the ranges
    (``::`` must never be written: coturn reads it as "every IPv4 address")."""
    return ip.is_unspecified or ip.is_loopback or ip.is_link_local


def denied_host_addresses(config: TurnServerConfig) -> list[IPAddress]:
    """The host's own addresses to deny one by one: ``host_addresses``, the listening and
    relay addresses and both parts of ``external_ip``, less :func:`relay_addresses` and the
    unspecified, loopback and link-local ones. Empty for ``PeerPolicy.ANY``."""
    if config.peers is PeerPolicy.ANY:
        return []
    texts = (*config.host_addresses, *config.listening_ips, *config.relay_ips)
    found = {ip for ip in map(_ip, texts) if ip is not None} | set(_external_parts(config))
    keep = set(relay_addresses(config))
    return sorted(
        (ip for ip in found if ip not in keep and not _is_special(ip)),
        key=lambda ip: (ip.version, ip),
    )


def allowed_relay_addresses(config: TurnServerConfig) -> list[IPAddress]:
    """Relay addresses inside a denied range (a private relay address behind 1:1 NAT, as on
    most clouds): written as ``allowed-peer-ip`` so relay-to-relay calls work. coturn does the
    same by itself for the private part of ``external-ip=public/private``."""
    if config.peers is PeerPolicy.ANY:
        return []
    public = _external_parts(config)[:1]  # coturn checks the address it maps that one to
    blocks = [ipaddress.ip_network(block) for block, _ in _blocks(config.peers)]
    return [
        ip
        for ip in relay_addresses(config)
        if ip not in public and not _is_special(ip) and any(ip in block for block in blocks)
    ]


def _check(config: TurnServerConfig) -> None:
    texts = [config.secret, config.realm, config.external_ip or "", config.cert or ""]
    texts += [config.pkey or "", config.log_file or "", config.state_dir or ""]
    texts += [*config.listening_ips, *config.relay_ips, *config.host_addresses]
    if any(ch in text for text in texts for ch in "\r\n#"):
        raise ValueError("TURN settings must not contain line breaks or '#'")
    for text in config.host_addresses:
        if _ip(text) is None:
            raise ValueError(f"not an IP address (host address): {text!r}")
    if config.external_ip is not None:
        parts = config.external_ip.split("/")
        if len(parts) > 2 or any(_ip(part) is None for part in parts):
            raise ValueError(f"external IP: not PUBLIC or PUBLIC/PRIVATE: {config.external_ip!r}")
    if not config.secret or not config.realm:
        raise ValueError("a TURN secret and realm are required")
    if (config.cert is None) != (config.pkey is None):
        raise ValueError("give both a certificate and a private key for TURN over TLS, or neither")
    ports = (config.listening_port, config.tls_listening_port, config.min_port, config.max_port)
    if not all(1 <= port <= 65535 for port in ports) or config.min_port > config.max_port:
        raise ValueError("TURN ports must be 1-65535, with min_port <= max_port")


def turnserver_conf(config: TurnServerConfig) -> str:
    """The text of a ``turnserver.conf`` that coturn 4.6 accepts without a warning.

    Raises ValueError for values that would break the file (a line break in the secret would
    smuggle in options)."""
    _check(config)
    lines = [
        "# coturn for Salon, generated by `salon turn-config`. Keep this file private (0600):",
        "# it holds the secret shared with Salon (SALON_TURN_SECRET).",
        "",
        "# Authentication: the TURN REST scheme. Salon hands each member a username",
        "# '<expiry>:<member id>' and password base64(HMAC-SHA1(secret, username)).",
        "use-auth-secret",
        f"static-auth-secret={config.secret}",
        f"realm={config.realm}",
        "",
        "# Listening: UDP and TCP on listening-port; TLS (turns:) on tls-listening-port.",
        f"listening-port={config.listening_port}",
        *(f"listening-ip={ip}" for ip in config.listening_ips),
        *(f"relay-ip={ip}" for ip in config.relay_ips),
        *([f"external-ip={config.external_ip}"] if config.external_ip else []),
        *_tls_lines(config),
        "",
        "# Relay ports (UDP), one per allocation: open this range in the firewall.",
        f"min-port={config.min_port}",
        f"max-port={config.max_port}",
        "",
        "# Hardening.",
        "fingerprint",
        "no-cli",
        "no-multicast-peers",
        "no-tcp-relay",  # RFC 6062 TCP allocations: WebRTC never asks for them
        "stale-nonce=600",
        "no-software-attribute",
        "no-rfc5780",
        "no-stun-backward-compatibility",
        "response-origin-only-with-rfc5780",
        *_peer_lines(config),
        "",
        "# Logging and state.",
        "simple-log",
        *([f"log-file={config.log_file}"] if config.log_file else []),
        *_state_lines(config.state_dir),
    ]
    return "\n".join(lines) + "\n"


def _tls_lines(config: TurnServerConfig) -> list[str]:
    if config.cert is None or config.pkey is None:
        return [
            "# TLS is off: give a certificate and key for turns: (docs/TURN.md).",
            "no-tls",
            "no-dtls",
        ]
    return [
        "# turns: for networks that allow only 443: set tls-listening-port=443 on an address",
        "# of its own, or share 443 with the web server by SNI (docs/TURN.md, 'TLS on 443').",
        f"tls-listening-port={config.tls_listening_port}",
        f"cert={config.cert}",
        f"pkey={config.pkey}",
        "no-dtls",  # browsers speak TURN over UDP, TCP or TLS; never DTLS
        "no-tlsv1",
        "no-tlsv1_1",
    ]


def _peer_lines(config: TurnServerConfig) -> list[str]:
    policy = config.peers
    if policy is PeerPolicy.ANY:
        return [
            "# Peers: none denied, loopback allowed. For tests only; never deploy this.",
            "allow-loopback-peers",
        ]
    heading = {
        PeerPolicy.PUBLIC: "# Peers: public addresses only.",
        PeerPolicy.LAN: "# Peers: public and LAN (private) addresses; never loopback/link-local.",
    }[policy]
    lines = [heading]
    for span, why in denied_peer_ranges(policy):
        lines += [f"# {why}", f"denied-peer-ip={span}"]
    # Last, so coturn (which reads the list from the end) names them in its log.
    own = denied_host_addresses(config)
    if own:
        lines.append("# This host's own addresses: a relay to them reaches its own services.")
        lines += [f"denied-peer-ip={ip}" for ip in own]
    else:
        lines += [
            "# This host's own addresses: none listed. Generate the file on the TURN host",
            "# (`salon turn-config`) to deny them (docs/TURN.md, 'The host's own addresses').",
        ]
    mapped = " (coturn maps the external address to it)" if config.external_ip else ""
    for ip in allowed_relay_addresses(config):
        lines += [
            f"# {ip} is where this relay is reached: relay-to-relay calls through this coturn",
            f"# need it as a peer{mapped}.",
            f"allowed-peer-ip={ip}",
        ]
    return lines


def _state_lines(state_dir: str | None) -> list[str]:
    if state_dir is None:
        return []
    return [f"pidfile={state_dir}/turnserver.pid", f"userdb={state_dir}/turndb"]
