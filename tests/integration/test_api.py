"""The server API's meetings against the real server: a meeting made with a password, a lobby
and host accounts holds them for real WebSocket joiners; the API lists its members, removes
one (its socket hears ``left{removed}``) and ends it (everyone hears it); join links seat a
host past everything and a guest past the lobby and the password, while an expired, forged
or other room's invitation is ignored. Every limit of the routes is proven here; the keys
themselves are in ``test_api_keys.py``.

"Nothing else arrived" is proven with a barrier, never a sleep (``heard``: a ping and what
comes before its pong).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from salon.core.invites import Invite, Invites
from salon.server.keys import resume_secret
from salon.store.apikeys import SqlApiKeyRepository
from salon.store.database import open_database
from tests.integration.peer import Peer
from tests.integration.server import RunningServer, running_server
from tests.integration.test_hosts import heard, kinds
from tests.integration.test_resume import account_headers

PASSWORD = "open sesame"

Peers = Callable[..., Awaitable[Peer]]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    options = {"invite_max_seconds": 3600}
    with running_server(tmp_path, options=options, max_room_host_accounts=3) as running:
        yield running


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client holding an API key with every scope (and nothing else: no cookie)."""
    engine = await open_database(server.settings.sqlalchemy_url())
    try:
        made = await SqlApiKeyRepository(engine).create("tests", (), int(time.time() * 1000))
    finally:
        await engine.dispose()
    headers = {"Authorization": f"Bearer {made.token}"}
    async with httpx.AsyncClient(
        base_url=server.base_url, verify=server.ssl_context, headers=headers
    ) as client:
        yield client


@pytest.fixture
async def peer(server: RunningServer) -> AsyncIterator[Peers]:
    """``await peer("bob")``: a greeted guest; ``await peer("alice", account=True)``: one
    signed in to a new account ``alice``. Closed before the server stops."""
    opened: list[Peer] = []

    async def make(name: str, *, account: bool = False) -> Peer:
        headers = await account_headers(server, name) if account else {}
        made = await Peer.connect(server, additional_headers=headers)
        opened.append(made)
        await made.hello(name)
        return made

    yield make
    for made in opened:
        await made.close()


