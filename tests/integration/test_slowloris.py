"""Slow-loris (checklist row 25): sockets that open and then send nothing, or one byte at a
time, are closed on a deadline, before TLS (``tls_handshake_seconds``, from the TCP accept)
and after it (``request_seconds``, for each HTTP request head), over TLS and --http.

Raw sockets against the real server; the deadlines are shortened (1 s and 2 s, different so
the close time says which deadline fired) and each close is awaited as an event, with a
generous upper bound far below what a missing deadline would give (60 s for TLS, never for
the request head).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.integration.logrecords import recording
from tests.integration.peer import Peer
from tests.integration.server import RunningServer, running_server

TLS_SECONDS = 1.0
HEAD_SECONDS = 2.0
# A close must come no earlier than this share of its deadline, and no later than the
# deadline plus this margin (a loaded 2-core machine, 2-3x slower than a quiet one).
EARLY = 0.8
MARGIN = 6.0
GIVE_UP = 30.0  # seconds: the wait for a close that never comes fails here


@pytest.fixture
def log_records() -> Iterator[list[logging.LogRecord]]:
    """Every record at WARNING or above that the server logs during the test."""
    with recording(logging.WARNING) as records:
        yield records.records


@pytest.fixture(params=["tls", "http"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(
        tmp_path,
        http=request.param == "http",
        tls_handshake_seconds=TLS_SECONDS,
        request_seconds=HEAD_SECONDS,
    ) as running:
        yield running


@pytest.fixture
async def bystander(server: RunningServer) -> AsyncIterator[Peer]:
    """A well-behaved member on the same server; it must not notice any of this."""
    peer = await Peer.greeted(server, "bystander")
    yield peer
    await peer.alive()
    await peer.close()


async def until_closed(reader: asyncio.StreamReader) -> float:
    """Read until the server ends the connection; the seconds that took."""
    began = time.monotonic()
    with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
        while await asyncio.wait_for(reader.read(65536), GIVE_UP):
            pass
    return time.monotonic() - began


def assert_deadline(elapsed: float, deadline: float) -> None:
    assert EARLY * deadline <= elapsed <= deadline + MARGIN, (elapsed, deadline)


def first_deadline(server: RunningServer) -> float:
    """The deadline for a socket that sends nothing at all after the TCP accept."""
    return HEAD_SECONDS if server.settings.http else TLS_SECONDS


async def opened(
    server: RunningServer, *, tls: bool = True
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection; with TLS (when the server speaks it and ``tls``) fully handshaken."""
    context = server.ssl_context if tls else None
    return await asyncio.open_connection("127.0.0.1", server.port, ssl=context)


