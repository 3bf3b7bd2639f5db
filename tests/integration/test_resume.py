"""Resume: a member is a place that outlives its socket (the resume protocol additions).

Every test runs the real server on a free port and talks to it with real WebSocket clients.
A lost socket is made the way a network makes it: the client's TCP transport is aborted
with no close frame (``Client.drop``); the server sees the connection end and nothing else.
A restart is the server's context ending and a new server starting on the same data folder,
where the resume secret lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from salon.core.place import kept_bound
from tests.integration.peer import TIMEOUT, Peer
from tests.integration.rest import same_origin_headers
from tests.integration.server import RunningServer, running_server

GRACE = 3.0  # resume_grace_seconds for most tests: far above what a resume takes, even when a
# loaded machine makes each TLS handshake and round trip take a few tenths of a second


class Client(Peer):
    """A :class:`Peer` that behaves like a resuming client: it keeps only the latest resume
    token (``welcome.resume_token``, then every ``resume_token`` message) and can lose its
    socket abruptly.

    ``resume_token`` messages are taken out of the stream (tests about them set
    ``show_tokens``), so ``expect`` sees the room's messages in their order."""

    opened: ClassVar[list[Client]] = []

    def __init__(self, ws: Any, server: RunningServer, headers: dict[str, str]) -> None:
        super().__init__(ws)
        self.server = server
        self.headers = headers
        self.token = ""
        self.tokens: list[str] = []  # every token received, in order
        self.show_tokens = False

    @classmethod
    async def open(cls, server: RunningServer, headers: dict[str, str] | None = None) -> Client:
        peer = await Peer.connect(server, additional_headers=headers or {})
        client = cls(peer.ws, server, headers or {})
        Client.opened.append(client)
        return client

    @classmethod
    async def named(
        cls, server: RunningServer, name: str, headers: dict[str, str] | None = None
    ) -> Client:
        client = await cls.open(server, headers)
        await client.hello(name)
        return client

    @classmethod
    async def close_all(cls, since: int = 0) -> None:
        """Close the clients opened since the ``since``-th (dropped ones are closed already)."""
        opened = Client.opened[since:]
        del Client.opened[since:]
        await asyncio.gather(*(c.ws.close() for c in opened), return_exceptions=True)

    async def recv(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        """The next message that is not a server ping (pings are answered) nor, unless
        ``show_tokens``, a ``resume_token`` (kept in :attr:`token`)."""
        while True:
            message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message["type"] == "ping":
                await self.send(type="pong")
                continue
            if message["type"] == "resume_token":
                self.token = message["token"]
                self.tokens.append(message["token"])
                if not self.show_tokens:
                    continue
            return message

    async def hello(
        self, name: str, resume: str | None = None, *, reachable: bool = True
    ) -> dict[str, Any]:
        """Say hello (with a resume token when given); the answer must be ``welcome``.
        Reachable by default: the name is then held (unique, in ``presence``, callable) for
        as long as the place lives, which is what these tests follow across a lost socket."""
        extra = {} if resume is None else {"resume": resume}
        await self.send(type="hello", versions=[1], name=name, reachable=reachable, **extra)
        welcome = await self.expect("welcome")
        self.welcome = welcome
        self.id, self.name = welcome["id"], welcome["name"]
        self.token = welcome["resume_token"]
        self.tokens.append(self.token)
        return welcome

    async def join(self, room: str, *, token: bool = True, **extra: Any) -> dict[str, Any]:
        """Join; with ``token``, also take the ``resume_token`` that must follow ``joined``."""
        await self.send(type="join", room=room, **extra)
        joined = await self.expect("joined")
        if token:
            await self.fresh_token()
        return joined

    async def fresh_token(self) -> str:
        """The next message must be a ``resume_token``; it becomes the token held."""
        shown, self.show_tokens = self.show_tokens, True
        try:
            token: str = (await self.expect("resume_token"))["token"]
        finally:
            self.show_tokens = shown
        return token

    async def resume(
        self, token: str | None = None, server: RunningServer | None = None
    ) -> tuple[Client, dict[str, Any]]:
        """A new connection (same cookies) saying ``hello.resume`` with this client's latest
        token (or ``token``): the new client and its ``welcome``, which must say resumed."""
        new = await Client.open(server or self.server, self.headers)
        welcome = await new.hello(self.name or "someone", resume=token or self.token)
        assert welcome["resumed"] is not None, welcome
        return new, welcome

    def drop(self, *, reset: bool = False) -> None:
        """Lose the connection like a network does: no close frame, the TCP transport torn
        down at once (``reset``: with an RST instead of a FIN)."""
        transport = self.ws.transport
        if reset:
            sock = transport.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()

    async def until(
        self,
        wanted: Callable[[dict[str, Any]], bool],
        *,
        skip: Callable[[dict[str, Any]], bool] = lambda m: False,
        timeout: float = TIMEOUT,
    ) -> dict[str, Any]:
        """The first message ``wanted`` accepts; messages ``skip`` accepts are passed over,
        anything else fails the test (so an unexpected message is never missed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            message = await self.recv(max(0.01, deadline - loop.time()))
            if wanted(message):
                return message
            assert skip(message), f"unexpected {message}"


@contextlib.asynccontextmanager
async def serving(data_dir: Path, **limits: Any) -> AsyncIterator[RunningServer]:
    """``running_server``, closing the clients opened meanwhile before the server stops (the
    server's stop blocks this loop, so the clients could not answer its close frames)."""
    mark = len(Client.opened)
    with running_server(data_dir, **limits) as server:
        try:
            yield server
        finally:
            await Client.close_all(since=mark)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with serving(tmp_path, resume_grace_seconds=GRACE) as running:
        yield running


# ----------------------------------------------------------------------------- helpers


async def seated(server: RunningServer, room: str, *names: str) -> list[Client]:
    """Members greeted and joined in this order, each having heard of the later ones."""
    members: list[Client] = []
    for name in names:
        member = await Client.named(server, name)
        await member.join(room)
        for earlier in members:
            joined = await earlier.expect("member_joined")
            assert joined["member"]["id"] == member.id
        members.append(member)
    return members


async def watcher(server: RunningServer, name: str) -> Client:
    """A member that watches presence (and is in no room)."""
    member = await Client.named(server, name)
    await member.send(type="presence_watch", watch=True)
    await member.expect("presence")
    return member


async def account_headers(server: RunningServer, username: str) -> dict[str, str]:
    """Sign up over REST like the page does: the headers of that page's WebSocket."""
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as page:
        page.headers.update(await same_origin_headers(page, server.base_url))
        body = {"username": username, "password": "correct horse"}
        created = await page.post("/api/v1/accounts", json=body)
        assert created.status_code == 201, created.text
        token = page.cookies["salon_session"]
    return {"Cookie": f"salon_session={token}", "Origin": server.base_url}


async def refused_resume(
    server: RunningServer, token: str, headers: dict[str, str] | None = None
) -> Client:
    """A connection whose ``hello.resume`` gets ``resume_failed``; it awaits a hello still."""
    client = await Client.open(server, headers)
    await client.send(type="hello", versions=[1], name="whoever", resume=token)
    await client.error("resume_failed")
    return client


def without_type(message: dict[str, Any]) -> dict[str, Any]:
    """A delivered ``chat`` as the history entry it is (``joined.history``, ``history``)."""
    return {k: v for k, v in message.items() if k != "type"}


def polite(receiver: str, member: str) -> bool:
    """The spec's rule: the receiver is polite when its id is greater (code-point order)."""
    return receiver > member


def is_signal_from(sender: Client, candidate: str) -> Callable[[dict[str, Any]], bool]:
    def check(m: dict[str, Any]) -> bool:
        return (
            m["type"] == "signal"
            and m["from"] == sender.id
            and (m.get("candidate") or {}).get("candidate") == candidate
        )

    return check


async def ring(caller: Client, callee: Client) -> str:
    await caller.send(type="call", name=callee.name)
    call: str = (await caller.expect("ringing"))["call"]
    assert (await callee.expect("incoming_call"))["call"] == call
    return call


async def in_a_call(server: RunningServer) -> tuple[Client, Client, str, str]:
    """alice called bob and bob accepted: both sit in the call's private room."""
    alice, bob = await Client.named(server, "alice"), await Client.named(server, "bob")
    call = await ring(alice, bob)
    await bob.send(type="call_accept", call=call)
    rooms = set()
    for member in (alice, bob):
        assert (await member.expect("call_accepted"))["call"] == call
        rooms.add((await member.expect("joined"))["room"])
        await member.fresh_token()
    assert (await alice.expect("member_joined"))["member"]["id"] == bob.id
    (room,) = rooms
    return alice, bob, call, room


# ------------------------------------------------------------------- places outlive sockets


async def test_a_lost_socket_keeps_the_place(server: RunningServer) -> None:
    alice, bob = await seated(server, "r", "alice", "bob")
    carol = await watcher(server, "carol")
    assert alice.welcome["limits"]["resume_grace_seconds"] == GRACE
    assert alice.welcome["resumed"] is None

    bob.drop()
    assert await alice.expect("member_reconnecting") == {
        "type": "member_reconnecting",
        "room": "r",
        "id": bob.id,
    }
    assert await carol.expect("presence_changed") == {
        "type": "presence_changed",
        "name": "bob",
        "online": True,
        "reconnecting": True,
    }
    # The place holds the name: a stranger without the token cannot have it.
    stranger = await Client.open(server)
    await stranger.send(type="hello", versions=[1], name="bob", reachable=True)
    await stranger.error("name_taken")
    await alice.silent(0.2)  # and no member_left while the window is open
    await bob.resume()
    assert (await alice.expect("member_resumed"))["member"]["id"] == bob.id
    assert await carol.expect("presence_changed") == {
        "type": "presence_changed",
        "name": "bob",
        "online": True,
        "reconnecting": False,
    }


async def test_a_watcher_is_not_told_of_its_own_loss_and_return(server: RunningServer) -> None:
    """§4.4, §2.8: a reachable member that watches presence resumes its watch with its place;
    its own ``welcome`` comes first, and it hears nothing of its own connection (its return
    once came before the welcome, and its loss, kept, after it: listed as reconnecting)."""
    bob = await watcher(server, "bob")
    carol = await watcher(server, "carol")
    await bob.expect("presence_changed")  # carol came online
    bob.drop()
    assert (await carol.expect("presence_changed"))["reconnecting"] is True
    back, welcome = await bob.resume()
    assert welcome["resumed"] == {"room": None, "call": None, "missed": False}
    assert (await carol.expect("presence_changed"))["reconnecting"] is False
    await back.silent(0.3)  # nothing about itself, before or after
    # and it still watches: another name coming online reaches the new connection
    dave = await Client.named(server, "dave")
    assert await back.expect("presence_changed") == {
        "type": "presence_changed",
        "name": "dave",
        "online": True,
        "reconnecting": False,
    }
    await dave.ws.close()


async def test_resume_within_the_window_delivers_what_was_kept(server: RunningServer) -> None:
    alice, bob = await seated(server, "r", "alice", "bob")
    bob.drop()
    await alice.expect("member_reconnecting")

    # Addressed to bob while he is away: a signal, then a chat to the whole room.
    await alice.send(type="signal", to=bob.id, candidate={"candidate": "candidate:kept"})
    await alice.send(type="chat", text="while you were away", id="away-1")
    mine = await alice.expect("chat")

    back, welcome = await bob.resume()
    assert (welcome["id"], welcome["name"]) == (bob.id, "bob")
    assert welcome["resumed"] == {"room": "r", "call": None, "missed": False}
    # What was kept follows the welcome, in order; then the room as it is now, last.
    first = await back.recv()
    assert is_signal_from(alice, "candidate:kept")(first), first
    chat = await back.expect("chat")
    assert chat == mine and chat["client_id"] == "away-1"
    joined = await back.expect("joined")
    assert joined["room"] == "r" and joined["last_seq"] == chat["seq"]
    assert joined["history"][-1] == without_type(chat)
    assert [(m["id"], m["polite"]) for m in joined["members"]] == [
        (alice.id, polite(bob.id, alice.id))
    ]
    await back.silent(0.3)  # and nothing else

    resumed = await alice.expect("member_resumed")
    assert resumed["room"] == "r"
    assert (resumed["member"]["id"], resumed["member"]["name"]) == (bob.id, "bob")
    assert resumed["member"]["polite"] is polite(alice.id, bob.id)
    # The place is the same: signals reach the new socket, and the room goes on.
    await alice.send(type="signal", to=bob.id, candidate={"candidate": "candidate:after"})
    after = await back.recv()
    assert is_signal_from(alice, "candidate:after")(after), after
    await back.send(type="chat", text="back")
    for member in (alice, back):
        assert (await member.expect("chat"))["seq"] == chat["seq"] + 1
    await alice.silent(0.2)


async def test_a_full_keep_comes_back_whole_with_its_welcome_and_snapshot(
    tmp_path: Path,
) -> None:
    """As many kept messages as may be kept, the welcome before them and the room's snapshot
    after: the outbox has room for all of it, so the resume is not closed as a slow consumer
    for what the server itself queued at once."""
    async with serving(tmp_path, resume_grace_seconds=GRACE, outbox_messages=16) as server:
        alice, bob = await seated(server, "r", "alice", "bob")
        bob.drop()
        await alice.expect("member_reconnecting")
        assert kept_bound(16) == 8
        for i in range(8):  # exactly the 8 that may be kept
            await alice.send(type="chat", text=f"kept {i}")
            await alice.expect("chat")

        back, welcome = await bob.resume()
        assert welcome["resumed"] == {"room": "r", "call": None, "missed": False}
        for i in range(8):
            assert (await back.expect("chat"))["text"] == f"kept {i}"
        joined = await back.expect("joined")
        assert joined["room"] == "r" and joined["last_seq"] == 8
        await back.alive()
        assert (await alice.expect("member_resumed"))["member"]["id"] == bob.id

        # As many as the outbox holds are more than may be kept: missed, and a snapshot.
        back.drop()
        await alice.expect("member_reconnecting")
        for i in range(16):
            await alice.send(type="signal", to=bob.id, candidate={"candidate": f"c{i}"})
        await alice.alive()  # all of them handled
        again, welcome = await back.resume()
        assert welcome["resumed"] == {"room": "r", "call": None, "missed": True}
        assert (await again.expect("joined"))["last_seq"] == 8
        await again.alive()


async def test_overflowing_the_kept_messages_means_missed_and_a_snapshot(
    tmp_path: Path,
) -> None:
    async with serving(tmp_path, resume_grace_seconds=GRACE, outbox_messages=8) as server:
        alice, bob = await seated(server, "r", "alice", "bob")
        bob.drop()
        await alice.expect("member_reconnecting")
        for i in range(12):  # more than the 1 that may be kept (kept_bound)
            await alice.send(type="chat", text=f"lost {i}")
            await alice.expect("chat")

        back, welcome = await bob.resume()
        assert welcome["id"] == bob.id
        assert welcome["resumed"] == {"room": "r", "call": None, "missed": True}
        joined = await back.expect("joined")  # the first thing after the welcome
        assert joined["room"] == "r" and joined["last_seq"] == 12
        assert [m["text"] for m in joined["history"]] == [f"lost {i}" for i in range(12)]
        assert [(m["id"], m["polite"]) for m in joined["members"]] == [
            (alice.id, polite(bob.id, alice.id))
        ]
        await back.silent(0.3)  # none of the dropped messages straggles in
        assert (await alice.expect("member_resumed"))["member"]["id"] == bob.id


async def test_when_the_window_passes_the_place_ends(server: RunningServer) -> None:
    alice, bob = await seated(server, "r", "alice", "bob")
    carol = await watcher(server, "carol")
    loop = asyncio.get_running_loop()
    lost_at = loop.time()  # the window opens once the server sees the loss, after this
    bob.drop()
    await alice.expect("member_reconnecting")
    assert (await carol.expect("presence_changed"))["reconnecting"] is True

    left = await alice.expect("member_left", timeout=GRACE + 5)
    assert left == {"type": "member_left", "room": "r", "id": bob.id}
    assert loop.time() - lost_at >= GRACE - 0.1  # not before the window ended
    offline = await carol.expect("presence_changed")
    assert (offline["name"], offline["online"], offline["reconnecting"]) == ("bob", False, False)

    # The token died with the place; the same connection may still say a plain hello.
    late = await refused_resume(server, bob.token)
    welcome = await late.hello("bob")  # the name is free again
    assert welcome["id"] != bob.id and welcome["resumed"] is None


@pytest.mark.parametrize("code", [1000, 1001])
async def test_a_clean_close_ends_the_place_at_once(tmp_path: Path, code: int) -> None:
    async with serving(tmp_path, resume_grace_seconds=30) as server:
        alice, bob = await seated(server, "r", "alice", "bob")
        carol = await watcher(server, "carol")
        await bob.ws.close(code)
        # At once: no member_reconnecting first, and long before the 30 s window.
        assert await alice.expect("member_left", timeout=3) == {
            "type": "member_left",
            "room": "r",
            "id": bob.id,
        }
        offline = await carol.expect("presence_changed", timeout=3)
        assert (offline["name"], offline["online"]) == ("bob", False)
        await refused_resume(server, bob.token)
        assert (await Client.named(server, "bob")).id != bob.id  # the name is free


@pytest.mark.parametrize("code", [1011, 3000, 4000])
async def test_other_close_codes_from_the_client_keep_the_place(
    server: RunningServer, code: int
) -> None:
    alice, bob = await seated(server, "r", "alice", "bob")
    await bob.ws.close(code)
    assert (await alice.expect("member_reconnecting"))["id"] == bob.id
    _, welcome = await bob.resume()
    assert welcome["id"] == bob.id and welcome["resumed"]["room"] == "r"
    assert (await alice.expect("member_resumed"))["member"]["id"] == bob.id


async def test_a_rate_abuse_close_keeps_the_place(tmp_path: Path) -> None:
    limits = {"rate_per_second": 2, "rate_burst": 20, "rate_strikes_before_close": 5}
    async with serving(tmp_path, resume_grace_seconds=GRACE, **limits) as server:
        alice, bob = await seated(server, "r", "alice", "bob")
        for i in range(40):
            await bob.send(type="ping", ref=i)
        assert await bob.closed_with() == 4003
        assert (await alice.expect("member_reconnecting"))["id"] == bob.id
        _, welcome = await bob.resume()  # a client MAY resume after 4003
        assert welcome["id"] == bob.id and welcome["resumed"]["room"] == "r"
        assert (await alice.expect("member_resumed"))["member"]["id"] == bob.id


async def test_a_dead_peer_close_keeps_the_place(tmp_path: Path) -> None:
    # Not shorter: alice reads nothing while bob connects and joins.
    limits = {"ping_after_seconds": 1.0, "dead_after_seconds": 2.5}
    async with serving(tmp_path, resume_grace_seconds=3 * GRACE, **limits) as server:
        alice, bob = await seated(server, "r", "alice", "bob")
        # bob reads nothing from here on, so he never answers the server's ping; alice does.
        assert (await alice.expect("member_reconnecting", timeout=8))["id"] == bob.id
        assert await bob.closed_with(timeout=3) == 4004
        _, welcome = await bob.resume()
        assert welcome["id"] == bob.id and welcome["resumed"]["room"] == "r"
        assert (await alice.expect("member_resumed"))["member"]["id"] == bob.id


# ----------------------------------------------------------------------------- calls


async def test_a_ringing_call_keeps_ringing_while_the_callee_is_away(
    server: RunningServer,
) -> None:
    alice, bob = await Client.named(server, "alice"), await Client.named(server, "bob")
    call = await ring(alice, bob)
    bob.drop()
    await alice.silent(0.3)  # no call_ended (offline): it still rings
    back, welcome = await bob.resume()
    assert welcome["resumed"]["room"] is None
    await back.send(type="call_accept", call=call)
    rooms = set()
    for member in (alice, back):
        assert (await member.expect("call_accepted"))["call"] == call
        rooms.add((await member.expect("joined"))["room"])
    assert len(rooms) == 1
    assert (await alice.expect("member_joined"))["member"]["id"] == bob.id


async def test_the_ring_timeout_still_applies_while_the_callee_is_away(tmp_path: Path) -> None:
    async with serving(tmp_path, resume_grace_seconds=5, ring_seconds=1) as server:
        alice, bob = await Client.named(server, "alice"), await Client.named(server, "bob")
        call = await ring(alice, bob)
        bob.drop()
        ended = {"type": "call_ended", "call": call, "reason": "timeout"}
        assert await alice.expect("call_ended", timeout=4) == ended
        back, welcome = await bob.resume()
        assert welcome["resumed"] == {"room": None, "call": None, "missed": False}
        assert await back.expect("call_ended") == ended  # kept for him


async def test_a_call_survives_a_lost_socket(server: RunningServer) -> None:
    alice, bob, call, room = await in_a_call(server)
    bob.drop()
    assert (await alice.expect("member_reconnecting"))["id"] == bob.id
    back, welcome = await bob.resume()
    assert welcome["resumed"] == {"room": room, "call": call, "missed": False}
    joined = await back.expect("joined")  # nothing was kept: the snapshot at once
    assert (joined["room"], joined["private"]) == (room, True)
    assert [m["id"] for m in joined["members"]] == [alice.id]
    assert (await alice.expect("member_resumed"))["member"]["id"] == bob.id
    await alice.send(type="signal", to=bob.id, candidate={"candidate": "candidate:call"})
    got = await back.recv()
    assert is_signal_from(alice, "candidate:call")(got), got


async def test_when_the_window_passes_a_call_is_hung_up(server: RunningServer) -> None:
    alice, bob, call, room = await in_a_call(server)
    bob.drop()
    assert (await alice.expect("member_reconnecting"))["id"] == bob.id
    left = await alice.expect("member_left", timeout=GRACE + 5)
    assert left == {"type": "member_left", "room": room, "id": bob.id}
    ended = await alice.expect("call_ended")
    assert ended == {"type": "call_ended", "call": call, "reason": "hangup"}
    assert await alice.expect("left") == {
        "type": "left",
        "room": room,
        "reason": "hangup",
        "by": None,
        "by_name": None,
    }
    await refused_resume(server, bob.token)


# ----------------------------------------------------------------------------- the token


async def test_a_fresh_token_follows_every_room_change(tmp_path: Path) -> None:
    async with serving(tmp_path, resume_grace_seconds=GRACE) as first:
        alice = await Client.named(first, "alice")
        alice.show_tokens = True
        await alice.send(type="join", room="r")
        await alice.expect("joined")
        after_join = (await alice.expect("resume_token"))["token"]
        await alice.send(type="leave")
        await alice.expect("left")
        after_leave = (await alice.expect("resume_token"))["token"]
        await alice.send(type="join", room="s")
        await alice.expect("joined")
        latest = (await alice.expect("resume_token"))["token"]
        tokens = [alice.welcome["resume_token"], after_join, after_leave, latest]
        assert all(0 < len(t) <= 1024 for t in tokens)
        # Each names the place as it is now, so each change of room changes the token.
        assert tokens[0] != after_join != after_leave != latest
        alice.drop()
    # The latest token names the room it was issued for: a new process seats alice there.
    async with serving(tmp_path, resume_grace_seconds=GRACE) as second:
        back, welcome = await alice.resume(server=second)
        assert welcome["id"] == alice.id
        assert welcome["resumed"] == {"room": "s", "call": None, "missed": True}
        assert (await back.expect("joined"))["room"] == "s"


async def test_the_token_is_refreshed_before_it_expires_and_then_dies(tmp_path: Path) -> None:
    """About 11 s: the shortest token life the settings allow is 10 s."""
    limits = {"resume_grace_seconds": GRACE, "resume_token_seconds": 10}
    async with serving(tmp_path, **limits) as server:
        loop = asyncio.get_running_loop()
        alice = await Client.named(server, "alice")
        greeted_at = loop.time()
        first = alice.token
        alice.show_tokens = True
        refreshed = await alice.expect("resume_token", timeout=10)  # with no room change
        assert refreshed["token"] != first
        assert loop.time() - greeted_at < 10
        # Expiry is a moment, not an event: wait until the first token is past it.
        await asyncio.sleep(max(0.0, greeted_at + 10.5 - loop.time()))
        await refused_resume(server, first)
        _, welcome = await alice.resume(refreshed["token"])
        assert welcome["id"] == alice.id
        assert await alice.closed_with() == 4005


def tampered(token: str) -> str:
    middle = len(token) // 2
    swap = "B" if token[middle] == "A" else "A"
    return token[:middle] + swap + token[middle + 1 :]


@pytest.mark.parametrize("kind", ["tampered", "garbage", "long", "another-server"])
async def test_a_bad_token_fails_and_a_plain_hello_still_works(
    server: RunningServer, tmp_path: Path, kind: str
) -> None:
    alice, bob = await seated(server, "r", "alice", "bob")
    if kind == "tampered":
        token = tampered(bob.token)
    elif kind == "garbage":
        token = "not-a-token.at-all"
    elif kind == "long":
        token = "A" * 1024
    else:
        async with serving(tmp_path / "other", resume_grace_seconds=GRACE) as other:
            token = (await Client.named(other, "bob")).token
    mallory = await refused_resume(server, token)
    welcome = await mallory.hello("mallory")  # still awaiting a hello: a plain one works
    assert welcome["resumed"] is None and welcome["id"] not in (alice.id, bob.id)
    # Nothing happened to bob's place.
    await alice.silent(0.2)
    await bob.alive()


async def test_a_token_longer_than_the_limit_is_a_bad_message(server: RunningServer) -> None:
    client = await Client.open(server)
    await client.send(type="hello", versions=[1], name="x", resume="A" * 1025)
    await client.error("bad_message")
    assert (await client.hello("x"))["resumed"] is None


async def test_a_signed_in_members_token_needs_that_account(server: RunningServer) -> None:
    headers = await account_headers(server, "alice")
    alice = await Client.named(server, "ignored", headers)
    bob = await Client.named(server, "bob")
    await alice.join("r")
    await bob.join("r")
    await alice.expect("member_joined")
    alice.drop()
    await bob.expect("member_reconnecting")

    await refused_resume(server, alice.token)  # a guest connection
    await refused_resume(server, alice.token, await account_headers(server, "mallory"))
    back, welcome = await alice.resume()  # alice's own cookie
    assert welcome["id"] == alice.id and welcome["account"]["username"] == "alice"
    assert welcome["resumed"]["room"] == "r"
    resumed = await bob.until(lambda m: m["type"] == "member_resumed")  # nothing else first
    assert resumed["member"]["id"] == alice.id

    # And the other way round: a guest's token needs a guest connection.
    bob.drop()
    await back.until(
        lambda m: m["type"] == "member_reconnecting", skip=lambda m: m["type"] == "joined"
    )
    await refused_resume(server, bob.token, headers)
    await bob.resume()


# ----------------------------------------------------------------------------- newest wins


async def test_a_second_socket_with_the_token_takes_the_place_over(
    server: RunningServer,
) -> None:
    alice, bob = await seated(server, "r", "alice", "bob")
    back, welcome = await bob.resume()  # while bob's socket is still attached
    assert await bob.closed_with() == 4005
    assert welcome["id"] == bob.id
    assert welcome["resumed"] == {"room": "r", "call": None, "missed": False}
    assert [m["id"] for m in (await back.expect("joined"))["members"]] == [alice.id]
    # The room sees one member throughout: a takeover of a live connection is invisible
    # (PROTOCOL.md 2.8), so no member_left, member_joined, reconnecting nor resumed.
    await alice.silent(0.3)
    await alice.send(type="signal", to=bob.id, candidate={"candidate": "candidate:new"})
    got = await back.recv()
    assert is_signal_from(alice, "candidate:new")(got), got
    await back.silent(0.2)


async def stalled(server: RunningServer, name: str, room: str) -> Client:
    """A member seated in ``room`` whose socket then reads no more, as one whose client
    vanished without a FIN: a small receive window (set before connecting), then paused."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", server.port))
    raw.setblocking(False)
    peer = await Peer.connect(server, sock=raw)
    member = Client(peer.ws, server, {})
    Client.opened.append(member)
    await member.hello(name)
    await member.join(room)
    member.ws.transport.pause_reading()
    return member


SENT = 180


async def flood(sender: Client, to: Client) -> None:
    """180 descriptions of 30 KB: 5.4 MB, more than the server's socket buffers take (at
    most 4 MB on Linux, tcp_wmem), in 180 of the 256 messages an outbox holds, and within the
    sender's burst of frames; numbered in their ``s=`` lines. Returns once the server has
    handled every one (queued it for ``to``)."""
    pad = "a=x-pad:" + "x" * 30_000 + "\r\n"
    for number in range(1, SENT + 1):
        sdp = f"v=0\r\ns=n{number}\r\n{pad}"
        await sender.send(type="signal", to=to.id, description={"type": "offer", "sdp": sdp})
    await sender.alive()


async def numbers_after_welcome(back: Client) -> list[int]:
    """The numbers of the flood's descriptions that follow a resume's welcome, up to the
    room's ``joined`` snapshot, which must come next."""
    numbers: list[int] = []
    while (message := await back.recv())["type"] == "signal":
        numbers.append(int(message["description"]["sdp"].split("s=n")[1].split("\r\n")[0]))
    assert message["type"] == "joined", message
    return numbers


@pytest.mark.parametrize("keep_mib", [8, 1])
async def test_what_a_stalled_socket_had_not_written_goes_to_the_one_that_replaces_it(
    tmp_path: Path, keep_mib: int
) -> None:
    """A half-open socket (the client's side is gone and the server does not know yet) is
    still attached when the client resumes from a new one, and the room's messages for it
    pile up in its outbox behind a full TCP window. The new connection takes those over, in
    order, as kept messages (PROTOCOL.md 2.8); only what was already handed to the old socket
    may be lost. Past the bound of what is kept (``resume_keep_bytes``: 1 MiB, less than what
    is queued here) the member is told it missed messages instead."""
    keep = {"resume_grace_seconds": GRACE, "resume_keep_bytes": keep_mib * 1024 * 1024}
    async with serving(tmp_path, **keep) as server:
        (alice,) = await seated(server, "r", "alice")
        bob = await stalled(server, "bob", "r")
        await alice.expect("member_joined")
        await flood(alice, bob)

        back, welcome = await bob.resume()
        numbers = await numbers_after_welcome(back)
        if keep_mib == 1:
            assert welcome["resumed"] == {"room": "r", "call": None, "missed": True}
            assert numbers == []
        else:
            assert welcome["resumed"] == {"room": "r", "call": None, "missed": False}
            assert numbers, "nothing the stalled socket had queued came to the new connection"
            assert numbers == list(range(numbers[0], SENT + 1)), numbers
        await alice.silent(0.2)  # a takeover: the room heard nothing
        # The old socket, read again, ends: with 4005, or with no close frame when the server
        # gave up on writing to it (PROTOCOL.md 2.7).
        bob.ws.transport.resume_reading()
        assert await bob.closed_with() in (4005, None)


async def test_what_a_dead_peer_had_not_written_is_kept_for_its_resume(tmp_path: Path) -> None:
    """The server declares a stalled socket dead (4004, nothing heard): what it had queued
    and not begun to write is kept for the member's resume, not written into the dead socket
    (nor dropped when that write never ends)."""
    limits = {"ping_after_seconds": 1.0, "dead_after_seconds": 3.0}
    # Room for what was queued: past resume_keep_bytes the member would rightly be told it
    # missed messages instead.
    keep = {"resume_grace_seconds": 10.0, "resume_keep_bytes": 8 * 1024 * 1024}
    async with serving(tmp_path, **keep, **limits) as server:
        (alice,) = await seated(server, "r", "alice")
        bob = await stalled(server, "bob", "r")
        await alice.expect("member_joined")
        await flood(alice, bob)  # before bob is found dead: alice heard nothing of him yet
        assert (await alice.expect("member_reconnecting", timeout=6))["id"] == bob.id

        back, welcome = await bob.resume()
        assert welcome["resumed"] == {"room": "r", "call": None, "missed": False}
        numbers = await numbers_after_welcome(back)
        assert numbers, "nothing the dead socket had queued was kept"
        assert numbers == list(range(numbers[0], SENT + 1)), numbers
        assert (await alice.expect("member_resumed"))["member"]["id"] == bob.id
        bob.drop()


@pytest.mark.parametrize("old_socket", ["attached", "lost"])
async def test_signing_in_again_replaces_the_old_place(
    server: RunningServer, old_socket: str
) -> None:
    """The same account without the token (a second tab, or a page that lost its token): its
    plain hello takes nothing, so a pre-join page or a connection check leaves the call
    alone; its join takes the seat over, past the lock, as the host the old place was."""
    headers = await account_headers(server, "alice")
    first = await Client.named(server, "ignored", headers)
    bob = await Client.named(server, "bob")
    await first.join("r")
    await bob.join("r")
    await first.expect("member_joined")
    await first.send(type="room_lock", locked=True)
    for member in (first, bob):
        assert (await member.expect("room_state"))["locked"] is True
        await member.expect("room_event")
    if old_socket == "lost":
        first.drop()
        await bob.expect("member_reconnecting")

    second = await Client.open(server, headers)
    welcome = await second.hello("ignored", reachable=False)  # no token: the account matches
    assert welcome["name"] == "alice" and welcome["resumed"] is None
    assert welcome["id"] != first.id
    await bob.alive()  # and heard nothing of the new connection
    if old_socket == "attached":
        await first.alive()  # still in the call

    joined = await second.join("r")  # locked, but the same person
    assert joined["hosts"] == [first.id, second.id]
    assert [m["id"] for m in joined["members"]] == [bob.id]  # not its own older place
    if old_socket == "attached":
        assert await first.closed_with() == 4005
    # The room sees one person: the newcomer comes in the older place's stead.
    arrived = await bob.expect("member_joined")
    assert (arrived["member"]["id"], arrived["replaces"]) == (second.id, first.id)
    assert (await bob.expect("room_state"))["hosts"] == [first.id, second.id]
    # The old place departs at once: its room is told it left; the host role stays.
    assert await bob.expect("member_left") == {"type": "member_left", "room": "r", "id": first.id}
    await refused_resume(server, first.token, headers)
    await bob.alive()


async def test_a_stranger_cannot_take_a_held_name(server: RunningServer) -> None:
    (alice,) = await seated(server, "r", "alice")
    stranger = await Client.open(server)
    await stranger.send(type="hello", versions=[1], name="alice", reachable=True)
    await stranger.error("name_taken")
    await alice.alive()


# ----------------------------------------------------------------------------- politeness


async def test_politeness_is_decided_by_ids(server: RunningServer) -> None:
    names = [f"m{i}" for i in range(6)]
    members: list[Client] = []
    views: dict[tuple[str, str], bool] = {}  # (receiver, member) -> polite
    for name in names:
        member = await Client.named(server, name)
        joined = await member.join("p")
        for info in joined["members"]:
            views[member.id, info["id"]] = info["polite"]
        for earlier in members:
            info = (await earlier.expect("member_joined"))["member"]
            views[earlier.id, info["id"]] = info["polite"]
        members.append(member)
    ids = [m.id for m in members]
    inverted = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :] if b < a]
    assert inverted, "every later joiner had a greater id; the test proves nothing"
    for (receiver, member), flag in views.items():
        assert flag is polite(receiver, member), (receiver, member, flag)
        assert views[member, receiver] is not flag  # exactly one polite side per pair


