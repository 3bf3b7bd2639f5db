"""Registered names: the WebSocket knows the signed-in account, guests cannot take an account's
name (nor a look-alike of it), ``require_sign_in``, and changing one's name or password."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
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
def names_server(
    tmp_path: Path, database_url: str | None, **options: Any
) -> Iterator[RunningServer]:
    settings = {"accounts": ROOMY, **database_options(database_url), **options}
    with running_server(tmp_path, options=settings) as server:
        yield server


@pytest.fixture
def server(tmp_path: Path, database_url: str | None) -> Iterator[RunningServer]:
    with names_server(tmp_path, database_url) as running:
        yield running


@contextlib.asynccontextmanager
async def browser(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as client:
        client.headers.update(await same_origin_headers(client, server.base_url))
        yield client


@pytest.fixture
async def page(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with browser(server) as client:
        yield client


async def sign_up(page: httpx.AsyncClient, username: str, **extra: Any) -> httpx.Response:
    body = {"username": username, "password": "correct horse", **extra}
    return await page.post("/api/v1/accounts", json=body)


async def signed_in_peer(server: RunningServer, page: httpx.AsyncClient) -> Peer:
    """A WebSocket that carries the page's session cookie, as the browser's would."""
    token = page.cookies["salon_session"]
    return await Peer.connect(server, additional_headers={"Cookie": f"salon_session={token}"})


async def guest_hello(server: RunningServer, name: str) -> dict[str, Any]:
    guest = await Peer.connect(server)
    try:
        await guest.send(type="hello", versions=[1], name=name)
        return await guest.recv()
    finally:
        await guest.close()


async def test_guests_cannot_take_a_registered_name(
    server: RunningServer, page: httpx.AsyncClient
) -> None:
    assert (await sign_up(page, "alice", display_name="Alice Liddell")).status_code == 201
    for name in ("Alice Liddell", "alice liddell", "ALICE", "\u0410lice", "Аlice Liddell"):
        refused = await guest_hello(server, name)  # \u0410: Cyrillic capital A
        assert refused["type"] == "error" and refused["code"] == "name_taken", (name, refused)
        assert "registered account" in refused["message"]
    welcome = await guest_hello(server, "Alice L.")  # not the same name, nor a look-alike
    assert welcome["type"] == "welcome" and welcome["account"] is None


async def test_a_signed_in_member_is_known_by_its_account(
    server: RunningServer, page: httpx.AsyncClient
) -> None:
    await sign_up(page, "bob", display_name="Bob Builder")
    member = await signed_in_peer(server, page)
    try:
        welcome = await member.hello("whatever the hello says")
        assert welcome["name"] == "Bob Builder"
        assert welcome["account"] == {"username": "bob", "display_name": "Bob Builder"}
    finally:
        await member.close()


async def test_a_dead_session_makes_a_guest(server: RunningServer, page: httpx.AsyncClient) -> None:
    await sign_up(page, "carol")
    token = page.cookies["salon_session"]
    assert (await page.delete("/api/v1/session")).status_code == 204
    peer = await Peer.connect(server, additional_headers={"Cookie": f"salon_session={token}"})
    try:
        await peer.send(type="hello", versions=[1], name="carol")
        await peer.error("name_taken")  # a guest again, and the name is carol's account's
        welcome = await peer.hello("someone")
        assert welcome["account"] is None and welcome["name"] == "someone"
    finally:
        await peer.close()


async def test_registration_refuses_look_alike_names(page: httpx.AsyncClient) -> None:
    assert (await sign_up(page, "dave", display_name="Dave D")).status_code == 201
    cases = [
        ({"username": "d\u0430ve"}, "username_taken"),  # Cyrillic small a
        ({"username": "DAVE"}, "username_taken"),
        ({"username": "dave-d", "display_name": "d\u0430ve d"}, "display_name_taken"),
        ({"username": "dave d"}, "username_taken"),  # another's display name
        ({"username": "dave2", "display_name": "dave"}, "display_name_taken"),
    ]
    for body, code in cases:
        refused = await page.post("/api/v1/accounts", json={"password": "correct horse", **body})
        assert refused.status_code == 409, (body, refused.text)
        assert refused.json()["detail"]["code"] == code, body


async def test_require_sign_in_refuses_guests_and_admits_members(
    tmp_path: Path, database_url: str | None
) -> None:
    with names_server(tmp_path, database_url, require_sign_in=True) as server:
        async with browser(server) as page:
            refused = await page.post("/api/v1/rooms")
            assert refused.status_code == 401
            assert refused.json()["detail"]["code"] == "sign_in_required"
            guest = await Peer.greeted(server, "guest")  # a guest may still say hello
            try:
                await guest.send(type="join", room="lobby")
                await guest.error("sign_in_required")
            finally:
                await guest.close()

            await sign_up(page, "erin")
            created = await page.post("/api/v1/rooms")
            assert created.status_code == 201
            member = await signed_in_peer(server, page)
            try:
                await member.hello("erin")
                joined = await member.join(created.json()["id"])
                assert joined["room"] == created.json()["id"] and member.name == "erin"
            finally:
                await member.close()


async def test_changing_the_display_name(server: RunningServer, page: httpx.AsyncClient) -> None:
    await sign_up(page, "fay", display_name="Fay")
    await sign_up(page, "gus", display_name="Gussy")  # the page is now signed in as gus
    renamed = await page.patch("/api/v1/me", json={"display_name": "Gus the Great"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["display_name"] == "Gus the Great"
    assert (await page.get("/api/v1/me")).json()["display_name"] == "Gus the Great"
    taken = await page.patch("/api/v1/me", json={"display_name": "F\u0430y"})
    assert taken.status_code == 409 and taken.json()["detail"]["code"] == "display_name_taken"
    assert (await guest_hello(server, "Gussy"))["type"] == "welcome"  # the old name is free
    assert (await guest_hello(server, "gus the great"))["code"] == "name_taken"
    member = await signed_in_peer(server, page)
    try:
        assert (await member.hello("x"))["name"] == "Gus the Great"
    finally:
        await member.close()
    del page.headers["X-CSRF-Token"]
    refused = await page.patch("/api/v1/me", json={"display_name": "Sneaky"})
    assert refused.status_code == 403 and refused.json()["detail"]["code"] == "csrf"


async def test_changing_the_password(server: RunningServer, page: httpx.AsyncClient) -> None:
    await sign_up(page, "hal")
    async with browser(server) as elsewhere:
        signed = await elsewhere.post(
            "/api/v1/session", json={"username": "hal", "password": "correct horse"}
        )
        assert signed.status_code == 200
        wrong = await page.patch(
            "/api/v1/me", json={"current_password": "nope", "new_password": "battery staple"}
        )
        assert wrong.status_code == 401 and wrong.json()["detail"]["code"] == "bad_credentials"
        short = await page.patch(
            "/api/v1/me", json={"current_password": "correct horse", "new_password": "short"}
        )
        assert short.status_code == 422
        changed = await page.patch(
            "/api/v1/me",
            json={"current_password": "correct horse", "new_password": "battery staple"},
        )
        assert changed.status_code == 200, changed.text
        assert (await page.get("/api/v1/me")).status_code == 200  # this session stays
        assert (await elsewhere.get("/api/v1/me")).status_code == 401  # others are signed out
        old = await elsewhere.post(
            "/api/v1/session", json={"username": "hal", "password": "correct horse"}
        )
        assert old.status_code == 401
        new = await elsewhere.post(
            "/api/v1/session", json={"username": "hal", "password": "battery staple"}
        )
        assert new.status_code == 200
    nothing = await page.patch("/api/v1/me", json={})
    assert nothing.status_code == 422
    page.cookies.delete("salon_session")
    anonymous = await page.patch("/api/v1/me", json={"display_name": "Hal"})
    assert anonymous.status_code == 401
