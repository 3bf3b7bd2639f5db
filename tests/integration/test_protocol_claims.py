"""Claims of docs/PROTOCOL.md that were once wrong, each held to the real server.

(The document's tables and examples are held to the code in tests/unit/test_protocol_doc.py;
the fields of some examples are held to the real server here.)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from salon.core.resume import Claims, ResumeTokens
from salon.server.keys import resume_secret
from tests.integration.peer import Peer
from tests.integration.postgres import Cluster
from tests.integration.redis import redis_server
from tests.integration.server import RunningServer, running_server
from tests.integration.test_resume import account_headers

DOC = (Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md").read_text(encoding="utf-8")
STORE_WAIT = 15.0  # the store's timeout (10 s) and some room: a stopped database fails faster
RESUME_SECRET = "protocol-claims-share-this-resume-secret-0123"
_pings = itertools.count()


async def nothing_then_pong(peer: Peer) -> None:
    """Prove that nothing, not even a `resume_token`, was sent to ``peer`` before now: its
    next message is the `pong` of a `ping` sent now (one connection's messages keep their
    order, §2.6)."""
    ref = f"quiet-{next(_pings)}"
    await peer.send(type="ping", ref=ref)
    message = await peer.recv(tokens=True)
    assert (message["type"], message.get("ref")) == ("pong", ref), message


async def seated(peer: Peer, room: str) -> None:
    """Join ``room`` and take the `resume_token` that follows `joined` (§5.2)."""
    await peer.join(room)
    assert (await peer.recv(tokens=True))["type"] == "resume_token"


async def closed(peer: Peer) -> tuple[int, str]:
    """Read ``peer`` to its end: the server's close code and reason. The reason tells this
    test which bound closed it (a client never parses it, §6.2). No frame sent just before
    was answered: none was handled, or its answer came after the decision to close."""

    async def read_on() -> None:
        async with asyncio.timeout(10):
            while True:
                message = await peer.recv(tokens=True)
                assert message["type"] not in ("pong", "error"), message

    with pytest.raises(ConnectionClosed) as ended:
        await read_on()
    close = ended.value.rcvd
    assert close is not None, "no close frame"
    return close.code, close.reason


def _fields(message: Any, at: str = "") -> set[str]:
    """Every field path of ``message``: ``members.[]`` for a list with elements, then the
    fields of those (``members.[].media.mic``); an empty list adds nothing below it."""
    found: set[str] = set()
    if isinstance(message, dict):
        for key, value in message.items():
            path = f"{at}.{key}" if at else key
            found |= {path} | _fields(value, path)
    elif isinstance(message, list) and message:
        found.add(f"{at}.[]")
        for item in message:
            found |= _fields(item, f"{at}.[]")
    return found


async def test_a_full_protected_room_checks_the_password_first(
    make_server: Callable[..., Any],
) -> None:
    """§5.1 `join`, errors in order: `wrong_password`, then `room_full` (no seat). A stranger
    with a wrong password learns nothing about the room's size; with the password, a full
    room answers `room_full`."""
    with make_server(max_room_members=2) as server:
        host = await Peer.greeted(server, "host")
        await host.join("guarded")
        await host.send(type="room_password", password="open sesame", ref=1)
        await host.expect("room_state")
        guest = await Peer.greeted(server, "guest")
        await guest.join("guarded", password="open sesame")
        late = await Peer.greeted(server, "late")
        await late.send(type="join", room="guarded", password="wrong", ref=2)
        assert (await late.error("wrong_password"))["ref"] == 2
        await late.send(type="join", room="guarded", ref=3)
        assert (await late.error("wrong_password"))["ref"] == 3
        await late.send(type="join", room="guarded", password="open sesame", ref=4)
        assert (await late.error("room_full"))["ref"] == 4
        await late.send(type="chat", text="am I in?")
        await late.error("not_joined")
        for peer in (host, guest, late):
            await peer.close()


async def test_a_join_still_waiting_when_the_client_closes_is_seated_first(
    server: RunningServer,
) -> None:
    """§2.7, §3.2: a message still being handled when the client closes is handled to the
    end first; a `join` waiting on the password check seats the member, then the goodbye
    takes it out (the document once said such a join seats nobody)."""
    host = await Peer.greeted(server, "host")
    await host.join("guarded")
    await host.send(type="room_password", password="open sesame")
    await host.expect("room_state")
    await host.expect("room_event")
    late = await Peer.greeted(server, "late")
    await late.send(type="join", room="guarded", password="open sesame")
    await late.ws.close()  # 1000, at once: the password is being checked in a worker thread
    joined = await host.expect("member_joined")
    left = await host.expect("member_left")
    assert joined["member"]["id"] == left["id"]
    await host.close()


async def test_a_guests_welcome_names_no_account(server: Any) -> None:
    """§5.2 `welcome`: `account` is always present, `null` for a guest (the example once left
    it out)."""
    peer = await Peer.connect(server)
    welcome = await peer.hello("guest")
    assert "account" in welcome and welcome["account"] is None
    await peer.close()


async def test_an_empty_binary_frame_is_binary_unsupported(server: Any) -> None:
    """§1.1: an *empty* binary frame is a binary frame too (the document once said
    `bad_json`); the connection stays open."""
    peer = await Peer.greeted(server, "alice")
    await peer.send_raw(b"")
    error = await peer.error("binary_unsupported")
    assert "ref" not in error or error["ref"] is None
    await peer.alive()
    await peer.close()


async def test_history_with_the_database_down_is_store_unavailable(
    tmp_path: Path, cluster: tuple[Cluster, str]
) -> None:
    """§5.1 `history`, §6.1 `store_unavailable`: while the database is down, `history` gets
    `store_unavailable` with its `ref` (the document once said `internal`), no `history`
    comes, and the connection stays open."""
    postgres, url = cluster
    with running_server(tmp_path, options={"database_url": url}) as server:
        ann = await Peer.greeted(server, "ann")
        await ann.join("archive")
        await ann.send(type="chat", text="kept", id="m1")
        await ann.expect("chat")

        postgres.stop()
        await ann.send(type="history", since=0, ref="h1")
        refused = await ann.error("store_unavailable", timeout=STORE_WAIT)
        assert refused["ref"] == "h1"
        await nothing_then_pong(ann)  # no history after the error
        await ann.close()


async def test_host_actions_that_change_nothing_send_nothing(server: RunningServer) -> None:
    """§3.7: `room_lock` and `room_lobby` with the room's current value, and `room_password`
    with `null` or `""` on a room without a password, change nothing and send nothing to
    anyone, not even an error (the document once said every host action is answered by what
    the room sees). The same actions that do change something are heard by everyone."""
    host = await Peer.greeted(server, "host")
    guest = await Peer.greeted(server, "guest")
    await seated(host, "steady")
    await seated(guest, "steady")
    await host.expect("member_joined")
    room = (host, guest)

    async def unheard(**action: Any) -> None:
        await host.send(**action, ref="no-op")
        for peer in room:
            await nothing_then_pong(peer)

    async def heard(event: str, **action: Any) -> None:
        await host.send(**action)
        for peer in room:
            await peer.expect("room_state")
            assert (await peer.expect("room_event"))["action"] == event

    await unheard(type="room_lock", locked=False)
    await unheard(type="room_lobby", enabled=False)
    await unheard(type="room_password", password=None)
    await unheard(type="room_password", password="")
    await heard("locked", type="room_lock", locked=True)
    await unheard(type="room_lock", locked=True)
    await heard("lobby_on", type="room_lobby", enabled=True)
    await unheard(type="room_lobby", enabled=True)
    await heard("password_set", type="room_password", password="tulip-42")
    await heard("password_removed", type="room_password", password="")
    await unheard(type="room_password", password=None)
    for peer in room:
        await peer.close()


async def test_presence_lists_reachable_names_only(server: RunningServer) -> None:
    """§5.2 `presence` and `presence_changed`, as §4.4 says: only reachable names are listed
    and reported (the document once said every display name online). A member that is not
    reachable, in a room or not, is in no `presence` and causes no `presence_changed`."""
    ann = await Peer.greeted(server, "ann", reachable=True)
    bob = await Peer.greeted(server, "bob")  # shown in rooms only
    watcher = await Peer.greeted(server, "wes")
    await seated(ann, "seen")
    await seated(bob, "seen")
    await ann.expect("member_joined")
    await watcher.send(type="presence_watch", watch=True)
    assert (await watcher.expect("presence"))["names"] == ["ann"]

    cat = await Peer.greeted(server, "cat")
    await seated(cat, "seen")
    await ann.expect("member_joined")
    dan = await Peer.greeted(server, "Dan", reachable=True)
    # Dan's arrival is the next news: cat's (handled before it) made none.
    assert await watcher.expect("presence_changed") == {
        "type": "presence_changed",
        "name": "Dan",
        "online": True,
        "reconnecting": False,
    }
    for leaving in (cat, bob):  # goodbyes of members that are not reachable: no news
        await leaving.close()
        assert (await ann.expect("member_left"))["id"] == leaving.id  # its goodbye is handled
    await nothing_then_pong(watcher)
    await dan.close()
    assert await watcher.expect("presence_changed") == {
        "type": "presence_changed",
        "name": "Dan",
        "online": False,
        "reconnecting": False,
    }
    for peer in (ann, watcher):
        await peer.close()


async def test_a_fresh_resume_token_comes_whenever_what_it_says_changes(
    server: RunningServer,
) -> None:
    """§2.8, §5.2 `resume_token`: besides after `joined` and `left`, the server sends a fresh
    token to a member made a host, to the member the host role passes on to, to every member
    when a host sets or removes the password, and to a guest moved aside from its reachable
    name; each says what changed (host, password, reachable name)."""
    tokens = ResumeTokens(resume_secret(server.settings))

    async def next_token(peer: Peer) -> Claims:
        """The claims of the next `resume_token` the peer receives (others are passed)."""
        while (message := await peer.recv(tokens=True))["type"] != "resume_token":
            pass
        claims = tokens.verify(message["token"], time.time())
        assert claims is not None and claims.member == peer.id
        return claims

    ann, bob, cat = [await Peer.greeted(server, name) for name in ("ann", "bob", "cat")]
    for peer in (ann, bob, cat):
        await peer.join("tokens")
        claims = await next_token(peer)  # right after joined
        assert (claims.room, claims.host) == ("tokens", peer is ann)  # ann came first

    await ann.send(type="make_host", id=bob.id)
    assert (await next_token(bob)).host

    await ann.send(type="room_password", password="tulip-42")
    for peer in (ann, bob, cat):
        assert (await next_token(peer)).guarded
    await ann.send(type="room_password", password=None)
    for peer in (ann, bob, cat):
        assert not (await next_token(peer)).guarded

    await ann.send(type="leave")
    assert (await next_token(ann)).room is None  # after left
    await bob.send(type="leave")  # the last host: the role passes on to cat
    assert (await next_token(cat)).host

    zoe = await Peer.greeted(server, "zoe", reachable=True)
    welcomed = tokens.verify(zoe.token, time.time())
    assert welcomed is not None and welcomed.reachable
    owner = await Peer.connect(server, additional_headers=await account_headers(server, "zoe"))
    await owner.hello("zoe", reachable=True)
    assert (await zoe.recv(tokens=True))["type"] == "unreachable"
    assert (await zoe.recv(tokens=True))["type"] == "resume_token"
    aside = tokens.verify(zoe.token, time.time())  # the token that came after unreachable
    assert aside is not None and not aside.reachable
    for peer in (ann, bob, cat, zoe, owner):
        await peer.close()


async def test_ice_servers_echoes_the_ref_of_ice_refresh(server: RunningServer) -> None:
    """§1.3 `ref`: besides `pong`, `ice_servers` echoes the `ref` of the `ice_refresh` it
    answers (as §5.1 says; §1.3 once said `pong` alone); other successful replies do not."""
    peer = await Peer.greeted(server, "alice")
    for ref in ("ice-2", 7):
        await peer.send(type="ice_refresh", ref=ref)
        assert (await peer.expect("ice_servers"))["ref"] == ref
    await peer.send(type="join", room="refs", ref="j1")
    assert "ref" not in await peer.expect("joined")
    await peer.close()


async def test_frames_a_process_cannot_pass_on_in_time_close_4002(tmp_path: Path) -> None:
    """§6.2 4002 (and §2.5): on a server of several processes, a client that sends frames
    faster than they can be passed on is closed with 4002 (the document once named the
    outbox alone): more than 64 frames while its connection moves to another process, or
    more than `outbox_messages` frames waiting at the process its member lives on."""
    with redis_server() as redis:
        options = {
            "redis_url": redis.url,
            "resume_secret": RESUME_SECRET,
            "bus_heartbeat_seconds": 0.5,
        }
        with (
            running_server(tmp_path, options=options, outbox_messages=8) as one,
            running_server(tmp_path, options=options, outbox_messages=8) as two,
        ):
            # Moving: the room's home is a process that looks alive and never answers, so
            # the move to it is under way while 65 frames come.
            redis.command("SET", "salon:proc:feedfeedfeed", "1", "PX", "30000")
            redis.command("SET", "salon:room:nowhere", "feedfeedfeed", "PX", "30000")
            mover = await Peer.greeted(two, "mover")
            await mover.send(type="join", room="nowhere", ref="j")
            for i in range(65):
                await mover.send(type="ping", ref=i)
            assert await closed(mover) == (4002, "too many frames while moving")

            # Relayed: bob's connection is on two, his member on one (where his room lives).
            # A join of a room with a password waits there on the password check; the pings
            # behind it wait too, more than outbox_messages (8) of them.
            host = await Peer.greeted(one, "host")
            await host.join("guarded-home")
            await host.send(type="room_password", password="tulip-42")
            await host.expect("room_state")
            ann = await Peer.greeted(one, "ann")
            await ann.join("open-home")
            bob = await Peer.greeted(two, "bob")
            await bob.join("open-home")  # moved to one
            await ann.expect("member_joined")
            await bob.send(type="join", room="guarded-home", password="not it", ref="j")
            for i in range(40):
                await bob.send(type="ping", ref=i)
            assert await closed(bob) == (4002, "too many frames waiting")
            for peer in (mover, host, ann, bob):
                await peer.close()


async def test_the_joined_and_history_examples_show_every_field_the_server_sends(
    server: RunningServer,
) -> None:
    """§5.2 `joined` and `history`, §8: every example of `joined` and of a `history` answer
    has exactly the fields the server sends (`joined.sfu` and a message's `client_id` were
    once missing; tests/unit/test_protocol_doc.py only checks that the examples decode)."""
    ann = await Peer.greeted(server, "ann")
    bob = await Peer.greeted(server, "bob")
    await ann.join("shapes")
    await ann.send(type="chat", text="hello", id="c1")
    await ann.expect("chat")
    real = {"joined": await bob.join("shapes")}
    await bob.send(type="history", since=0)
    real["history"] = await bob.expect("history")
    for kind, sent in real.items():
        examples = re.findall(rf'^(?:\w+\s+<<< )?(\{{"type":"{kind}".*\}})$', DOC, re.MULTILINE)
        assert examples, kind
        fields = _fields(sent)
        for example in examples:
            shown = _fields(json.loads(example))
            # Nothing the server would not send (below a list it sent empty, nothing to say).
            empty = {f for f in shown if f.endswith(".[]") and f not in fields}
            unknown = {f for f in shown - fields if not any(f.startswith(e) for e in empty)}
            assert not unknown, (kind, unknown)
            # What the example shows a part of (its top level, an element of a list that is
            # not empty), it shows whole.
            expected = {
                f for f in fields if f.rpartition(".")[0] in shown | {""} and not f.endswith(".[]")
            }
            assert expected <= shown, (kind, expected - shown)
    for peer in (ann, bob):
        await peer.close()
