"""Presence: unique names, watching who is online, and the rules for display names."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest

from salon.protocol.messages import Presence, PresenceChanged, Welcome

from .conftest import World


async def hello(world: World, name: str) -> tuple[object, str | None]:
    """Say hello as ``name``: the welcome, or the error code."""
    client = world.open()
    await client.send(type="hello", versions=[1], name=name)
    (answer,) = client.take()
    if isinstance(answer, Welcome):
        return answer, None
    return answer, answer.code  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("alice", "alice"),
        ("Alice", "alice"),
        ("ALICE", "alice"),
        ("Ren\u00e9", "Rene\u0301"),  # composed vs decomposed é
        ("rene\u0301", "REN\u00c9"),
        ("Stra\u00dfe", "STRASSE"),  # casefold, not lower
        ("bob", "  bob  "),
    ],
)
async def test_names_are_unique_ignoring_case_and_normalisation(
    world: World, first: str, second: str
) -> None:
    await world.connect(first)
    client = world.open()

    await client.send(type="hello", versions=[1], name=second, ref="h")

    error = client.take_error()
    assert (error.code, error.ref) == ("name_taken", "h")
    assert world.hub.online() == 1


async def test_a_refused_hello_can_be_retried_with_another_name(world: World) -> None:
    await world.connect("alice")
    client = world.open()
    await client.send(type="hello", versions=[1], name="Alice")
    assert client.take_error().code == "name_taken"

    await client.send(type="hello", versions=[1], name="alice2")

    assert client.take_one(Welcome).name == "alice2"
    assert world.hub.online() == 2


async def test_a_name_is_freed_on_disconnect(world: World) -> None:
    alice = await world.connect("alice")
    alice.closed()
    assert world.hub.online() == 0

    again = await world.connect("ALICE")

    assert again.welcome is not None
    assert again.welcome.name == "ALICE"


async def test_a_session_that_never_said_hello_frees_nothing(world: World) -> None:
    await world.connect("alice")
    stranger = world.open()
    await stranger.send(type="hello", versions=[1], name="alice")
    stranger.take()

    stranger.closed()

    assert world.hub.online() == 1
    taken = world.open()
    await taken.send(type="hello", versions=[1], name="alice")
    assert taken.take_error().code == "name_taken"


async def test_presence_watch_sends_a_sorted_snapshot_then_changes(world: World) -> None:
    for name in ("carol", "Bob", "alice"):
        await world.connect(name)
    watcher = await world.connect("watcher")

    await watcher.send(type="presence_watch", watch=True)
    assert watcher.take_one(Presence).names == ["alice", "Bob", "carol", "watcher"]

    dave = await world.connect("dave")
    assert watcher.take_one(PresenceChanged) == PresenceChanged(name="dave", online=True)

    dave.closed()
    assert watcher.take_one(PresenceChanged) == PresenceChanged(name="dave", online=False)


async def test_presence_watch_defaults_to_on_and_can_be_turned_off(world: World) -> None:
    watcher = await world.connect("watcher")
    await watcher.send(type="presence_watch")
    assert watcher.take_one(Presence).names == ["watcher"]

    await watcher.send(type="presence_watch", watch=False)
    await world.connect("late")

    assert watcher.take() == []


async def test_unwatched_members_get_no_presence_events(world: World) -> None:
    alice = await world.connect("alice")
    bob = await world.connect("bob")
    bob.closed()
    assert alice.take() == []


async def test_a_watcher_that_leaves_is_no_longer_told(world: World) -> None:
    watcher = await world.connect("watcher")
    other = await world.connect("other")
    await watcher.send(type="presence_watch")
    await other.send(type="presence_watch")
    watcher.take()
    other.take()

    watcher.closed()
    assert other.take_one(PresenceChanged) == PresenceChanged(name="watcher", online=False)
    await world.connect("newcomer")

    assert watcher.take() == []
    assert other.take_one(PresenceChanged).name == "newcomer"


async def test_presence_changed_carries_the_name_as_given(world: World) -> None:
    watcher = await world.connect("watcher")
    await watcher.send(type="presence_watch")
    watcher.take()
    await world.connect("  Rene\u0301 ")
    assert watcher.take_one(PresenceChanged).name == "Ren\u00e9"


async def test_a_name_is_trimmed_and_nfc_normalised(world: World) -> None:
    client = await world.connect("  Rene\u0301 Magritte\t")
    assert client.welcome is not None
    assert client.welcome.name == "Ren\u00e9 Magritte"
    assert client.name == "Ren\u00e9 Magritte"


async def test_a_name_of_64_characters_after_nfc_is_accepted(world: World) -> None:
    decomposed = "e\u0301" * 64
    assert len(decomposed) == 128
    welcome, code = await hello(world, decomposed)
    assert code is None
    assert welcome.name == unicodedata.normalize("NFC", decomposed)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["x" * 65, "e\u0301" * 65, " " * 3 + "y" * 65])
async def test_a_name_over_64_characters_is_refused(world: World, name: str) -> None:
    _, code = await hello(world, name)
    assert code == "invalid_name"
    assert world.hub.online() == 0


async def test_the_name_limit_comes_from_settings(make_world: Callable[..., World]) -> None:
    world = make_world(max_name_chars=3)
    assert (await hello(world, "abc"))[1] is None
    assert (await hello(world, "abcd"))[1] == "invalid_name"
    assert world.hub.online() == 1


@pytest.mark.parametrize(
    "name",
    [
        "",
        "   ",
        "\t\n",
        "evil\u202etxt.exe",  # right-to-left override
        "zero\u200bwidth",
        "nul\x00",
        "two\nlines",
        "bell\x07",
        "soft\u00adhyphen",
        "line\u2028sep",
        "private\ue000use",
        "unassigned\U000e0fff",
    ],
)
async def test_invalid_names(world: World, name: str) -> None:
    _, code = await hello(world, name)
    assert code == "invalid_name"
    assert world.hub.online() == 0


@pytest.mark.parametrize("name", ["Zoë", "李小龍", "O'Brien-Smith", "a b", "🙂", "x"])
async def test_valid_names(world: World, name: str) -> None:
    welcome, code = await hello(world, name)
    assert code is None
    assert welcome.name == name  # type: ignore[attr-defined]
