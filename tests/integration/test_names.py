"""Names: the WebSocket knows the signed-in account, guests cannot take an account's name (nor
a look-alike, invisible or fullwidth variant of it), names shown in rooms need not be unique
while reachable ones are, an owner signing in takes its reachable name from a guest, and
changing one's name or password."""

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


def session_headers(server: RunningServer, page: httpx.AsyncClient) -> dict[str, str]:
    """What the browser's WebSocket handshake carries: the page's session cookie and Origin."""
    token = page.cookies["salon_session"]
    return {"Cookie": f"salon_session={token}", "Origin": server.base_url}


async def signed_in_peer(server: RunningServer, page: httpx.AsyncClient) -> Peer:
    """A WebSocket that carries the page's session cookie, as the browser's would."""
    return await Peer.connect(server, additional_headers=session_headers(server, page))


async def guest_hello(
    server: RunningServer, name: str, *, reachable: bool = False
) -> dict[str, Any]:
    guest = await Peer.connect(server)
    try:
        await guest.send(type="hello", versions=[1], name=name, reachable=reachable)
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
    headers = session_headers(server, page)  # with Origin: only the session is dead
    assert (await page.delete("/api/v1/session")).status_code == 204
    peer = await Peer.connect(server, additional_headers=headers)
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


async def test_a_name_and_password_change_is_all_or_nothing(
    server: RunningServer, page: httpx.AsyncClient
) -> None:
    """A taken name, an invalid one or a wrong current password in the same PATCH changes
    neither the name nor the password, and signs no other session out."""
    await sign_up(page, "ivy", display_name="Ivy")
    await sign_up(page, "jo", display_name="Jo")  # the page is now signed in as jo
    async with browser(server) as elsewhere:
        assert (await elsewhere.post("/api/v1/session", json=JO)).status_code == 200
        new = {"current_password": "correct horse", "new_password": "battery staple"}
        taken = await page.patch("/api/v1/me", json={**new, "display_name": "IVY"})
        assert taken.status_code == 409 and taken.json()["detail"]["code"] == "display_name_taken"
        bad = await page.patch("/api/v1/me", json={**new, "display_name": " "})
        assert bad.status_code == 422, bad.text
        wrong = {"current_password": "nope", "new_password": "battery staple"}
        refused = await page.patch("/api/v1/me", json={**wrong, "display_name": "Joanna"})
        assert refused.status_code == 401
        assert (await page.get("/api/v1/me")).json()["display_name"] == "Jo"
        assert (await elsewhere.get("/api/v1/me")).status_code == 200  # still signed in
        assert (await elsewhere.post("/api/v1/session", json=JO)).status_code == 200
        both = await page.patch("/api/v1/me", json={**new, "display_name": "Joanna"})
        assert both.status_code == 200 and both.json()["display_name"] == "Joanna"
        assert (await elsewhere.get("/api/v1/me")).status_code == 401  # signed out now
        assert (await elsewhere.post("/api/v1/session", json=JO)).status_code == 401
        again = {"username": "jo", "password": "battery staple"}
        assert (await elsewhere.post("/api/v1/session", json=again)).status_code == 200


JO = {"username": "jo", "password": "correct horse"}


# ------------------------------------------------------------------ invisible and fullwidth

CARLA_VARIANTS = [
    "\uff43\uff41\uff52\uff4c\uff41",  # fullwidth
    "carla\u200d",  # ZERO WIDTH JOINER
    "carla\u034f",  # COMBINING GRAPHEME JOINER
    "carla\ufe0f",  # VARIATION SELECTOR-16
    "carla\u3164",  # HANGUL FILLER
    "carla\u2800",  # BRAILLE PATTERN BLANK
    "carla\u115f",  # HANGUL CHOSEONG FILLER
    "carla\uffa0",  # HALFWIDTH HANGUL FILLER
    "\u3164carla",
    "c a r l a",
]


async def test_invisible_and_fullwidth_variants_of_a_registered_name_are_refused(
    server: RunningServer, page: httpx.AsyncClient
) -> None:
    assert (await sign_up(page, "carla")).status_code == 201
    for name in CARLA_VARIANTS:
        for reachable in (False, True):
            refused = await guest_hello(server, name, reachable=reachable)
            assert refused["type"] == "error" and refused["code"] == "name_taken", (name, refused)
    assert (await guest_hello(server, "carlo"))["type"] == "welcome"


async def test_blank_names_are_invalid(server: RunningServer) -> None:
    for name in ("\u3164", "\u2800", "\u0301", "\u115f", "\u3164 \u2800", " \ufe0f "):
        refused = await guest_hello(server, name)
        assert refused["type"] == "error" and refused["code"] == "invalid_name", (name, refused)
    for name in ("\U0001f469\u200d\U0001f4bb", "Zoë", "李小龍", "محمد"):
        welcome = await guest_hello(server, name, reachable=True)
        assert welcome["type"] == "welcome" and welcome["name"] == name


# ------------------------------------------------------------------ shown names, reachable names


