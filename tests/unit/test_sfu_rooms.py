"""The rules of rooms on the SFU (docs/PROTOCOL.md §3.10), driven through sessions: when a room
moves, who may still come in, what the router is told, and the errors of the ``sfu_*``
messages. The router here only records what the rooms tell it; the real one (Janus) is proven
in tests/turn/test_sfu_rooms.py and tests/e2e/test_sfu.py."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from salon.core.admission import Way
from salon.core.member import Member
from salon.core.sfu import SfuConnection, SfuError
from salon.protocol.messages import (
    Error,
    IceCandidate,
    Joined,
    MediaState,
    MemberJoined,
    RoomMedia,
    SfuAnswer,
    SfuQualityLevel,
    Talking,
    Welcome,
)

from .conftest import Client, World

OFFER = {"type": "offer", "sdp": "v=0\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\n"}


@dataclass
class RecordingRouter:
    """A MediaRouter that answers every offer with a fixed answer and records the rest."""

    available: bool = True
    mesh_limit: int = 2
    max_members: int = 5
    refuse: bool = False
    entered: list[tuple[str, str]] = field(default_factory=list)  # (meeting, member id)
    left: list[tuple[str, str]] = field(default_factory=list)
    closed: list[str] = field(default_factory=list)
    candidates: list[tuple[str, SfuConnection, IceCandidate | None]] = field(default_factory=list)
    qualities: list[tuple[str, str, SfuQualityLevel]] = field(default_factory=list)
    resumes: list[str] = field(default_factory=list)

    def enter(self, room: str, meeting: str, member: Member) -> None:
        self.entered.append((meeting, member.id))

    def leave(self, meeting: str, member_id: str) -> None:
        self.left.append((meeting, member_id))

    def close(self, meeting: str) -> None:
        self.closed.append(meeting)

    async def publish(self, member: Member, sdp: str, screen: str | None) -> str:
        if self.refuse:
            raise SfuError("refused")
        return "v=0\r\nanswer"

    async def subscribe(self, member: Member, sdp: str) -> None:
        if self.refuse:
            raise SfuError("refused")

    async def candidate(
        self, member: Member, pc: SfuConnection, candidate: IceCandidate | None
    ) -> bool:
        self.candidates.append((member.id, pc, candidate))
        return True

    def resumed(self, member: Member) -> None:
        self.resumes.append(member.id)

    async def quality(self, member: Member, publisher: str, level: SfuQualityLevel) -> None:
        self.qualities.append((member.id, publisher, level))


@pytest.fixture
def router() -> RecordingRouter:
    return RecordingRouter()


@pytest.fixture
def sfu_world(make_world: Callable[..., World], router: RecordingRouter) -> World:
    world = make_world(max_room_members=3)
    world.hub.sfu = router
    return world


async def _member(world: World, name: str, version: int = 3) -> Client:
    client = world.open()
    await client.send(type="hello", versions=list(range(1, version + 1)), name=name)
    client.welcome = client.take_one(Welcome)
    return client


async def _three_on_the_sfu(world: World) -> list[Client]:
    """alice, bob and carol joined to "big": carol's join moved it to the SFU."""
    members = [await _member(world, n) for n in ("alice", "bob", "carol")]
    for member in members:
        await _joined(member)
    return members


async def _joined(client: Client, room: str = "big") -> Joined:
    await client.send(type="join", room=room)
    joined = [m for m in client.take() if isinstance(m, Joined)]
    assert len(joined) == 1
    return joined[0]


async def test_the_join_past_the_mesh_limit_moves_the_room_before_seating_the_newcomer(
    sfu_world: World, router: RecordingRouter
) -> None:
    alice, bob, carol = [await _member(sfu_world, n) for n in ("alice", "bob", "carol")]
    assert (await _joined(alice)).sfu is False
    assert (await _joined(bob)).sfu is False
    alice.take()
    assert router.entered == []
    assert (await _joined(carol)).sfu is True
    # alice hears the move before carol's arrival, so she never makes a mesh connection to her.
    kinds = [type(m) for m in alice.take()]
    assert kinds[:2] == [RoomMedia, MemberJoined]
    meeting = router.entered[0][0]
    assert router.entered == [(meeting, alice.id), (meeting, bob.id), (meeting, carol.id)]


async def test_a_room_on_the_sfu_holds_the_sfus_limit_and_refuses_older_clients(
    sfu_world: World, router: RecordingRouter
) -> None:
    members = [await _member(sfu_world, f"m{i}") for i in range(5)]
    for member in members:
        await _joined(member)  # 5 > max_room_members (3): the SFU's limit holds
    sixth = await _member(sfu_world, "sixth")
    await sixth.send(type="join", room="big", ref="full")
    assert sixth.take_error().code == "room_full"
    assert sfu_world.hub.rooms["big"].sfu
    old = await _member(sfu_world, "old", version=2)
    await members[4].send(type="leave")
    await old.send(type="join", room="big", ref="old")
    error = old.take_error()
    assert error.code == "room_full"
    assert "v3" in error.message
    assert old.id not in sfu_world.hub.rooms["big"]


