"""Chat exactly once: client ids, resends, and chat that stays whole when sockets die mid-write.

The regression here is the issue's race: "member V sends a chat and resets its TCP
connection; within about a millisecond member S sends V a signal; S's next chat fails with
``internal`` until the room empties". S's signal wakes V's writer, which finds the socket
gone and cancels V's reader while it is still storing V's chat; the old hub lost the new
``last_seq`` (the row was committed, memory was not updated) and every later chat of the
room collided with the stored seq.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import database_options
from tests.integration.server import RunningServer
from tests.integration.test_resume import Client, seated, serving, without_type

RACE_ATTEMPTS = 80  # the old code failed in each of 22 runs, at attempt 0 to 36 (median 7)
# Delays between V's reset and S's signal, cycled through the attempts: the window is V's
# commit, about a millisecond on SQLite. Here a sleep is the point, not a wait for an event.
RACE_DELAYS = (0.0, 0.0005, 0.001, 0.0015, 0.002, 0.003)


@pytest.fixture
async def server(tmp_path: Path, database_url: str | None) -> AsyncIterator[RunningServer]:
    """Client ids are the store's: these tests run on SQLite and on PostgreSQL. Chat comes
    faster than a person's rate here (resends after each reset count too): these tests are
    about delivery, not the rate (tests/unit/test_chat_storage.py is)."""
    options = database_options(database_url)
    async with serving(
        tmp_path,
        resume_grace_seconds=5,
        chat_burst=1000,
        address_chat_burst=10_000,
        options=options,
    ) as running:
        yield running


async def history(member: Client) -> list[dict[str, Any]]:
    """The room's whole stored chat, paging on."""
    entries: list[dict[str, Any]] = []
    while True:
        await member.send(type="history", since=entries[-1]["seq"] if entries else 0)
        page = await member.until(
            lambda m: m["type"] == "history",
            # Members away in the race room may come back, or their grace window may end.
            skip=lambda m: (
                m["type"]
                in {"chat", "joined", "member_reconnecting", "member_resumed", "member_left"}
            ),
        )
        entries += page["messages"]
        if not page["more"]:
            return entries


def is_joined(message: dict[str, Any]) -> bool:
    return bool(message["type"] == "joined")


# ----------------------------------------------------------------------------- client ids


async def test_a_resent_chat_is_stored_once(server: RunningServer) -> None:
    alice, bob = await seated(server, "r", "alice", "bob")
    await alice.send(type="chat", text="hello", id="msg-1")
    first = await alice.expect("chat")
    assert first["client_id"] == "msg-1" and first["seq"] == 1
    assert await bob.expect("chat") == first

    await alice.send(type="chat", text="hello", id="msg-1")
    assert await alice.expect("chat") == first  # the stored entry again, same seq
    await alice.send(type="chat", text="hello, edited", id="msg-1")
    assert await alice.expect("chat") == first  # the id decides, not the text
    await bob.silent(0.3)  # the others got it once

    await alice.send(type="chat", text="no id")
    plain = await alice.expect("chat")
    assert plain["client_id"] is None and plain["seq"] == 2
    assert await bob.expect("chat") == plain
    assert await history(bob) == [without_type(first), without_type(plain)]

    # Ids are the room's: the same id in another room is another message.
    (carol,) = await seated(server, "s", "carol")
    await carol.send(type="chat", text="elsewhere", id="msg-1")
    other = await carol.expect("chat")
    assert (other["room"], other["seq"], other["text"]) == ("s", 1, "elsewhere")


@pytest.mark.parametrize("bad", ["", "x" * 65, "has space", "dot.ted", "ünï", 7])
async def test_a_client_id_outside_the_rules_is_a_bad_message(
    server: RunningServer, bad: Any
) -> None:
    (alice,) = await seated(server, "r", "alice")
    await alice.send(type="chat", text="hi", id=bad)
    await alice.error("bad_message")
    await alice.send(type="chat", text="hi", id="A-z_09" + "x" * 58)  # 64, every class
    assert (await alice.expect("chat"))["seq"] == 1


async def test_a_chat_sent_before_a_lost_socket_is_resent_and_stored_once(
    server: RunningServer,
) -> None:
    alice, bob = await seated(server, "r", "alice", "bob")
    await alice.send(type="chat", text="did it get there?", id="maybe-1")
    alice.drop()  # before its own copy came back: the client cannot know
    delivered = await bob.until(
        lambda m: m["type"] == "chat", skip=lambda m: m["type"] == "member_reconnecting"
    )
    back, _ = await alice.resume()
    await back.send(type="chat", text="did it get there?", id="maybe-1")  # the client resends
    # The stored entry, same seq (after the joined snapshot that ends the resume).
    assert await back.until(lambda m: m["type"] == "chat", skip=is_joined) == delivered
    await bob.until(
        lambda m: m["type"] == "member_resumed", skip=lambda m: m["type"] == "member_reconnecting"
    )
    await bob.silent(0.3)  # bob has it once
    assert [m["client_id"] for m in await history(back)] == ["maybe-1"]


