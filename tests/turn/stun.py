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
from dataclasses import dataclass, field

MAGIC_COOKIE = 0x2112A442
BINDING, ALLOCATE, CREATE_PERMISSION = 0x0001, 0x0003, 0x0008
SUCCESS, ERROR = 0x0100, 0x0110  # class bits added to the method (RFC 8489 section 5)
USERNAME, MESSAGE_INTEGRITY, ERROR_CODE = 0x0006, 0x0008, 0x0009
XOR_PEER_ADDRESS, REALM, NONCE, REQUESTED_TRANSPORT = 0x0012, 0x0014, 0x0015, 0x0019
UDP = 17
OK = 200


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


def _xor_address(ip: str, port: int) -> bytes:
    raw = ipaddress.IPv4Address(ip).packed
    mask = struct.pack("!I", MAGIC_COOKIE)
    return struct.pack("!BBH", 0, 1, port ^ (MAGIC_COOKIE >> 16)) + bytes(
        a ^ b for a, b in zip(raw, mask, strict=True)
    )


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

    def request(self, method: int, attrs: bytes = b"", *, signed: bool = True) -> int:
        """Send a request; 200 on success, else the ERROR-CODE. Follows one 401/438 challenge."""
        for _ in range(2):
            txid = os.urandom(12)
            if signed and self.nonce:
                key = hashlib.md5(
                    f"{self.username}:{self.realm.decode()}:{self.password}".encode()
                ).digest()
                auth = _attr(USERNAME, self.username.encode()) + _attr(REALM, self.realm)
                packet = _signed(method, attrs + auth + _attr(NONCE, self.nonce), txid, key)
            else:
                packet = _message(method, attrs, txid)
            kind, reply = self._exchange(packet, txid)
            if kind == method | SUCCESS:
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

    def allocate(self) -> int:
        return self.request(ALLOCATE, _attr(REQUESTED_TRANSPORT, bytes([UDP, 0, 0, 0])))

    def create_permission(self, peer_ip: str, peer_port: int = 9) -> int:
        return self.request(
            CREATE_PERMISSION, _attr(XOR_PEER_ADDRESS, _xor_address(peer_ip, peer_port))
        )