async def test_an_older_client_keeps_a_room_a_mesh_of_the_mesh_size(
    sfu_world: World, router: RecordingRouter
) -> None:
    old = await _member(sfu_world, "old", version=2)
    bob, carol, dave = [await _member(sfu_world, n) for n in ("bob", "carol", "dave")]
    for member in (old, bob, carol):
        assert (await _joined(member)).sfu is False
    await dave.send(type="join", room="big", ref="fourth")
    assert dave.take_error().code == "room_full"  # max_room_members, as without an SFU
    assert router.entered == []


async def test_no_move_while_the_sfu_does_not_answer(
    sfu_world: World, router: RecordingRouter
) -> None:
    router.available = False
    members = [await _member(sfu_world, n) for n in ("alice", "bob", "carol")]
    for member in members:
        assert (await _joined(member)).sfu is False
    fourth = await _member(sfu_world, "dave")
    await fourth.send(type="join", room="big", ref="x")
    assert fourth.take_error().code == "room_full"
    assert router.entered == []


async def test_leaving_tells_the_router_and_the_last_one_out_closes_the_meeting(
    sfu_world: World, router: RecordingRouter
) -> None:
    members = await _three_on_the_sfu(sfu_world)
    meeting = router.entered[0][0]
    await members[0].send(type="leave")
    assert router.left == [(meeting, members[0].id)]
    for member in members[1:]:
        await member.send(type="leave")
    assert router.closed == [meeting]
    # The next meeting in the room starts as a mesh again.
    again = await _member(sfu_world, "again")
    assert (await _joined(again)).sfu is False


async def test_the_sfu_messages_and_their_errors(sfu_world: World, router: RecordingRouter) -> None:
    alice, bob = [await _member(sfu_world, n) for n in ("alice", "bob")]
    await alice.send(type="sfu_publish", description=OFFER, ref="nowhere")
    assert alice.take_error().code == "not_joined"
    await _joined(alice)
    await _joined(bob)
    alice.take()
    await alice.send(type="sfu_publish", description=OFFER, ref="mesh")
    assert alice.take_error().code == "not_sfu_room"
    carol = await _member(sfu_world, "carol")
    await _joined(carol)
    alice.take()
    await alice.send(type="sfu_publish", description=OFFER, screen="2")
    answer = alice.take_one(SfuAnswer)
    assert answer.description.type == "answer"
    await alice.send(type="sfu_publish", description=ANSWER, ref="wrong")
    assert alice.take_error().code == "bad_message"
    await alice.send(type="sfu_subscribe", description=OFFER, ref="wrong")
    assert alice.take_error().code == "bad_message"
    await alice.send(type="sfu_candidate", pc="subscriber", candidate=None)
    assert router.candidates == [(alice.id, "subscriber", None)]
    router.refuse = True
    await alice.send(type="sfu_subscribe", description=ANSWER, ref="refused")
    error = alice.take_error()
    assert (error.code, error.ref) == ("sfu_unavailable", "refused")


async def test_an_older_connection_does_not_know_the_sfu_messages(
    sfu_world: World, router: RecordingRouter
) -> None:
    old = await _member(sfu_world, "old", version=2)
    await _joined(old)
    for message in (
        {"type": "sfu_publish", "description": OFFER},
        {"type": "sfu_subscribe", "description": ANSWER},
        {"type": "sfu_candidate", "pc": "publisher", "candidate": None},
    ):
        await old.send(**message, ref="v2")
        error = old.take_one(Error)
        assert (error.code, error.ref) == ("unknown_type", "v2")


async def test_the_layer_asked_for_goes_to_the_router_for_another_member_only(
    sfu_world: World, router: RecordingRouter
) -> None:
    alice, bob, _ = await _three_on_the_sfu(sfu_world)
    alice.take()
    await alice.send(type="sfu_quality", member=bob.id, quality="low")
    assert alice.take() == []
    assert router.qualities == [(alice.id, bob.id, "low")]
    for who in (alice.id, "nobody"):
        await alice.send(type="sfu_quality", member=who, quality="high", ref="who")
        assert alice.take_error().code == "no_such_member"
    await alice.send(type="sfu_quality", member=bob.id, quality="best", ref="bad")
    assert alice.take_error().code == "bad_message"
    assert len(router.qualities) == 1