def client_hello(context: ssl.SSLContext) -> bytes:
    """The TLS ClientHello record(s) this client context sends first (RFC 8446 4.1.2)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname="127.0.0.1")
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def head_bytes(host: str) -> bytes:
    """An endless-looking request head: valid, never finished within the test."""
    head = f"GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\n".encode()
    return head + b"X-Slow: loris\r\n" * 200


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float = 0.2) -> None:
    """Write ``data`` one byte at a time, ``every`` seconds apart, until the server closes."""
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        for i in range(len(data)):
            if writer.is_closing():
                return
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(every)


async def test_a_silent_tcp_connection_is_closed(
    server: RunningServer, bystander: Peer, log_records: list[logging.LogRecord]
) -> None:
    """TCP opened, not one byte sent: the TLS handshake deadline (or, with --http, the
    request head deadline) closes it."""
    reader, writer = await opened(server, tls=False)
    assert_deadline(await until_closed(reader), first_deadline(server))
    writer.close()
    await bystander.alive()
    assert log_records == []


async def test_a_partial_client_hello_is_closed(
    server: RunningServer, bystander: Peer, log_records: list[logging.LogRecord]
) -> None:
    """Half of a real ClientHello, then silence (with --http the same bytes are a request
    head that never ends, or a bad one the server answers at once)."""
    hello = client_hello(ssl.create_default_context())
    reader, writer = await opened(server, tls=False)
    writer.write(hello[: len(hello) // 2])
    await writer.drain()
    elapsed = await until_closed(reader)
    if server.settings.http:
        assert elapsed <= HEAD_SECONDS + MARGIN  # 400 at once, or the head deadline
    else:
        assert_deadline(elapsed, TLS_SECONDS)
    writer.close()
    await bystander.alive()
    assert [r for r in log_records if r.levelno >= logging.ERROR] == []


async def test_a_client_hello_sent_one_byte_at_a_time_is_closed(
    server: RunningServer, log_records: list[logging.LogRecord]
) -> None:
    if server.settings.http:
        pytest.skip("TLS only: the handshake deadline counts from the accept, bytes or not")
    hello = client_hello(ssl.create_default_context())
    reader, writer = await opened(server, tls=False)
    writing = asyncio.create_task(trickle(writer, hello, every=0.1))
    assert_deadline(await until_closed(reader), TLS_SECONDS)
    await writing
    writer.close()
    assert log_records == []


async def test_silence_after_the_tls_handshake_is_closed(
    server: RunningServer, bystander: Peer, log_records: list[logging.LogRecord]
) -> None:
    """The handshake done (or, with --http, the TCP accept), no request: the request head
    deadline closes it."""
    reader, writer = await opened(server)
    assert_deadline(await until_closed(reader), HEAD_SECONDS)
    writer.close()
    await bystander.alive()
    assert log_records == []


async def test_request_headers_one_byte_at_a_time_are_cut(
    server: RunningServer, bystander: Peer, log_records: list[logging.LogRecord]
) -> None:
    """A byte every 0.2 s keeps any idle timer from firing; the head deadline does not care."""
    reader, writer = await opened(server)
    writing = asyncio.create_task(trickle(writer, head_bytes(f"127.0.0.1:{server.port}")))
    assert_deadline(await until_closed(reader), HEAD_SECONDS)
    await writing
    writer.close()
    await bystander.alive()
    assert log_records == []


@pytest.mark.parametrize(
    "head",
    [
        # A REST body the server reads whole before routing (max_body_bytes).
        "POST /api/v1/session HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n",
        # A chunked body on a GET: read too, and never finished.
        "GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
    ids=["content-length", "chunked"],
)
async def test_a_request_body_one_byte_at_a_time_is_cut(
    server: RunningServer, bystander: Peer, log_records: list[logging.LogRecord], head: str
) -> None:
    """The deadline is for the whole request: a body that trickles in after a complete head
    is cut at the same deadline, counted from the start of the request."""
    reader, writer = await opened(server)
    writer.write(head.format(host=f"127.0.0.1:{server.port}").encode())
    writing = asyncio.create_task(trickle(writer, b"1" * 1000))
    assert_deadline(await until_closed(reader), HEAD_SECONDS)
    await writing
    writer.close()
    await bystander.alive()
    assert log_records == []


async def test_a_keep_alive_connection_must_send_its_next_head_in_time(
    server: RunningServer, log_records: list[logging.LogRecord]
) -> None:
    """After a whole request and its answer: a next head sent one byte at a time is cut at
    the head deadline, and a connection that sends nothing ends at uvicorn's keep-alive
    timeout (5 s) or the head deadline (re-armed when the answer was sent), the sooner."""
    host = f"127.0.0.1:{server.port}"
    request = f"GET /api/v1/health HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
    for next_request in (head_bytes(host), b""):
        reader, writer = await opened(server)
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GIVE_UP)
        assert head.startswith(b"HTTP/1.1 200"), head
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writing = asyncio.create_task(trickle(writer, next_request))
        elapsed = await until_closed(reader)
        await writing
        writer.close()
        assert_deadline(elapsed, HEAD_SECONDS if next_request else min(5.0, HEAD_SECONDS))
    assert log_records == []


async def test_a_normal_client_is_unaffected_by_a_crowd_of_slow_ones(
    server: RunningServer, log_records: list[logging.LogRecord]
) -> None:
    """Twenty slow-loris sockets of each kind at once; meanwhile a member joins a room,
    and once they are all closed it is still served and has not been disconnected."""
    host = f"127.0.0.1:{server.port}"
    slow = [await opened(server, tls=False) for _ in range(20)]
    slow += [await opened(server) for _ in range(20)]
    writers = [asyncio.create_task(trickle(w, head_bytes(host))) for _, w in slow[20:]]
    member = await Peer.greeted(server, "member")
    await member.join("calm-room")
    closes = await asyncio.gather(*(until_closed(r) for r, _ in slow))
    assert max(closes) <= max(TLS_SECONDS, HEAD_SECONDS) + MARGIN, closes
    await asyncio.gather(*writers)
    for _, w in slow:
        w.close()
    await member.alive()
    await member.close()
    assert log_records == []