# ----------------------------------------------------------------------------- restarts


async def test_after_a_restart_members_are_seated_again(tmp_path: Path) -> None:
    async with serving(tmp_path, resume_grace_seconds=GRACE) as first:
        alice, bob = await seated(first, "r", "alice", "bob")
        await alice.send(type="chat", text="before", id="before-1")
        before = await alice.expect("chat")
        await bob.expect("chat")
        alice.drop()
        bob.drop()
    async with serving(tmp_path, resume_grace_seconds=GRACE) as second:
        # bob first this time: politeness must not depend on the order.
        bob2, welcome = await bob.resume(server=second)
        assert (welcome["id"], welcome["name"]) == (bob.id, "bob")
        assert welcome["resumed"] == {"room": "r", "call": None, "missed": True}
        joined = await bob2.expect("joined")
        assert joined["room"] == "r" and joined["members"] == []
        assert joined["history"] == [without_type(before)] and joined["last_seq"] == 1

        alice2, welcome = await alice.resume(server=second)
        assert welcome["id"] == alice.id
        assert welcome["resumed"] == {"room": "r", "call": None, "missed": True}
        joined = await alice2.expect("joined")
        assert [m["id"] for m in joined["members"]] == [bob.id]
        alice_view = joined["members"][0]["polite"]
        resumed = await bob2.expect("member_resumed")  # not member_joined
        assert resumed["room"] == "r" and resumed["member"]["id"] == alice.id
        bob_view = resumed["member"]["polite"]
        assert (alice_view, bob_view) == (polite(alice.id, bob.id), polite(bob.id, alice.id))
        assert alice_view is not bob_view
        # alice hosted before the restart: her token says so; bob, first back, is no host.
        assert joined["hosts"] == [alice.id]
        assert (await bob2.expect("room_state"))["hosts"] == [alice.id]

        await bob2.send(type="chat", text="after")
        for member in (alice2, bob2):
            assert (await member.expect("chat"))["seq"] == 2  # numbering continues


