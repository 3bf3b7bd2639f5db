"""Chat: numbered, persisted before delivery, replayed on join, paged on request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

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
