"""Just enough of a TURN client (RFC 8489 STUN, RFC 8656 TURN) to read coturn's answers.

``turnutils_uclient`` only says "Cannot complete Allocation" when coturn refuses a credential;
these tests need the error code itself (401, 403), so they speak the protocol over UDP here.
Long-term credentials: RFC 8489 section 9.2; the key is MD5(username:realm:password).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

MAGIC_COOKIE = 0x2112A442
BINDING, ALLOCATE, REFRESH, SEND, DATA_METHOD = 0x0001, 0x0003, 0x0004, 0x0006, 0x0007
CREATE_PERMISSION, CHANNEL_BIND = 0x0008, 0x0009
INDICATION, SUCCESS, ERROR = 0x0010, 0x0100, 0x0110  # class bits (RFC 8489 section 5)
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE = 0x0006, 0x0008, 0x0009
CHANNEL_NUMBER, LIFETIME, XOR_PEER_ADDRESS, DATA = 0x000C, 0x000D, 0x0012, 0x0013
REALM, NONCE, XOR_RELAYED_ADDRESS = 0x0014, 0x0015, 0x0016
REQUESTED_ADDRESS_FAMILY, REQUESTED_TRANSPORT = 0x0017, 0x0019  # RFC 8656 sections 18.1, 18.7
UDP = 17
OK = 200
Attrs = bytes | Callable[[bytes], bytes]  # or made from the transaction id (IPv6 XOR)


def _attr(kind: int, value: bytes) -> bytes:
    return struct.pack("!HH", kind, len(value)) + value + b"\0" * (-len(value) % 4)


def _message(method: int, attrs: bytes, txid: bytes) -> bytes:
    return struct.pack("!HHI", method, len(attrs), MAGIC_COOKIE) + txid + attrs


def _signed(method: int, attrs: bytes, txid: bytes, key: bytes) -> bytes:
    """Append MESSAGE-INTEGRITY: HMAC-SHA1 over the message whose length already counts it."""
    head = _message(method, attrs + b"\0" * 24, txid)[: 20 + len(attrs)]
    return _message(method, attrs + _attr(MESSAGE_INTEGRITY, hmac.digest(key, head, "sha1")), txid)


def _parse(data: bytes) -> tuple[int, bytes, dict[int, bytes]]:
    kind, length, _cookie = struct.unpack("!HHI", data[:8])
    attrs: dict[int, bytes] = {}
    pos = 20
    while pos + 4 <= 20 + length:
        a_kind, a_len = struct.unpack("!HH", data[pos : pos + 4])
        attrs.setdefault(a_kind, data[pos + 4 : pos + 4 + a_len])
        pos += 4 + a_len + (-a_len % 4)
    return kind, data[8:20], attrs


def _xor_address(ip: str, port: int, txid: bytes) -> bytes:
    """XOR-PEER-ADDRESS's value (RFC 8489 section 14.2): IPv4 XORed with the magic cookie,
    IPv6 with the cookie and the transaction id."""
    address = ipaddress.ip_address(ip)
    family, mask = (1, struct.pack("!I", MAGIC_COOKIE))
    if address.version == 6:
        family, mask = 2, struct.pack("!I", MAGIC_COOKIE) + txid
    return struct.pack("!BBH", 0, family, port ^ (MAGIC_COOKIE >> 16)) + bytes(
        a ^ b for a, b in zip(address.packed, mask, strict=True)
    )


def _read_xor_address(value: bytes, txid: bytes) -> tuple[str, int]:
    """The (address, port) in an XOR-…-ADDRESS value."""
    _zero, family, port = struct.unpack("!BBH", value[:4])
    mask = struct.pack("!I", MAGIC_COOKIE) + (txid if family == 2 else b"")
    raw = bytes(a ^ b for a, b in zip(value[4:], mask, strict=True))
    return str(ipaddress.ip_address(raw)), port ^ (MAGIC_COOKIE >> 16)


@dataclass
class TurnClient:
    """One UDP 5-tuple to a TURN server: at most one allocation."""

    host: str
    port: int
    username: str = ""
    password: str = ""
    timeout: float = 1.0
    realm: bytes = b""
    nonce: bytes = b""
    relayed: tuple[str, int] | None = None  # XOR-RELAYED-ADDRESS of the allocation
    channels: dict[int, tuple[str, int]] = field(default_factory=dict)  # bound by us
    sock: socket.socket = field(init=False)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(self.timeout)

    def close(self) -> None:
        self.sock.close()

    def _exchange(self, packet: bytes, txid: bytes) -> tuple[int, dict[int, bytes]]:
        for _ in range(3):
            self.sock.sendto(packet, (self.host, self.port))
            try:
                while True:
                    data = self.sock.recv(2048)
                    kind, got_txid, attrs = _parse(data)
                    if got_txid == txid:
                        return kind, attrs
            except TimeoutError:
                continue
        raise TimeoutError(f"no STUN answer from {self.host}:{self.port}")

    def request(self, method: int, attrs: Attrs = b"", *, signed: bool = True) -> int:
        """Send a request; 200 on success, else the ERROR-CODE. Follows one 401/438 challenge.
        ``attrs`` may be a function of the transaction id (an IPv6 XOR address needs it)."""
        for _ in range(2):
            txid = os.urandom(12)
            body = attrs(txid) if callable(attrs) else attrs
            if signed and self.nonce:
                key = hashlib.md5(
                    f"{self.username}:{self.realm.decode()}:{self.password}".encode()
                ).digest()
                auth = _attr(USERNAME, self.username.encode()) + _attr(REALM, self.realm)
                packet = _signed(method, body + auth + _attr(NONCE, self.nonce), txid, key)
            else:
                packet = _message(method, body, txid)
            kind, reply = self._exchange(packet, txid)
            if kind == method | SUCCESS:
                if XOR_RELAYED_ADDRESS in reply:
                    self.relayed = _read_xor_address(reply[XOR_RELAYED_ADDRESS], txid)
                return OK
            assert kind == method | ERROR, hex(kind)
            value = reply[ERROR_CODE]
            code = (value[2] & 0x7) * 100 + value[3]
            fresh_challenge = NONCE in reply and (not self.nonce or code == 438)
            if signed and code in (401, 438) and fresh_challenge:
                self.realm, self.nonce = reply.get(REALM, self.realm), reply[NONCE]
                continue
            return code
        return code

    def binding(self) -> int:
        return self.request(BINDING, signed=False)

    def allocate(self, family: int = 4) -> int:
        """Allocate a UDP relay of IPv4 (or, with ``family=6``, IPv6) addresses."""
        attrs = _attr(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0]))
        if family == 6:
            attrs += _attr(REQUESTED_ADDRESS_FAMILY, bytes([2, 0, 0, 0]))
        return self.request(ALLOCATE, attrs)

    def refresh(self, lifetime: int = 600) -> int:
        """Refresh the allocation (RFC 8656 section 8), asking for ``lifetime`` seconds."""
        return self.request(REFRESH, _attr(LIFETIME, struct.pack("!I", lifetime)))

    def create_permission(self, peer_ip: str, peer_port: int = 9) -> int:
        return self.request(
            CREATE_PERMISSION,
            lambda txid: _attr(XOR_PEER_ADDRESS, _xor_address(peer_ip, peer_port, txid)),
        )

    def channel_bind(self, channel: int, peer_ip: str, peer_port: int) -> int:
        """Bind ``channel`` (0x4000-0x4FFF) to the peer (RFC 8656 section 11)."""
        self.channels[channel] = (peer_ip, peer_port)
        return self.request(
            CHANNEL_BIND,
            lambda txid: (
                _attr(CHANNEL_NUMBER, struct.pack("!HH", channel, 0))
                + _attr(XOR_PEER_ADDRESS, _xor_address(peer_ip, peer_port, txid))
            ),
        )

    def send(self, peer_ip: str, peer_port: int, data: bytes) -> None:
        """A Send indication (RFC 8656 section 10): relay ``data`` to the peer; no answer."""
        txid = os.urandom(12)
        attrs = _attr(XOR_PEER_ADDRESS, _xor_address(peer_ip, peer_port, txid)) + _attr(DATA, data)
        self.sock.sendto(_message(SEND | INDICATION, attrs, txid), (self.host, self.port))

    def receive(self) -> tuple[tuple[str, int], bytes]:
        """The next Data indication or ChannelData message (RFC 8656 section 12.4): (the peer
        it came from, its data). Raises TimeoutError."""
        while True:
            packet = self.sock.recv(2048)
            if packet[0] >> 6 == 1:  # ChannelData: channel number, length, data
                channel, length = struct.unpack("!HH", packet[:4])
                return self.channels[channel], packet[4 : 4 + length]
            kind, txid, attrs = _parse(packet)
            if kind == DATA_METHOD | INDICATION:
                return _read_xor_address(attrs[XOR_PEER_ADDRESS], txid), attrs[DATA]
