"""``require_sign_in``: the ``/ws`` handshake of anyone without a live session is refused with
HTTP 401 before the upgrade; a signed-in page's handshake is upgraded (101) and may join."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.integration.conftest import database_options
from tests.integration.peer import Peer
from tests.integration.rest import same_origin_headers
from tests.integration.server import RunningServer, running_server

ROOMY = {"ip_attempts_burst": 1000, "account_attempts_burst": 1000}


@pytest.fixture
def server(tmp_path: Path, database_url: str | None) -> Iterator[RunningServer]:
    options = {"accounts": ROOMY, "require_sign_in": True, **database_options(database_url)}
    with running_server(tmp_path, options=options) as running:
        yield running


@contextlib.asynccontextmanager
async def signed_in_page(server: RunningServer, username: str) -> AsyncIterator[httpx.AsyncClient]:
    """A page of ours that signed up as ``username`` (and so holds a live session)."""
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as page:
        page.headers.update(await same_origin_headers(page, server.base_url))
        body = {"username": username, "password": "correct horse"}
        created = await page.post("/api/v1/accounts", json=body)
        assert created.status_code == 201, created.text
        yield page


def browser_headers(server: RunningServer, page: httpx.AsyncClient) -> dict[str, str]:
    """What a browser's handshake from our page carries: the session cookie and Origin."""
    token = page.cookies["salon_session"]
    return {"Cookie": f"salon_session={token}", "Origin": server.base_url}


async def handshake_status(server: RunningServer, headers: dict[str, str]) -> int:
    """The HTTP status the server answers the opening handshake with (101: upgraded)."""
    try:
        ws = await connect(
            server.ws_url, ssl=server.ssl_context, additional_headers=headers, open_timeout=5
        )
    except InvalidStatus as refused:
        return refused.response.status_code
    try:
        assert ws.response is not None
        return ws.response.status_code
    finally:
        await ws.close()


async def test_a_handshake_without_a_session_gets_401_before_the_upgrade(
    server: RunningServer,
) -> None:
    assert await handshake_status(server, {}) == 401
    assert await handshake_status(server, {"Origin": server.base_url}) == 401
    forged = {"Cookie": "salon_session=" + "x" * 43, "Origin": server.base_url}
    assert await handshake_status(server, forged) == 401
    with pytest.raises(InvalidStatus) as refused:
        await connect(server.ws_url, ssl=server.ssl_context, open_timeout=5)
    assert refused.value.response.body == b"sign in required"


async def test_a_live_session_is_upgraded_and_may_join(server: RunningServer) -> None:
    async with signed_in_page(server, "erin") as page:
        headers = browser_headers(server, page)
        assert await handshake_status(server, headers) == 101
        created = await page.post("/api/v1/rooms")
        assert created.status_code == 201
        member = await Peer.connect(server, additional_headers=headers)
        try:
            welcome = await member.hello("ignored")
            assert welcome["account"]["username"] == "erin"
            joined = await member.join(created.json()["id"])
            assert joined["room"] == created.json()["id"]
        finally:
            await member.close()


async def test_a_session_cookie_without_origin_is_refused(server: RunningServer) -> None:
    async with signed_in_page(server, "fern") as page:
        headers = browser_headers(server, page)
        del headers["Origin"]
        assert await handshake_status(server, headers) == 401


async def test_a_session_that_ended_is_refused(server: RunningServer) -> None:
    async with signed_in_page(server, "gil") as page:
        headers = browser_headers(server, page)
        assert (await page.delete("/api/v1/session")).status_code == 204
        assert await handshake_status(server, headers) == 401


async def test_rest_refuses_guests_a_room(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as page:
        page.headers.update(await same_origin_headers(page, server.base_url))
        refused = await page.post("/api/v1/rooms")
        assert refused.status_code == 401
        assert refused.json()["detail"]["code"] == "sign_in_required"


# ------------------------------------------------------------ sessions that end under a socket


@contextlib.asynccontextmanager
async def another_session(server: RunningServer, username: str) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser signed in to ``username``'s account: a session of its own."""
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as page:
        page.headers.update(await same_origin_headers(page, server.base_url))
        body = {"username": username, "password": "correct horse"}
        signed = await page.post("/api/v1/session", json=body)
        assert signed.status_code == 200, signed.text
        yield page


async def greeted_member(server: RunningServer, page: httpx.AsyncClient) -> Peer:
    member = await Peer.connect(server, additional_headers=browser_headers(server, page))
    await member.hello("ignored")
    return member


async def test_signing_out_closes_that_sessions_sockets_and_ends_their_places(
    server: RunningServer,
) -> None:
    async with (
        signed_in_page(server, "hal") as page,
        another_session(server, "hal") as elsewhere,
        signed_in_page(server, "ivy") as witness_page,
    ):
        room = (await page.post("/api/v1/rooms")).json()["id"]
        witness = await greeted_member(server, witness_page)
        await witness.join(room)
        hal = await greeted_member(server, page)
        await hal.join(room)
        assert (await witness.expect("member_joined"))["member"]["id"] == hal.id
        headers = browser_headers(server, page)
        token = hal.token
        assert (await page.delete("/api/v1/session")).status_code == 204

        assert await hal.closed_with() == 4006
        # The place ended at once, as after a goodbye: no member_reconnecting first.
        heard = [await witness.recv()]
        while heard[-1]["type"] != "member_left":
            heard.append(await witness.recv())
        assert heard[-1]["id"] == hal.id
        assert all(m["type"] == "room_state" for m in heard[:-1]), heard  # hal was a host
        await witness.alive()
        # Neither a new socket with the old cookie nor a guest socket: no socket at all.
        assert await handshake_status(server, headers) == 401
        assert await handshake_status(server, {"Origin": server.base_url}) == 401
        # Signed in again (another session of the account): the old place is gone for good.
        other = await Peer.connect(server, additional_headers=browser_headers(server, elsewhere))
        await other.send(type="hello", versions=[1], name="hal", resume=token)
        await other.error("resume_failed")
        await other.close()
        await witness.close()


async def test_a_password_change_closes_the_other_sessions_sockets(
    server: RunningServer,
) -> None:
    async with (
        signed_in_page(server, "jan") as here,
        another_session(server, "jan") as elsewhere,
    ):
        stays = await greeted_member(server, here)
        # The other session's socket says no hello: an account has one place, and a second
        # hello would take it from the first (4005, newest wins).
        waiting = await Peer.connect(server, additional_headers=browser_headers(server, elsewhere))
        change = {"current_password": "correct horse", "new_password": "battery staple"}
        changed = await here.patch("/api/v1/me", json=change)
        assert changed.status_code == 200, changed.text
        assert await waiting.closed_with() == 4006  # even before its hello
        await stays.alive()  # the session that changed the password keeps its socket
        assert await handshake_status(server, browser_headers(server, elsewhere)) == 401
        await stays.close()


async def test_a_new_sign_in_in_the_same_browser_closes_the_old_sessions_sockets(
    server: RunningServer,
) -> None:
    async with signed_in_page(server, "kit") as page:
        old = await greeted_member(server, page)
        body = {"username": "kit", "password": "correct horse"}
        assert (await page.post("/api/v1/session", json=body)).status_code == 200
        assert await old.closed_with() == 4006
        fresh = await greeted_member(server, page)  # the new session's cookie
        await fresh.alive()
        await fresh.close()
