"""REST under /api/v1, the OpenAPI document and the headers of every HTTP answer."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx
import pytest

from tests.integration.peer import Peer
from tests.integration.rest import same_origin_headers
from tests.integration.server import RunningServer
from tests.integration.test_resume import account_headers


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as client:
        yield client


async def test_health(http: httpx.AsyncClient) -> None:
    body = (await http.get("/api/v1/health")).json()
    assert body["status"] == "ok" and body["online"] == 0 and body["rooms"] == 0
    assert body["require_sign_in"] is False  # the web client asks before offering a room


async def test_create_room_then_its_info(http: httpx.AsyncClient, server: RunningServer) -> None:
    headers = await same_origin_headers(http, server.base_url)
    created = await http.post("/api/v1/rooms", headers=headers)
    assert created.status_code == 201
    room = created.json()
    assert len(room["id"]) == 16 and room["link"] == f"{server.base_url}/r/{room['id']}"
    assert len(room["host_key"]) == 22  # 128 bits, URL-safe base64
    other = (await http.post("/api/v1/rooms", headers=headers)).json()
    assert other["id"] != room["id"] and other["host_key"] != room["host_key"]

    info = (await http.get(f"/api/v1/rooms/{room['id']}")).json()
    assert info == {
        "id": room["id"],
        "exists": True,
        "members": 0,
        "full": False,
        "protected": False,
        "locked": False,
        "lobby": False,
        "host": False,
    }
    alice = await Peer.greeted(server, "alice")
    await alice.join(room["id"])
    assert (await http.get(f"/api/v1/rooms/{room['id']}")).json()["members"] == 1
    await alice.close()


async def test_room_creation_is_rate_limited_per_account_or_address(
    make_server: Callable[..., AbstractContextManager[RunningServer]], tmp_path: Path
) -> None:
    """``room_creation_burst`` rooms at once, then ``room_creations_per_minute``, for each
    signed-in account and for each address without one: the next gets 429 with Retry-After
    and stores nothing, and a signed-in person behind a spent address keeps their own."""
    with make_server(room_creation_burst=3, room_creations_per_minute=1) as server:
        for signed_in in (False, True):
            async with httpx.AsyncClient(
                base_url=server.base_url, verify=server.ssl_context
            ) as http:
                http.headers.update(await same_origin_headers(http, server.base_url))
                if signed_in:
                    body = {"username": "kim", "password": "correct horse"}
                    assert (await http.post("/api/v1/accounts", json=body)).status_code == 201
                for _ in range(3):
                    assert (await http.post("/api/v1/rooms")).status_code == 201
                refused = await http.post("/api/v1/rooms")
                assert refused.status_code == 429, refused.text
                assert refused.json()["detail"]["code"] == "rate_limited"
                assert 1 <= int(refused.headers["Retry-After"]) <= 60
    with sqlite3.connect(tmp_path / "salon.db") as db:
        assert db.execute("SELECT count(*) FROM rooms").fetchone() == (6,)


async def test_unknown_and_invalid_room_ids(http: httpx.AsyncClient) -> None:
    unknown = (await http.get("/api/v1/rooms/never-made")).json()
    assert unknown["exists"] is False
    for bad in ("ok%20then", "x" * 65, "a.b"):
        assert (await http.get(f"/api/v1/rooms/{bad}")).status_code == 422, bad


async def test_call_rooms_are_not_visible_over_rest(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    alice = await Peer.greeted(server, "alice")
    bob = await Peer.greeted(server, "bob", reachable=True)
    await alice.send(type="call", name="bob")
    call = (await bob.expect("incoming_call"))["call"]
    await bob.send(type="call_accept", call=call)
    room = (await bob.expect("call_accepted"))["room"]
    assert (await http.get(f"/api/v1/rooms/{room}")).status_code == 404
    await alice.close()
    await bob.close()


async def test_openapi_describes_the_rest_api(http: httpx.AsyncClient) -> None:
    paths = (await http.get("/openapi.json")).json()["paths"]
    assert {"/api/v1/health", "/api/v1/csrf", "/api/v1/rooms", "/api/v1/rooms/{room_id}"} <= set(
        paths
    )


@pytest.mark.parametrize("path", ["/", "/r/some-room", "/call", "/api/v1/health"])
async def test_security_headers(http: httpx.AsyncClient, path: str) -> None:
    headers = (await http.get(path)).headers
    csp = headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["strict-transport-security"].startswith("max-age=")
    assert "camera=(self)" in headers["permissions-policy"]


async def test_huge_bodies_are_refused_before_parsing(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    headers = await same_origin_headers(http, server.base_url)
    limit = server.settings.max_body_bytes
    padding = "x" * limit
    huge = {"username": "someone", "password": "correct horse", "display_name": padding}
    refused = await http.post("/api/v1/accounts", json=huge, headers=headers)
    assert refused.status_code == 413, refused.text
    assert refused.json()["detail"]["code"] == "too_large"
    assert refused.headers["x-content-type-options"] == "nosniff"  # still our headers

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        yield b'{"username": "someone", "password": "'
        for _ in range(limit // 1024 + 1):
            yield b"y" * 1024
        yield b'"}'

    streamed = await http.post(
        "/api/v1/session",
        content=chunks(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413 and streamed.json()["detail"]["code"] == "too_large"
    assert (await http.get("/api/v1/health")).status_code == 200  # the server is unharmed
    fits = {"username": "someone", "password": "correct horse"}
    created = await http.post("/api/v1/accounts", json=fits, headers=headers)
    assert created.status_code == 201, created.text


async def test_unknown_pages_get_the_page_with_404_and_api_stays_json(
    http: httpx.AsyncClient,
) -> None:
    """A mistyped page link shows the client's "Page not found" (the shell, status 404); an
    unknown API path, asset or method keeps a machine answer."""
    for path in ("/nope", "/r/a/b", "/r", "/apix", "/call/extra"):
        page = await http.get(path)
        assert page.status_code == 404, path
        assert page.headers["content-type"].startswith("text/html"), path
        assert '<div id="root">' in page.text, path
    api = await http.get("/api/v1/nope")
    assert api.status_code == 404 and api.json() == {"detail": "Not Found"}
    assert (await http.get("/api")).headers["content-type"] == "application/json"
    assert (await http.get("/assets/missing.js")).headers["content-type"] != "text/html"
    assert (await http.post("/nope")).status_code in (404, 405)
    assert (await http.post("/nope")).headers["content-type"] == "application/json"
    known = await http.get("/r/some-room")
    assert known.status_code == 200 and '<div id="root">' in known.text
    # An id no room can have: the page ("This link is not a meeting"), status 404.
    for bad in ("/r/%25%25%25", "/r/b%C3%BCro", "/r/" + "x" * 65, "/r/a.b"):
        page = await http.get(bad)
        assert page.status_code == 404 and '<div id="root">' in page.text, bad


async def test_session_says_who_is_signed_in_without_an_error(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    """``GET /api/v1/session``: 200 for a guest too (the page asks on every visit; a 401
    would be a console error), while ``/me`` keeps its 401."""
    guest = await http.get("/api/v1/session")
    assert guest.status_code == 200 and guest.json() == {"account": None}
    assert (await http.get("/api/v1/me")).status_code == 401

    headers = await account_headers(server, "grace")
    signed_in = await http.get("/api/v1/session", headers={"Cookie": headers["Cookie"]})
    me = await http.get("/api/v1/me", headers={"Cookie": headers["Cookie"]})
    assert signed_in.status_code == 200
    assert signed_in.json() == {"account": me.json()}
    assert me.json()["username"] == "grace"
