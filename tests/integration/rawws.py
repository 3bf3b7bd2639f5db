"""A WebSocket client (RFC 6455) that writes exactly the bytes a test asks for.

Well-behaved clients (``websockets``) cannot misbehave on the wire, which is what race tests
need: a message split into continuation frames, a text frame that is not UTF-8, a control
frame in pieces, half a frame and then a TCP RST. :class:`RawWebSocket` frames and masks
what it is given and nothing more; it reads the server's frames back and remembers the
close code the server sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import os
import socket
import ssl
import struct
from typing import Final

try:  # the C version websockets ships; the pure-Python one otherwise
    from websockets.speedups import apply_mask
except ImportError:  # pragma: no cover
    from websockets.utils import apply_mask

OP_CONT: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

ABNORMAL: Final = 1006  # RFC 6455 7.1.5: the connection ended without a close frame


def encode_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> bytes:
    """One client frame (RFC 6455 5.2): masked, as clients must; ``rsv`` sets reserved bits
    (no extension is negotiated, so any is a protocol error)."""
    head = bytes([(0x80 if fin else 0) | (rsv & 0x7) << 4 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    key = os.urandom(4)
    return head + key + apply_mask(payload, key)


def close_payload(code: int, reason: str = "") -> bytes:
    return struct.pack("!H", code) + reason.encode()


class HandshakeRefused(Exception):
    """The server answered the opening handshake with something other than 101."""


class RawWebSocket:
    """One client connection, frames in and out; never raises on a dead peer when writing
    (the test decides what a dead peer means)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.close_code: int | None = None  # the server's close frame's code, once read
        self.written = 0  # frames written (whole ones)

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        *,
        path: str = "/ws",
        receive_buffer: int | None = None,
    ) -> RawWebSocket:
        """Connect and upgrade. ``receive_buffer``: a small SO_RCVBUF (set before connecting,
        so the TCP window stays small) makes a client that stops reading back up the server
        quickly, as a slow mobile link does."""
        reader, writer = await _connect(host, port, tls, receive_buffer)
        writer.write(upgrade_request(host, port, path))
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            writer.transport.abort()
            raise HandshakeRefused(repr(exc)) from None
        except BaseException:
            writer.transport.abort()  # cancelled (a caller's deadline): no socket left open
            raise
        status = head.split(b"\r\n", 1)[0]
        if status.split(b" ")[1:2] != [b"101"]:
            writer.transport.abort()
            raise HandshakeRefused(status.decode(errors="replace"))
        return cls(reader, writer)

    @staticmethod
    async def stillborn(host: str, port: int, tls: ssl.SSLContext | None, cut: int) -> None:
        """Connect, write the first ``cut`` bytes of the upgrade request, then RST: a
        connection lost during its handshake."""
        _, writer = await _connect(host, port, tls, None)
        writer.write(upgrade_request(host, port, "/ws")[:cut])
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.drain()
        _reset(writer)

    # ------------------------------------------------------------------ writing

    def write(self, data: bytes) -> None:
        """Raw bytes onto the connection (a frame, part of one, anything)."""
        if not self.writer.transport.is_closing():
            self.writer.write(data)

    def frame(self, opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0) -> None:
        self.write(encode_frame(opcode, payload, fin=fin, rsv=rsv))
        self.written += 1

    def text(self, text: str | bytes) -> None:
        """One text frame; ``bytes`` are sent as they are (invalid UTF-8 included)."""
        self.frame(OP_TEXT, text.encode() if isinstance(text, str) else text)

    def fragments(self, opcode: int, payload: bytes, cuts: list[int]) -> None:
        """One message as several frames: ``opcode`` first, continuation frames after, cut
        at the sorted offsets ``cuts``; a pong frame may be put between them by the caller
        (control frames may interleave, RFC 6455 5.4)."""
        bounds = [0, *sorted(c for c in cuts if 0 < c < len(payload)), len(payload)]
        pieces = [payload[a:b] for a, b in itertools.pairwise(bounds)]
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            self.frame(opcode if i == 0 else OP_CONT, piece, fin=last)

    def partial(self, opcode: int, payload: bytes, cut: int) -> None:
        """The first ``cut`` bytes of a frame: the server waits for the rest."""
        data = encode_frame(opcode, payload)
        self.write(data[: max(1, min(cut, len(data) - 1))])

    async def drain(self) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await self.writer.drain()

    # ------------------------------------------------------------------ reading

    async def recv(self) -> str | None:
        """The next text message from the server; None once the server closed (its code in
        :attr:`close_code`, ``ABNORMAL`` without a close frame). Pings are answered."""
        parts: list[bytes] = []
        while True:
            try:
                fin, opcode, payload = await self._read_frame()
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError, OSError):
                if self.close_code is None:
                    self.close_code = ABNORMAL
                return None
            if opcode == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                return None
            if opcode == OP_PING:
                self.frame(OP_PONG, payload)
                continue
            if opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                parts.append(payload)
                if fin:
                    return b"".join(parts).decode()

    async def _read_frame(self) -> tuple[bool, int, bytes]:
        b0, b1 = await self.reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return bool(b0 & 0x80), b0 & 0x0F, await self.reader.readexactly(n)

    # ------------------------------------------------------------------ ending

    def reset(self) -> None:
        """End the TCP connection with an RST (SO_LINGER 0), as a lost network or a killed
        browser does: no close frame, no TLS close_notify, no FIN."""
        _reset(self.writer)

    def vanish(self) -> None:
        """Close the TCP connection (a FIN) without a WebSocket close frame."""
        self.writer.transport.close()

    def goodbye(self, code: int = 1000, reason: str = "") -> None:
        """Our close frame; whoever reads (:meth:`recv`) then sees the server's."""
        self.frame(OP_CLOSE, close_payload(code, reason))

    def abandon(self) -> None:
        """Let go of the transport once the closing handshake is over (or given up), at once:
        an abort, not a close, which with TLS would wait for the server's close_notify (up to
        asyncio's 30 s shutdown timeout) and may outlive the test, leaving the socket to the
        collector, whose ResourceWarning then fails whichever test it lands in."""
        self.writer.transport.abort()


def upgrade_request(host: str, port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


async def _connect(
    host: str, port: int, tls: ssl.SSLContext | None, receive_buffer: int | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if receive_buffer is None:
        return await asyncio.open_connection(host, port, ssl=tls)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (host, port))
    except OSError:
        sock.close()
        raise
    server_hostname = host if tls is not None else None
    return await asyncio.open_connection(sock=sock, ssl=tls, server_hostname=server_hostname)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
