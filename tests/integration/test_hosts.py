"""Hosts, the lobby, removals, mutes, hands and passwords through the real server and real
WebSocket clients: what each member receives, and what a later join finds.

"Nothing else arrived" is proven with a barrier, never a sleep: :func:`heard` sends a ping and
collects what comes before its pong. The server handles one connection's frames in order and
pushes everything one action causes before it answers the actor, so once the actor has its
answer, whatever the action sent anyone is queued ahead of their pong.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import database_options
from tests.integration.peer import Peer
from tests.integration.rest import same_origin_headers
from tests.integration.server import RunningServer
from tests.integration.test_resume import Client, account_headers, serving

_marks = itertools.count()


async def heard(peer: Peer) -> list[dict[str, Any]]:
    """Everything that reached ``peer`` so far (resume tokens aside): a pong marks the end."""
    ref = f"mark-{next(_marks)}"
    await peer.send(type="ping", ref=ref)
    got = []
    while True:
        message = await peer.recv()
        if message["type"] == "pong" and message.get("ref") == ref:
            return got
        got.append(message)


def kinds(messages: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in messages]


async def seated(peers: Callable[..., Any], room: str, *names: str) -> list[Peer]:
    """Greeted peers joined in order (the first hosts), with what they heard drained."""
    made: list[Peer] = await peers(*names)
    for peer in made:
        await peer.join(room)
    for peer in made:
        await heard(peer)
    return made


async def knocked(peer: Peer, room: str, **extra: Any) -> None:
    await peer.send(type="join", room=room, **extra)
    assert await peer.expect("lobby_waiting") == {"type": "lobby_waiting", "room": room}


async def lobby_on(host: Peer, *others: Peer) -> None:
    await host.send(type="room_lobby", enabled=True)
    for peer in (host, *others):
        assert kinds(await heard(peer)) == ["room_state", "room_event"]


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as client:
        client.headers.update(await same_origin_headers(client, server.base_url))
        yield client


async def info(http: httpx.AsyncClient, room: str) -> dict[str, Any]:
    answer: dict[str, Any] = (await http.get(f"/api/v1/rooms/{room}")).json()
    return answer


# ------------------------------------------------------------------------------ who hosts


HOST_ACTIONS: list[dict[str, Any]] = [
    {"type": "room_lock", "locked": True},
    {"type": "room_password", "password": "mine now"},
    {"type": "room_lobby", "enabled": True},
    {"type": "remove", "id": "HOST"},
    {"type": "mute", "id": "HOST", "kind": "mic"},
    {"type": "mute", "id": "HOST", "kind": "camera"},
    {"type": "make_host", "id": "SELF"},
    {"type": "lower_hand", "id": "HOST"},
    {"type": "lobby_admit", "id": "SELF"},
    {"type": "lobby_deny", "id": "SELF"},
    {"type": "end_meeting"},
]


async def test_a_stranger_with_a_script_cannot_act_as_a_host(peers: Callable[..., Any]) -> None:
    host, stranger = await seated(peers, "r", "host", "stranger")
    await host.send(type="hand", raised=True)
    await host.send(type="media", mic=True, camera=True, screen=False)
    await heard(host)
    await heard(stranger)
    ids = {"HOST": host.id, "SELF": stranger.id}

    for action in HOST_ACTIONS:
        aimed = {k: ids.get(v, v) if isinstance(v, str) else v for k, v in action.items()}
        await stranger.send(**aimed, ref=action["type"])
        error = await stranger.error("not_host")
        assert error["ref"] == action["type"]
        assert await heard(host) == [], action  # nobody else hears of a refused action

    (newcomer,) = await peers("newcomer")
    joined = await newcomer.join("r")  # the room is as it was: open, no lobby, no password
    assert (joined["hosts"], joined["locked"], joined["lobby"], joined["protected"]) == (
        [host.id],
        False,
        False,
        False,
    )
    assert joined["hands"] == [host.id]
    assert [(m["id"], m["media"]["mic"]) for m in joined["members"]] == [
        (host.id, True),
        (stranger.id, False),
    ]


async def test_the_creator_with_the_host_key_hosts_even_after_a_stranger(
    peers: Callable[..., Any], http: httpx.AsyncClient
) -> None:
    created = (await http.post("/api/v1/rooms")).json()
    room, key = created["id"], created["host_key"]
    stranger, creator, guesser = await peers("stranger", "creator", "guesser")
    assert (await stranger.join(room))["hosts"] == [stranger.id]  # first in an empty room
    await stranger.send(type="room_lock", locked=True)
    await heard(stranger)
    await guesser.send(type="join", room=room, host_key=key[:-1] + ("A" if key[-1] != "A" else "B"))
    await guesser.error("room_locked")  # a wrong key is as if absent

    joined = await creator.join(room, host_key=key)  # past the lock

    assert joined["hosts"] == [stranger.id, creator.id]
    got = await heard(stranger)
    assert kinds(got) == ["member_joined", "room_state"]
    assert got[1]["hosts"] == [stranger.id, creator.id]
    await creator.send(type="remove", id=stranger.id)  # a host indeed
    assert (await stranger.expect("left"))["reason"] == "removed"


async def test_the_creating_account_hosts_without_a_key(server: RunningServer) -> None:
    headers = await account_headers(server, "olga")
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as page:
        page.cookies.set("salon_session", headers["Cookie"].split("=", 1)[1])
        page.headers.update(await same_origin_headers(page, server.base_url))
        room = (await page.post("/api/v1/rooms")).json()["id"]
    stranger = await Peer.greeted(server, "stranger")
    olga = await Peer.connect(server, additional_headers=headers)
    await olga.hello("ignored")
    try:
        await stranger.join(room)
        await stranger.send(type="room_lobby", enabled=True)
        await heard(stranger)
        joined = await olga.join(room)  # no key, no knock: the account made the room
        assert joined["hosts"] == [stranger.id, olga.id]
    finally:
        await stranger.close()
        await olga.close()


# ------------------------------------------------------------------------------ passing on


async def test_the_host_passes_on_leave_and_on_goodbye(peers: Callable[..., Any]) -> None:
    host, bob, carol = await seated(peers, "r", "host", "bob", "carol")

    await host.send(type="leave")
    await host.expect("left")

    for peer in (bob, carol):
        left, state, passed = await heard(peer)
        assert left == {"type": "member_left", "room": "r", "id": host.id}
        assert (state["type"], state["hosts"]) == ("room_state", [bob.id])
        assert passed == {
            "type": "room_event",
            "room": "r",
            "action": "host_passed",
            "by": None,
            "by_name": None,
            "target": bob.id,
            "target_name": "bob",
        }

    await bob.ws.close(1000)  # a goodbye
    left, state, passed = [await carol.recv() for _ in range(3)]
    assert (left["type"], left["id"]) == ("member_left", bob.id)
    assert (state["type"], state["hosts"]) == ("room_state", [carol.id])
    assert (passed["action"], passed["target"]) == ("host_passed", carol.id)
    await carol.send(type="room_lock", locked=True)  # and carol may act as one
    assert (await carol.expect("room_state"))["locked"] is True


# ------------------------------------------------------------------------------ the lobby


async def test_lobby_knock_admit_deny_and_leave(peers: Callable[..., Any]) -> None:
    host, bob = await seated(peers, "r", "host", "bob")
    await lobby_on(host, bob)
    first, second, third = await peers("first", "second", "third")

    await knocked(first, "r", media={"mic": True, "camera": False, "screen": False})
    lobby = await host.expect("lobby")
    assert lobby == {
        "type": "lobby",
        "room": "r",
        "waiting": [{"id": first.id, "name": "first", "removed": False}],
    }
    await knocked(second, "r")
    await knocked(third, "r")
    assert [k["id"] for k in (await heard(host))[-1]["waiting"]] == [first.id, second.id, third.id]
    assert await heard(bob) == []  # only hosts hear of the lobby

    await host.send(type="lobby_admit", id=first.id)
    joined = await first.expect("joined")
    assert [m["id"] for m in joined["members"]] == [host.id, bob.id]
    got = await heard(bob)
    assert kinds(got) == ["member_joined", "room_event"]
    assert got[0]["member"]["media"]["mic"] is True
    assert (got[1]["action"], got[1]["by"], got[1]["target"]) == ("admitted", host.id, first.id)
    assert kinds(await heard(host)) == ["member_joined", "room_event", "lobby"]

    await host.send(type="lobby_deny", id=second.id)
    assert await second.expect("lobby_denied") == {
        "type": "lobby_denied",
        "room": "r",
        "reason": "denied",
    }
    assert (await heard(bob))[-1]["action"] == "denied"

    await third.send(type="leave")
    assert await third.expect("left") == {
        "type": "left",
        "room": "r",
        "reason": "left",
        "by": None,
        "by_name": None,
    }
    got = await heard(host)
    assert got[-1] == {"type": "lobby", "room": "r", "waiting": []}
    await host.send(type="lobby_admit", id=third.id)
    await host.error("no_such_member")


async def test_lobby_off_admits_everyone_waiting(peers: Callable[..., Any]) -> None:
    host, bob = await seated(peers, "r", "host", "bob")
    await lobby_on(host, bob)
    first, second = await peers("first", "second")
    await knocked(first, "r")
    await knocked(second, "r")

    await host.send(type="room_lobby", enabled=False)

    assert (await first.expect("joined"))["lobby"] is False
    assert [m["id"] for m in (await second.expect("joined"))["members"]] == [
        host.id,
        bob.id,
        first.id,
    ]
    got = await heard(bob)
    assert kinds(got) == [
        "room_state",
        "room_event",
        "member_joined",
        "room_event",
        "member_joined",
        "room_event",
    ]
    assert [m["target"] for m in got if m.get("action") == "admitted"] == [first.id, second.id]


async def test_people_waiting_hear_when_the_room_ends(peers: Callable[..., Any]) -> None:
    (host,) = await seated(peers, "r", "host")
    await lobby_on(host)
    (waiter,) = await peers("waiter")
    await knocked(waiter, "r")

    await host.ws.close(1000)

    assert await waiter.expect("lobby_denied") == {
        "type": "lobby_denied",
        "room": "r",
        "reason": "ended",
    }
    joined = await waiter.join("r")  # the meeting ended with its lobby: a fresh one
    assert (joined["hosts"], joined["lobby"]) == ([waiter.id], False)


async def test_the_lobby_holds_at_most_max_room_members(
    make_server: Callable[..., Any],
) -> None:
    with make_server(max_room_members=2) as server:
        host, *waiting, late = [await Peer.greeted(server, n) for n in ("h", "a", "b", "late")]
        try:
            await host.join("r")
            await lobby_on(host)
            for peer in waiting:
                await knocked(peer, "r")
            await late.send(type="join", room="r")
            await late.error("room_full")
            assert [k["id"] for k in (await heard(host))[-1]["waiting"]] == [p.id for p in waiting]
        finally:
            for peer in (host, *waiting, late):
                await peer.close()


# ------------------------------------------------------------------------------ remove


async def test_remove_then_a_rejoin_knocks_marked_removed(server: RunningServer) -> None:
    mark = len(Client.opened)
    try:
        host = await Client.named(server, "host")
        bob = await Client.named(server, "bob")
        await host.join("r")
        await bob.join("r")
        await host.expect("member_joined")
        old_token = bob.token  # names the room

        await host.send(type="remove", id=bob.id)

        assert await bob.expect("left") == {
            "type": "left",
            "room": "r",
            "reason": "removed",
            "by": host.id,
            "by_name": "host",
        }
        assert (await host.expect("member_left"))["id"] == bob.id
        removed = await host.expect("room_event")
        assert (removed["action"], removed["target"], removed["target_name"]) == (
            "removed",
            bob.id,
            "bob",
        )
        # Its old token no longer seats it: it resumes without a room.
        bob.drop()
        back, welcome = await bob.resume(old_token)
        assert welcome["resumed"]["room"] is None
        assert await heard(host) == []  # no member_resumed, nothing
        # Nor does a join, lobby off and whatever password: it knocks, marked removed.
        await host.send(type="room_password", password="pw")
        await heard(host)
        await knocked(back, "r", password="pw")
        assert (await host.expect("lobby"))["waiting"] == [
            {"id": bob.id, "name": "bob", "removed": True}
        ]
        # The room remembers the client address too: everyone here shares 127.0.0.1.
        carol = await Client.named(server, "carol")
        await knocked(carol, "r", password="pw")
        waiting = (await host.expect("lobby"))["waiting"]
        assert [(k["id"], k["removed"]) for k in waiting] == [(bob.id, True), (carol.id, True)]
        await host.send(type="lobby_admit", id=bob.id)  # only a host lets it back in
        assert (await back.expect("joined"))["room"] == "r"
    finally:
        await Client.close_all(since=mark)  # the server stops next: closed first


# ------------------------------------------------------------------------------ mute and hands


async def test_mute_sends_muted_and_media(peers: Callable[..., Any]) -> None:
    host, bob, carol = await peers("host", "bob", "carol")
    await host.join("r")
    await bob.join("r", media={"mic": True, "camera": True, "screen": False})
    await carol.join("r")
    for peer in (host, bob, carol):
        await heard(peer)

    await host.send(type="mute", id=bob.id, kind="mic")

    assert await bob.expect("muted") == {
        "type": "muted",
        "room": "r",
        "kind": "mic",
        "by": host.id,
        "by_name": "host",
    }
    assert (await bob.expect("room_event"))["action"] == "muted_mic"
    media, told = await heard(carol)
    assert media == {"type": "media", "from": bob.id, "mic": False, "camera": True, "screen": False}
    assert (told["action"], told["target"]) == ("muted_mic", bob.id)
    await host.send(type="mute", id=bob.id, kind="camera")
    assert (await bob.expect("muted"))["kind"] == "camera"
    assert (await heard(carol))[0]["camera"] is False


async def test_hands_in_the_order_raised(peers: Callable[..., Any]) -> None:
    host, bob, carol = await seated(peers, "r", "host", "bob", "carol")
    await carol.send(type="hand", raised=True)
    await carol.expect("hands")
    await bob.send(type="hand", raised=True)
    assert [(await bob.expect("hands"))["raised"] for _ in range(2)] == [
        [carol.id],
        [carol.id, bob.id],  # his own, after hers
    ]
    assert await heard(host) == [
        {"type": "hands", "room": "r", "raised": [carol.id]},
        {"type": "hands", "room": "r", "raised": [carol.id, bob.id]},
    ]
    await heard(carol)
    await carol.send(type="leave")  # leaving lowers her hand
    await carol.expect("left")
    assert await heard(bob) == [
        {"type": "member_left", "room": "r", "id": carol.id},
        {"type": "hands", "room": "r", "raised": [bob.id]},
    ]
    await host.send(type="lower_hand", id=bob.id)
    assert kinds(await heard(bob)) == ["hands", "room_event"]


# ------------------------------------------------------------------------------ the meeting


async def test_end_meeting_sends_everyone_away(peers: Callable[..., Any]) -> None:
    host, bob = await seated(peers, "r", "host", "bob")
    await lobby_on(host, bob)
    (waiter,) = await peers("waiter")
    await knocked(waiter, "r")
    await heard(host)

    await host.send(type="end_meeting")

    for peer in (host, bob):
        assert await peer.expect("left") == {
            "type": "left",
            "room": "r",
            "reason": "ended",
            "by": host.id,
            "by_name": "host",
        }
        assert await heard(peer) == []
    assert (await waiter.expect("lobby_denied"))["reason"] == "ended"
    joined = await bob.join("r")
    assert (joined["hosts"], joined["members"], joined["lobby"]) == ([bob.id], [], False)


async def test_password_set_change_remove_and_joins(
    peers: Callable[..., Any], http: httpx.AsyncClient
) -> None:
    host, bob = await seated(peers, "r", "host", "bob")
    (guest,) = await peers("guest")

    await host.send(type="room_password", password="first")
    for peer in (host, bob):
        state, done = await heard(peer)
        assert (state["protected"], done["action"]) == (True, "password_set")
        assert "first" not in str(state) + str(done)
    assert await info(http, "r") == {
        "id": "r",
        "exists": True,
        "members": None,  # no count for non-members of a protected room
        "full": None,  # ... not even whether it reached the limit
        "protected": True,
        "locked": False,
        "lobby": False,
        "host": False,
    }
    await guest.send(type="join", room="r")
    await guest.error("wrong_password")
    await guest.send(type="join", room="r", password="wrong")
    await guest.error("wrong_password")
    await host.send(type="room_password", password="second")
    await heard(host)
    await guest.send(type="join", room="r", password="first")
    await guest.error("wrong_password")
    assert (await guest.join("r", password="second"))["protected"] is True
    await guest.send(type="leave")
    await guest.expect("left")

    await host.send(type="room_password", password=None)
    assert [m.get("action") for m in await heard(bob)] == [
        None,  # the second password's room_state
        "password_set",
        None,  # guest's member_joined
        None,  # guest's member_left
        None,  # room_state
        "password_removed",
    ]
    assert (await guest.join("r"))["protected"] is False
    assert (await info(http, "r"))["members"] == 3

    await host.send(type="room_lock", locked=True)
    await heard(host)
    locked = await info(http, "r")
    assert (locked["members"], locked["full"], locked["locked"]) == (None, None, True)


async def test_rest_does_not_tell_whether_a_protected_room_is_full(tmp_path: Path) -> None:
    async with serving(tmp_path, max_room_members=2) as server:
        host = await Client.named(server, "host")
        bob = await Client.named(server, "bob")
        await host.join("r")
        await bob.join("r")
        await host.expect("member_joined")
        async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as http:
            before = await info(http, "r")
            assert (before["members"], before["full"]) == (2, True)  # open: anyone may know
            await host.send(type="room_password", password="pw")
            await host.expect("room_state")
            after = await info(http, "r")
            assert (after["members"], after["full"], after["protected"]) == (None, None, True)


# ------------------------------------------------------------------------------ restarts


async def test_the_host_claim_survives_a_restart_and_a_guarded_room_comes_back_locked(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, resume_grace_seconds=1.0) as first:
        host = await Client.named(first, "host")
        bob = await Client.named(first, "bob")
        await host.join("r")
        await bob.join("r")
        await host.expect("member_joined")
        await host.send(type="room_password", password="pw")
        for member in (host, bob):
            await member.expect("room_state")  # after a guarded token, kept by recv
            await member.expect("room_event")
        host.drop()
        bob.drop()
    async with serving(tmp_path, resume_grace_seconds=1.0) as second:
        host2, _ = await host.resume(server=second)
        joined = await host2.expect("joined")
        assert (joined["hosts"], joined["locked"], joined["protected"]) == ([host.id], True, False)
        bob2, _ = await bob.resume(server=second)
        assert (await bob2.expect("joined"))["hosts"] == [host.id]
        stranger = await Client.named(second, "stranger")
        await stranger.send(type="join", room="r", password="pw")
        await stranger.error("room_locked")  # the password was forgotten; locked instead

        await host2.send(type="room_password", password="new pw")
        await host2.send(type="room_lock", locked=False)
        actions = [m["action"] for m in await heard(host2) if m["type"] == "room_event"]
        assert actions[-2:] == ["password_set", "unlocked"]
        await stranger.join("r", password="new pw", token=False)


async def test_a_member_removed_before_a_restart_is_not_seated_again_by_its_old_token(
    tmp_path: Path, database_url: str | None
) -> None:
    """Removals are kept in the store until no token from before them is valid: after a
    restart the removed member's old token brings it back without a room, and a join knocks
    marked removed; another member from the same client address comes back to its seat."""
    options = database_options(database_url)
    async with serving(tmp_path, options=options) as first:
        host = await Client.named(first, "host")
        bob = await Client.named(first, "bob")
        cat = await Client.named(first, "cat")
        for member in (host, bob, cat):
            await member.join("r")
        old = bob.token  # names the room
        await host.send(type="remove", id=bob.id)
        events = [m["action"] for m in await heard(host) if m["type"] == "room_event"]
        assert events == ["removed"]
        for member in (host, bob, cat):
            member.drop()
    async with serving(tmp_path, options=options) as second:
        host2, _ = await host.resume(server=second)
        assert (await host2.expect("joined"))["hosts"] == [host.id]
        cat2, _ = await cat.resume(server=second)
        assert {m["id"] for m in (await cat2.expect("joined"))["members"]} == {host.id}
        bob2, welcome = await bob.resume(old, server=second)
        assert welcome["resumed"]["room"] is None
        await bob2.send(type="join", room="r")
        await bob2.expect("lobby_waiting")
        lobby = [m for m in await heard(host2) if m["type"] == "lobby"]
        assert [(k["id"], k["removed"]) for k in lobby[-1]["waiting"]] == [(bob.id, True)]


async def test_after_a_restart_a_stranger_first_into_a_sealed_room_reads_none_of_its_chat(
    tmp_path: Path,
) -> None:
    """The password died with the old process, but the seal did not: the first one in who is
    not a member of that meeting starts a new one, and the old meeting's chat is gone."""
    async with serving(tmp_path) as first:
        host = await Client.named(first, "host")
        await host.join("vault")
        await host.send(type="chat", text="the launch code is 0000")
        await host.expect("chat")
        await host.send(type="room_password", password="hunter2")
        await host.expect("room_state")
        host.drop()
    async with serving(tmp_path) as second:
        eve = await Client.named(second, "eve")
        joined = await eve.join("vault")
        assert joined["history"] == [] and joined["last_seq"] == 0
        assert joined["hosts"] == [eve.id] and not joined["locked"]
        await eve.send(type="room_lock", locked=True)  # squatting, she hopes
        await eve.expect("room_state")
        # The old meeting's host coming back later finds a new meeting, not its old chat, and
        # is a host of it by its claim, past eve's lock: the room is not hers to keep.
        host2, _ = await host.resume(server=second)
        back = await host2.expect("joined")
        assert back["history"] == [] and host.id in back["hosts"] and back["locked"]
        await host2.send(type="remove", id=eve.id)
        left = [m for m in await heard(eve) if m["type"] == "left"]
        assert [m["reason"] for m in left] == ["removed"]


async def test_after_a_restart_its_members_come_back_first_to_a_locked_room_with_its_chat(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path) as first:
        host = await Client.named(first, "host")
        await host.join("vault")
        await host.send(type="room_password", password="hunter2")
        await host.expect("room_state")
        await host.expect("room_event")
        await host.send(type="chat", text="for our eyes only")
        await host.expect("chat")
        host.drop()
    async with serving(tmp_path) as second:
        host2, _ = await host.resume(server=second)
        back = await host2.expect("joined")
        assert [m["text"] for m in back["history"]] == ["for our eyes only"]
        assert back["locked"]
        eve = await Client.named(second, "eve")
        await eve.send(type="join", room="vault")
        await eve.error("room_locked")