async def test_a_message_that_could_not_be_written_is_kept(server: RunningServer) -> None:
    """alice's socket is gone before the server delivers her own chat back to her: that copy
    was addressed to her while her socket was lost, so it is kept (or she is told missed).
    Never lost: at worst the server wrote it before it learnt that the socket was gone (into
    the buffers of a connection alice had reset), and the resume's snapshot carries it."""
    alice, bob = await seated(server, "r", "alice", "bob")
    await alice.send(type="chat", text="mine", id="mine-1")
    alice.drop()
    delivered = await bob.until(
        lambda m: m["type"] == "chat", skip=lambda m: m["type"] == "member_reconnecting"
    )
    back, welcome = await alice.resume()
    if welcome["resumed"]["missed"]:
        joined = await back.expect("joined")
        assert without_type(delivered) in joined["history"]
    else:
        first = await back.recv()
        if first["type"] == "chat":  # kept: after the welcome, before the snapshot
            assert first == delivered
            await back.expect("joined")
        else:  # written to the dead socket: the snapshot that ends the resume has it
            assert first["type"] == "joined", first
            assert without_type(delivered) in first["history"]


async def test_a_resend_after_a_restart_is_still_stored_once(
    tmp_path: Path, database_url: str | None
) -> None:
    options = database_options(database_url)
    async with serving(tmp_path, resume_grace_seconds=5, options=options) as first:
        alice, bob = await seated(first, "r", "alice", "bob")
        await alice.send(type="chat", text="once", id="restart-1")
        stored = await alice.expect("chat")
        alice.drop()
        bob.drop()
    async with serving(tmp_path, resume_grace_seconds=5, options=options) as second:
        back, _ = await alice.resume(server=second)
        joined = await back.expect("joined")
        assert joined["history"] == [without_type(stored)]
        await back.send(type="chat", text="once", id="restart-1")
        assert await back.expect("chat") == stored
        assert [m["seq"] for m in await history(back)] == [1]


# ----------------------------------------------------------------------------- the race


def room_noise(message: dict[str, Any]) -> bool:
    """What a member of the race room may hear about others coming and going."""
    kind = message["type"]
    if kind == "error":
        return bool(message["code"] == "no_such_member")  # V may be gone before the signal
    return kind in {"member_joined", "member_left", "member_reconnecting", "chat"}


async def test_a_reset_mid_chat_then_a_signal_leaves_the_room_chat_working(
    tmp_path: Path,
) -> None:
    """The issue's race, tried RACE_ATTEMPTS times at several delays. It uses only what the
    protocol had before resume, so it runs against the old code too (where it fails)."""
    # A lost member's seat is kept for the grace window: room for every attempt's V.
    # A race test, not a rate test: the room takes all its joins and chat at once.
    async with serving(
        tmp_path,
        max_room_members=RACE_ATTEMPTS + 1,  # S and every V, even if no seat is freed
        resume_grace_seconds=0.5,
        room_join_burst=1000,
        handshake_burst=1000,
        chat_burst=1000,
        address_chat_burst=10_000,
    ) as server:
        s = await Client.named(server, "S")
        await s.join("race", token=False)  # the old server sends no resume_token
        sent: list[str] = []
        for attempt in range(RACE_ATTEMPTS):
            v = await Client.named(server, f"V{attempt}")
            await v.join("race", token=False)
            await s.until(
                lambda m, v=v: m["type"] == "member_joined" and m["member"]["id"] == v.id,
                skip=room_noise,
            )
            await v.send(type="chat", text=f"V{attempt} says bye")
            v.drop(reset=True)
            await asyncio.sleep(RACE_DELAYS[attempt % len(RACE_DELAYS)])
            await s.send(type="signal", to=v.id, candidate={"candidate": f"candidate:{attempt}"})
            text = f"S after V{attempt}"
            await s.send(type="chat", text=text)
            sent.append(text)

            def internal(m: dict[str, Any]) -> bool:
                return m["type"] == "error" and m["code"] == "internal"

            mine = await s.until(
                lambda m, text=text: internal(m) or (m["type"] == "chat" and m["text"] == text),
                skip=room_noise,
            )
            assert not internal(mine), f"attempt {attempt}: S's chat failed: {mine}"

        # The stored log is whole: 1..n, each of S's chats once, each of V's at most once.
        entries = await history(s)
        assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
        texts = [e["text"] for e in entries]
        assert [t for t in texts if t.startswith("S ")] == sent
        assert len(set(texts)) == len(texts)