async def test_two_guests_named_sam_in_one_room_and_in_two(server: RunningServer) -> None:
    first, second, third = [await Peer.greeted(server, "Sam") for _ in range(3)]
    try:
        assert len({first.id, second.id, third.id}) == 3
        await first.join("den")
        joined = await second.join("den")
        assert [(m["id"], m["name"]) for m in joined["members"]] == [(first.id, "Sam")]
        arrived = await first.expect("member_joined")
        assert (arrived["member"]["id"], arrived["member"]["name"]) == (second.id, "Sam")
        assert (await third.join("attic"))["members"] == []  # another room, a third Sam
    finally:
        for peer in (first, second, third):
            await peer.close()


async def test_reachable_names_are_unique(server: RunningServer) -> None:
    zed = await Peer.greeted(server, "zed", reachable=True)
    try:
        for name in ("zed", "ZED", "\uff5a\uff45\uff44", "zed\u200d"):
            refused = await guest_hello(server, name, reachable=True)
            assert refused["type"] == "error" and refused["code"] == "name_taken", name
            assert (await guest_hello(server, name))["type"] == "welcome"  # shown in rooms only
        await zed.alive()
    finally:
        await zed.close()


async def test_a_signed_in_owner_takes_its_reachable_name_from_a_guest(
    server: RunningServer, page: httpx.AsyncClient
) -> None:
    guest = await Peer.greeted(server, "zoe", reachable=True)  # before anyone registered zoe
    watcher = await Peer.greeted(server, "watcher")
    owner: Peer | None = None
    try:
        await watcher.send(type="presence_watch")
        assert (await watcher.expect("presence"))["names"] == ["zoe"]
        assert (await sign_up(page, "zoe", display_name="zoe")).status_code == 201
        owner = await signed_in_peer(server, page)

        welcome = await owner.hello("whatever", reachable=True)

        assert welcome["name"] == "zoe" and welcome["account"]["username"] == "zoe"
        assert await guest.expect("unreachable") == {"type": "unreachable", "name": "zoe"}
        assert await watcher.expect("presence_changed") == {
            "type": "presence_changed",
            "name": "zoe",
            "online": False,
            "reconnecting": False,
        }
        assert await watcher.expect("presence_changed") == {
            "type": "presence_changed",
            "name": "zoe",
            "online": True,
            "reconnecting": False,
        }
        await watcher.send(type="call", name="zoe")
        await watcher.expect("ringing")
        assert (await owner.expect("incoming_call"))["from"] == watcher.id
        await guest.alive()  # still connected, not rung: its next message is the pong
    finally:
        for peer in (guest, watcher, owner):
            if peer is not None:
                await peer.close()


async def test_a_cookie_without_origin_makes_a_guest(
    server: RunningServer, page: httpx.AsyncClient
) -> None:
    await sign_up(page, "ivy")
    headers = session_headers(server, page)
    del headers["Origin"]
    peer = await Peer.connect(server, additional_headers=headers)
    try:
        await peer.send(type="hello", versions=[1], name="ivy")
        await peer.error("name_taken")  # a guest: ivy's name is her account's
        welcome = await peer.hello("someone else")
        assert welcome["account"] is None
    finally:
        await peer.close()


async def test_after_a_restart_a_reachable_name_comes_back_with_its_place(
    tmp_path: Path, database_url: str | None
) -> None:
    with names_server(tmp_path, database_url) as first:
        carla = await Peer.greeted(first, "carla", reachable=True)
        sam = await Peer.greeted(first, "Sam")
        tokens = (carla.token, sam.token)
        for peer in (carla, sam):
            await peer.close()  # before the server stops (its stop blocks this loop)
    with names_server(tmp_path, database_url) as second:
        other_sam = await Peer.greeted(second, "Sam")  # a room-only name: no one's to claim
        back, back_sam = await Peer.connect(second), await Peer.connect(second)
        caller = await Peer.greeted(second, "caller")
        try:
            assert (await back.hello("", resume=tokens[0]))["resumed"] is not None
            assert (await back_sam.hello("", resume=tokens[1]))["name"] == "Sam"
            refused = await guest_hello(second, "Carla", reachable=True)
            assert refused["type"] == "error" and refused["code"] == "name_taken"
            await caller.send(type="call", name="sam")
            await caller.error("not_online")  # neither Sam came back reachable
            await caller.send(type="call", name="carla")
            assert (await caller.expect("ringing"))["name"] == "carla"
            assert (await back.expect("incoming_call"))["from"] == caller.id
        finally:
            for peer in (other_sam, back, back_sam, caller):
                await peer.close()


async def test_rooms_mark_who_is_signed_in(server: RunningServer, page: httpx.AsyncClient) -> None:
    """``MemberInfo.signed_in`` (PROTOCOL.md §5.2): a member signed in to an account is marked,
    in ``joined`` and in ``member_joined``; a guest is not, whatever name it chose."""
    await sign_up(page, "ivy", display_name="Ivy")
    guest = await Peer.greeted(server, "Sam")
    await guest.join("marked")
    ivy = await signed_in_peer(server, page)
    await ivy.hello("ignored")
    joined = await ivy.join("marked")
    assert [(m["name"], m["signed_in"]) for m in joined["members"]] == [("Sam", False)]
    arrived = await guest.expect("member_joined")
    assert (arrived["member"]["name"], arrived["member"]["signed_in"]) == ("Ivy", True)
    for peer in (guest, ivy):
        await peer.close()
