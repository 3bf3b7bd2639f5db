"""Cross-site WebSocket hijacking: the /ws handshake is refused with 403 for foreign origins.

The handshakes are written by hand over a raw socket, so the test sees exactly what a browser
would: the status line and headers, and that no upgrade happened.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from pathlib import Path

import pytest

from tests.integration.peer import Peer
from tests.integration.server import RunningServer, running_server


async def handshake(server: RunningServer, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    """Send a WebSocket opening handshake to /ws; the response's status code and headers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=server.ssl_context)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /ws HTTP/1.1",
        f"Host: 127.0.0.1:{server.port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    status_line, *header_lines = head.decode("latin-1").strip().split("\r\n")
    answer = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        answer[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), answer


def own(server: RunningServer) -> str:
    return server.base_url  # scheme://127.0.0.1:port, as the page's Origin would read


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "https://127.0.0.1.evil.example", "garbage"]
)
async def test_a_foreign_origin_is_refused_before_the_upgrade(
    server: RunningServer, origin: str
) -> None:
    status, headers = await handshake(server, {"Origin": origin})
    assert status == 403
    assert "upgrade" not in headers and "sec-websocket-accept" not in headers


async def test_the_same_scheme_host_on_another_port_is_foreign(server: RunningServer) -> None:
    status, _ = await handshake(server, {"Origin": f"https://127.0.0.1:{server.port + 1}"})
    assert status == 403
    status, _ = await handshake(server, {"Origin": f"http://127.0.0.1:{server.port}"})
    assert status == 403  # the page was served over plain HTTP: another origin


async def test_two_origin_headers_are_refused(server: RunningServer) -> None:
    status, headers = await handshake(
        server, {"Origin": own(server), "origin": "https://evil.example"}
    )
    # uvicorn's WebSocket layer already answers 400 to a repeated Origin; our own check would
    # answer 403 under an ASGI server that let it through. Either way: no upgrade.
    assert status in (400, 403) and "sec-websocket-accept" not in headers


async def test_the_servers_own_origin_upgrades(server: RunningServer) -> None:
    status, headers = await handshake(server, {"Origin": own(server)})
    assert status == 101 and headers["upgrade"].lower() == "websocket"
    # Origins are case-insensitive in scheme and host.
    status, _ = await handshake(server, {"Origin": own(server).upper()})
    assert status == 101


async def test_no_origin_is_a_non_browser_client_and_allowed(server: RunningServer) -> None:
    status, _ = await handshake(server, {})
    assert status == 101
    peer = await Peer.greeted(server, "bot")  # the test client sends no Origin
    await peer.alive()
    await peer.close()


async def test_a_configured_origin_upgrades_and_others_stay_refused(tmp_path: Path) -> None:
    options = {"allowed_origins": ["https://Meet.Example.org:443/"]}
    with running_server(tmp_path, options=options) as server:
        assert server.settings.allowed_origins == ["https://meet.example.org"]
        status, _ = await handshake(server, {"Origin": "https://meet.example.org"})
        assert status == 101
        status, _ = await handshake(server, {"Origin": own(server)})
        assert status == 101
        status, _ = await handshake(server, {"Origin": "https://evil.example"})
        assert status == 403
        peer = await Peer.connect(server, origin="https://meet.example.org")
        await peer.hello("through-the-proxy")
        await peer.close()


@pytest.mark.parametrize("trusted", [True, False])
async def test_x_forwarded_proto_counts_only_from_a_trusted_proxy(
    tmp_path: Path, trusted: bool
) -> None:
    """Behind a TLS-terminating proxy the page is https://, the hop to us is plain HTTP."""
    options = {"forwarded_allow_ips": "127.0.0.1" if trusted else "192.0.2.1"}
    with running_server(tmp_path, http=True, options=options) as server:
        https_page = {"Origin": f"https://127.0.0.1:{server.port}"}
        status, _ = await handshake(server, {**https_page, "X-Forwarded-Proto": "https"})
        assert status == (101 if trusted else 403)
        status, _ = await handshake(server, {"Origin": server.base_url})
        assert status == 101  # a plain-HTTP page on the same host and port


async def test_refusals_leave_the_server_serving(server: RunningServer) -> None:
    for _ in range(20):
        assert (await handshake(server, {"Origin": "https://evil.example"}))[0] == 403
    peer = await Peer.greeted(server, "after")
    await peer.alive()
    await peer.close()


def test_a_bad_configured_origin_is_a_settings_error(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from salon.core.settings import Settings

    for bad in ("meet.example.org", "https://meet.example.org/path", "null", "ftp://x"):
        with pytest.raises(ValidationError):
            Settings(data_dir=tmp_path, allowed_origins=[bad])


def test_the_policy_refuses_a_repeated_origin_itself() -> None:
    """What uvicorn already answers 400 to (above), the policy refuses on its own."""
    from starlette.requests import HTTPConnection

    from salon.server.origins import OriginPolicy

    def conn(*origins: str) -> HTTPConnection:
        headers = [(b"host", b"meet.example.org")] + [(b"origin", o.encode()) for o in origins]
        return HTTPConnection({"type": "websocket", "scheme": "wss", "headers": headers})

    policy = OriginPolicy([])
    assert policy.permits_websocket(conn("https://meet.example.org"))
    assert policy.permits_websocket(conn())
    assert not policy.permits_websocket(conn("https://meet.example.org", "https://evil.example"))
    assert not policy.permits_websocket(
        conn("https://meet.example.org", "https://meet.example.org")
    )
