"""Look-alike names (UTS #39 skeletons) and the hub's refusal of registered names to guests."""

from __future__ import annotations

import pytest

from salon.core.clock import FakeClock
from salon.core.hub import Hub
from salon.core.names import MemoryReservedNames, skeleton
from salon.core.passwords import MemoryRoomPasswords
from salon.core.session import Session
from salon.core.settings import LimitSettings
from salon.protocol.messages import Error, SignedInAccount, Welcome
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
    return Hub(limits, FakeClock(), MemoryChatRepository(), MemoryRoomPasswords(), reserved)


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
