"""Signal relay and media state between members of one room."""

from __future__ import annotations

from salon.protocol.messages import Joined, MediaState, MemberInfo, MemberJoined, SignalRelay

from .conftest import World

OFFER = {"type": "offer", "sdp": "v=0\r\n"}
CANDIDATE = {"candidate": "candidate:1 1 udp 1 192.0.2.1 5000 typ host", "sdpMid": "0"}


async def test_signal_reaches_only_the_target_stamped_by_the_server(world: World) -> None:
    alice, bob, carol = await world.connect_in("lobby", "alice", "bob", "carol")

    await alice.send(type="signal", to=bob.id, description=OFFER)

    (wire,) = bob.take_wire()
    assert wire == {
        "type": "signal",
        "from": alice.id,
        "description": OFFER,
        "candidate": None,
        "rejected": None,
        "reset": None,
    }
    assert alice.take() == []
    assert carol.take() == []


async def test_signal_relays_a_candidate(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")

    await bob.send(type="signal", to=alice.id, candidate=CANDIDATE)

    relay = alice.take_one(SignalRelay)
    assert relay.sender == bob.id
    assert relay.description is None
    assert relay.candidate is not None
    assert relay.candidate.candidate == CANDIDATE["candidate"]
    assert relay.candidate.sdpMid == "0"


async def test_signal_elsewhere_and_nowhere_give_the_same_answer(world: World) -> None:
    alice, _bob = await world.connect_in("one", "alice", "bob")
    (dave,) = await world.connect_in("two", "dave")

    await alice.send(type="signal", to=dave.id, description=OFFER)
    elsewhere = alice.take_error()
    await alice.send(type="signal", to="no-such-id", description=OFFER)
    nowhere = alice.take_error()

    assert elsewhere.code == "no_such_member"
    assert (elsewhere.code, elsewhere.message) == (nowhere.code, nowhere.message)
    assert dave.take() == []


async def test_signal_to_yourself_is_refused(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")

    await alice.send(type="signal", to=alice.id, description=OFFER)

    assert alice.take_error().code == "no_such_member"
    assert bob.take() == []


async def test_signal_before_join(world: World) -> None:
    alice = await world.connect("alice")
    (bob,) = await world.connect_in("lobby", "bob")

    await alice.send(type="signal", to=bob.id, description=OFFER, ref="s1")

    error = alice.take_error()
    assert (error.code, error.ref) == ("not_joined", "s1")
    assert bob.take() == []


async def test_signal_before_hello(world: World) -> None:
    (bob,) = await world.connect_in("lobby", "bob")
    stranger = world.open()

    await stranger.send(type="signal", to=bob.id, description=OFFER)

    assert stranger.take_error().code == "hello_required"
    assert bob.take() == []


async def test_signal_needs_exactly_one_payload(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")

    await alice.send(type="signal", to=bob.id, description=OFFER, candidate=CANDIDATE)
    assert alice.take_error().code == "bad_message"
    await alice.send(type="signal", to=bob.id)
    assert alice.take_error().code == "bad_message"
    assert bob.take() == []


async def test_media_goes_to_the_others_not_the_sender(world: World) -> None:
    alice, bob, carol = await world.connect_in("lobby", "alice", "bob", "carol")

    await alice.send(type="media", mic=True, camera=False, screen=True)

    assert alice.take() == []
    for other in (bob, carol):
        (wire,) = other.take_wire()
        assert wire == {
            "type": "media",
            "from": alice.id,
            "mic": True,
            "camera": False,
            "screen": True,
        }


async def test_media_state_is_in_joined_for_late_joiners(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob", media={"mic": True})
    await alice.send(type="media", mic=False, camera=True, screen=True)
    carol = await world.connect("carol")

    await carol.send(type="join", room="lobby")

    members = {m.id: m.media for m in carol.take_one(Joined).members}
    assert (members[alice.id].mic, members[alice.id].camera, members[alice.id].screen) == (
        False,
        True,
        True,
    )
    assert (members[bob.id].mic, members[bob.id].camera, members[bob.id].screen) == (
        True,
        False,
        False,
    )
    newcomer = MemberInfo(id=carol.id, name="carol", polite=bob.id > carol.id, media=MediaState())
    assert bob.take()[-1] == MemberJoined(room="lobby", member=newcomer)


async def test_media_before_join(world: World) -> None:
    alice = await world.connect("alice")
    await alice.send(type="media", mic=True, camera=True, screen=False)
    assert alice.take_error().code == "not_joined"


async def test_media_fields_are_strict_booleans(world: World) -> None:
    alice, bob = await world.connect_in("lobby", "alice", "bob")
    await alice.send(type="media", mic=1, camera=True, screen=False)
    assert alice.take_error().code == "bad_message"
    assert bob.take() == []
    assert world.hub.rooms["lobby"].seats[alice.id].media.mic is False
