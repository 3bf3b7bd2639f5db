"""Accounts over REST: sign up, sign in, sign out, me; cookies, refusals and throttles."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import database_options
from tests.integration.peer import Peer
from tests.integration.rest import same_origin_headers
from tests.integration.server import RunningServer, running_server

ROOMY = {"ip_attempts_burst": 1000, "account_attempts_burst": 1000}


@contextlib.contextmanager
def accounts_server(
    tmp_path: Path, database_url: str | None, **accounts: Any
) -> Iterator[RunningServer]:
    """Every test here runs on SQLite and on PostgreSQL (``database_url``)."""
    options = {"accounts": {**ROOMY, **accounts}, **database_options(database_url)}
    with running_server(tmp_path, options=options) as server:
        yield server


@contextlib.asynccontextmanager
async def browser(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """A client that behaves like the page: our Origin and the CSRF token on every call."""
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as client:
        client.headers.update(await same_origin_headers(client, server.base_url))
        yield client


@pytest.fixture
def server(tmp_path: Path, database_url: str | None) -> Iterator[RunningServer]:
    with accounts_server(tmp_path, database_url) as running:
        yield running


@pytest.fixture
async def page(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(server) as client:
        yield client


def session_cookie(response: httpx.Response) -> tuple[str, str]:
    """The salon_session Set-Cookie: its value and the whole header."""
    (header,) = [h for h in response.headers.get_list("set-cookie") if "salon_session=" in h]
    return SimpleCookie(header)["salon_session"].value, header


def detail(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()["detail"]
    return body


async def me_with(page: httpx.AsyncClient, token: str) -> httpx.Response:
    """GET /api/v1/me with exactly this session token (not the client's cookie jar)."""
    return await page.get("/api/v1/me", headers={"Cookie": f"salon_session={token}"})


async def sign_up(page: httpx.AsyncClient, username: str, **extra: Any) -> httpx.Response:
    body = {"username": username, "password": "correct horse", **extra}
    return await page.post("/api/v1/accounts", json=body)


async def sign_in(page: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await page.post("/api/v1/session", json={"username": username, "password": password})


async def test_sign_up_signs_in_with_a_safe_cookie(page: httpx.AsyncClient) -> None:
    created = await sign_up(page, "Alice", display_name="Alice A.")
    assert created.status_code == 201
    me = created.json()
    assert me["username"] == "Alice" and me["display_name"] == "Alice A." and me["id"]
    token, header = session_cookie(created)
    assert len(token) == 43
    attributes = {p.strip().split("=")[0].lower() for p in header.split(";")[1:]}
    assert {"httponly", "secure", "max-age", "path", "samesite"} <= attributes
    assert "samesite=lax" in header.lower() and "max-age=2592000" in header.lower()
    assert (await page.get("/api/v1/me")).json() == me


async def test_sign_up_needs_the_csrf_rule(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as bare:
        refused = await bare.post(
            "/api/v1/accounts", json={"username": "mallory", "password": "correct horse"}
        )
        assert detail(refused, 403)["code"] == "csrf"
        evil = {"Origin": "https://evil.example"}
        refused = await bare.post(
            "/api/v1/session", json={"username": "x", "password": "y"}, headers=evil
        )
        assert detail(refused, 403)["code"] == "csrf"
    async with browser(server) as page:
        assert (await sign_up(page, "mallory")).status_code == 201  # nothing was made before


async def test_names_are_taken_case_insensitively(page: httpx.AsyncClient) -> None:
    assert (await sign_up(page, "alice", display_name="Alice")).status_code == 201
    assert detail(await sign_up(page, "ALICE"), 409)["code"] == "username_taken"
    taken = await sign_up(page, "alice2", display_name="alice")
    assert detail(taken, 409)["code"] == "display_name_taken"
    assert detail(await sign_up(page, "bad\u202ename"), 422)["code"] == "invalid_username"


async def test_names_are_taken_in_any_invisible_or_fullwidth_disguise(
    page: httpx.AsyncClient,
) -> None:
    assert (await sign_up(page, "carla", display_name="Carla C")).status_code == 201
    for variant in ("\uff43\uff41\uff52\uff4c\uff41", "carla\u200d", "carla\u3164", "car la"):
        assert detail(await sign_up(page, variant), 409)["code"] == "username_taken", variant
        taken = await sign_up(page, "other", display_name=variant)
        assert detail(taken, 409)["code"] == "display_name_taken", variant
    taken = await sign_up(page, "other", display_name="CarlaC\ufe0f")
    assert detail(taken, 409)["code"] == "display_name_taken"


async def test_blank_names_are_refused(page: httpx.AsyncClient) -> None:
    for blank in ("\u3164", "\u2800", "\u0301", " \u115f "):
        assert detail(await sign_up(page, blank), 422)["code"] == "invalid_username", blank
        refused = await sign_up(page, "named", display_name=blank)
        assert detail(refused, 422)["code"] == "invalid_name", blank
    assert (
        await sign_up(page, "named", display_name="\U0001f469\u200d\U0001f4bb")
    ).status_code == 201


async def test_sign_in_rotates_the_session(page: httpx.AsyncClient) -> None:
    first, _ = session_cookie(await sign_up(page, "bob"))
    signed_in = await sign_in(page, "BOB", "correct horse")  # names compare as keys
    assert signed_in.status_code == 200 and signed_in.json()["username"] == "bob"
    second, _ = session_cookie(signed_in)
    assert second != first
    old = await me_with(page, first)
    assert detail(old, 401)["code"] == "not_signed_in"  # the old session was revoked
    assert (await page.get("/api/v1/me")).json()["username"] == "bob"


async def test_sign_out_revokes_the_session(page: httpx.AsyncClient) -> None:
    token, _ = session_cookie(await sign_up(page, "carol"))
    out = await page.delete("/api/v1/session")
    assert out.status_code == 204
    assert (
        'salon_session=""' in out.headers["set-cookie"]
        or "max-age=0" in out.headers["set-cookie"].lower()
    )
    page.cookies.delete("salon_session")
    replayed = await me_with(page, token)
    assert detail(replayed, 401)["code"] == "not_signed_in"
    assert detail(await page.get("/api/v1/me"), 401)["code"] == "not_signed_in"


async def test_unknown_user_and_wrong_password_look_the_same(page: httpx.AsyncClient) -> None:
    await sign_up(page, "dave")
    page.cookies.delete("salon_session")

    async def timed(username: str) -> tuple[float, httpx.Response]:
        start = time.perf_counter()
        response = await sign_in(page, username, "wrong password")
        return time.perf_counter() - start, response

    wrong, unknown = [], []
    for _ in range(7):
        spent, response = await timed("dave")
        wrong.append(spent)
        assert detail(response, 401) == {
            "code": "bad_credentials",
            "message": "wrong username or password",
        }
        spent, other = await timed("nobody-at-all")
        unknown.append(spent)
        assert other.status_code == 401 and other.json() == response.json()
    # Both check an argon2id hash: neither is answered in a fraction of the other's time.
    # The fastest of each is the least disturbed by whatever else the machine is doing.
    ratio = min(unknown) / min(wrong)
    assert 0.5 < ratio < 2.0, (wrong, unknown)


async def test_absurd_passwords_are_refused_before_hashing(page: httpx.AsyncClient) -> None:
    await sign_up(page, "erin")
    huge = "x" * 1025
    start = time.perf_counter()
    assert detail(await sign_in(page, "erin", huge), 422)["code"] == "invalid_password"
    refused = await page.post("/api/v1/accounts", json={"username": "fay", "password": huge})
    assert detail(refused, 422)["code"] == "invalid_password"
    refused_in = time.perf_counter() - start
    start = time.perf_counter()
    await sign_in(page, "erin", "x" * 1024)  # the longest allowed: hashed, then wrong
    hashed_in = time.perf_counter() - start
    assert refused_in < hashed_in, (refused_in, hashed_in)
    short = await page.post("/api/v1/accounts", json={"username": "fay", "password": "short"})
    assert detail(short, 422)["code"] == "invalid_password"


SESSION_S = 4.0  # the session lifetime in test_the_session_expires


async def test_the_session_expires(tmp_path: Path, database_url: str | None) -> None:
    """Valid when made; refused once its lifetime has passed, and not before (the session is
    made after ``made_after``, so it cannot expire before ``made_after + SESSION_S``)."""
    with accounts_server(tmp_path, database_url, session_days=SESSION_S / 86400) as server:
        async with browser(server) as page:
            made_after = time.monotonic()
            token, _ = session_cookie(await sign_up(page, "gus"))
            assert (await page.get("/api/v1/me")).status_code == 200
            deadline = made_after + SESSION_S + 15
            while (late := await me_with(page, token)).status_code == 200:
                assert time.monotonic() < deadline, "the session did not expire"
                await asyncio.sleep(0.2)
            assert time.monotonic() >= made_after + SESSION_S - 0.05, "expired early"
            assert detail(late, 401)["code"] == "not_signed_in"


async def test_guessing_from_one_address_is_throttled(
    tmp_path: Path, database_url: str | None
) -> None:
    with accounts_server(
        tmp_path, database_url, ip_attempts_burst=3, ip_attempts_per_minute=6
    ) as server:
        async with browser(server) as page:
            for name in ("h1", "h2", "h3"):
                assert (await sign_in(page, name, "guess")).status_code == 401
            throttled = await sign_in(page, "h4", "guess")
            assert detail(throttled, 429)["code"] == "rate_limited"
            assert 1 <= int(throttled.headers["retry-after"]) <= 10
            # Signing up from the same address draws on the same bucket.
            assert (await sign_up(page, "h5")).status_code == 429


@contextlib.asynccontextmanager
async def browser_at(server: RunningServer, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh browser (no cookies) whose connections come from ``address`` (127.0.0.0/8)."""
    transport = httpx.AsyncHTTPTransport(local_address=address, verify=server.ssl_context)
    async with httpx.AsyncClient(base_url=server.base_url, transport=transport) as client:
        client.headers.update(await same_origin_headers(client, server.base_url))
        yield client


async def test_guessing_one_account_from_one_address_is_throttled_there_only(
    tmp_path: Path, database_url: str | None
) -> None:
    """A stranger's wrong passwords spend the stranger's budget, not the owner's."""
    with accounts_server(tmp_path, database_url, account_attempts_burst=2) as server:
        async with browser_at(server, "127.0.0.2") as owner:
            await sign_up(owner, "ivy")
        async with browser_at(server, "127.0.0.3") as stranger:
            for _ in range(2):
                assert (await sign_in(stranger, "ivy", "guess")).status_code == 401
            throttled = await sign_in(stranger, "IVY", "correct horse")  # the same account key
            assert detail(throttled, 429)["code"] == "rate_limited"
            assert int(throttled.headers["retry-after"]) >= 1
            assert (await sign_in(stranger, "someone-else", "guess")).status_code == 401
        async with browser_at(server, "127.0.0.2") as owner_elsewhere:  # no cookies
            assert (await sign_in(owner_elsewhere, "ivy", "correct horse")).status_code == 200


async def test_the_account_ceiling_spares_the_owners_known_device(
    tmp_path: Path, database_url: str | None
) -> None:
    """Guesses from many addresses reach the account's ceiling: then only a browser that
    signed in to the account before (its salon_device cookie) still may."""
    with accounts_server(tmp_path, database_url, account_ceiling_burst=3) as server:
        async with browser_at(server, "127.0.0.2") as owner:
            (await sign_up(owner, "joy")).raise_for_status()
            (header,) = [
                h for h in owner.cookies.jar if h.name.startswith("salon_device_")
            ]  # kept by the owner's browser
            for n in range(3, 6):
                async with browser_at(server, f"127.0.0.{n}") as stranger:
                    assert (await sign_in(stranger, "joy", "guess")).status_code == 401
            async with browser_at(server, "127.0.0.6") as stranger:
                assert (await sign_in(stranger, "joy", "correct horse")).status_code == 429
            async with browser_at(server, "127.0.0.2") as new_browser:  # the owner, no cookie
                assert (await sign_in(new_browser, "joy", "correct horse")).status_code == 429
            await owner.delete("/api/v1/session")  # signed out; the device cookie stays
            signed_in = await sign_in(owner, "joy", "correct horse")
            assert signed_in.status_code == 200, signed_in.text
            assert header.value and header.path == "/api/v1/session"
            # A device cookie earned on another account, or forged, is no way around it.
            async with browser_at(server, "127.0.0.7") as other:
                await sign_up(other, "kim")
                assert (await sign_in(other, "joy", "correct horse")).status_code == 429
                forged = header.value + "x"
                other.cookies.set(header.name, forged, path="/api/v1/session")
                assert (await sign_in(other, "joy", "correct horse")).status_code == 429
                # Kim's browser signing in to joy with joy's real cookie of another browser:
                other.cookies.set(header.name, header.value, path="/api/v1/session")
                assert (await sign_in(other, "joy", "correct horse")).status_code == 200


async def test_the_device_cookie_is_http_only_strict_and_scoped_to_sign_in(
    page: httpx.AsyncClient,
) -> None:
    response = await sign_up(page, "lou")
    (header,) = [h for h in response.headers.get_list("set-cookie") if "salon_device_" in h]
    attributes = {a.strip().split("=")[0].lower() for a in header.split(";")}
    assert {"httponly", "secure", "path", "max-age", "samesite"} <= attributes
    assert "Path=/api/v1/session" in header and "SameSite=strict" in header.replace(
        "Strict", "strict"
    )
    # Signing in again from the same browser keeps the device it has.
    again = await sign_in(page, "lou", "correct horse")
    assert not [h for h in again.headers.get_list("set-cookie") if "salon_device_" in h]


async def test_a_browser_keeps_a_device_for_each_account(
    tmp_path: Path, database_url: str | None
) -> None:
    """Signing in to a second account does not forget the first: its owner's device still
    passes the first account's ceiling."""
    with accounts_server(tmp_path, database_url, account_ceiling_burst=2) as server:
        async with browser_at(server, "127.0.0.2") as shared:
            await sign_up(shared, "ana")
            await shared.delete("/api/v1/session")
            await sign_up(shared, "ben")
            names = {c.name for c in shared.cookies.jar if c.name.startswith("salon_device_")}
            assert len(names) == 2
            for n in (3, 4):
                async with browser_at(server, f"127.0.0.{n}") as stranger:
                    assert (await sign_in(stranger, "ana", "guess")).status_code == 401
            assert (await sign_in(shared, "ana", "correct horse")).status_code == 200


async def test_known_devices_of_one_address_share_a_pool(
    tmp_path: Path, database_url: str | None
) -> None:
    """Device cookies collected for one's own account buy no argon2 work beyond the
    address's pool for known devices (ip_attempts_*)."""
    with accounts_server(
        tmp_path, database_url, ip_attempts_burst=3, ip_attempts_per_minute=1
    ) as server:
        async with browser_at(server, "127.0.0.8") as setup:
            await sign_up(setup, "eve")  # one of this address's 3 tries
        jars = []
        for n in (9, 10, 11):  # three more devices, collected from other addresses
            async with browser_at(server, f"127.0.0.{n}") as collector:
                assert (await sign_in(collector, "eve", "correct horse")).status_code == 200
                jars.append(
                    [c for c in collector.cookies.jar if c.name.startswith("salon_device_")]
                )
        statuses = []
        for jar in jars:
            async with browser_at(server, "127.0.0.12") as attacker:
                for cookie in jar:
                    attacker.cookies.set(cookie.name, cookie.value, path=cookie.path)
                statuses.append((await sign_in(attacker, "eve", "wrong guess")).status_code)
        async with browser_at(server, "127.0.0.12") as more:
            for cookie in jars[0]:
                more.cookies.set(cookie.name, cookie.value, path=cookie.path)
            statuses.append((await sign_in(more, "eve", "wrong guess")).status_code)
        assert statuses == [401, 401, 401, 429]


async def test_sign_in_is_refused_without_the_token(page: httpx.AsyncClient) -> None:
    await sign_up(page, "jo")
    del page.headers["X-CSRF-Token"]
    assert detail(await sign_in(page, "jo", "correct horse"), 403)["code"] == "csrf"
    assert detail(await page.delete("/api/v1/session"), 403)["code"] == "csrf"


async def test_the_current_password_is_guessed_at_the_accounts_own_pace(
    tmp_path: Path, database_url: str | None
) -> None:
    """A stolen session guessing the current password gets the strict per-account budget,
    from any address (not the sign-in ceiling of 100)."""
    with accounts_server(tmp_path, database_url, account_attempts_burst=2) as server:
        async with browser_at(server, "127.0.0.2") as owner:
            await sign_up(owner, "max")
            token = owner.cookies["salon_session"]
        change = {"current_password": "guess", "new_password": "a new password"}
        statuses = []
        for n in (3, 4, 5):
            async with browser_at(server, f"127.0.0.{n}") as thief:
                thief.cookies.set("salon_session", token)
                statuses.append((await thief.patch("/api/v1/me", json=change)).status_code)
        assert statuses == [401, 401, 429]


async def test_sign_out_closes_the_sessions_open_socket_and_it_cannot_come_back_as_a_guest(
    server: RunningServer, page: httpx.AsyncClient
) -> None:
    """Guests are welcome on this server, yet a socket signed in as the account does not
    live on after its session ends, and what it held does not pass to a guest."""
    await sign_up(page, "nell")
    cookie = {"Cookie": f"salon_session={page.cookies['salon_session']}"}
    member = await Peer.connect(server, additional_headers={**cookie, "Origin": server.base_url})
    welcome = await member.hello("ignored")
    assert welcome["account"]["username"] == "nell"
    await member.join("nells-room")
    assert (await page.delete("/api/v1/session")).status_code == 204
    assert await member.closed_with() == 4006
    guest = await Peer.connect(server, additional_headers={"Origin": server.base_url})
    await guest.send(type="hello", versions=[1], name="nell", resume=member.token)
    await guest.error("resume_failed")
    await guest.send(type="hello", versions=[1], name="nell")  # the account's name: not a guest's
    await guest.error("name_taken")
    await guest.close()
