"""The shipped nginx config, live: TLS at nginx, Salon over plain HTTP behind it.

What reaches Salon through the proxy is checked from Salon's side: the room link it builds
from the request (scheme, Host with port) and the client address in its access log.
"""

from __future__ import annotations

import http.client
import json
import re
import secrets
import socket
import ssl
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.deploy.proxy import DOMAIN, Proxied


def _request(
    proxied: Proxied,
    method: str,
    path: str,
    *,
    tls: bool = True,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request, to nginx (``tls``) or straight to Salon, from a chosen loopback address."""
    conn: http.client.HTTPConnection
    if tls:
        conn = http.client.HTTPSConnection(
            DOMAIN,
            proxied.https_port,
            context=proxied.tls_context(),
            source_address=(source, 0),
            timeout=5,
        )
    else:
        conn = http.client.HTTPConnection(
            "127.0.0.1", proxied.salon_port, source_address=(source, 0), timeout=5
        )
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _create_room(
    proxied: Proxied, *, tls: bool = True, source: str = "127.0.0.1", headers: dict[str, str]
) -> tuple[int, bytes]:
    """POST /api/v1/rooms as the client's page does: its Origin, the CSRF cookie and token."""
    _, answer, body = _request(proxied, "GET", "/api/v1/csrf", tls=tls, source=source)
    token = json.loads(body)["token"]
    assert answer["set-cookie"].startswith(f"salon_csrf={token};")
    origin = (
        f"https://{DOMAIN}:{proxied.https_port}"
        if tls
        else f"http://127.0.0.1:{proxied.salon_port}"
    )
    page = {"Origin": origin, "Cookie": f"salon_csrf={token}", "X-CSRF-Token": token}
    status, _, body = _request(
        proxied, "POST", "/api/v1/rooms", tls=tls, source=source, headers={**headers, **page}
    )
    return status, body


def _access_log_lines(proxied: Proxied, path: str) -> list[str]:
    return [line for line in proxied.salon_log.read_text().splitlines() if path in line]


def test_health_and_client_page_over_verified_tls(proxied: Proxied) -> None:
    status, headers, body = _request(proxied, "GET", "/api/v1/health")
    assert status == 200
    assert json.loads(body)["status"] == "ok"
    # HSTS comes from nginx (Salon sends none in --http mode); Salon's own headers pass.
    assert headers["strict-transport-security"] == "max-age=31536000"
    assert "default-src 'self'" in headers["content-security-policy"]
    status, headers, _ = _request(proxied, "GET", "/")
    assert status in (200, 503)  # 503: the client is not built; the shell still answers
    assert headers["content-type"].startswith("text/html")


def test_room_link_carries_the_public_scheme_host_and_port(proxied: Proxied) -> None:
    status, body = _create_room(proxied, headers={})
    assert status == 201
    room = json.loads(body)
    assert room["link"] == f"https://{DOMAIN}:{proxied.https_port}/r/{room['id']}"


def test_client_forwarded_headers_are_overwritten_not_trusted(proxied: Proxied) -> None:
    """nginx replaces X-Forwarded-For/Proto; Salon logs the real client (127.0.0.2 here)."""
    forged = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"}
    status, body = _create_room(proxied, source="127.0.0.2", headers=forged)
    assert status == 201
    assert json.loads(body)["link"].startswith(f"https://{DOMAIN}:{proxied.https_port}/r/")
    probe = f"/api/v1/rooms/probe-{secrets.token_hex(6)}"
    status, _, _ = _request(proxied, "GET", probe, source="127.0.0.2", headers=forged)
    assert status == 200
    lines = _access_log_lines(proxied, probe)
    assert len(lines) == 1, lines
    assert re.search(r"\b127\.0\.0\.2:\d+ - ", lines[0]), lines[0]
    assert "203.0.113.9" not in proxied.salon_log.read_text()


def test_salon_trusts_forwarded_headers_only_from_the_proxy_address(proxied: Proxied) -> None:
    """Straight to Salon from an address that is not the proxy: the headers are ignored."""
    forged = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}
    status, body = _create_room(proxied, tls=False, source="127.0.0.3", headers=forged)
    assert status == 201
    assert json.loads(body)["link"].startswith(f"http://127.0.0.1:{proxied.salon_port}/r/")
    probe = f"/api/v1/rooms/probe-{secrets.token_hex(6)}"
    _request(proxied, "GET", probe, tls=False, source="127.0.0.3", headers=forged)
    (line,) = _access_log_lines(proxied, probe)
    assert re.search(r"\b127\.0\.0\.3:\d+ - ", line), line
    assert "198.51.100.7" not in proxied.salon_log.read_text()


def test_plain_http_redirects_to_https(proxied: Proxied) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", proxied.http_port, timeout=5)
    try:
        conn.request("GET", "/r/abc?x=1", headers={"Host": DOMAIN})
        response = conn.getresponse()
        assert response.status == 301
        assert response.getheader("Location") == f"https://{DOMAIN}/r/abc?x=1"
    finally:
        conn.close()


def test_an_unknown_server_name_gets_no_tls_handshake(proxied: Proxied) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", proxied.https_port), timeout=5) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="not-salon.example").close()


async def _hello(ws: Any, name: str) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "hello", "versions": [1], "name": name}))
    while True:
        message: dict[str, Any] = json.loads(await ws.recv())
        if message["type"] != "ping":
            return message


async def test_signaling_websocket_upgrades_through_nginx(proxied: Proxied) -> None:
    url = f"wss://{DOMAIN}:{proxied.https_port}/ws"
    origin = f"https://{DOMAIN}:{proxied.https_port}"
    async with (
        connect(url, ssl=proxied.tls_context(), origin=origin) as ann,
        connect(url, ssl=proxied.tls_context(), origin=origin) as ben,
    ):
        welcome = await _hello(ann, "ann-proxied")
        assert welcome["type"] == "welcome", welcome
        assert (await _hello(ben, "ben-proxied"))["type"] == "welcome"
        # A frame travels both ways over the upgraded connection.
        await ann.send(json.dumps({"type": "ping", "ref": "through-nginx"}))
        while (pong := json.loads(await ann.recv()))["type"] == "ping":
            pass
        assert (pong["type"], pong.get("ref")) == ("pong", "through-nginx")


@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
async def test_the_origin_check_still_refuses_cross_site_sockets_behind_nginx(
    proxied: Proxied, origin: str
) -> None:
    """nginx passes Origin and Host through unchanged, so Salon's cross-site WebSocket check
    (403 before the upgrade) holds behind the proxy as it does without one."""
    url = f"wss://{DOMAIN}:{proxied.https_port}/ws"
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, ssl=proxied.tls_context(), origin=origin):  # type: ignore[arg-type]  # websockets types Origin as a NewType
            pass
    assert refused.value.response.status_code == 403