async def test_a_muted_microphone_stops_its_talking_on_the_sfu_only(
    sfu_world: World, router: RecordingRouter
) -> None:
    alice, bob = [await _member(sfu_world, n) for n in ("alice", "bob")]
    for member in (alice, bob):
        await member.send(type="join", room="mesh", media={"mic": True, "camera": True})
    bob.take()
    await alice.send(type="media", mic=False, camera=True, screen=False)
    assert not any(isinstance(m, Talking) for m in bob.take())  # a mesh: no talk events
    carol = await _member(sfu_world, "carol")
    await carol.send(type="join", room="mesh", media={"mic": True, "camera": True})
    await alice.send(type="media", mic=True, camera=True, screen=False)
    bob.take()
    await alice.send(type="media", mic=False, camera=True, screen=False)
    talking = [m for m in bob.take() if isinstance(m, Talking)]
    assert talking == [Talking(room="mesh", member=alice.id, talking=False)]
    # A host's mute turns it off too: the same word (it was once never said, and a muted
    # member stayed shown as talking). A camera muted says nothing of talking.
    await alice.send(type="mute", id=carol.id, kind="camera")
    assert not any(isinstance(m, Talking) for m in bob.take())
    await alice.send(type="mute", id=carol.id, kind="mic")
    talking = [m for m in bob.take() if isinstance(m, Talking)]
    assert talking == [Talking(room="mesh", member=carol.id, talking=False)]
    await alice.send(type="mute", id=carol.id, kind="mic")  # off already: nothing more
    assert not any(isinstance(m, Talking) for m in bob.take())


async def test_a_restart_gives_a_new_place_and_is_rate_limited(
    sfu_world: World, router: RecordingRouter
) -> None:
    alice, bob, _ = await _three_on_the_sfu(sfu_world)
    alice.take()
    bob.take()
    entered, meeting = len(router.entered), router.entered[0][0]
    for _ in range(3):
        await alice.send(type="sfu_restart")
        assert alice.take() == [RoomMedia(room="big", sfu=True)]
    assert router.entered[entered:] == [(meeting, alice.id)] * 3
    await alice.send(type="sfu_restart", ref="again")
    assert alice.take_error().code == "rate_limited"
    assert len(router.entered) == entered + 3
    assert bob.take() == []  # nobody else hears of it


async def test_an_offer_with_more_than_one_audio_and_two_video_m_lines_is_refused(
    sfu_world: World, router: RecordingRouter
) -> None:
    members = await _three_on_the_sfu(sfu_world)
    alice = members[0]
    alice.take()
    lines = "v=0\r\nm=audio 9 x\r\nm=video 9 x\r\nm=video 9 x\r\n"
    await alice.send(type="sfu_publish", description={"type": "offer", "sdp": lines})
    assert isinstance(alice.take_one(SfuAnswer), SfuAnswer)  # camera and screen: fine
    for extra in ("m=video 9 x\r\n", "m=application 9 x\r\n", "m=audio 9 x\r\n"):
        offer = {"type": "offer", "sdp": lines + extra}
        await alice.send(type="sfu_publish", description=offer, ref="many")
        assert alice.take_error().code == "bad_message"


async def test_an_older_client_cannot_take_back_a_seat_on_the_sfu(
    sfu_world: World, router: RecordingRouter
) -> None:
    """A v2 connection of the same account as a member on the SFU (newest wins, §2.8) is
    refused as any v2 joiner: it could not use the SFU."""
    await _three_on_the_sfu(sfu_world)
    old = await _member(sfu_world, "old", version=2)
    sfu_world.hub._seat_taken_back = lambda member, room: Way.SEAT  # type: ignore[method-assign]
    await old.send(type="join", room="big", ref="takeover")
    assert old.take_error().code == "room_full"
    assert old.id not in sfu_world.hub.rooms["big"]


async def test_resuming_after_lost_messages_asks_for_the_unanswered_offer_again(
    sfu_world: World, router: RecordingRouter
) -> None:
    members = await _three_on_the_sfu(sfu_world)
    sfu_world.hub.sfu_resumed(members[0])
    assert router.resumes == [members[0].id]
    lone = await _member(sfu_world, "lone")
    await _joined(lone, room="mesh")
    sfu_world.hub.sfu_resumed(lone)  # a mesh room: nothing to ask
    assert router.resumes == [members[0].id]


async def test_no_restart_while_the_sfu_does_not_answer_and_no_budget_spent(
    sfu_world: World, router: RecordingRouter
) -> None:
    members = await _three_on_the_sfu(sfu_world)
    alice = members[0]
    alice.take()
    router.available = False
    for _ in range(5):
        await alice.send(type="sfu_restart", ref="down")
        assert alice.take_error().code == "sfu_unavailable"
    router.available = True
    for _ in range(3):  # the whole budget is still there
        await alice.send(type="sfu_restart")
        assert alice.take() == [RoomMedia(room="big", sfu=True)]


async def test_a_member_seated_again_on_the_sfu_is_told_to_start_over(
    sfu_world: World, router: RecordingRouter
) -> None:
    """A place rebuilt from its token (the server restarted) into a room on the SFU gets a new
    place there: its old connections are dead, so it hears ``room_media`` after ``joined``."""
    members = await _three_on_the_sfu(sfu_world)
    room = sfu_world.hub.rooms["big"]
    carol = members[2]
    del room.seats[carol.id]  # as if carol's place were rebuilt by a restarted server
    del sfu_world.hub._where[carol.id]
    carol.take()
    sfu_world.hub._seat(carol.session._member, room, MediaState(), returning=True)
    kinds = [type(m) for m in carol.take()]
    assert kinds.index(Joined) < kinds.index(RoomMedia)
    assert router.entered[-1][1] == carol.id
