"""Chat: numbered, persisted before delivery, replayed on join, paged on request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from salon.protocol.messages import ChatEntry
from salon.store.chat import SqlChatRepository
from salon.store.database import open_database
from tests.integration.conftest import database_options
from tests.integration.peer import Peer
from tests.integration.server import RunningServer, running_server


@pytest.fixture
def server(tmp_path: Path, database_url: str | None) -> Iterator[RunningServer]:
    """Chat is the store's: every test here runs on SQLite and on PostgreSQL."""
    with running_server(tmp_path, options=database_options(database_url)) as running:
        yield running


@pytest.fixture
def make_server(
    tmp_path: Path, database_url: str | None
) -> Callable[..., AbstractContextManager[RunningServer]]:
    def make(**limits: Any) -> AbstractContextManager[RunningServer]:
        return running_server(tmp_path, options=database_options(database_url), **limits)

    return make


async def test_chat_is_ordered_and_replayed_to_late_joiners(peers: Callable[..., Any]) -> None:
    alice, bob, carol = await peers("alice", "bob", "carol")
    await alice.join("r")
    await bob.join("r")
    await alice.expect("member_joined")

    for i in range(5):
        await alice.send(type="chat", text=f"message {i}")
    for peer in (alice, bob):  # the sender gets its own message back, with its seq
        got = [await peer.expect("chat") for _ in range(5)]
        assert [m["seq"] for m in got] == [1, 2, 3, 4, 5]
        assert [m["text"] for m in got] == [f"message {i}" for i in range(5)]
        assert {m["from"] for m in got} == {alice.id} and {m["name"] for m in got} == {"alice"}
        assert all(isinstance(m["ts"], int) and m["ts"] > 1_600_000_000_000 for m in got)

    joined = await carol.join("r")
    assert [m["text"] for m in joined["history"]] == [f"message {i}" for i in range(5)]
    assert joined["last_seq"] == 5

    await carol.send(type="history", since=3)
    page = await carol.expect("history")
    assert [m["seq"] for m in page["messages"]] == [4, 5] and page["more"] is False


async def test_chat_text_is_delivered_verbatim(peers: Callable[..., Any]) -> None:
    alice, bob = await peers("alice", "bob")
    await alice.join("r")
    await bob.join("r")
    await alice.expect("member_joined")
    payload = '<img src=x onerror=alert(1)>\n\t"quotes" & ünïcödé 🎉'
    await alice.send(type="chat", text=payload)
    assert (await bob.expect("chat"))["text"] == payload


async def test_chat_survives_a_server_restart(tmp_path: Path, database_url: str | None) -> None:
    options = database_options(database_url)
    with running_server(tmp_path, options=options) as server:
        alice = await Peer.greeted(server, "alice")
        await alice.join("keep")
        await alice.send(type="chat", text="remember me")
        await alice.expect("chat")
        await alice.close()
    with running_server(tmp_path, options=options) as server:
        bob = await Peer.greeted(server, "bob")
        joined = await bob.join("keep")
        assert [m["text"] for m in joined["history"]] == ["remember me"]
        await bob.send(type="chat", text="and me")
        assert (await bob.expect("chat"))["seq"] == 2  # numbering continues, no collision
        await bob.close()


async def test_history_pages(make_server: Callable[..., Any]) -> None:
    with make_server(history_on_join=3, history_page=4) as server:
        alice = await Peer.greeted(server, "alice")
        await alice.join("r")
        for i in range(10):
            await alice.send(type="chat", text=str(i))
            await alice.expect("chat")
        bob = await Peer.greeted(server, "bob")
        joined = await bob.join("r")
        assert [m["seq"] for m in joined["history"]] == [8, 9, 10]
        await bob.send(type="history", since=0)
        first = await bob.expect("history")
        assert [m["seq"] for m in first["messages"]] == [1, 2, 3, 4] and first["more"] is True
        await bob.send(type="history", since=8)
        last = await bob.expect("history")
        assert [m["seq"] for m in last["messages"]] == [9, 10] and last["more"] is False
        await alice.close()
        await bob.close()


async def test_a_room_keeps_its_newest_messages_within_its_quota(
    make_server: Callable[..., Any],
) -> None:
    with make_server(
        max_room_chat_messages=10, history_on_join=5, chat_burst=1000, history_page=100
    ) as server:
        alice = await Peer.greeted(server, "alice")
        await alice.join("r")
        for i in range(25):
            await alice.send(type="chat", text=str(i))
            await alice.expect("chat")
        kept: list[int] = []
        for _ in range(100):  # the last prune runs in a task of its own, beside this reading
            await alice.send(type="history", since=0)
            kept = [m["seq"] for m in (await alice.expect("history"))["messages"]]
            if kept[0] == 16:
                break
            await asyncio.sleep(0.02)
        assert kept == list(range(16, 26))
        await alice.close()


async def test_chat_past_its_retention_is_gone_after_a_restart(
    tmp_path: Path, database_url: str | None
) -> None:
    """The retention sweep runs at start (and hourly): a message stored two days ago, on a
    server that keeps one day, is gone; the newer one stays."""
    options = database_options(database_url)
    with running_server(tmp_path, options=options, chat_retention_days=1) as server:
        alice = await Peer.greeted(server, "alice")
        await alice.join("r")
        for message in ("old", "new"):
            await alice.send(type="chat", text=message)
            await alice.expect("chat")
        await alice.close()
        url = server.settings.sqlalchemy_url()
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:  # "old" was sent two days ago
            two_days_ms = 2 * 86_400_000
            await conn.execute(
                text("UPDATE chat_messages SET ts = ts - :d WHERE text = 'old'"), {"d": two_days_ms}
            )
    finally:
        await engine.dispose()
    with running_server(tmp_path, options=options, chat_retention_days=1) as server:
        bob = await Peer.greeted(server, "bob")
        await bob.join("r")
        for _ in range(100):  # the sweep at start runs beside the first requests
            await bob.send(type="history", since=0)
            history = [m["text"] for m in (await bob.expect("history"))["messages"]]
            if history == ["new"]:
                break
            await asyncio.sleep(0.05)
        assert history == ["new"]
        await bob.close()


async def test_expiry_deletes_in_batches_on_the_real_database(
    tmp_path: Path, database_url: str | None
) -> None:
    """Each batch is a transaction of its own (a single huge delete held SQLite's write lock
    past the store's timeout and was rolled back); all of them together delete it all."""
    url = database_url or f"sqlite+aiosqlite:///{tmp_path / 'salon.db'}"
    engine = await open_database(url)
    try:
        chats = SqlChatRepository(engine)
        for seq in range(1, 8):
            entry = ChatEntry(
                room="r", id=f"m{seq}", seq=seq, ts=seq, sender="a", name="a", text="x"
            )
            await chats.append(entry)
        assert await chats.expire(6, batch=2) == 5  # ts 1..5, in three batches
        assert [e.seq for e in await chats.recent("r", 10)] == [6, 7]
    finally:
        await engine.dispose()
