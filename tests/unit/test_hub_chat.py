"""Chat: numbering, storing before delivering, history on join and on request, text rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from salon.protocol import Outgoing
from salon.protocol.messages import ChatDelivered, ChatEntry, History, Joined

from .conftest import World


async def test_chat_is_numbered_stamped_and_delivered_to_everyone(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")
    world.clock.advance(2.5)

    await alice.send(type="chat", text="hello")
    world.clock.advance(1)
    await bob.send(type="chat", text="hi")

    for client in (alice, bob):
        first, second = client.take()
        assert isinstance(first, ChatDelivered)
        assert isinstance(second, ChatDelivered)
        assert (first.seq, first.sender, first.name, first.text) == (1, alice.id, "alice", "hello")
        assert (second.seq, second.sender, second.name, second.text) == (2, bob.id, "bob", "hi")
        assert first.ts == 1_700_000_002_500
        assert second.ts == 1_700_000_003_500
        assert first.room == "lobby"
        assert first.id != second.id


async def test_chat_on_the_wire_names_the_sender_as_from(world: World) -> None:
    alice, _bob = await world.connect_in("lobby", "alice", "bob")
    await alice.send(type="chat", text="hello")  # a forged from or name is refused (codec)
    (wire,) = alice.take_wire()
    assert wire["type"] == "chat"
    assert wire["from"] == alice.id
    assert wire["name"] == "alice"
    assert "sender" not in wire


async def test_seq_counts_per_room(world: World) -> None:
    (alice,) = await world.connect_in("one", "alice")
    (bob,) = await world.connect_in("two", "bob")

    for text in ("a", "b", "c"):
        await alice.send(type="chat", text=text)
    await bob.send(type="chat", text="x")

    assert [m.seq for m in alice.take()] == [1, 2, 3]  # type: ignore[union-attr]
    assert [m.seq for m in bob.take()] == [1]  # type: ignore[union-attr]


async def test_chat_is_stored_before_anyone_sees_it(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")
    seen_stored: list[bool] = []

    def check(out: Outgoing) -> None:
        if isinstance(out.message, ChatDelivered):
            stored = world.chats.rooms["lobby"]
            seen_stored.append(any(e.id == out.message.id for e in stored))

    alice.transport.on_send = check
    bob.transport.on_send = check

    await alice.send(type="chat", text="durable")

    assert seen_stored == [True, True]
    (entry,) = world.chats.rooms["lobby"]
    assert (entry.seq, entry.sender, entry.text) == (1, alice.id, "durable")


async def test_a_chat_that_could_not_be_stored_is_not_delivered(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")

    async def broken(entry: ChatEntry) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(world.chats, "append", broken)
    await alice.send(type="chat", text="lost", ref="c1")

    error = alice.take_error()
    assert (error.code, error.ref) == ("internal", "c1")
    assert bob.take() == []
    monkeypatch.undo()
    await alice.send(type="chat", text="kept")
    assert bob.take_one(ChatDelivered).seq == 1


async def test_chat_before_join(world: World) -> None:
    alice = await world.connect("alice")
    await alice.send(type="chat", text="anyone?")
    assert alice.take_error().code == "not_joined"
    assert world.chats.rooms == {}


async def test_history_on_join_is_the_most_recent_oldest_first(
    make_world: Callable[..., World],
) -> None:
    world = make_world(history_on_join=3)
    (alice,) = await world.connect_in("lobby", "alice")
    for n in range(1, 6):
        await alice.send(type="chat", text=f"m{n}")
    bob = await world.connect("bob")

    await bob.send(type="join", room="lobby")

    joined = bob.take_one(Joined)
    assert [(e.seq, e.text) for e in joined.history] == [(3, "m3"), (4, "m4"), (5, "m5")]
    assert joined.last_seq == 5


async def test_history_comes_back_from_the_store_when_a_room_reopens(
    make_world: Callable[..., World],
) -> None:
    world = make_world(history_on_join=2)
    (alice,) = await world.connect_in("lobby", "alice")
    for n in range(1, 4):
        await alice.send(type="chat", text=f"m{n}")
    alice.closed()
    assert "lobby" not in world.hub.rooms

    bob = await world.connect("bob")
    await bob.send(type="join", room="lobby")
    joined = bob.take_one(Joined)
    assert [e.text for e in joined.history] == ["m2", "m3"]
    assert joined.last_seq == 3

    await bob.send(type="chat", text="m4")
    assert bob.take_one(ChatDelivered).seq == 4
    assert [e.seq for e in world.chats.rooms["lobby"]] == [1, 2, 3, 4]


async def test_no_history_on_join_when_the_limit_is_zero(make_world: Callable[..., World]) -> None:
    world = make_world(history_on_join=0)
    (alice,) = await world.connect_in("lobby", "alice")
    await alice.send(type="chat", text="one")
    await alice.send(type="chat", text="two")
    bob = await world.connect("bob")

    await bob.send(type="join", room="lobby")

    joined = bob.take_one(Joined)
    assert joined.history == []
    assert joined.last_seq == 2


async def test_history_request_pages_from_since(make_world: Callable[..., World]) -> None:
    world = make_world(history_page=2)
    (alice,) = await world.connect_in("lobby", "alice")
    for n in range(1, 6):
        await alice.send(type="chat", text=f"m{n}")
    alice.take()

    pages: list[tuple[list[int], bool]] = []
    since = 0
    while True:
        await alice.send(type="history", since=since)
        page = alice.take_one(History)
        assert page.room == "lobby"
        pages.append(([e.seq for e in page.messages], page.more))
        if not page.more:
            break
        since = page.messages[-1].seq

    assert pages == [([1, 2], True), ([3, 4], True), ([5], False)]
    await alice.send(type="history", since=3)
    page = alice.take_one(History)
    assert ([e.seq for e in page.messages], page.more) == ([4, 5], False)


async def test_history_of_an_exact_page_says_no_more(make_world: Callable[..., World]) -> None:
    world = make_world(history_page=2)
    (alice,) = await world.connect_in("lobby", "alice")
    await alice.send(type="chat", text="a")
    await alice.send(type="chat", text="b")
    alice.take()
    await alice.send(type="history", since=0)
    page = alice.take_one(History)
    assert ([e.text for e in page.messages], page.more) == (["a", "b"], False)


async def test_history_only_of_your_own_room(world: World) -> None:
    (alice,) = await world.connect_in("one", "alice")
    (bob,) = await world.connect_in("two", "bob")
    await alice.send(type="chat", text="private to one")
    await bob.send(type="history", since=0)
    page = bob.take_one(History)
    assert (page.room, page.messages) == ("two", [])


async def test_history_request_needs_a_room_and_a_valid_since(world: World) -> None:
    alice = await world.connect("alice")
    await alice.send(type="history", since=0)
    assert alice.take_error().code == "not_joined"
    await alice.send(type="join", room="lobby")
    alice.take()
    await alice.send(type="history", since=-1)
    assert alice.take_error().code == "bad_message"


async def test_chat_text_at_the_limit_is_accepted_and_one_more_is_refused(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")
    assert world.limits.max_chat_chars == 4000

    await alice.send(type="chat", text="x" * 4000)
    assert len(bob.take_one(ChatDelivered).text) == 4000
    alice.take()

    await alice.send(type="chat", text="x" * 4001)
    assert alice.take_error().code == "invalid_text"
    assert bob.take() == []


async def test_the_chat_limit_comes_from_settings(make_world: Callable[..., World]) -> None:
    world = make_world(max_chat_chars=5)
    (alice,) = await world.connect_in("lobby", "alice")
    await alice.send(type="chat", text="12345")
    assert alice.take_one(ChatDelivered).text == "12345"
    await alice.send(type="chat", text="123456")
    assert alice.take_error().code == "invalid_text"


async def test_chat_length_counts_after_nfc(make_world: Callable[..., World]) -> None:
    world = make_world(max_chat_chars=3)
    (alice,) = await world.connect_in("lobby", "alice")
    await alice.send(type="chat", text="e\u0301" * 3)
    assert alice.take_one(ChatDelivered).text == "\u00e9" * 3


@pytest.mark.parametrize("text", ["", " ", "\n\t  \n", "\u3000"])
async def test_blank_chat_is_refused(world: World, text: str) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")
    await alice.send(type="chat", text=text)
    assert alice.take_error().code == "invalid_text"
    assert bob.take() == []
    assert world.chats.rooms["lobby"] == []


@pytest.mark.parametrize("text", ["a\x00b", "bell\x07", "esc\x1b[31m", "del\x7f", "a\u2028b"])
async def test_chat_control_characters_are_refused(world: World, text: str) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")
    await alice.send(type="chat", text=text)
    assert alice.take_error().code == "invalid_text"
    assert bob.take() == []


async def test_chat_keeps_newlines_and_tabs(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")
    text = "line one\n\tindented\nline three"
    await alice.send(type="chat", text=text)
    assert bob.take_one(ChatDelivered).text == text
    assert world.chats.rooms["lobby"][0].text == text


async def test_seq_continues_from_the_store_without_history_on_join(
    make_world: Callable[..., World],
) -> None:
    world = make_world(history_on_join=0)
    (alice,) = await world.connect_in("lobby", "alice")
    await alice.send(type="chat", text="one")
    await alice.send(type="chat", text="two")
    alice.closed()
    assert world.hub.rooms == {}

    bob = await world.connect("bob")
    await bob.send(type="join", room="lobby")
    joined = bob.take_one(Joined)
    assert (joined.history, joined.last_seq) == ([], 2)
    await bob.send(type="chat", text="three")
    assert bob.take_one(ChatDelivered).seq == 3