async def test_after_a_restart_a_call_room_is_rebuilt_for_its_two(tmp_path: Path) -> None:
    async with serving(tmp_path, resume_grace_seconds=GRACE) as first:
        alice, bob, call, room = await in_a_call(first)
        alice.drop()
        bob.drop()
    async with serving(tmp_path, resume_grace_seconds=GRACE) as second:
        alice2, welcome = await alice.resume(server=second)
        assert welcome["resumed"] == {"room": room, "call": call, "missed": True}
        joined = await alice2.expect("joined")
        assert (joined["room"], joined["private"], joined["members"]) == (room, True, [])
        eve = await Client.named(second, "eve")
        await eve.send(type="join", room=room)
        await eve.error("no_such_room")  # not even while bob is not back yet

        bob2, welcome = await bob.resume(server=second)
        assert welcome["resumed"] == {"room": room, "call": call, "missed": True}
        joined = await bob2.expect("joined")
        assert [m["id"] for m in joined["members"]] == [alice.id]
        assert (await alice2.expect("member_resumed"))["member"]["id"] == bob.id
        await eve.send(type="join", room=room)
        await eve.error("no_such_room")

        # It is a call's room: hanging up ends it for both.
        await alice2.send(type="leave")
        assert (await alice2.expect("call_ended"))["reason"] == "hangup"
        await alice2.expect("left")
        assert (await bob2.expect("member_left"))["id"] == alice.id
        assert (await bob2.expect("call_ended"))["reason"] == "hangup"
        await bob2.expect("left")