# ----------------------------------------------------------------------------- under load

ROOMS = 3
TALKERS = 4  # per room
CHATS = 15  # per talker
DROP_CHANCE = 0.15  # after each chat sent


@dataclass(eq=False)
class Talker:
    """A member that chats like the client: it keeps what it sent until its own copy comes
    back, and after a resume sends those again with the same id."""

    client: Client
    rng: random.Random
    sent: dict[str, str] = field(default_factory=dict)  # client id -> text
    acked: dict[str, int] = field(default_factory=dict)  # client id -> seq
    got: dict[int, dict[str, Any]] = field(default_factory=dict)  # seq -> entry
    live: set[int] = field(default_factory=set)  # seqs delivered as chat
    resumes: int = 0

    async def talk(self, chats: int) -> None:
        for i in range(chats):
            cid = f"{self.client.name}-{i}"
            self.sent[cid] = f"{self.client.name} says {i}"
            await self.client.send(type="chat", text=self.sent[cid], id=cid)
            if self.rng.random() < DROP_CHANCE:
                await self.bounce()
            await self.read_until(lambda cid=cid: cid in self.acked)

    async def bounce(self) -> None:
        """Lose the socket (FIN or RST), resume, then do what the spec asks of a client:
        resend what has not come back (same ids) and ask for what it may have missed."""
        self.client.drop(reset=self.rng.random() < 0.5)
        self.client, _ = await self.client.resume()
        self.resumes += 1
        for cid, text in self.sent.items():
            if cid not in self.acked:
                await self.client.send(type="chat", text=text, id=cid)
        have = 0
        while have + 1 in self.got:
            have += 1
        await self.client.send(type="history", since=have)

    def note(self, entry: dict[str, Any], *, live: bool = True) -> None:
        """Record an entry: delivered live (``chat``), or fetched (history, a snapshot)."""
        seq, cid = entry["seq"], entry["client_id"]
        mine = entry["from"] == self.client.id
        before = self.got.get(seq)
        assert before in (None, entry), f"seq {seq} is two messages: {before} and {entry}"
        if live:
            # Delivered once; only the answer to the sender's own resend comes again.
            assert seq not in self.live or (mine and cid in self.sent), f"twice: {entry}"
            self.live.add(seq)
        self.got[seq] = entry
        if mine:
            assert self.acked.setdefault(cid, seq) == seq, f"{cid} stored twice"

    async def read_until(self, done: Any, timeout: float = 20) -> None:
        while not done():
            message = await self.client.recv(timeout)
            kind = message["type"]
            if kind == "chat":
                self.note(message)
            elif kind in ("history", "joined"):  # asked after a resume; a snapshot
                for entry in message["history" if kind == "joined" else "messages"]:
                    self.note({"type": "chat", **entry}, live=False)
                if kind == "history" and message["more"]:
                    await self.client.send(type="history", since=message["messages"][-1]["seq"])
            else:
                assert kind in {"member_reconnecting", "member_resumed"}, message


async def test_chat_stays_whole_under_concurrent_chats_and_resets(server: RunningServer) -> None:
    seed = secrets.randbits(32)
    rooms: list[list[Talker]] = []
    for r in range(ROOMS):
        names = [f"r{r}m{m}" for m in range(TALKERS)]
        clients = await seated(server, f"load-{r}", *names)
        rooms.append(
            [Talker(c, random.Random(seed + r * TALKERS + m)) for m, c in enumerate(clients)]
        )
    talkers = [t for room in rooms for t in room]
    await asyncio.gather(*(t.talk(CHATS) for t in talkers))
    total = TALKERS * CHATS
    for t in talkers:  # everything reaches everyone, live or by asking history after a resume
        await t.read_until(lambda t=t: len(t.got) == total)

    assert sum(t.resumes for t in talkers) > 0, f"seed {seed}: no socket was lost"
    for r, room in enumerate(rooms):
        (auditor,) = await seated(server, f"load-{r}", f"auditor{r}")
        entries = await history(auditor)
        assert [e["seq"] for e in entries] == list(range(1, total + 1)), f"seed {seed}"
        ids = [e["client_id"] for e in entries]
        assert sorted(ids) == sorted(cid for t in room for cid in t.sent), f"seed {seed}"
        by_id = {e["client_id"]: e["seq"] for e in entries}
        for t in room:
            assert t.acked == {cid: by_id[cid] for cid in t.sent}, f"seed {seed}"
            assert [t.got[seq] for seq in sorted(t.got)] == [
                {"type": "chat", **e} for e in entries
            ], f"seed {seed}"
