"""A coturn child process: what ``salon serve --with-turn`` and the TURN tests start.

The config is written with mode 0600 (it holds the shared secret) into a folder of its own;
coturn's output goes to ``turnserver.log`` beside it. The secret is never logged.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from salon.core.settings import Settings
from salon.core.turnconfig import PeerPolicy, TurnServerConfig, turnserver_conf
from salon.server.child import Child, die_with_parent, write_private


class CoturnError(RuntimeError):
    """coturn is missing, or did not start; the message says which."""


@dataclass
class Coturn(Child):
    """A running ``turnserver``."""

    config_path: Path
    port: int


def find_turnserver() -> str | None:
    """The path of coturn's ``turnserver``, or None when it is not installed."""
    return shutil.which("turnserver") or next(
        (p for p in ("/usr/bin/turnserver", "/usr/local/bin/turnserver") if os.access(p, os.X_OK)),
        None,
    )


def start_coturn(
    config: TurnServerConfig,
    folder: Path,
    *,
    probe_host: str = "127.0.0.1",
    timeout: float = 10.0,
    wrapper: tuple[str, ...] = (),
) -> Coturn:
    """Write ``folder/turnserver.conf``, start ``turnserver -c`` on it and wait until it
    answers a STUN Binding request on ``probe_host``; raises CoturnError otherwise.
    ``wrapper`` is a command that runs it (``("ip", "netns", "exec", NAME)``: in a network
    namespace) and must exec it, so that stopping the process stops coturn."""
    binary = find_turnserver()
    if binary is None:
        raise CoturnError("coturn's turnserver is not installed (Debian: apt install coturn)")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    config_path, log_path = folder / "turnserver.conf", folder / "turnserver.log"
    write_private(config_path, turnserver_conf(config))
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - a fixed binary and our own config file
            [*wrapper, binary, "-c", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop coturn in order
            preexec_fn=die_with_parent if sys.platform == "linux" else None,
        )
    running = Coturn(process, log_path, config_path, config.listening_port)
    deadline = time.monotonic() + timeout
    try:
        while not stun_binding_answered(probe_host, config.listening_port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise CoturnError(f"turnserver did not start; see {log_path}")
    except BaseException:  # also Ctrl-C while waiting: never leave it running
        running.stop()
        raise
    return running


def stun_binding_answered(host: str, port: int, wait: float = 0.2) -> bool:
    """Whether a STUN Binding request (RFC 8489 section 6) over UDP gets an answer."""
    txid = os.urandom(12)
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + txid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait)
        try:
            sock.sendto(request, (host, port))
            answer = sock.recv(2048)
        except OSError:  # timeout, or ICMP port unreachable while coturn starts
            return False
    return answer[8:20] == txid


class _IfAddrs(ctypes.Structure):
    """``struct ifaddrs`` (getifaddrs(3)): the same layout on Linux and the BSDs."""


_IfAddrs._fields_ = [
    ("ifa_next", ctypes.POINTER(_IfAddrs)),
    ("ifa_name", ctypes.c_char_p),
    ("ifa_flags", ctypes.c_uint),
    ("ifa_addr", ctypes.c_void_p),
    ("ifa_netmask", ctypes.c_void_p),
    ("ifa_ifu", ctypes.c_void_p),
    ("ifa_data", ctypes.c_void_p),
]


def _sockaddr_ip(pointer: int) -> str | None:
    """The address in a ``struct sockaddr`` if it is IPv4 or IPv6, else None. Linux starts it
    with a 16-bit family; the BSDs with a length byte, then an 8-bit family."""
    if sys.platform.startswith("linux"):
        family = struct.unpack("=H", ctypes.string_at(pointer, 2))[0]
    else:
        family = ctypes.string_at(pointer + 1, 1)[0]
    if family == socket.AF_INET:  # sockaddr_in: family, port, then 4 bytes
        return str(ipaddress.IPv4Address(ctypes.string_at(pointer + 4, 4)))
    if family == socket.AF_INET6:  # sockaddr_in6: family, port, flowinfo, then 16 bytes
        return str(ipaddress.IPv6Address(ctypes.string_at(pointer + 8, 16)))
    return None


def interface_addresses() -> tuple[str, ...]:
    """Every IPv4 and IPv6 address on this machine's interfaces, up or not, from
    getifaddrs(3), without loopback, link-local and unspecified ones (the hardened config
    denies those as ranges). Raises OSError when the system cannot list them."""
    libc = ctypes.CDLL(None, use_errno=True)
    head = ctypes.POINTER(_IfAddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"getifaddrs: {os.strerror(errno)}")
    found: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    try:
        node = head
        while node:
            entry = node.contents
            text = _sockaddr_ip(entry.ifa_addr) if entry.ifa_addr else None
            if text is not None:
                ip = ipaddress.ip_address(text)
                if not (ip.is_loopback or ip.is_link_local or ip.is_unspecified):
                    found.add(ip)
            node = entry.ifa_next
    finally:
        libc.freeifaddrs(head)
    return tuple(str(ip) for ip in sorted(found, key=lambda ip: (ip.version, ip)))


def lan_address() -> str:
    """This host's address on the default route (no packet is sent); 127.0.0.1 without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: only selects a route
            address: str = sock.getsockname()[0]
        except OSError:
            return "127.0.0.1"
    return address


def turn_host(settings: Settings) -> str:
    """The host browsers should reach the relay at: the public URL's, the listening address,
    or this host's LAN address."""
    if settings.public_url and (hostname := urlsplit(settings.public_url).hostname):
        return hostname
    if settings.host not in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
        return settings.host
    return lan_address()


def start_local_turn(settings: Settings) -> tuple[Settings, Coturn]:
    """``salon serve --with-turn``: start coturn with a fresh secret on ``turn_port`` (UDP and
    TCP), relaying to public and LAN peers but never loopback, link-local or this machine's
    own addresses (PeerPolicy.LAN), and return settings that hand out credentials for it.
    coturn relays from the ``--host`` address, or else from this machine's LAN address,
    which stays an allowed peer so that two relayed browsers reach each other. Explicit
    TURN/STUN URLs are kept."""
    secret = secrets.token_urlsafe(32)
    folder = settings.data_dir / "turn"
    specific = settings.host not in ("0.0.0.0", "::", "")  # noqa: S104
    config = TurnServerConfig(
        secret=secret,
        realm=settings.turn_realm,
        listening_port=settings.turn_port,
        listening_ips=(settings.host,) if specific else (),
        relay_ips=(settings.host,) if specific else (lan_address(),),
        host_addresses=interface_addresses(),
        peers=PeerPolicy.LAN,
        log_file="stdout",  # into turnserver.log beside the config
        state_dir=str(folder.resolve()),
    )
    running = start_coturn(config, folder, probe_host=settings.host if specific else "127.0.0.1")
    host = turn_host(settings)
    host = f"[{host}]" if ":" in host else host
    where = f"{host}:{settings.turn_port}"
    update: dict[str, object] = {
        "turn_secret": secret,
        "turn_urls": settings.turn_urls
        or [f"turn:{where}?transport=udp", f"turn:{where}?transport=tcp"],
        "stun_urls": settings.stun_urls or [f"stun:{where}"],
    }
    return settings.model_copy(update=update), running