async def test_after_a_restart_a_full_room_resumes_without_a_room(tmp_path: Path) -> None:
    async with serving(tmp_path, resume_grace_seconds=GRACE, max_room_members=2) as first:
        alice, _ = await seated(first, "r", "alice", "bob")
        alice.drop()
    async with serving(tmp_path, resume_grace_seconds=GRACE, max_room_members=2) as second:
        carol, dave = await seated(second, "r", "carol", "dave")
        back, welcome = await alice.resume(server=second)
        assert welcome["id"] == alice.id
        assert welcome["resumed"]["room"] is None and welcome["resumed"]["call"] is None
        await back.silent(0.3)  # no joined
        await carol.silent(0.1)
        await dave.silent(0.1)


async def test_after_a_restart_a_hung_up_call_resumes_without_a_room(tmp_path: Path) -> None:
    async with serving(tmp_path, resume_grace_seconds=GRACE) as first:
        alice, bob, _, _ = await in_a_call(first)
        alice.drop()
        bob.drop()
    async with serving(tmp_path, resume_grace_seconds=GRACE) as second:
        alice2, _ = await alice.resume(server=second)
        await alice2.expect("joined")
        await alice2.send(type="leave")  # alice hangs up before bob is back
        assert (await alice2.expect("call_ended"))["reason"] == "hangup"
        await alice2.expect("left")
        bob2, welcome = await bob.resume(server=second)
        assert welcome["id"] == bob.id
        assert welcome["resumed"]["room"] is None and welcome["resumed"]["call"] is None
        await bob2.silent(0.3)


async def test_after_a_restart_a_name_taken_meanwhile_fails_the_resume(tmp_path: Path) -> None:
    async with serving(tmp_path, resume_grace_seconds=GRACE) as first:
        (bob,) = await seated(first, "r", "bob")
        bob.drop()
    async with serving(tmp_path, resume_grace_seconds=GRACE) as second:
        (someone,) = await seated(second, "r", "bob")  # a new "bob", before bob is back
        late = await refused_resume(second, bob.token)
        await late.send(type="hello", versions=[1], name="bob", reachable=True)
        await late.error("name_taken")
        await someone.silent(0.2)  # the room heard of no second bob
