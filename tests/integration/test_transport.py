"""What the WebSocket transport refuses before it costs memory (checklist rows 4 and 5).

Row 4: a message over ``max_frame_bytes`` is closed with 1009 (RFC 6455 7.4.1) as soon as its
length is known, before its payload is read: a frame that *announces* 1 MiB or 10 MiB is
closed after only its header and a little payload were sent (a server that buffered first
would wait for the rest, and these tests would time out). Fragmented messages count as one.

Row 5: permessage-deflate (RFC 7692) is never negotiated, so a compression bomb has nothing to
inflate: the 101 answer carries no Sec-WebSocket-Extensions, and a frame with RSV1 (the
"compressed" bit) set is a protocol error, closed with 1002 (RFC 6455 5.2).

No ERROR record reaches the log for any of it: each is a handled refusal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import struct
import zlib
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect

from tests.integration.logrecords import recording
from tests.integration.peer import Peer
from tests.integration.rawws import ABNORMAL, OP_CONT, OP_TEXT, RawWebSocket
from tests.integration.server import RunningServer

LIMIT = 64 * 1024  # LimitSettings.max_frame_bytes, the default
CLOSE_WAIT = 10.0  # seconds; a close that waited for the whole payload would never come


@pytest.fixture
def error_records() -> Iterator[list[logging.LogRecord]]:
    """The records at ERROR or above that the server logs during the test."""
    with recording(logging.ERROR) as records:
        yield records.records


async def opened(server: RunningServer) -> RawWebSocket:
    return await RawWebSocket.open("127.0.0.1", server.port, server.ssl_context)


async def server_close_code(ws: RawWebSocket) -> int | None:
    """Read until the server's close frame, answer it, and wait for the end of the
    connection (RFC 6455 5.5.1); the server's close code."""
    while await asyncio.wait_for(ws.recv(), CLOSE_WAIT) is not None:
        pass
    if ws.close_code is not None and ws.close_code != ABNORMAL:
        ws.goodbye(ws.close_code)
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await asyncio.wait_for(ws.reader.read(), CLOSE_WAIT)
    ws.abandon()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await asyncio.wait_for(ws.writer.wait_closed(), CLOSE_WAIT)
    return ws.close_code


def frame_head(opcode: int, announced: int, *, fin: bool = True) -> bytes:
    """A client frame's header that announces ``announced`` payload bytes (RFC 6455 5.2)."""
    first = bytes([(0x80 if fin else 0) | opcode])
    if announced < 126:
        size = bytes([0x80 | announced])
    elif announced < 1 << 16:
        size = bytes([0x80 | 126]) + struct.pack("!H", announced)
    else:
        size = bytes([0x80 | 127]) + struct.pack("!Q", announced)
    return first + size + b"\x11\x22\x33\x44"  # any masking key (RFC 6455 5.3)


async def test_a_message_of_limit_plus_one_byte_is_closed_1009(
    server: RunningServer, error_records: list[logging.LogRecord]
) -> None:
    ws = await opened(server)
    ws.frame(OP_TEXT, b"x" * (LIMIT + 1))
    await ws.drain()
    assert await server_close_code(ws) == 1009
    assert error_records == []


@pytest.mark.parametrize("announced", [1024 * 1024, 10 * 1024 * 1024], ids=["1MiB", "10MiB"])
async def test_a_huge_frame_is_closed_1009_from_its_header_alone(
    server: RunningServer, error_records: list[logging.LogRecord], announced: int
) -> None:
    """Only the header and 4 KiB of the payload are ever sent."""
    ws = await opened(server)
    ws.write(frame_head(OP_TEXT, announced, fin=True) + b"y" * 4096)
    await ws.drain()
    assert await server_close_code(ws) == 1009
    bystander = await Peer.greeted(server, "bystander")  # and the server serves on
    await bystander.alive()
    await bystander.close()
    assert error_records == []


async def test_a_fragmented_message_counts_as_one(
    server: RunningServer, error_records: list[logging.LogRecord]
) -> None:
    """Fragments under the limit each, over it together: 1009 (a message, not a frame, is
    what is limited). Then one that announces 10 MiB in its second fragment: 1009 without
    its payload."""
    ws = await opened(server)
    ws.frame(OP_TEXT, b"a" * (LIMIT // 2), fin=False)
    ws.frame(OP_CONT, b"b" * (LIMIT // 2), fin=False)
    ws.frame(OP_CONT, b"c", fin=True)
    await ws.drain()
    assert await server_close_code(ws) == 1009

    ws = await opened(server)
    ws.frame(OP_TEXT, b"a" * 1024, fin=False)
    ws.write(frame_head(OP_CONT, 10 * 1024 * 1024, fin=True) + b"z" * 4096)
    await ws.drain()
    assert await server_close_code(ws) == 1009
    assert error_records == []


async def test_permessage_deflate_is_never_negotiated(server: RunningServer) -> None:
    """A client offering permessage-deflate (websockets offers it by default) gets a 101
    without Sec-WebSocket-Extensions, so it must not compress (RFC 7692 5)."""
    async with connect(server.ws_url, ssl=server.ssl_context, compression="deflate") as ws:
        assert ws.response is not None
        assert ws.response.status_code == 101
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        assert ws.protocol.extensions == []


async def test_a_compressed_frame_is_closed_1002_without_an_error(
    server: RunningServer, error_records: list[logging.LogRecord]
) -> None:
    """A deflate bomb (10 MiB of zeros in ~10 KiB) with RSV1 set: nothing was negotiated, so
    RSV1 is a protocol error (RFC 6455 5.2) and nothing is inflated."""
    bomb = zlib.compressobj(wbits=-15)
    payload = bomb.compress(b"\0" * (10 * 1024 * 1024)) + bomb.flush(zlib.Z_SYNC_FLUSH)
    assert len(payload) < LIMIT
    peer = await Peer.greeted(server, "member")
    ws = await opened(server)
    ws.frame(OP_TEXT, payload, rsv=0b100)
    await ws.drain()
    assert await server_close_code(ws) == 1002
    await peer.alive()
    await peer.close()
    assert error_records == []
