"""Presence: reachable names (unique, listed, watched), room-only names (not unique), and the
rules for display names."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest

from salon.protocol.messages import Joined, MemberJoined, Presence, PresenceChanged, Welcome

from .conftest import World


async def hello(world: World, name: str, *, reachable: bool = False) -> tuple[object, str | None]:
    """Say hello as ``name``: the welcome, or the error code."""
    client = world.open()
    await client.send(type="hello", versions=[1], name=name, reachable=reachable)
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
        ("carla", "\uff43\uff41\uff52\uff4c\uff41"),  # fullwidth
        ("carla", "carla\u200d"),  # zero width joiner
        ("carla", "c\u0430rla"),  # Cyrillic small a
        ("carla", "Car la"),  # whitespace does not tell names apart
    ],
)
async def test_reachable_names_are_unique_by_their_key(
    world: World, first: str, second: str
) -> None:
    await world.connect(first, reachable=True)
    client = world.open()

    await client.send(type="hello", versions=[1], name=second, reachable=True, ref="h")

    error = client.take_error()
    assert (error.code, error.ref) == ("name_taken", "h")
    assert world.hub.online() == 1
    # The same name only shown in rooms is no one's to refuse.
    assert (await hello(world, second))[1] is None
    assert world.hub.online() == 2


async def test_names_shown_in_rooms_need_not_be_unique(world: World) -> None:
    first, second = await world.connect_in("lobby", "Sam", "Sam")
    assert first.id != second.id
    await world.connect("sam")  # in no room at all
    third = await world.connect("SAM", reachable=True)  # and one reachable Sam
    await third.send(type="join", room="lobby")
    joined = third.take_one(Joined)
    assert [(m.id, m.name) for m in joined.members] == [(first.id, "Sam"), (second.id, "Sam")]
    assert first.take_one(MemberJoined).member.name == "SAM"
    assert world.hub.online() == 4


async def test_a_refused_hello_can_be_retried_with_another_name(world: World) -> None:
    await world.connect("alice", reachable=True)
    client = world.open()
    await client.send(type="hello", versions=[1], name="Alice", reachable=True)
    assert client.take_error().code == "name_taken"

    await client.send(type="hello", versions=[1], name="alice2", reachable=True)

    assert client.take_one(Welcome).name == "alice2"
    assert world.hub.online() == 2


async def test_a_name_is_freed_on_disconnect(world: World) -> None:
    alice = await world.connect("alice", reachable=True)
    alice.closed()
    assert world.hub.online() == 0

    again = await world.connect("ALICE", reachable=True)

    assert again.welcome is not None
    assert again.welcome.name == "ALICE"


async def test_a_session_that_never_said_hello_frees_nothing(world: World) -> None:
    await world.connect("alice", reachable=True)
    stranger = world.open()
    await stranger.send(type="hello", versions=[1], name="alice", reachable=True)
    stranger.take()

    stranger.closed()

    assert world.hub.online() == 1
    taken = world.open()
    await taken.send(type="hello", versions=[1], name="alice", reachable=True)
    assert taken.take_error().code == "name_taken"


async def test_presence_watch_sends_a_sorted_snapshot_then_changes(world: World) -> None:
    for name in ("carol", "Bob", "alice"):
        await world.connect(name, reachable=True)
    watcher = await world.connect("watcher", reachable=True)

    await watcher.send(type="presence_watch", watch=True)
    assert watcher.take_one(Presence).names == ["alice", "Bob", "carol", "watcher"]

    dave = await world.connect("dave", reachable=True)
    assert watcher.take_one(PresenceChanged) == PresenceChanged(name="dave", online=True)

    dave.closed()
    assert watcher.take_one(PresenceChanged) == PresenceChanged(name="dave", online=False)


async def test_presence_lists_and_tells_only_reachable_names(world: World) -> None:
    await world.connect("carol", reachable=True)
    await world.connect("in a room")
    watcher = await world.connect("watcher")  # watching does not need a reachable name

    await watcher.send(type="presence_watch")
    assert watcher.take_one(Presence).names == ["carol"]

    shown = await world.connect("shown only")
    await shown.send(type="join", room="lobby")
    shown.closed(goodbye=False)  # away, then back: nothing for watchers either
    back = world.open()
    await back.send(type="hello", versions=[1], name="x", resume=shown.token)
    back.take()
    back.closed()
    assert watcher.take() == []
    assert world.hub.online() == 3


async def test_presence_watch_defaults_to_on_and_can_be_turned_off(world: World) -> None:
    watcher = await world.connect("watcher", reachable=True)
    await watcher.send(type="presence_watch")
    assert watcher.take_one(Presence).names == ["watcher"]

    await watcher.send(type="presence_watch", watch=False)
    await world.connect("late", reachable=True)

    assert watcher.take() == []


async def test_unwatched_members_get_no_presence_events(world: World) -> None:
    alice = await world.connect("alice")
    bob = await world.connect("bob")
    bob.closed()
    assert alice.take() == []


async def test_a_watcher_that_leaves_is_no_longer_told(world: World) -> None:
    watcher = await world.connect("watcher", reachable=True)
    other = await world.connect("other", reachable=True)
    await watcher.send(type="presence_watch")
    await other.send(type="presence_watch")
    watcher.take()
    other.take()

    watcher.closed()
    assert other.take_one(PresenceChanged) == PresenceChanged(name="watcher", online=False)
    await world.connect("newcomer", reachable=True)

    assert watcher.take() == []
    assert other.take_one(PresenceChanged).name == "newcomer"


async def test_presence_changed_carries_the_name_as_given(world: World) -> None:
    watcher = await world.connect("watcher")
    await watcher.send(type="presence_watch")
    watcher.take()
    await world.connect("  Rene\u0301 ", reachable=True)
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
        # Names that display as nothing (N6): fillers, blanks, invisible joiners, lone marks.
        "\u3164",  # HANGUL FILLER
        "\u3164\u3164",
        "\u2800",  # BRAILLE PATTERN BLANK
        " \u2800 ",
        "\u115f",  # HANGUL CHOSEONG FILLER
        "\u1160",  # HANGUL JUNGSEONG FILLER
        "\uffa0",  # HALFWIDTH HANGUL FILLER
        "\u0301",  # a combining accent with nothing to sit on
        "\u034f",  # COMBINING GRAPHEME JOINER
        "\ufe0f",  # VARIATION SELECTOR-16
        "\u3000",  # IDEOGRAPHIC SPACE
        "\u2800\u0301\u3164",
    ],
)
async def test_invalid_names(world: World, name: str) -> None:
    _, code = await hello(world, name)
    assert code == "invalid_name"
    assert world.hub.online() == 0


@pytest.mark.parametrize(
    "name",
    [
        "Zoë",
        "Zoe\u0308",  # kept, as NFC: Zoë
        "José Ñúñez",
        "李小龍",
        "محمد",
        "Ελένη",
        "O'Brien-Smith",
        "a b",
        "🙂",
        "\U0001f469\u200d\U0001f4bb",  # 👩‍💻: the joiner stays
        "\u2764\ufe0f",  # ❤️ with its variation selector
        "x",
    ],
)
async def test_valid_names(world: World, name: str) -> None:
    welcome, code = await hello(world, name, reachable=True)
    assert code is None
    assert welcome.name == unicodedata.normalize("NFC", name)  # type: ignore[attr-defined]