async def create(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await api.post("/api/v1/meetings", json=body)
    assert answer.status_code == 201, answer.text
    created: dict[str, Any] = answer.json()
    return created


async def link(api: httpx.AsyncClient, room: str, role: str = "guest", **more: Any) -> str:
    """The invitation of a fresh join link (the part after ``#invite=``)."""
    answer = await api.post(f"/api/v1/meetings/{room}/links", json={"role": role, **more})
    assert answer.status_code == 201, answer.text
    url: str = answer.json()["link"]
    return url.split("#invite=", 1)[1]


async def show(api: httpx.AsyncClient, room: str) -> dict[str, Any]:
    answer = await api.get(f"/api/v1/meetings/{room}")
    assert answer.status_code == 200, answer.text
    meeting: dict[str, Any] = answer.json()
    return meeting


def problem(answer: httpx.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    detail: dict[str, str] = answer.json()["detail"]
    assert detail["code"] == code, detail
    return detail["message"]


async def knocks(member: Peer, room: str, **extra: Any) -> None:
    await member.send(type="join", room=room, **extra)
    assert await member.expect("lobby_waiting") == {"type": "lobby_waiting", "room": room}


# ------------------------------------------------------------------------------ create


async def test_a_meeting_keeps_its_password_lobby_and_hosts(
    server: RunningServer, api: httpx.AsyncClient, peer: Peers
) -> None:
    alice = await peer("alice", account=True)
    body = {"password": PASSWORD, "lobby": True, "hosts": ["ALICE", "alice"]}
    made = await create(api, **body)
    room = made["id"]
    assert made == {
        "id": room,
        "link": f"{server.base_url}/r/{room}",
        "mode": "mesh",
        "protected": True,
        "lobby": True,
        "locked": False,
        "hosts": ["alice"],  # as the account spells it, once
    }
    assert not room.startswith("call-") and len(room) == 16
    idle = await show(api, room)
    assert idle == {
        "id": room,
        "live": False,
        "started_ms": None,
        "locked": False,
        "lobby": True,
        "protected": True,
        "members": [],
        "waiting": [],
    }
    assert (await api.get("/api/v1/meetings")).json() == {"meetings": []}

    # Coming first makes nobody a host here: a guest with a wrong password is refused, one
    # without knocks (there is nobody yet to let it in).
    bob = await peer("bob")
    await bob.send(type="join", room=room, password="wrong")
    await bob.error("wrong_password")
    await knocks(bob, room)

    # The host account is seated as a host past lobby and password, and sees who waits.
    joined = await alice.join(room)
    assert joined["hosts"] == [alice.id]
    assert (joined["protected"], joined["lobby"], joined["locked"]) == (True, True, False)
    lobby = [m for m in await heard(alice) if m["type"] == "lobby"]
    assert lobby[-1]["waiting"] == [{"id": bob.id, "name": "bob", "removed": False}]

    # The right password seats a guest without knocking.
    carol = await peer("carol")
    await carol.send(type="join", room=room, password=PASSWORD, media={"mic": True})
    assert (await carol.expect("joined"))["hosts"] == [alice.id]
    await carol.send(type="hand", raised=True)
    assert "hands" in kinds(await heard(carol))
    assert "member_joined" in kinds(await heard(alice))

    (summary,) = (await api.get("/api/v1/meetings")).json()["meetings"]
    meeting = await show(api, room)
    started = meeting["started_ms"]
    assert isinstance(started, int) and abs(started - time.time() * 1000) < 60_000
    assert summary == {
        "id": room,
        "started_ms": started,
        "members": 2,
        "waiting": 1,
        "locked": False,
        "lobby": True,
        "protected": True,
    }
    members = meeting.pop("members")
    assert meeting == {
        "id": room,
        "live": True,
        "started_ms": started,
        "locked": False,
        "lobby": True,
        "protected": True,
        "waiting": [{"id": bob.id, "name": "bob"}],
    }
    assert members[0]["joined_ms"] == started <= members[1]["joined_ms"]
    assert [{k: v for k, v in m.items() if k != "joined_ms"} for m in members] == [
        {
            "id": alice.id,
            "name": "alice",
            "account": "alice",
            "host": True,
            "mic": False,
            "camera": False,
            "screen": False,
            "hand": False,
            "away": False,
        },
        {
            "id": carol.id,
            "name": "carol",
            "account": None,
            "host": False,
            "mic": True,
            "camera": False,
            "screen": False,
            "hand": True,
            "away": False,
        },
    ]

    # A member whose socket is lost keeps its seat, shown away.
    carol.ws.transport.abort()
    assert await alice.expect("member_reconnecting") == {
        "type": "member_reconnecting",
        "room": room,
        "id": carol.id,
    }
    assert [m["away"] for m in (await show(api, room))["members"]] == [False, True]


async def test_a_locked_meeting_lets_in_hosts_only(api: httpx.AsyncClient, peer: Peers) -> None:
    alice = await peer("alice", account=True)
    room = (await create(api, locked=True, hosts=["alice"]))["id"]
    bob = await peer("bob")
    await bob.send(type="join", room=room)
    await bob.error("room_locked")
    assert (await alice.join(room))["locked"] is True
    await bob.send(type="join", room=room)
    await bob.error("room_locked")


# ------------------------------------------------------------------------------ remove, end


async def test_remove_and_end_reach_the_members(api: httpx.AsyncClient, peer: Peers) -> None:
    alice = await peer("alice", account=True)
    room = (await create(api, lobby=True, hosts=["alice"]))["id"]
    await alice.join(room)
    guest = await link(api, room)
    carol = await peer("carol")
    await carol.join(room, invite=guest)  # a guest link skips the lobby
    bob = await peer("bob")
    await knocks(bob, room)
    await heard(alice)

    assert (await api.delete(f"/api/v1/meetings/{room}/members/{carol.id}")).status_code == 204
    assert await carol.expect("left") == {
        "type": "left",
        "room": room,
        "reason": "removed",
        "by": None,
        "by_name": None,
    }
    told = await heard(alice)
    assert kinds(told) == ["member_left", "room_event"]
    assert told[0]["id"] == carol.id
    assert told[1]["action"] == "removed" and told[1]["by"] is None
    assert told[1]["target"] == carol.id
    assert [m["id"] for m in (await show(api, room))["members"]] == [alice.id]

    gone = await api.delete(f"/api/v1/meetings/{room}/members/{carol.id}")
    problem(gone, 404, "no_such_member")
    waiting = await api.delete(f"/api/v1/meetings/{room}/members/{bob.id}")
    problem(waiting, 404, "no_such_member")  # waiting in the lobby is not a seat
    elsewhere = await api.delete(f"/api/v1/meetings/nosuchroom/members/{alice.id}")
    problem(elsewhere, 404, "no_such_room")

    # The guest link does not undo the removal: it knocks, marked removed.
    await knocks(carol, room, invite=guest)
    lobby = [m for m in await heard(alice) if m["type"] == "lobby"]
    assert {"id": carol.id, "name": "carol", "removed": True} in lobby[-1]["waiting"]

    assert (await api.post(f"/api/v1/meetings/{room}/end")).status_code == 204
    ended = await alice.expect("left")
    assert (ended["reason"], ended["by"]) == ("ended", None)
    for waiter in (bob, carol):
        denied = await waiter.expect("lobby_denied")
        assert denied == {"type": "lobby_denied", "room": room, "reason": "ended"}
    assert (await api.get("/api/v1/meetings")).json() == {"meetings": []}
    assert (await show(api, room))["live"] is False
    problem(await api.post(f"/api/v1/meetings/{room}/end"), 404, "no_such_room")
    problem(await api.post("/api/v1/meetings/nosuchroom/end"), 404, "no_such_room")


# ------------------------------------------------------------------------------ links


async def test_a_host_link_seats_a_host_past_everything(
    api: httpx.AsyncClient, peer: Peers
) -> None:
    room = (await create(api, password=PASSWORD, lobby=True, locked=True))["id"]
    host = await link(api, room, "host", ttl_seconds=60)
    dana = await peer("dana")
    joined = await dana.join(room, invite=host)
    assert (joined["hosts"], joined["locked"]) == ([dana.id], True)

    # A guest link does not open a lock; once the host unlocks, it passes lobby and password.
    guest = await link(api, room)
    erin = await peer("erin")
    await erin.send(type="join", room=room, invite=guest)
    await erin.error("room_locked")
    await dana.send(type="room_lock", locked=False)
    await heard(dana)
    assert (await erin.join(room, invite=guest))["hosts"] == [dana.id]
    # Without a link the lobby and password still hold.
    frank = await peer("frank")
    await knocks(frank, room)

    meeting = await show(api, room)
    assert [(m["name"], m["host"]) for m in meeting["members"]] == [
        ("dana", True),
        ("erin", False),
    ]
    assert meeting["waiting"] == [{"id": frank.id, "name": "frank"}]


async def test_an_expired_forged_or_other_rooms_invitation_is_ignored(
    server: RunningServer, api: httpx.AsyncClient, peer: Peers
) -> None:
    room = (await create(api, password=PASSWORD))["id"]  # no lobby: no password is refused
    other = (await create(api))["id"]
    invites = Invites(resume_secret(server.settings))  # the server's own signing key
    now = int(time.time())
    valid = await link(api, room, "host")
    payload, mac = valid.split(".")
    bad = {
        "expired": invites.mint(Invite(room, "host", now - 1)),
        "forged": f"{payload}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}",
        "another key": Invites(b"k" * 32).mint(Invite(room, "host", now + 600)),
        "other room": await link(api, other, "host"),
        "not a token": "nonsense",
    }
    mallory = await peer("mallory")
    for why, token in bad.items():
        await mallory.send(type="join", room=room, invite=token)
        error = await mallory.expect("error")
        assert error["code"] == "wrong_password", (why, error)
    # The same member with the real link gets in: the refusals were the invitations'.
    assert (await mallory.join(room, invite=valid))["hosts"] == [mallory.id]


# ------------------------------------------------------------------------------ listing


async def test_only_meetings_are_listed(
    server: RunningServer, api: httpx.AsyncClient, peer: Peers
) -> None:
    # A room made by joining it (not through the API) is a meeting too.
    alice, bob = await peer("alice"), await peer("bob")
    await alice.join("adhoc")
    await bob.join("adhoc")
    # A direct call's private room is not.
    carol = await Peer.greeted(server, "carol", reachable=True)
    dave = await Peer.greeted(server, "dave", reachable=True)
    try:
        await dave.send(type="call", name="carol")
        call = (await carol.expect("incoming_call"))["call"]
        await carol.send(type="call_accept", call=call)
        call_room = (await carol.expect("call_accepted"))["room"]
        assert (await carol.expect("joined"))["room"] == call_room
        assert call_room.startswith("call-")
        listed = (await api.get("/api/v1/meetings")).json()["meetings"]
        assert [(m["id"], m["members"], m["waiting"]) for m in listed] == [("adhoc", 2, 0)]
        problem(await api.get(f"/api/v1/meetings/{call_room}"), 404, "no_such_room")
        answer = await api.post(f"/api/v1/meetings/{call_room}/links", json={})
        problem(answer, 404, "no_such_room")
        problem(await api.post(f"/api/v1/meetings/{call_room}/end"), 404, "no_such_room")
        answer = await api.delete(f"/api/v1/meetings/{call_room}/members/{carol.id}")
        problem(answer, 404, "no_such_room")
    finally:
        await carol.close()
        await dave.close()
    # A live room the store never heard of still gets links; an unknown one is 404.
    assert (await api.post("/api/v1/meetings/adhoc/links")).status_code == 201
    problem(await api.get("/api/v1/meetings/nosuchroom"), 404, "no_such_room")
    problem(await api.post("/api/v1/meetings/nosuchroom/links", json={}), 404, "no_such_room")


# ------------------------------------------------------------------------------ limits


async def test_create_limits(server: RunningServer, api: httpx.AsyncClient) -> None:
    for name in ("alice", "bob", "carol", "dave"):
        await account_headers(server, name)
    limit = server.settings.limits.max_password_chars
    assert (await create(api, password="p" * limit))["protected"] is True
    answer = await api.post("/api/v1/meetings", json={"password": "p" * (limit + 1)})
    assert problem(answer, 422, "invalid_password") == f"a room password has at most {limit} chars"
    problem(await api.post("/api/v1/meetings", json={"password": ""}), 422, "invalid_password")

    three = ["alice", "bob", "carol"]  # max_room_host_accounts=3 on this server
    assert (await create(api, hosts=three))["hosts"] == three
    assert (await create(api, hosts=[" Alice ", "alice"]))["hosts"] == ["alice"]
    answer = await api.post("/api/v1/meetings", json={"hosts": [*three, "dave"]})
    assert problem(answer, 422, "too_many_hosts") == "at most 3 host accounts"
    answer = await api.post("/api/v1/meetings", json={"hosts": ["alice", "zed"]})
    assert problem(answer, 422, "no_such_account") == "no account is called 'zed'"
    for name in ("", "   ", "x" * 65, "al\u0000ice"):
        answer = await api.post("/api/v1/meetings", json={"hosts": [name]})
        problem(answer, 422, "no_such_account")

    answer = await api.post("/api/v1/meetings", json={"mode": "large"})
    assert "no SFU" in problem(answer, 422, "sfu_unavailable")
    assert (await api.post("/api/v1/meetings", json={"mode": "huge"})).status_code == 422
    # Nothing refused was made.
    assert len({(await create(api))["id"] for _ in range(3)}) == 3


async def test_link_limits(server: RunningServer, api: httpx.AsyncClient) -> None:
    room = (await create(api))["id"]
    longest = server.settings.invite_max_seconds  # 3600 on this server
    for ttl in (59, longest + 1, 0, -60):
        answer = await api.post(f"/api/v1/meetings/{room}/links", json={"ttl_seconds": ttl})
        assert problem(answer, 422, "invalid_ttl") == f"ttl_seconds is from 60 to {longest}"
    for ttl in (60, longest):
        before = int(time.time())
        answer = await api.post(f"/api/v1/meetings/{room}/links", json={"ttl_seconds": ttl})
        assert answer.status_code == 201, answer.text
        made = answer.json()
        assert made["role"] == "guest"
        assert before + ttl <= made["expires_ms"] // 1000 <= int(time.time()) + ttl
        assert made["link"].startswith(f"{server.base_url}/r/{room}#invite=")
    # No body: a guest link for a day, or invite_max_seconds when that is shorter (here).
    default = (await api.post(f"/api/v1/meetings/{room}/links")).json()
    assert default["role"] == "guest"
    assert default["expires_ms"] // 1000 - int(time.time()) in range(longest - 10, longest + 1)
    bad_role = await api.post(f"/api/v1/meetings/{room}/links", json={"role": "owner"})
    assert bad_role.status_code == 422
    for path in ("a.b", "x" * 65):
        assert (await api.get(f"/api/v1/meetings/{path}")).status_code == 422


# ------------------------------------------------------------------------------ OpenAPI


async def test_the_openapi_document_describes_the_api(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as http:
        doc = (await http.get("/openapi.json")).json()
    assert doc["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key made with `salon api-key create NAME`: "
        "`Authorization: Bearer salon_<id>_<secret>`.",
    }
    routes = {
        ("/api/v1/meetings", "post"): "Create a meeting",
        ("/api/v1/meetings", "get"): "List live meetings",
        ("/api/v1/meetings/{room_id}", "get"): "Show a meeting",
        ("/api/v1/meetings/{room_id}/members/{member_id}", "delete"): "Remove a member",
        ("/api/v1/meetings/{room_id}/end", "post"): "End a meeting",
        ("/api/v1/meetings/{room_id}/links", "post"): "Mint a join link",
    }
    for (path, method), summary in routes.items():
        operation = doc["paths"][path][method]
        assert operation["summary"] == summary
        assert operation["security"] == [{"ApiKey": []}]
        assert {"401", "403"} <= set(operation["responses"])
        assert operation["description"]
        if "{" in path or method == "post":  # it takes parameters: both kinds of 422
            schema = operation["responses"]["422"]["content"]["application/json"]["schema"]
            refs = {one["$ref"].rsplit("/", 1)[1] for one in schema["anyOf"]}
            assert refs == {"ProblemResponse", "ValidationProblem"}, (path, method)
    schemas = doc["components"]["schemas"]
    for name in ("MeetingRequest", "MeetingCreated", "Meeting", "LinkRequest", "LinkCreated"):
        assert schemas[name]["examples"], name


async def test_a_typo_in_a_body_is_refused_and_no_body_is_an_open_meeting(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """From the operators' review: ``pasword`` must not quietly make a meeting without one."""
    for path, body in (
        ("/api/v1/meetings", {"pasword": "s3cret", "lobby": True}),
        ("/api/v1/meetings", {"lobbby": True}),
    ):
        answer = await api.post(path, json=body)
        assert answer.status_code == 422, answer.text
        assert "extra" in answer.text
    assert (await api.get("/api/v1/meetings")).json() == {"meetings": []}
    caplog.set_level("INFO", logger="salon.audit")
    bare = await api.post("/api/v1/meetings")
    assert bare.status_code == 201, bare.text
    room = bare.json()["id"]
    assert (bare.json()["protected"], bare.json()["lobby"]) == (False, False)
    typo = await api.post(f"/api/v1/meetings/{room}/links", json={"ttl": 60})
    assert typo.status_code == 422, typo.text
    # The audit trail names the key, never its secret.
    key = api.headers["Authorization"].removeprefix("Bearer ")
    audit = [r.getMessage() for r in caplog.records if r.name == "salon.audit"]
    assert any(f"created meeting {room}" in line for line in audit), audit
    assert not any(key in line for line in audit)


async def test_no_docs_page_whose_scripts_the_csp_would_refuse(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as http:
        for path in ("/docs", "/redoc"):
            page = await http.get(path)
            assert page.status_code == 404
            assert "swagger" not in page.text.lower() and "redoc.standalone" not in page.text
        assert (await http.get("/openapi.json")).status_code == 200


async def test_the_room_info_tells_a_listed_host_account_it_hosts(
    server: RunningServer, api: httpx.AsyncClient
) -> None:
    """From the operators' review: a listed host was offered "Ask to join" and a password
    field; the room info now tells its page, and only its page, that it hosts."""
    alice = await account_headers(server, "alice")
    mallory = await account_headers(server, "mallory")
    room = (await create(api, password="sesame", lobby=True, hosts=["alice"]))["id"]
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as page:
        seen = {}
        for who, headers in (("alice", alice), ("mallory", mallory), ("guest", {})):
            info = (await page.get(f"/api/v1/rooms/{room}", headers=headers)).json()
            assert (info["protected"], info["lobby"], info["members"]) == (True, True, None)
            seen[who] = info["host"]
    assert seen == {"alice": True, "mallory": False, "guest": False}
