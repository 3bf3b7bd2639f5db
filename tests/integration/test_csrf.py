"""Cross-site request forgery: state-changing REST needs our Origin and the CSRF token."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest

from salon.server.csrf import SAFE_METHODS
from tests.integration.conftest import database_options
from tests.integration.rest import same_origin_headers
from tests.integration.server import RunningServer, running_server


@pytest.fixture
def server(tmp_path: Path, database_url: str | None) -> Iterator[RunningServer]:
    """On SQLite and on PostgreSQL: a refused request must change nothing in either."""
    with running_server(tmp_path, options=database_options(database_url)) as running:
        yield running


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as client:
        yield client


def set_cookie(response: httpx.Response) -> dict[str, Any]:
    """The salon_csrf Set-Cookie of a response: value and attributes (lower-case names)."""
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith("salon_csrf=")]
    morsel = SimpleCookie(header)["salon_csrf"]
    flags = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    return {"value": morsel.value, "samesite": morsel["samesite"], "flags": flags, **morsel}


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["detail"]["code"] == "csrf" and body["detail"]["message"], body
    assert set(body) == {"detail"} and set(body["detail"]) == {"code", "message"}


async def test_the_token_endpoint_sets_a_strict_script_readable_cookie(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/api/v1/csrf")
    assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
    cookie = set_cookie(response)
    assert response.json()["token"] == cookie["value"] and len(cookie["value"]) == 43
    assert cookie["samesite"].lower() == "strict" and cookie["path"] == "/"
    assert "secure" in cookie["flags"] and "httponly" not in cookie["flags"]
    again = await http.get("/api/v1/csrf")  # the client now sends the cookie
    assert again.json()["token"] == cookie["value"]
    assert "set-cookie" not in again.headers


async def test_every_page_load_sets_the_cookie(server: RunningServer) -> None:
    for path in ("/", "/r/some-room", "/call"):
        async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as fresh:
            assert len(set_cookie(await fresh.get(path))["value"]) == 43, path


async def test_the_correct_token_from_our_origin_is_accepted(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    headers = await same_origin_headers(http, server.base_url)
    assert (await http.post("/api/v1/rooms", headers=headers)).status_code == 201


async def test_sec_fetch_site_same_origin_stands_in_for_a_missing_origin(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    headers = await same_origin_headers(http, server.base_url)
    del headers["Origin"]
    assert_refused(await http.post("/api/v1/rooms", headers=headers))
    headers["Sec-Fetch-Site"] = "same-origin"
    assert (await http.post("/api/v1/rooms", headers=headers)).status_code == 201
    headers["Sec-Fetch-Site"] = "cross-site"
    assert_refused(await http.post("/api/v1/rooms", headers=headers))


async def test_a_cross_site_form_post_is_refused(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    """What a form on evil.example submits: its Origin, a form body, and (at worst, in a
    browser without SameSite) the user's cookie, but no X-CSRF-Token header."""
    token = (await same_origin_headers(http, server.base_url))["X-CSRF-Token"]
    form = {
        "Origin": "https://evil.example",
        "Content-Type": "application/x-www-form-urlencoded",
        "Sec-Fetch-Site": "cross-site",
    }
    assert_refused(await http.post("/api/v1/rooms", headers=form, content=b"x=1"))
    # Even a page that somehow knew the token is refused for its Origin.
    forged = {**form, "X-CSRF-Token": token}
    assert_refused(await http.post("/api/v1/rooms", headers=forged, content=b"x=1"))


@pytest.mark.parametrize(
    "origin", ["null", "https://evil.example", "http://127.0.0.1", "https://127.0.0.1.evil.example"]
)
async def test_foreign_origins_are_refused_even_with_the_token(
    http: httpx.AsyncClient, server: RunningServer, origin: str
) -> None:
    headers = await same_origin_headers(http, server.base_url)
    assert_refused(await http.post("/api/v1/rooms", headers={**headers, "Origin": origin}))


async def test_a_missing_or_wrong_token_is_refused(
    http: httpx.AsyncClient, server: RunningServer
) -> None:
    headers = await same_origin_headers(http, server.base_url)
    token = headers["X-CSRF-Token"]
    no_header = {"Origin": server.base_url}
    assert_refused(await http.post("/api/v1/rooms", headers=no_header))
    wrong = {**headers, "X-CSRF-Token": ("A" if token[0] != "A" else "B") + token[1:]}
    assert_refused(await http.post("/api/v1/rooms", headers=wrong))
    assert_refused(await http.post("/api/v1/rooms", headers={**headers, "X-CSRF-Token": ""}))
    latin = ("é" * 43).encode("latin-1")  # the right length, not the token's alphabet
    assert_refused(await http.post("/api/v1/rooms", headers={**headers, "X-CSRF-Token": latin}))
    http.cookies.clear()  # the header alone, without the cookie it must match
    assert_refused(await http.post("/api/v1/rooms", headers=headers))
    # A cookie and header that match but were never minted here have the wrong shape.
    http.cookies.set("salon_csrf", "short")
    assert_refused(await http.post("/api/v1/rooms", headers={**headers, "X-CSRF-Token": "short"}))


async def test_reads_need_no_token(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/v1/health")).status_code == 200
    assert (await http.get("/api/v1/rooms/anything")).status_code == 200


async def test_a_configured_origin_may_change_state(tmp_path: Path) -> None:
    options = {"allowed_origins": ["https://meet.example.org"]}
    with running_server(tmp_path, options=options) as server:
        async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as client:
            headers = await same_origin_headers(client, "https://meet.example.org")
            assert (await client.post("/api/v1/rooms", headers=headers)).status_code == 201


async def test_plain_http_cookie_is_not_secure_unless_a_trusted_proxy_says_https(
    tmp_path: Path,
) -> None:
    with running_server(tmp_path, http=True) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            assert "secure" not in set_cookie(await client.get("/api/v1/csrf"))["flags"]
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            proxied = await client.get("/api/v1/csrf", headers={"X-Forwarded-Proto": "https"})
            assert "secure" in set_cookie(proxied)["flags"]


async def test_every_state_changing_route_is_guarded(http: httpx.AsyncClient) -> None:
    """Every POST/PUT/PATCH/DELETE the OpenAPI document lists refuses a bare request: by the
    CSRF rule, or, on the server API (its routes declare the ``ApiKey`` scheme), for want of
    an API key, which only a header carries (tests/integration/test_api_keys.py)."""
    paths = (await http.get("/openapi.json")).json()["paths"]
    changing = [
        (method, re.sub(r"\{[^}]+\}", "x", path), {"ApiKey": []} in op.get("security", []))
        for path, methods in paths.items()
        for method, op in methods.items()
        if method.upper() not in SAFE_METHODS
    ]
    assert changing, "no state-changing route found: the test would prove nothing"
    assert not all(keyed for *_, keyed in changing), "no CSRF-guarded route found"
    for method, path, keyed in changing:
        for headers in ({"Origin": "null"}, {}):
            refusal = await http.request(method.upper(), path, headers=headers)
            if keyed:
                assert refusal.status_code == 401, refusal.text
                assert refusal.json()["detail"]["code"] == "invalid_api_key"
            else:
                assert_refused(refusal)
