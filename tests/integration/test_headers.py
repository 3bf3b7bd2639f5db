"""The security headers on every HTTP answer: pages, static files, the API, error answers of
every kind (a bug's 500 too), the 503 of a draining server and refused WebSocket handshakes;
and HEAD answered as GET without the content.

What each header is for: a Content-Security-Policy without ``unsafe-inline`` or
``unsafe-eval`` and with ``frame-ancestors 'none'`` (CSP Level 3), ``X-Content-Type-Options:
nosniff`` (Fetch, "should response to request be blocked due to nosniff"),
``Referrer-Policy: no-referrer``, a ``Permissions-Policy`` that gives camera, microphone and
screen capture to Salon's own origin only, ``X-Frame-Options: DENY`` (RFC 7034) for browsers
without ``frame-ancestors``, and HSTS (RFC 6797) whenever Salon itself serves TLS.
"""

from __future__ import annotations

import re
import signal
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import httpx
import pytest

from salon.core.settings import AccountSettings, Settings
from salon.server.app import create_app
from tests.integration.rest import same_origin_headers
from tests.integration.server import RunningServer, running_server
from tests.integration.test_drain import eventually, members, serve, settle
from tests.integration.test_origin import handshake


def assert_security_headers(headers: Mapping[str, str], what: str, *, tls: bool = True) -> None:
    """The full set, on one answer (``what`` names it in a failure)."""
    lower = {name.lower(): value for name, value in headers.items()}
    csp = lower.get("content-security-policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", (what, csp)
    assert directives.get("script-src") == "script-src 'self'", (what, csp)
    assert directives.get("object-src") == "object-src 'none'", (what, csp)
    assert "default-src" in directives, (what, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, (what, csp)
    assert lower.get("x-content-type-options") == "nosniff", what
    assert lower.get("referrer-policy") == "no-referrer", what
    permissions = lower.get("permissions-policy", "")
    for feature in ("camera=(self)", "microphone=(self)", "display-capture=(self)"):
        assert feature in permissions, (what, permissions)
    assert lower.get("x-frame-options") == "DENY", what
    if tls:
        hsts = lower.get("strict-transport-security", "")
        assert re.fullmatch(r"max-age=\d+", hsts) and int(hsts[8:]) >= 15_552_000, (what, hsts)
    else:
        assert "strict-transport-security" not in lower, what


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as client:
        yield client


async def built_files(http: httpx.AsyncClient) -> list[str]:
    """The client's hashed scripts and style sheets, as the served page names them."""
    page = (await http.get("/")).text
    files = sorted(set(re.findall(r'(?:src|href)="(/assets/[^"]+)"', page)))
    if not any(f.endswith(".js") for f in files):
        reason = "the web client is not built (run `make web`): no /assets files to check"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    return files


async def test_pages_files_and_the_api_carry_the_headers(http: httpx.AsyncClient) -> None:
    paths = ["/", "/r/x", "/r/a.b", "/call", "/login", "/favicon.svg", *await built_files(http)]
    paths += ["/api/v1/health", "/api/v1/session", "/api/v1/csrf", "/openapi.json"]
    for path in paths:
        got = await http.get(path)
        # /r/a.b: no room can have that id; the page says so, with status 404.
        assert got.status_code == (404 if path == "/r/a.b" else 200), (path, got.status_code)
        assert_security_headers(got.headers, f"GET {path}")
        # RFC 9110 9.3.2: HEAD gets GET's status and header fields, without the content.
        head = await http.head(path)
        assert head.status_code == got.status_code, (path, head.status_code)
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert_security_headers(head.headers, f"HEAD {path}")


async def test_error_answers_carry_the_headers(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    token = await same_origin_headers(http, server.base_url)
    huge = {"username": "someone", "password": "x" * server.settings.max_body_bytes}
    cases: list[tuple[int, str, httpx.Response]] = [
        (401, "no session", await http.get("/api/v1/me")),
        (403, "no CSRF token", await http.post("/api/v1/rooms")),
        (404, "unknown API route", await http.get("/api/v1/no-such-route")),
        (404, "unknown static file", await http.get("/assets/no-such-file.js")),
        (404, "unknown page", await http.get("/no-such-page")),
        (405, "PUT on health", await http.put("/api/v1/health")),
        (405, "POST on a page", await http.post("/r/some-room", headers=token)),
        (413, "body too large", await http.post("/api/v1/session", json=huge, headers=token)),
        (422, "room id not valid", await http.get("/api/v1/rooms/a.b")),
        (422, "body not valid", await http.post("/api/v1/session", json={}, headers=token)),
    ]
    for status, what, answer in cases:
        assert answer.status_code == status, (what, answer.status_code, answer.text)
        assert_security_headers(answer.headers, f"{status} {what}")


async def test_a_throttled_sign_up_429_carries_the_headers(tmp_path: Path) -> None:
    options = {"accounts": AccountSettings(ip_attempts_burst=1, ip_attempts_per_minute=1)}
    with running_server(tmp_path, options=options) as server:
        async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as http:
            token = await same_origin_headers(http, server.base_url)
            # A name that is not valid: throttled first, then refused without any hashing.
            body = {"username": "", "password": "correct horse battery"}
            first = await http.post("/api/v1/accounts", json=body, headers=token)
            assert first.status_code == 422, first.text
            throttled = await http.post("/api/v1/accounts", json=body, headers=token)
            assert throttled.status_code == 429 and "retry-after" in throttled.headers
            assert_security_headers(throttled.headers, "429 sign-up")


async def test_refused_websocket_handshakes_carry_the_headers(tmp_path: Path) -> None:
    with running_server(tmp_path, handshake_burst=2, handshakes_per_minute=1) as server:
        status, headers = await handshake(server, {"Origin": "https://evil.example"})
        assert status == 403
        assert_security_headers(headers, "403 foreign origin")
        for _ in range(2):  # the burst: upgraded
            assert (await handshake(server, {"Origin": server.base_url}))[0] == 101
        status, headers = await handshake(server, {"Origin": server.base_url})
        assert status == 429 and "retry-after" in headers
        assert_security_headers(headers, "429 handshake rate")


async def test_a_handshake_refused_for_want_of_a_session_carries_the_headers(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path, options={"require_sign_in": True}) as server:
        status, headers = await handshake(server, {"Origin": server.base_url})
        assert status == 401
        assert_security_headers(headers, "401 sign in required")


async def test_plain_http_has_every_header_but_hsts(tmp_path: Path) -> None:
    with running_server(tmp_path, http=True) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            for path in ("/", "/api/v1/health", "/api/v1/no-such-route", "/favicon.svg"):
                answer = await http.get(path)
                assert_security_headers(answer.headers, f"http {path}", tls=False)
        status, headers = await handshake(server, {"Origin": "https://evil.example"})
        assert status == 403
        assert_security_headers(headers, "http 403 foreign origin", tls=False)


async def test_a_draining_servers_503s_carry_the_headers(tmp_path: Path) -> None:
    """``salon serve`` after SIGTERM: /ready and new handshakes get 503 (the members' closes
    are spread over 20 s, so the drain lasts while the test looks)."""
    spread = {"SALON_DRAIN_SPREAD_SECONDS": "20", "SALON_DRAIN_SECONDS": "30"}
    async with serve(tmp_path, None, **spread) as served:
        clients = await members(served, rooms=1, per_room=2)
        for c in clients:
            await settle(c)
        served.process.send_signal(signal.SIGTERM)

        async def not_ready() -> httpx.Response | None:
            async with served.http() as http:
                ready = await http.get("/api/v1/ready")
            return ready if ready.status_code == 503 else None

        ready = await eventually(not_ready)
        assert ready is not None, "the server never said it was not ready"
        assert_security_headers(ready.headers, "503 not ready")
        status, headers = await handshake(served.as_server(), {"Origin": served.base_url})
        assert status == 503 and "retry-after" in headers
        assert_security_headers(headers, "503 handshake while draining")
        served.process.send_signal(signal.SIGTERM)  # a second one: exit at once
        await served.process.wait()


async def test_an_unhandled_error_500_carries_the_headers(tmp_path: Path) -> None:
    """A bug's 500. No route of Salon's fails on purpose, so the test adds one to the real
    application (all of ``create_app``'s middleware) and calls it in process."""
    app = create_app(Settings(data_dir=tmp_path, host="127.0.0.1", log_level="warning"))

    async def crash() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/api/v1/crash-for-test", crash)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as http:
        answer = await http.get("/api/v1/crash-for-test")
    assert answer.status_code == 500 and answer.text == "Internal Server Error"
    assert_security_headers(answer.headers, "500 unhandled error")


async def test_head_is_counted_under_its_route(tmp_path: Path) -> None:
    """HEAD is routed as GET inside, yet the metrics see HEAD and the route that answered."""
    token = "metrics-token-" + "h" * 20
    with running_server(tmp_path, options={"metrics_token": token}) as server:
        async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as http:
            assert (await http.head("/api/v1/health")).status_code == 200
            scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    line = 'salon_http_requests_total{method="HEAD",route="/api/v1/health",status="200"} 1.0'
    assert line in scraped.text.splitlines(), [
        s for s in scraped.text.splitlines() if s.startswith("salon_http_requests_total")
    ]
